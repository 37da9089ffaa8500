"""Batched inference: the one loop that runs a model over many images (N, C, H, W) in [0, 1].

Every caller that scores a data set (the trainer's evaluation, FID features, ensembles, compression
measurements, the autoencoder's reconstructions) goes through `predict_logits` / `predict_classes`, so
normalisation, batching, eval mode and device moves happen one way, in one order (float sums depend on it).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

DEFAULT_BATCH = 500


def norm_consts(mean, std, device, dtype=torch.float32):
    """Scalars stay Python floats (cheapest); per-channel tuples become (1, C, 1, 1) tensors."""
    if isinstance(mean, (int, float)) and isinstance(std, (int, float)):
        return float(mean), float(std)
    m = torch.as_tensor(mean, dtype=dtype, device=device).reshape(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=dtype, device=device).reshape(1, -1, 1, 1)
    return m, s


def device_of(model: nn.Module) -> torch.device:
    """The device of a model's first parameter; the CPU for a model without any (a quantized one)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def _batched(model: nn.Module, x: torch.Tensor, mean, std, batch_size: int, device, dtype,
             forward: Callable[[torch.Tensor], torch.Tensor] | None,
             head: Callable[[torch.Tensor], torch.Tensor] | None) -> list[torch.Tensor]:
    was_training = model.training
    model.eval()
    dev = device_of(model) if device is None else torch.device(device)
    m, s = norm_consts(mean, std, dev) if mean is not None else (None, None)
    run = forward or model
    out = []
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(dev)
            if m is not None:
                xb = (xb - m) / s
            if dtype is not None:
                xb = xb.to(dtype)
            y = run(xb)
            out.append((head(y) if head is not None else y).cpu())
    finally:
        model.train(was_training)
    return out


def predict_logits(model: nn.Module, x: torch.Tensor, mean=None, std=None, batch_size: int = DEFAULT_BATCH,
                   device=None, *, dtype: torch.dtype | None = None,
                   forward: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """The model's outputs (logits for a classifier) for every image of x, concatenated on the CPU.

    Each batch is moved to `device` (default: the model's), normalised as (x - mean) / std when mean is given
    (a float or one value per channel, as in a zoo spec's weights), cast to `dtype` if given, and run in eval
    mode under no_grad (the model's train/eval mode is restored afterwards). `forward` replaces model(x), e.g.
    to stop at a penultimate layer.
    """
    out = _batched(model, x, mean, std, batch_size, device, dtype, forward, None)
    return torch.cat(out) if out else torch.zeros(0)


def predict_classes(model: nn.Module, x: torch.Tensor, mean=None, std=None, batch_size: int = DEFAULT_BATCH,
                    device=None, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The predicted class of every image of x as a CPU LongTensor (argmax taken per batch on the device)."""
    out = _batched(model, x, mean, std, batch_size, device, dtype, None, lambda y: y.argmax(1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mean=None, std=None,
             batch_size: int = DEFAULT_BATCH, device=None) -> float:
    """Top-1 accuracy in percent of `model` on images x in [0, 1] with labels y."""
    pred = predict_classes(model, x, mean, std, batch_size, device)
    return 100.0 * int((pred == y.cpu()).sum()) / max(1, len(x))
