"""The training function every tab and script uses: train(model, data, cfg, on_step) -> metrics.

Data that fits in memory stays a tensor on the device and is sliced into batches (airbench style): on
small data a DataLoader is the slow part. Every run has a max_steps knob so tests finish in seconds.

Extras used by the fine-tuning lab (all off by default, so older callers see the same behaviour):
mixed precision (`cfg.amp`: bf16 autocast on CPU/CUDA, fp16 + GradScaler on CUDA), frozen parameters
(only requires_grad ones are optimised; BatchNorm layers whose parameters are all frozen stay in eval
mode so their running statistics do not move), keep-best (the best evaluated weights are restored at
the end, so a cancelled run keeps them), a batched `transform` (augmentation from the data tab), mixup
(`cfg.mixup`: images mixed within the batch, labels become probability targets), and an exact resume
(`resume=` / `state_out=`: optimizer, scheduler, RNG and position inside the epoch).
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from training.data.augment import mixup, random_affine
from training.data.datasets import Split
from zoo.catalog import MNIST_MEAN, MNIST_STD
from core.device import get_device
from zoo.inference import accuracy, norm_consts, predict_classes

AMP_MODES = ("off", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Settings for one run (nanoGPT's GPTConfig style: one object, never a long positional list)."""

    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    optimizer: str = "adamw"          # "adamw" | "sgd" | "adam"
    label_smoothing: float = 0.1
    augment: bool = True              # random affine (rotation, shift, scale) per batch
    max_steps: int | None = None      # stop after this many optimizer steps (tests, dry runs)
    seed: int = 0
    eval_every: int = 0               # steps between test evaluations (0 = once per epoch)
    mean: float | tuple[float, ...] = MNIST_MEAN   # a float, or one value per channel
    std: float | tuple[float, ...] = MNIST_STD
    extra: dict = field(default_factory=dict)
    amp: str = "off"                  # "off" | "bf16" (autocast; CPU or CUDA) | "fp16" (CUDA only, GradScaler)
    keep_best: bool = False           # restore the best evaluated weights at the end (and on cancel)
    schedule: str = "onecycle"        # "onecycle" | "constant"
    channels_last: bool = False       # NHWC memory format: oneDNN's fast conv layout on CPU (1.3-1.4x here)
    mixup: float = 0.0                # Beta(a, a) mixup of each batch with itself, soft targets (0 = off)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StepInfo:
    """What on_step receives: enough to draw a live curve and a progress bar."""

    step: int
    total_steps: int
    epoch: int
    loss: float
    test_acc: float | None = None
    elapsed: float = 0.0


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, total: int):
    if cfg.schedule == "onecycle":
        # pct_start 0.25 puts the warm-up's end at step 0 when total == 4, which OneCycleLR divides by
        pct = 0.25 if total != 4 else 0.3
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 1), pct_start=pct)
    if cfg.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def autocast_context(device: torch.device, amp: str):
    """torch.autocast for the chosen precision; 'off' is a no-op. fp16 autocast is CUDA-only here."""
    if amp not in AMP_MODES:
        raise ValueError(f"unknown mixed-precision mode {amp!r}; choose one of {AMP_MODES}")
    if amp == "off":
        return nullcontext()
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("fp16 mixed precision needs a CUDA GPU; on CPU use bf16")
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def set_train_mode(model: nn.Module) -> None:
    """model.train(), except BatchNorm layers whose parameters are all frozen: they stay in eval mode,
    so a frozen backbone is really frozen (running mean/var are buffers, not parameters)."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()


def predict_all(model: nn.Module, x: torch.Tensor, mean=MNIST_MEAN, std=MNIST_STD,
                batch_size: int = 500) -> torch.Tensor:
    """Predicted class of every image of x (N, C, H, W) in [0, 1], as a CPU LongTensor."""
    return predict_classes(model, x, mean, std, batch_size)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mean=MNIST_MEAN, std=MNIST_STD,
             batch_size: int = 500) -> float:
    """Top-1 accuracy in percent of `model` on images x (N, C, H, W) in [0, 1]."""
    return accuracy(model, x, y, mean, std, batch_size)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train(model: nn.Module, data: Split, cfg: TrainConfig, on_step: Callable[[StepInfo], bool | None] | None = None,
          device: torch.device | None = None, *, transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
          resume: dict | None = None, state_out: dict | None = None,
          loss_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> dict:
    """Train `model` on data.train_*, evaluating on data.test_*; returns metrics.

    on_step(info) is called after every step; returning False stops the run (a cancel button): the
    step in flight finishes, nothing after it runs. Only parameters with requires_grad are optimised.
    transform: a batched augmentation applied to each (B, C, H, W) batch in [0, 1] before normalising.
    resume: a dict written into `state_out` by an earlier run (or read from a checkpoint) with the same
    cfg: the run continues exactly where that one stopped. state_out: filled at the end with the weights at
    that position (before any keep-best restore), optimizer, scheduler, RNG and position, for a checkpoint.
    loss_fn(logits, labels, inputs) -> loss replaces the cross-entropy (distillation passes its KD loss; the
    inputs are the normalised, augmented batch, so a teacher sees exactly what the student sees).
    The run seeds (and a resume restores) the global torch RNG (dropout draws from it) inside
    torch.random.fork_rng: the caller's RNG state is the same afterwards, so a checkpoint's RNG state
    affects this run only.
    """
    device = torch.device(device) if device is not None else get_device()
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        return _train(model, data, cfg, on_step, device, transform=transform, resume=resume, state_out=state_out,
                      loss_fn=loss_fn)


def _train(model, data, cfg, on_step, device, *, transform, resume, state_out, loss_fn) -> dict:
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    set_train_mode(model)
    xtr, ytr = data.train_x.to(device), data.train_y.to(device)
    if cfg.mixup > 0:   # one-hot targets need the class count (a device sync, so only when mixup is on)
        num_classes = max(len(data.classes), int(ytr.max()) + 1 if len(ytr) else 1)
    n = len(xtr)
    bs = max(1, min(cfg.batch_size, n))
    steps_per_epoch = max(1, n // bs)  # drop the ragged last batch: fixed shapes are faster
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("every parameter is frozen: nothing to train")
    opt = make_optimizer(params, cfg)
    sched = make_scheduler(opt, cfg, total)
    amp_ctx = autocast_context(device, cfg.amp)
    scaler = torch.amp.GradScaler(device.type) if cfg.amp == "fp16" else None
    mean, std = norm_consts(cfg.mean, cfg.std, device)

    step, start_epoch, start_i, perm = 0, 0, 0, None
    best_acc, best_state = None, None
    if resume:
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        step, start_epoch, start_i = int(resume["step"]), int(resume["epoch"]), int(resume["batch_in_epoch"])
        gen.set_state(resume["generator"])
        torch.set_rng_state(resume["torch_rng"])
        perm = resume.get("perm")
        if perm is not None:
            perm = perm.to(device)
        best_acc = resume.get("best_acc")
    last_eval: tuple[int, float] | None = None
    history: list[dict] = []
    t0 = time.perf_counter()
    stopped = False
    pos = (start_epoch, start_i)      # (epoch, batch) of the next step to run: where a resume starts
    for epoch in range(start_epoch, cfg.epochs):
        if perm is None or epoch != start_epoch:
            perm = torch.randperm(n, generator=gen).to(device)
        first = start_i if epoch == start_epoch else 0
        for i in range(first, steps_per_epoch):
            if step >= total:
                break
            idx = perm[i * bs:(i + 1) * bs]
            xb, yb = xtr[idx], ytr[idx]
            if cfg.augment:
                xb = random_affine(xb, generator=gen)
            if transform is not None:
                xb = transform(xb)
            if cfg.mixup > 0:   # labels become probability targets; a loss_fn receives those
                xb, yb = mixup(xb, yb, cfg.mixup, num_classes, gen)
            xb = (xb - mean) / std
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with amp_ctx:
                logits = model(xb)
                if loss_fn is None:
                    loss = F.cross_entropy(logits, yb, label_smoothing=cfg.label_smoothing)
                else:
                    loss = loss_fn(logits, yb, xb)
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            sched.step()
            step += 1
            pos = (epoch, i + 1)
            end_of_epoch = i == steps_per_epoch - 1 or step == total
            want_eval = (cfg.eval_every and step % cfg.eval_every == 0) or (not cfg.eval_every and end_of_epoch) \
                or step == total
            acc = None
            if want_eval:
                acc = evaluate(model, data.test_x, data.test_y, cfg.mean, cfg.std)
                last_eval = (step, acc)
                set_train_mode(model)  # evaluate() restores train() on every module; re-freeze BatchNorm
                if cfg.keep_best and (best_acc is None or acc > best_acc):
                    best_acc, best_state = acc, _snapshot(model)
            history.append({"step": step, "epoch": epoch, "loss": loss.detach(), "test_acc": acc})
            if on_step is not None:
                lv = loss.item()
                history[-1]["loss"] = lv
                if on_step(StepInfo(step, total, epoch, lv, acc, time.perf_counter() - t0)) is False:
                    stopped = True
                    break
        if stopped or step >= total:
            break
    next_epoch, next_i = pos
    if next_i >= steps_per_epoch:
        next_epoch, next_i, perm = next_epoch + 1, 0, None
    pending = [h for h in history if isinstance(h["loss"], torch.Tensor)]
    if pending:  # one sync for the whole run
        for h, v in zip(pending, torch.stack([h["loss"].float() for h in pending]).tolist()):
            h["loss"] = v
    model.eval()
    elapsed = time.perf_counter() - t0
    if last_eval is not None and last_eval[0] == step:  # the last step was just evaluated: same weights
        final_acc = last_eval[1]
    else:
        final_acc = evaluate(model, data.test_x, data.test_y, cfg.mean, cfg.std)
    last_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()} if state_out is not None else None
    restored_best = False
    if cfg.keep_best and best_state is not None and best_acc > final_acc:
        model.load_state_dict(best_state)
        final_acc, restored_best = best_acc, True
    if state_out is not None:
        state_out.update(model=last_state, optimizer=opt.state_dict(), scheduler=sched.state_dict(), step=step,
                         epoch=next_epoch, batch_in_epoch=next_i, generator=gen.get_state(),
                         torch_rng=torch.get_rng_state(), perm=None if perm is None else perm.cpu(), best_acc=best_acc,
                         total_steps=total)
    return {"test_acc": final_acc, "steps": step, "seconds": elapsed, "stopped": stopped, "history": history,
            "device": str(device), "restored_best": restored_best}
