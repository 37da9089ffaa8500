"""The tutorial's fine-tuning schedule (chapter 4.3) for any zoo model, as pure functions.

Stage 1: freeze the pretrained backbone, replace the classifier's last Linear with a new head sized for
the target classes, train only the head. Stage 2: unfreeze all (or only the last blocks) and train on at
a lower learning rate. `parts_of(model)` (training/finetuning/transfer.py) knows, for every zoo architecture, which
module is the head and which are the blocks (input -> output), so "last N blocks" means the same thing for
ResNet and VGG. A run's settings: training/finetuning/finetune_config.py.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file

from core.errors import InputError
from training.data import datasets as D
from training.checkpoint import check_fits, save_checkpoint
from training.data.datasets import Split
from training.finetuning.finetune_config import FinetuneConfig, validate
from training.trainer import StepInfo, TrainConfig, predict_all, train
from training.finetuning.transfer import (MAX_DATA_BYTES, Parts, adapt_split, few_shot, freeze, parts_of, replace_head,
                                          trainable_paths)
from training.data.transforms import AugmentSettings, batch_transform
from training.data.zipdata import load_zip_dataset
from zoo import get_model, get_spec
from core.device import get_device
from zoo.hub import load_state_strict


def load_target(cfg: FinetuneConfig, zip_path: str | None = None, progress=None) -> Split:
    """The target data set for cfg, at the model's input size, few-shot applied. progress(done, total, text) is
    called while a zip is decoded (it may raise to cancel)."""
    c, h, w = get_spec(cfg.model).weights.input_size
    if cfg.target == "digits":
        split = D.digits()
    elif cfg.target == "mnist5k":
        split = D.mnist5k()
    elif cfg.target == "zip":
        if not zip_path:
            raise InputError("finetune.zip_needed")
        return few_shot(load_zip_dataset(zip_path, size=(h, w), channels=c, progress=progress), cfg.few_shot,
                        cfg.seed)
    else:
        split = D.online_dataset(cfg.target, max_items=cfg.online_max_items)
        n_test = max(10, cfg.online_max_items // 4)
        split = Split(split.train_x, split.train_y, split.test_x[:n_test], split.test_y[:n_test], split.classes)
    split = few_shot(split, cfg.few_shot, cfg.seed)
    n = len(split.train_x) + len(split.test_x)
    if n * c * h * w * 4 > MAX_DATA_BYTES:      # adapt_split's own check, in the visitor's words
        raise InputError("finetune.data_too_large", images=n, size=f"{c}x{h}x{w}", gb=n * c * h * w * 4 / 1e9)
    return adapt_split(split, (c, h, w))


# ---------------------------------------------------------------- runs

@dataclass
class FinetuneResult:
    """Everything the tab shows after a run, and what a checkpoint needs."""

    model: nn.Module
    config: FinetuneConfig
    classes: tuple[str, ...]
    test_acc: float
    per_class: list[float]
    confusion: list[list[int]]        # rows: true class, columns: predicted
    preds: torch.Tensor               # predicted class of every test image
    history: list[dict]               # {"stage", "step", "loss", "test_acc", "seconds"}
    stages: list[dict]
    seconds: float
    device: str
    stopped: bool
    stage: int                        # the stage the train_state belongs to
    train_state: dict
    scratch: dict | None = None


def _stage_config(cfg: FinetuneConfig, stage: int, mean, std) -> TrainConfig:
    return TrainConfig(
        epochs=cfg.stage1_epochs if stage == 1 else cfg.stage2_epochs,
        lr=cfg.stage1_lr if stage == 1 else cfg.stage2_lr,
        batch_size=cfg.batch_size, optimizer=cfg.optimizer, augment=cfg.augment == "affine",
        max_steps=cfg.max_steps, seed=cfg.seed + stage, eval_every=cfg.eval_every, mean=mean, std=std,
        amp=cfg.amp, keep_best=True)


def mean_std(spec):
    """The normalisation a zoo model's weights expect: floats for one channel, tuples for three."""
    m, s = spec.weights.mean, spec.weights.std
    return (m[0], s[0]) if len(m) == 1 else (tuple(m), tuple(s))


def _transform(cfg: FinetuneConfig, size: int):
    if cfg.augment != "data-tab":
        return None
    return batch_transform(AugmentSettings.from_dict(cfg.augment_settings), size)


def confusion_matrix(y: torch.Tensor, pred: torch.Tensor, k: int) -> torch.Tensor:
    return torch.bincount(y * k + pred, minlength=k * k).reshape(k, k)


def build_model(cfg: FinetuneConfig, num_classes: int, pretrained: bool = True) -> tuple[nn.Module, Parts]:
    model = get_model(cfg.model, weights="default" if pretrained else None)
    parts = parts_of(model)
    replace_head(model, parts, num_classes, seed=cfg.seed)
    return model, parts


def run_finetune(cfg: FinetuneConfig, data: Split, on_step: Callable[[int, StepInfo], bool | None] | None = None,
                 stop: threading.Event | None = None, device=None, resume=None) -> FinetuneResult:
    """Stage 1 (head) then stage 2 (unfrozen part, lower lr). Cancel via `stop` or on_step returning False:
    the run stops after the step in flight and keeps the best weights seen so far.

    resume: a training.checkpoint.Checkpoint of this config; its stage continues exactly where it stopped.
    """
    device = torch.device(device) if device is not None else get_device()
    if cfg.amp == "fp16" and device.type != "cuda":
        raise InputError("finetune.fp16_needs_cuda")
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):   # a checkpoint's RNG state and our seeds stay inside this run
        return _run_finetune(cfg, data, on_step, stop, device, resume)


