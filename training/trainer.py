"""The training function every tab and script uses: train(model, data, cfg, on_step) -> metrics.

Data that fits in memory stays a tensor on the device and is sliced into batches (airbench style): on
small data a DataLoader is the slow part. Every run has a max_steps knob so tests finish in seconds.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from training.augment import random_affine
from training.data import MNIST_MEAN, MNIST_STD, Split
from zoo.device import get_device


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
    mean: float = MNIST_MEAN
    std: float = MNIST_STD
    extra: dict = field(default_factory=dict)

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


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mean: float = MNIST_MEAN, std: float = MNIST_STD,
             batch_size: int = 500) -> float:
    """Top-1 accuracy in percent of `model` on images x (N, C, H, W) in [0, 1]."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    correct = 0
    for i in range(0, len(x), batch_size):
        xb = (x[i:i + batch_size].to(dev) - mean) / std
        correct += (model(xb).argmax(1) == y[i:i + batch_size].to(dev)).sum().item()
    model.train(was_training)
    return 100.0 * correct / max(1, len(x))


def train(model: nn.Module, data: Split, cfg: TrainConfig, on_step: Callable[[StepInfo], bool | None] | None = None,
          device: torch.device | None = None) -> dict:
    """Train `model` on data.train_*, evaluating on data.test_*; returns metrics.

    on_step(info) is called after every step; returning False stops the run (a cancel button).
    """
    device = device or get_device()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.to(device).train()
    xtr, ytr = data.train_x.to(device), data.train_y.to(device)
    n = len(xtr)
    steps_per_epoch = max(1, n // cfg.batch_size)  # drop the ragged last batch: fixed shapes are faster
    total = cfg.epochs * steps_per_epoch
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    opt = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 1), pct_start=0.25)
    history: list[dict] = []
    t0 = time.perf_counter()
    step, stopped = 0, False
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        for i in range(steps_per_epoch):
            if step >= total:
                break
            idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            xb, yb = xtr[idx], ytr[idx]
            if cfg.augment:
                xb = random_affine(xb, generator=gen)
            xb = (xb - cfg.mean) / cfg.std
            loss = F.cross_entropy(model(xb), yb, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            end_of_epoch = i == steps_per_epoch - 1 or step == total
            want_eval = (cfg.eval_every and step % cfg.eval_every == 0) or (not cfg.eval_every and end_of_epoch)
            acc = evaluate(model, data.test_x, data.test_y, cfg.mean, cfg.std) if want_eval else None
            info = StepInfo(step, total, epoch, loss.item(), acc, time.perf_counter() - t0)
            history.append({"step": step, "epoch": epoch, "loss": info.loss, "test_acc": acc})
            if on_step is not None and on_step(info) is False:
                stopped = True
                break
        if stopped or step >= total:
            break
    model.eval()
    elapsed = time.perf_counter() - t0
    final_acc = evaluate(model, data.test_x, data.test_y, cfg.mean, cfg.std)
    return {"test_acc": final_acc, "steps": step, "seconds": elapsed, "stopped": stopped, "history": history,
            "device": str(device)}
