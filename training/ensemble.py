"""Model ensembles on mnist5k: zoo members plus bagged and boosted short runs, five ways to combine them.

Combiners (all take member outputs as tensors, so they are tested on hand-made logits):
* probability averaging: mean of softmax outputs, argmax;
* majority vote: each member votes its argmax; ties go to the class with the larger mean probability;
* weighted average: softmax outputs weighted by each member's held-out log-odds of being right;
* stacking (Wolpert 1992): a scikit-learn LogisticRegression on the members' log-probabilities, fitted
  ONLY on a held-out part of the mnist5k *train* split (the last `holdout` images), never on test;
* SAMME boosting (Zhu et al. 2009, multi-class AdaBoost): short runs on weighted resamples, each round
  up-weighting the examples the previous member got wrong; members vote with weight
  alpha = log((1 - err) / err) + log(K - 1).

Bagged and boosted members train on the first `len(train) - holdout` train images only, so the held-out
images are unseen by them. The zoo members were trained on the whole train split, held-out part
included: their held-out accuracy is optimistic, which the UI says next to the weights it produces.
"""
from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn

from training.data import Split

N_CLASSES = 10


# ------------------------------------------------------------------------------------------ combiners
def probs_of(logits: torch.Tensor) -> torch.Tensor:
    """(M, N, C) logits -> probabilities."""
    return logits.float().softmax(-1)


def average(probs: torch.Tensor) -> torch.Tensor:
    """(M, N, C) member probabilities -> (N, C) mean probability."""
    return probs.mean(0)


def majority_vote(probs: torch.Tensor) -> torch.Tensor:
    """(M, N, C) -> (N,) the most voted class; a tie goes to the tied class with the highest mean prob."""
    votes = torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).sum(0).float()  # (N, C)
    top = votes.max(1, keepdim=True).values
    tie_break = torch.where(votes == top, probs.mean(0), torch.full_like(votes, -1.0))
    return tie_break.argmax(1)


def vote_counts(probs: torch.Tensor) -> torch.Tensor:
    """(M, N, C) -> (N, C) how many members voted for each class."""
    return torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).sum(0)