def _run_finetune(cfg, data, on_step, stop, device, resume) -> FinetuneResult:
    validate(cfg)
    spec = get_spec(cfg.model)
    mean, std = mean_std(spec)
    k = len(data.classes)
    model, parts = build_model(cfg, k, pretrained=resume is None)
    start_stage, resume_state = 1, None
    if resume is not None:
        start_stage = int(resume.meta.get("stage", 1))
        resume_state = resume.train_state
        freeze(model, trainable_paths(parts, start_stage, cfg.unfreeze))
        params = [p for p in model.parameters() if p.requires_grad]
        check_fits(resume, model, params, n_train=len(data.train_x))
    transform = _transform(cfg, data.train_x.shape[-1])
    history, stages = [], []
    t0 = time.perf_counter()
    stopped, best = False, (None, None)
    state: dict = {}
    trained_stage = start_stage       # the stage train_state belongs to (a skipped stage 2 leaves it at 1)
    for stage in (1, 2):
        epochs = cfg.stage1_epochs if stage == 1 else cfg.stage2_epochs
        if stage < start_stage or epochs == 0:
            continue
        trained_stage = stage
        n_train = freeze(model, trainable_paths(parts, stage, cfg.unfreeze))

        def hook(info: StepInfo, stage=stage) -> bool:
            history.append({"stage": stage, "step": info.step, "loss": info.loss, "test_acc": info.test_acc,
                            "seconds": time.perf_counter() - t0})
            if on_step is not None and on_step(stage, info) is False:
                return False
            return not (stop is not None and stop.is_set())

        state = {}
        m = train(model, data, _stage_config(cfg, stage, mean, std), on_step=hook, device=device,
                  transform=transform, resume=resume_state if stage == start_stage else None, state_out=state)
        stages.append({"stage": stage, "trainable_params": n_train, "test_acc": m["test_acc"], "steps": m["steps"],
                       "seconds": m["seconds"], "stopped": m["stopped"], "restored_best": m["restored_best"]})
        # best across stages: a stage 2 that ends worse than stage 1 gives stage 1's weights back
        if best[0] is None or m["test_acc"] >= best[0]:
            best = (m["test_acc"], {k_: v.detach().clone() for k_, v in model.state_dict().items()})
        else:
            model.load_state_dict(best[1])
        if m["stopped"]:
            stopped = True
            break
    freeze(model, None)
    model.eval()
    preds = predict_all(model, data.test_x, mean, std)
    cm = confusion_matrix(data.test_y.cpu(), preds, k)
    support = cm.sum(1).clamp(min=1)
    per_class = (100.0 * cm.diag() / support).tolist()
    acc = 100.0 * cm.diag().sum().item() / max(1, len(preds))
    return FinetuneResult(model=model.cpu(), config=cfg, classes=tuple(data.classes), test_acc=acc,
                          per_class=per_class, confusion=cm.tolist(), preds=preds, history=history, stages=stages,
                          seconds=time.perf_counter() - t0, device=str(device), stopped=stopped, stage=trained_stage,
                          train_state=state)


def run_scratch(cfg: FinetuneConfig, data: Split, steps: int, stop: threading.Event | None = None,
                device=None, on_step: Callable[[int, StepInfo], None] | None = None) -> dict:
    """The same architecture from random weights, every parameter trained, for the same number of steps.
    on_step(1, info) after every step draws its curve beside the fine-tune's."""
    spec = get_spec(cfg.model)
    mean, std = mean_std(spec)
    with torch.random.fork_rng(devices=[]):      # the seed is this run's, not the process's
        torch.manual_seed(cfg.seed)
        model, _ = build_model(cfg, len(data.classes), pretrained=False)
    tc = _stage_config(cfg, 1, mean, std)
    tc.epochs = max(1, cfg.stage1_epochs + cfg.stage2_epochs) * 4  # enough epochs; max_steps sets the budget
    tc.max_steps = max(1, steps)

    def hook(info: StepInfo) -> bool:
        if on_step is not None:
            on_step(1, info)
        return not (stop is not None and stop.is_set())

    m = train(model, data, tc, device=device, transform=_transform(cfg, data.train_x.shape[-1]), on_step=hook)
    return {"test_acc": m["test_acc"], "steps": m["steps"], "seconds": m["seconds"], "stopped": m["stopped"],
            "history": m["history"]}


def checkpoint_meta(res: FinetuneResult) -> dict:
    return {"config": res.config.to_dict(), "stage": res.stage, "classes": list(res.classes),
            "model": res.config.model, "input_size": list(get_spec(res.config.model).weights.input_size),
            "test_acc": res.test_acc}


def save_result_checkpoint(res: FinetuneResult, path: str) -> str:
    """Resumable checkpoint of a run: the weights at the resume position + optimizer/scheduler/RNG + config."""
    st = dict(res.train_state)
    weights = st.pop("model", None) or res.model.state_dict()
    return save_checkpoint(path, weights, st, checkpoint_meta(res))


@dataclass
class SavedRun:
    """A finished run as the tab keeps it per session: small facts and the paths of its files on disk (weights,
    test thumbnails + predictions). The model and predictions are read from there only when asked for, so
    session state holds no large tensors."""

    config: FinetuneConfig
    classes: tuple[str, ...]
    test_acc: float
    weights_path: str
    gallery_path: str

    @property
    def model(self) -> nn.Module:
        model, _ = build_model(self.config, len(self.classes), pretrained=False)
        load_state_strict(model, load_file(self.weights_path))
        return model.eval()

    @property
    def preds(self) -> torch.Tensor:
        with safe_open(self.gallery_path, framework="pt") as f:
            return f.get_tensor("pred")
