"""The fine-tuning recipe's building blocks, for any zoo classifier: where its head and blocks are, a new
seeded head, what trains in each stage, and the target data fitted to the model's input (size, channels,
few-shot). Exported runs carry these functions' source (training/finetuning/export.py: recipe.py), so they use only
torch and training/data/datasets.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from training.data.datasets import Split

MAX_DATA_BYTES = 800_000_000       # float32 images held in memory for one run (a shared server)


@dataclass
class Parts:
    """Where the head and the blocks of a network are, by module path."""

    head: str                         # the last nn.Linear: replaced by a new one for the target classes
    blocks: list[list[str]]           # groups of module paths, input -> output, excluding the head


def _get(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path)


def _set(model: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(_get(model, parent) if parent else model, name, new)


def parts_of(model: nn.Module) -> Parts:
    """Head and blocks for the zoo's two designs.

    ResNet (ours and torchvision's): head `fc`; blocks = stem (conv1, bn1), layer1, layer2, ...
    AlexNet/VGG (ours and torchvision's): head = last Linear of `classifier`; blocks = the conv stages of
    `features` (split after each max-pool), then the classifier's earlier layers as the last block.
    """
    if isinstance(getattr(model, "fc", None), nn.Linear) and hasattr(model, "layer1"):
        layers = [n for n in ("layer1", "layer2", "layer3", "layer4") if hasattr(model, n)]
        return Parts("fc", [["conv1", "bn1"]] + [[n] for n in layers])
    feats, clf = getattr(model, "features", None), getattr(model, "classifier", None)
    if isinstance(feats, nn.Sequential) and isinstance(clf, nn.Sequential):
        lin = [i for i, m in enumerate(clf) if isinstance(m, nn.Linear)]
        if not lin:
            raise ValueError("classifier has no Linear layer to replace")
        blocks, cur = [], []
        for i, m in enumerate(feats):
            cur.append(f"features.{i}")
            if isinstance(m, nn.MaxPool2d):
                blocks.append(cur)
                cur = []
        if cur:
            blocks.append(cur)
        pre = [f"classifier.{i}" for i in range(lin[-1]) if list(clf[i].parameters())]
        if pre:
            blocks.append(pre)
        return Parts(f"classifier.{lin[-1]}", blocks)
    raise ValueError(f"do not know the head/blocks of {type(model).__name__}")


def replace_head(model: nn.Module, parts: Parts, num_classes: int, seed: int = 0) -> nn.Module:
    """A new, seeded nn.Linear(in_features, num_classes) in place of the old head."""
    old = _get(model, parts.head)
    g = torch.Generator().manual_seed(seed)
    new = nn.Linear(old.in_features, num_classes)
    with torch.no_grad():
        bound = 1.0 / old.in_features ** 0.5  # nn.Linear's default init, drawn from our generator
        new.weight.uniform_(-bound, bound, generator=g)
        new.bias.uniform_(-bound, bound, generator=g)
    _set(model, parts.head, new.to(old.weight.device))
    return model


def trainable_paths(parts: Parts, stage: int, unfreeze: str) -> list[str] | None:
    """Module paths that train in a stage; None = everything."""
    if stage == 1 or unfreeze == "none":
        return [parts.head]
    if unfreeze == "all":
        return None
    n = int(unfreeze[-1])
    return [p for block in parts.blocks[-n:] for p in block] + [parts.head]


def freeze(model: nn.Module, paths: list[str] | None) -> int:
    """requires_grad only for parameters under `paths` (None = all); returns the trainable count."""
    for p in model.parameters():
        p.requires_grad_(paths is None)
    if paths is not None:
        for path in paths:
            for p in _get(model, path).parameters():
                p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def adapt_split(split: Split, input_size: tuple[int, int, int]) -> Split:
    """Resize images and match channels (1 -> 3 by repeating, 3 -> 1 by luminance) to a model's input."""
    c, h, w = input_size
    n = len(split.train_x) + len(split.test_x)
    if n * c * h * w * 4 > MAX_DATA_BYTES:
        raise ValueError(f"{n} images at {c}x{h}x{w} need {n * c * h * w * 4 / 1e9:.1f} GB: use a few-shot subset "
                         f"or a smaller data set")

    def conv(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
        if x.shape[1] == 1 and c == 3:
            x = x.repeat(1, 3, 1, 1)
        elif x.shape[1] == 3 and c == 1:
            x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        return x.contiguous()

    if split.train_x.shape[1:] == (c, h, w) and split.test_x.shape[1:] == (c, h, w):
        return split
    return Split(conv(split.train_x), split.train_y, conv(split.test_x), split.test_y, split.classes)


def few_shot(split: Split, k: int, seed: int = 0) -> Split:
    """Keep k training images per class (seeded); the test split is untouched."""
    if not k:
        return split
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in torch.unique(split.train_y).tolist():
        idx = torch.nonzero(split.train_y == c).flatten()
        keep.append(idx[torch.randperm(len(idx), generator=g)[:k]])
    idx = torch.cat(keep)
    idx = idx[torch.randperm(len(idx), generator=g)]
    return Split(split.train_x[idx], split.train_y[idx], split.test_x, split.test_y, split.classes)
