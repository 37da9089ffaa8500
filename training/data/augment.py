"""Batched, on-device augmentation for image tensors (no DataLoader, no PIL in the hot loop)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(x: torch.Tensor, degrees: float = 10.0, translate: float = 0.1,
                  scale: tuple[float, float] = (0.9, 1.1), generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply a different random rotation/translation/scale to every image of a (B, C, H, W) batch.

    One affine_grid + grid_sample call for the whole batch: this is what keeps augmented training fast
    on a CPU (torchvision's RandomAffine works image by image).
    """
    b = x.shape[0]
    dev = x.device
    rnd = torch.rand(b, 4, generator=generator, device="cpu").to(dev)
    angle = (rnd[:, 0] * 2 - 1) * math.radians(degrees)
    s = scale[0] + rnd[:, 1] * (scale[1] - scale[0])
    tx = (rnd[:, 2] * 2 - 1) * translate * 2  # grid coordinates span [-1, 1], i.e. 2 units per image width
    ty = (rnd[:, 3] * 2 - 1) * translate * 2
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def mixup(x: torch.Tensor, y: torch.Tensor, alpha: float, num_classes: int,
          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """mixup (Zhang et al. 2018) of a (B, C, H, W) batch with a shuffled copy of itself.

    One lam ~ Beta(alpha, alpha) per batch (alpha 1 = uniform); returns the mixed images and probability
    targets lam * onehot(y) + (1 - lam) * onehot(y[perm]), which F.cross_entropy takes as they are.
    y may already be probability targets (B, num_classes).
    """
    if alpha <= 0:
        raise ValueError("mixup alpha must be positive")
    b = x.shape[0]
    lam = float(torch.distributions.Beta(float(alpha), float(alpha)).sample())   # global RNG: saved on resume
    perm = torch.randperm(b, generator=generator).to(x.device)
    soft = y if y.dim() == 2 else F.one_hot(y, num_classes).to(x.dtype)
    return lam * x + (1 - lam) * x[perm], lam * soft + (1 - lam) * soft[perm]
