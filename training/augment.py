"""Batched, on-device augmentation for image tensors (no DataLoader, no PIL in the hot loop)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(x: torch.Tensor, degrees: float = 10.0, translate: float = 0.1, scale: tuple[float, float] = (0.9, 1.1),
                  generator: torch.Generator | None = None) -> torch.Tensor:
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