def weighted_average(probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(M, N, C) and (M,) non-negative weights -> (N, C) weighted mean probability."""
    w = weights.float().clamp_min(0)
    if w.sum() <= 0:
        raise ValueError("weighted average needs at least one positive weight")
    return (probs * (w / w.sum()).view(-1, 1, 1)).sum(0)


def accuracy_weights(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-member weight = log-odds of being right on (held-out) data, Laplace-smoothed, floored at 0."""
    correct = (probs.argmax(-1) == y).float().sum(1)
    acc = (correct + 1) / (probs.shape[1] + 2)
    return torch.log(acc / (1 - acc)).clamp_min(0)


def stacking_features(probs: torch.Tensor) -> "np.ndarray":  # noqa: F821
    """(M, N, C) -> (N, M*C) log-probabilities, the meta-classifier's input."""
    return probs.clamp_min(1e-6).log().permute(1, 0, 2).reshape(probs.shape[1], -1).numpy()


def fit_stacker(holdout_probs: torch.Tensor, holdout_y: torch.Tensor, C: float = 1.0):
    """Fit the meta-classifier on held-out member outputs (never test ones)."""
    from sklearn.linear_model import LogisticRegression

    meta = LogisticRegression(C=C, max_iter=1000)
    meta.fit(stacking_features(holdout_probs), holdout_y.numpy())
    meta.n_fit_ = len(holdout_y)           # recorded so tests can check what it was fitted on
    return meta


def stack_predict(meta, probs: torch.Tensor) -> torch.Tensor:
    """(M, N, C) -> (N, C) meta-classifier probabilities."""
    p = torch.from_numpy(meta.predict_proba(stacking_features(probs))).float()
    out = torch.zeros(p.shape[0], N_CLASSES)
    out[:, torch.as_tensor(meta.classes_)] = p
    return out


def samme_alpha(err: float, n_classes: int = N_CLASSES) -> float:
    """SAMME's member weight; positive as long as the member beats chance (err < 1 - 1/K)."""
    err = min(max(err, 1e-10), 1 - 1e-10)
    return math.log((1 - err) / err) + math.log(n_classes - 1)


def samme_combine(probs: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
    """(M, N, C) and (M,) -> (N, C) alpha-weighted votes, normalised to sum to 1."""
    votes = torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).float()     # (M, N, C)
    s = (votes * alphas.float().view(-1, 1, 1)).sum(0)
    return s / s.sum(1, keepdim=True).clamp_min(1e-12)


# ------------------------------------------------------------------------------------------- members
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
        from zoo.registry import list_models

        out = [a.strip() for a in self.member_arch.split(",") if a.strip()]
        if not out:
            raise ValueError("member_arch names no architecture")
        bad = [a for a in out if a != "small_cnn" and a not in list_models("digits")]
        if bad:
            raise ValueError(f"member_arch: unknown {bad}; use 'small_cnn' or {list_models('digits')}")
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
        raise ValueError(f"holdout must be between 1 and {len(data.train_x) // 2 - 1}")
    n = len(data.train_x) - holdout
    fit = Split(data.train_x[:n], data.train_y[:n], data.test_x, data.test_y, data.classes)
    return fit, data.train_x[n:], data.train_y[n:]


def new_member(arch: str) -> nn.Module:
    if arch == "small_cnn":
        from training.compress import StudentCNN

        return StudentCNN()
    from zoo.registry import get_spec, list_models

    if arch not in list_models("digits"):
        raise ValueError(f"member_arch must be 'small_cnn' or one of {list_models('digits')}")
    return get_spec(arch).builder()


def _member(arch: str) -> nn.Module:
    m = new_member(arch)
    m._ensemble_arch = arch           # export_result names each trained member's architecture
    return m


def _train_on(model: nn.Module, data: Split, idx: torch.Tensor, cfg: EnsembleConfig, seed: int) -> nn.Module:
    from training.trainer import TrainConfig, train

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
            progress(k, cfg.n_bagged + cfg.n_boosted, f"training bagged member {k + 1} of {cfg.n_bagged}")
        g = torch.Generator().manual_seed(cfg.seed * 1000 + k)
        idx = torch.randint(len(fit.train_x), (len(fit.train_x),), generator=g)
        torch.manual_seed(cfg.seed * 1000 + k)
        members.append(_train_on(_member(cfg.arch_of(k)), fit, idx, cfg, seed=cfg.seed * 1000 + k))
    return members


def train_boosted(fit: Split, cfg: EnsembleConfig, progress=None) -> tuple[list[nn.Module], list[float], list[float]]:
    """SAMME with resampling: each round trains on a draw weighted by w, then up-weights its mistakes."""
    from training.measure import predict_logits

    n = len(fit.train_x)
    w = torch.full((n,), 1.0 / n)
    members, alphas, errors = [], [], []
    for k in range(cfg.n_boosted):
        if progress is not None:
            progress(cfg.n_bagged + k, cfg.n_bagged + cfg.n_boosted,
                     f"training boosted member {k + 1} of {cfg.n_boosted} (SAMME round)")
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


def member_sets(kinds: list[str]) -> dict[str, list[int]]:
    """Which members each combiner combines (indices into the member list), in table order; combine_all
    computes exactly these combiners over exactly these members."""
    idx = {k: [i for i, kk in enumerate(kinds) if kk == k] for k in ("zoo", "bagged", "boosted")}
    everyone = list(range(len(kinds)))
    out = {"average (all members)": everyone, "majority vote (all members)": everyone,
           "weighted average (held-out log-odds)": everyone, "stacking (LogisticRegression on held-out)": everyone}
    if idx["zoo"]:
        out["average (zoo members)"] = idx["zoo"]
    if idx["bagged"]:
        out["bagging (average of bagged)"] = idx["bagged"]
    if idx["boosted"]:
        out["boosting (SAMME vote of boosted)"] = idx["boosted"]
    return out


def combine_all(probs: torch.Tensor, kinds: list[str], weights, alphas, stacker) -> dict[str, torch.Tensor]:
    """Every combiner's (N, C) output for member probabilities (M, N, C), each over its member_sets() members."""
    combiners = {
        "average (all members)": average,
        "majority vote (all members)": lambda p: torch.nn.functional.one_hot(majority_vote(p), p.shape[-1]).float(),
        "weighted average (held-out log-odds)": lambda p: weighted_average(p, weights),
        "stacking (LogisticRegression on held-out)": lambda p: stack_predict(stacker, p),
        "average (zoo members)": average,
        "bagging (average of bagged)": average,
        "boosting (SAMME vote of boosted)": lambda p: samme_combine(p, torch.tensor(alphas)),
    }
    return {name: combiners[name](probs[idx]) for name, idx in member_sets(kinds).items()}


_cache: dict[tuple, tuple] = {}
_lock = threading.Lock()


def trained_members(data: Split, cfg: EnsembleConfig, progress=None) -> tuple[list[nn.Module], list[float], list[float], list[float]]:
    """Bagged + boosted members for cfg, trained once per process (seeded) and cached."""
    key = tuple(v for k, v in asdict(cfg).items() if k != "zoo_members")   # members do not depend on the zoo ones
    with _lock:
        if key not in _cache:
            fit, _, _ = split_holdout(data, cfg.holdout)
            bagged = train_bagged(fit, cfg, progress)
            boosted, alphas, errors = train_boosted(fit, cfg, progress)
            _cache[key] = (bagged, boosted, alphas, errors)
        return _cache[key]


def run_ensemble(cfg: EnsembleConfig | None = None, data: Split | None = None, progress=None) -> EnsembleResult:
    """Train/collect members, fit weights and the stacker on held-out train images, combine on test.
    progress(done, total, text) reports each member; it may raise to cancel."""
    from training.data import mnist5k
    from training.measure import predict_logits
    from zoo.hub import WeightsError, WeightsUnavailable
    from zoo.registry import get_model, list_models

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
        progress(cfg.n_bagged + cfg.n_boosted, cfg.n_bagged + cfg.n_boosted,
                 "scoring every member and fitting the combiners")
    for i, m in enumerate(bagged):
        names.append(f"bagged #{i + 1} ({cfg.arch_of(i)}, {cfg.steps} steps)")
        kinds.append("bagged")
        models.append(m)
    for i, m in enumerate(boosted):
        names.append(f"boosted #{i + 1} ({cfg.arch_of(i)}, alpha {alphas[i]:.2f})")
        kinds.append("boosted")
        models.append(m)
    if len(models) < 2:
        raise ValueError("an ensemble needs at least two members")
    test_probs = torch.stack([predict_logits(m, data.test_x).softmax(-1) for m in models])
    hold_probs = torch.stack([predict_logits(m, hx).softmax(-1) for m in models])
    weights = accuracy_weights(hold_probs, hy)
    stacker = fit_stacker(hold_probs, hy)
    res = EnsembleResult(names, kinds, test_probs, hold_probs, data.test_y, weights, alphas, errors, stacker, models)
    res.combos = combine_all(test_probs, kinds, weights, alphas, stacker)
    return res


def table(res: EnsembleResult) -> list[list]:
    """Rows [name, kind, test accuracy %, weight, points above the best of its own members]: members first,
    then each combiner."""
    rows = [[n, k, round(a, 2), round(float(w), 3), None]
            for n, k, a, w in zip(res.names, res.kinds, res.member_acc(), res.weights)]
    best = res.combo_best_member()
    for name, acc in res.combo_acc().items():
        rows.append([name, "ensemble", round(acc, 2), None, round(acc - best[name], 2)])
    return rows


def disagreements(res: EnsembleResult, limit: int = 12) -> list[int]:
    """Test indices where the members do not all agree, hardest (most split votes) first."""
    preds = res.test_probs.argmax(-1)                           # (M, N)
    n_distinct = torch.tensor([len(set(preds[:, i].tolist())) for i in range(preds.shape[1])])
    agree = (preds == res.combos["average (all members)"].argmax(-1)).float().mean(0)
    idx = torch.nonzero(n_distinct > 1).flatten()
    order = agree[idx].argsort()
    return idx[order][:limit].tolist()


@torch.inference_mode()
def votes_for(res: EnsembleResult, x: torch.Tensor) -> tuple[list[list], dict[str, tuple[int, float]]]:
    """One image (1, 28, 28) in [0, 1]: each member's vote and confidence, and each combiner's answer."""
    from training.measure import predict_logits

    probs = torch.stack([predict_logits(m, x.unsqueeze(0)).softmax(-1) for m in res.models])   # (M, 1, C)
    rows = [[n, int(p[0].argmax()), round(float(p[0].max()), 4)] for n, p in zip(res.names, probs)]
    combos = combine_all(probs, res.kinds, res.weights, res.alphas, res.stacker)
    return rows, {k: (int(v[0].argmax()), float(v[0].max())) for k, v in combos.items()}


_results: dict[tuple, EnsembleResult] = {}


def export_result(res: EnsembleResult) -> dict:
    """An EnsembleResult as plain data + tensors (the job worker sends it to the server this way): the trained
    members as state dicts with their architecture, the stacker as its fitted coefficients."""
    kinds = res.kinds
    archs = []
    members = {}
    for i, (kind, m) in enumerate(zip(kinds, res.models)):
        if kind == "zoo":
            archs.append(res.names[i])
            continue
        archs.append(getattr(m, "_ensemble_arch", None))
        members[str(i)] = {k: v.detach().cpu() for k, v in m.state_dict().items()}
    st = res.stacker
    return {"names": res.names, "kinds": kinds, "archs": archs, "members": members, "test_probs": res.test_probs,
            "holdout_probs": res.holdout_probs, "test_y": res.test_y, "weights": res.weights, "alphas": res.alphas,
            "boost_errors": res.boost_errors, "combos": res.combos,
            "stacker": {"coef": torch.as_tensor(st.coef_), "intercept": torch.as_tensor(st.intercept_),
                        "classes": torch.as_tensor(st.classes_), "n_fit": int(getattr(st, "n_fit_", 0))}}


def import_result(d: dict) -> EnsembleResult:
    """export_result's inverse: member networks rebuilt and loaded strictly, zoo members from the zoo."""
    from sklearn.linear_model import LogisticRegression

    from zoo.hub import load_state_strict
    from zoo.registry import get_model

    models = []
    for i, (kind, arch) in enumerate(zip(d["kinds"], d["archs"])):
        if kind == "zoo":
            models.append(get_model(arch).cpu().eval())
        else:
            m = new_member(arch)
            load_state_strict(m, d["members"][str(i)])
            models.append(m.eval())
    st = d["stacker"]
    meta = LogisticRegression(max_iter=1000)
    meta.coef_, meta.intercept_ = st["coef"].numpy(), st["intercept"].numpy()
    meta.classes_, meta.n_features_in_, meta.n_fit_ = st["classes"].numpy(), st["coef"].shape[1], st["n_fit"]
    res = EnsembleResult(list(d["names"]), list(d["kinds"]), d["test_probs"], d["holdout_probs"], d["test_y"],
                         d["weights"], list(d["alphas"]), list(d["boost_errors"]), meta, models)
    res.combos = dict(d["combos"])
    return res


def remember(cfg: EnsembleConfig, res: EnsembleResult) -> None:
    """Keep a built ensemble for votes on single inputs (/ensemble_votes) without building it again."""
    if len(_results) > 8:
        _results.clear()
    _results[cfg.key()] = res


def built_ensemble(cfg: EnsembleConfig) -> EnsembleResult | None:
    return _results.get(cfg.key())


def cached_ensemble(cfg: EnsembleConfig) -> EnsembleResult:
    """run_ensemble, memoised per configuration for this process (votes for a drawn digit reuse it)."""
    key = cfg.key()
    if key not in _results:
        if len(_results) > 8:
            _results.clear()
        _results[key] = run_ensemble(cfg)
    return _results[key]
