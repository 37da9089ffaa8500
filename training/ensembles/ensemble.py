"""Model ensembles on mnist5k: zoo members plus bagged and boosted short runs, combined five ways
(training/ensembles/combiners.py).

* bagging (Breiman 1996): each member trains on a bootstrap sample of the fit part;
* SAMME boosting (Zhu et al. 2009, multi-class AdaBoost): short runs on weighted resamples, each round
  up-weighting the examples the previous member got wrong.

Bagged and boosted members train on the first `len(train) - holdout` train images only, so the held-out
images are unseen by them. The zoo members were trained on the whole train split, held-out part
included: their held-out accuracy is optimistic, which the UI says next to the weights it produces.
What is done with a built ensemble (its table, votes, transport between processes):
training/ensembles/ensemble_results.py.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn

from training.ensembles.combiners import N_CLASSES, accuracy_weights, combine_all, fit_stacker, member_sets, samme_alpha
from training.data.datasets import Split, mnist5k
from training.compression.measure import predict_logits
from training.trainer import TrainConfig, train
from core.errors import InputError, term
from core.cache import LRUCache
from zoo.digits import StudentCNN
from zoo.hub import WeightsError, WeightsUnavailable
from zoo.registry import get_model, get_spec, list_models


@dataclass
class EnsembleConfig:
    """One ensemble experiment. Defaults: a fast offline run (well under a minute on 2 CPU cores)."""

    zoo_members: tuple[str, ...] = ("resnet_digits", "vgg_digits", "alexnet_digits")
    n_bagged: int = 2
    n_boosted: int = 2
    member_arch: str = "small_cnn"        # "small_cnn" or a digits zoo architecture trained from scratch;
                                          # a comma-separated list: members take the architectures in turn
    steps: int = 30                       # optimizer steps per bagged/boosted member
    batch_size: int = 64
    lr: float = 3e-3
    holdout: int = 500                    # last train images: held out for stacking / weights
    seed: int = 0
    amp: str = "off"                      # members' training: "off" | "bf16" autocast (same as the trainer's)
    channels_last: bool = False           # members' training in NHWC (faster convs on CPU)

    def archs(self) -> list[str]:
        out = [a.strip() for a in self.member_arch.split(",") if a.strip()]
        bad = [a for a in out if a != "small_cnn" and a not in list_models("digits")]
        if bad or not out:
            raise InputError("ensemble.member_arch", models=", ".join(list_models("digits")))
        return out

    def arch_of(self, k: int) -> str:
        """The architecture of the k-th bagged (or boosted) member."""
        a = self.archs()
        return a[k % len(a)]

    def key(self) -> tuple:
        return tuple(asdict(self).values())


def split_holdout(data: Split, holdout: int) -> tuple[Split, torch.Tensor, torch.Tensor]:
    """(data with train = all but the last `holdout` train images, held-out x, held-out y)."""
    if not 0 < holdout < len(data.train_x) // 2:
        raise InputError("ensemble.holdout", last=len(data.train_x) // 2 - 1)
    n = len(data.train_x) - holdout
    fit = Split(data.train_x[:n], data.train_y[:n], data.test_x, data.test_y, data.classes)
    return fit, data.train_x[n:], data.train_y[n:]


def new_member(arch: str) -> nn.Module:
    if arch == "small_cnn":
        return StudentCNN()
    if arch not in list_models("digits"):
        raise InputError("ensemble.member_arch", models=", ".join(list_models("digits")))
    return get_spec(arch).builder()


def _member(arch: str) -> nn.Module:
    m = new_member(arch)
    m._ensemble_arch = arch           # export_result names each trained member's architecture
    return m


def _train_on(model: nn.Module, data: Split, idx: torch.Tensor, cfg: EnsembleConfig, seed: int) -> nn.Module:
    sub = Split(data.train_x[idx], data.train_y[idx], data.test_x[:0], data.test_y[:0], data.classes)
    epochs = max(1, math.ceil(cfg.steps / max(1, len(idx) // cfg.batch_size)))
    train(model, sub, TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr, max_steps=cfg.steps,
                                  seed=seed, amp=cfg.amp, channels_last=cfg.channels_last))
    return model.cpu().eval()


def train_bagged(fit: Split, cfg: EnsembleConfig, progress=None) -> list[nn.Module]:
    """K members, each on a bootstrap sample (n draws with replacement) of the fit part (Breiman 1996)."""
    members = []
    for k in range(cfg.n_bagged):
        if progress is not None:
            progress(k, cfg.n_bagged + cfg.n_boosted, term("job.ensemble.bagged", k=k + 1, n=cfg.n_bagged))
        g = torch.Generator().manual_seed(cfg.seed * 1000 + k)
        idx = torch.randint(len(fit.train_x), (len(fit.train_x),), generator=g)
        torch.manual_seed(cfg.seed * 1000 + k)
        members.append(_train_on(_member(cfg.arch_of(k)), fit, idx, cfg, seed=cfg.seed * 1000 + k))
    return members


def train_boosted(fit: Split, cfg: EnsembleConfig, progress=None) -> tuple[list[nn.Module], list[float], list[float]]:
    """SAMME with resampling: each round trains on a draw weighted by w, then up-weights its mistakes."""
    n = len(fit.train_x)
    w = torch.full((n,), 1.0 / n)
    members, alphas, errors = [], [], []
    for k in range(cfg.n_boosted):
        if progress is not None:
            progress(cfg.n_bagged + k, cfg.n_bagged + cfg.n_boosted,
                     term("job.ensemble.boosted", k=k + 1, n=cfg.n_boosted))
        g = torch.Generator().manual_seed(cfg.seed * 1000 + 500 + k)
        idx = torch.multinomial(w, n, replacement=True, generator=g)
        torch.manual_seed(cfg.seed * 1000 + 500 + k)
        m = _train_on(_member(cfg.arch_of(k)), fit, idx, cfg, seed=cfg.seed * 1000 + 500 + k)
        miss = (predict_logits(m, fit.train_x).argmax(1) != fit.train_y).float()
        err = float((w * miss).sum() / w.sum())
        if err >= 1 - 1 / N_CLASSES:      # no better than chance: SAMME stops here
            break
        a = samme_alpha(err)
        w = w * torch.exp(a * miss)
        w = w / w.sum()
        members.append(m)
        alphas.append(a)
        errors.append(err)
    return members, alphas, errors


_cache: LRUCache = LRUCache(4)   # trained members per setting, in the job worker


def trained_members(data: Split, cfg: EnsembleConfig,
                    progress=None) -> tuple[list[nn.Module], list[nn.Module], list[float], list[float]]:
    """Bagged + boosted members for cfg, trained once per process (seeded) and cached."""
    key = tuple(v for k, v in asdict(cfg).items() if k != "zoo_members")   # members do not depend on the zoo ones

    def build():
        fit, _, _ = split_holdout(data, cfg.holdout)
        bagged = train_bagged(fit, cfg, progress)
        boosted, alphas, errors = train_boosted(fit, cfg, progress)
        return bagged, boosted, alphas, errors

    return _cache.get_or_build(key, build)


# ------------------------------------------------------------------------------------------- results
@dataclass
class EnsembleResult:
    """Member outputs on held-out and test images, the fitted combiners, and the accuracy table."""

    names: list[str]
    kinds: list[str]                      # "zoo" | "bagged" | "boosted"
    test_probs: torch.Tensor              # (M, 1000, 10)
    holdout_probs: torch.Tensor           # (M, holdout, 10)
    test_y: torch.Tensor
    weights: torch.Tensor                 # weighted-average weights (M,)
    alphas: list[float]                   # SAMME alphas of the boosted members
    boost_errors: list[float]
    stacker: object
    models: list[nn.Module] = field(repr=False, default_factory=list)
    combos: dict[str, torch.Tensor] = field(default_factory=dict)   # combiner -> (N, C) test probs

    def member_acc(self) -> list[float]:
        return [100.0 * (p.argmax(-1) == self.test_y).float().mean().item() for p in self.test_probs]

    def combo_acc(self) -> dict[str, float]:
        return {k: 100.0 * (v.argmax(-1) == self.test_y).float().mean().item() for k, v in self.combos.items()}

    def combo_best_member(self) -> dict[str, float]:
        """For each combiner, the test accuracy of the best of the members it combines."""
        acc = self.member_acc()
        return {k: max(acc[i] for i in idx) for k, idx in member_sets(self.kinds).items()}


def run_ensemble(cfg: EnsembleConfig | None = None, data: Split | None = None, progress=None) -> EnsembleResult:
    """Train/collect members, fit weights and the stacker on held-out train images, combine on test.
    progress(done, total, text) reports each member; it may raise to cancel."""
    cfg = cfg or EnsembleConfig()
    cfg.archs()                            # a bad member_arch fails here, before anything trains
    data = data or mnist5k()
    _, hx, hy = split_holdout(data, cfg.holdout)
    names, kinds, models = [], [], []
    for name in cfg.zoo_members:
        if name not in list_models("digits"):
            raise ValueError(f"unknown digits model {name!r}")
        try:
            models.append(get_model(name).cpu().eval())
        except (WeightsUnavailable, WeightsError):
            continue                       # a zoo model without weights yet is left out, not faked
        names.append(name)
        kinds.append("zoo")
    bagged, boosted, alphas, errors = trained_members(data, cfg, progress)
    if progress is not None:
        progress(cfg.n_bagged + cfg.n_boosted, cfg.n_bagged + cfg.n_boosted, term("job.ensemble.scoring"))
    for i, m in enumerate(bagged):
        names.append(f"bagged #{i + 1} ({cfg.arch_of(i)}, {cfg.steps} steps)")
        kinds.append("bagged")
        models.append(m)
    for i, m in enumerate(boosted):
        names.append(f"boosted #{i + 1} ({cfg.arch_of(i)}, alpha {alphas[i]:.2f})")
        kinds.append("boosted")
        models.append(m)
    if len(models) < 2:
        raise InputError("ensemble.too_few")
    test_probs = torch.stack([predict_logits(m, data.test_x).softmax(-1) for m in models])
    hold_probs = torch.stack([predict_logits(m, hx).softmax(-1) for m in models])
    weights = accuracy_weights(hold_probs, hy)
    stacker = fit_stacker(hold_probs, hy)
    res = EnsembleResult(names, kinds, test_probs, hold_probs, data.test_y, weights, alphas, errors, stacker, models)
    res.combos = combine_all(test_probs, kinds, weights, alphas, stacker)
    return res
