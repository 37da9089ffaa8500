"""Frechet distance between image sets in the feature space of the zoo's `resnet_digits` classifier.

FID (Heusel et al. 2017) fits a Gaussian to each set's features and measures
    ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)).
Inception-v3 features make no sense for 28x28 digits, so we use the 128 numbers resnet_digits computes
after global average pooling (its penultimate layer). Numbers are comparable only with each other.
"""
from __future__ import annotations

import numpy as np
import torch

from zoo.catalog import MNIST_MEAN, MNIST_STD
from zoo.classify import load_model
from zoo.inference import predict_classes, predict_logits


def digit_features(x: torch.Tensor, model=None, batch: int = 500) -> torch.Tensor:
    """(N, 1, 28, 28) images in [0, 1] -> (N, 128) penultimate features of resnet_digits."""
    if model is None:
        model = load_model("resnet_digits")

    def penultimate(h: torch.Tensor) -> torch.Tensor:
        h = model.relu(model.bn1(model.conv1(h)))                     # (B, 16, 28, 28)
        h = model.layer3(model.layer2(model.layer1(h)))               # (B, 128, 4, 4)
        return torch.flatten(model.avgpool(h), 1)                     # (B, 128)

    return predict_logits(model, x, MNIST_MEAN, MNIST_STD, batch, forward=penultimate).double()


def frechet_distance(f1: torch.Tensor, f2: torch.Tensor) -> float:
    """Frechet distance of Gaussians fitted to two (N, D) feature sets."""
    from scipy import linalg  # on first use: scipy takes ~0.3 s to import, and only GAN training needs it

    mu1, mu2 = f1.mean(0).numpy(), f2.mean(0).numpy()
    s1, s2 = np.cov(f1.numpy(), rowvar=False), np.cov(f2.numpy(), rowvar=False)
    covmean, _ = linalg.sqrtm(s1 @ s2, disp=False)
    if not np.isfinite(covmean).all():  # near-singular product: nudge the diagonals (as pytorch-fid does)
        off = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + off) @ (s2 + off))
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fid(x1: torch.Tensor, x2: torch.Tensor, model=None) -> float:
    """Frechet distance between two image sets (N, 1, 28, 28) in [0, 1] under resnet_digits features."""
    return frechet_distance(digit_features(x1, model), digit_features(x2, model))


def blur(x: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Gaussian-blurred digits: a reference point (real shapes, wrong texture) for the distance."""
    import torchvision.transforms.v2.functional as TF  # on first use: torchvision costs the server ~1 s at start

    k = 2 * round(3 * sigma) + 1
    return TF.gaussian_blur(x, kernel_size=[k, k], sigma=[sigma, sigma])


def class_histogram(x: torch.Tensor, model=None) -> tuple[list[int], torch.Tensor]:
    """How many of the images resnet_digits calls each digit, and its predictions (N,)."""
    if model is None:
        model = load_model("resnet_digits")
    pred = predict_classes(model, x, MNIST_MEAN, MNIST_STD, 500)
    return torch.bincount(pred, minlength=10).tolist(), pred


def intra_class_spread(x: torch.Tensor, labels: torch.Tensor, model=None) -> float:
    """Mean pairwise feature distance between images of the same digit, averaged over digits.

    Divide the samples' value by real digits' value: near 1 = as varied as real digits, near 0 = every
    '3' is the same '3' (mode collapse inside a class, which class coverage and FID's mean term miss).
    """
    f = digit_features(x, model).float()
    spreads = [torch.pdist(f[labels == c]).mean() for c in labels.unique().tolist() if int((labels == c).sum()) > 1]
    return float(torch.stack(spreads).mean())
