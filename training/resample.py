"""Small, imbalanced samples (tutorial 4.1.3): an imbalanced subset of mnist5k and four ways to train on it.

none        train on the imbalanced subset as it is
oversample  torch.utils.data.WeightedRandomSampler, weights 1/count(class): rare images are drawn more often
bootstrap   per class, draw the largest class's count with replacement (balanced bootstrap)
smote       imbalanced-learn's SMOTE: new minority images interpolated between nearest neighbours

Every method ends with the same number of training images (except "none"), trains the same small CNN
for the same number of steps, and is scored on the balanced mnist5k test set.
"""
from __future__ import annotations

import time

import torch
import torch.nn as nn
from torch.utils.data import WeightedRandomSampler

from core.errors import InputError, term
from training.data.datasets import Split, mnist5k
from training.plain import DATA_IMPORTS, data_source, train_imports, train_source
from training.trainer import TrainConfig, predict_all, train
from zoo.standalone import joined_imports, source

METHODS = ("none", "oversample", "bootstrap", "smote")
MAX_PER_CLASS = 400  # mnist5k has 400 training images per class


class SmallCNN(nn.Module):
    """A LeNet-sized CNN (two 3x3 conv stages, one FC): trains in seconds on a CPU. 0.05M params."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),     # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # (B, 32, 7, 7)
            nn.Flatten(), nn.Linear(32 * 7 * 7, 32), nn.ReLU(), nn.Linear(32, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 28, 28)
        return self.net(x)


def parse_counts(counts) -> list[int]:
    """Ten per-class counts from a list or a '400,400,20,...' string."""
    if isinstance(counts, str):
        try:
            counts = [int(c) for c in counts.replace(";", ",").split(",") if c.strip()]
        except ValueError:
            raise InputError("resample.not_numbers") from None
    counts = [int(c) for c in counts]
    if len(counts) != 10:
        raise InputError("resample.ten_counts", given=len(counts))
    if not all(1 <= c <= MAX_PER_CLASS for c in counts):
        raise InputError("resample.count_range", most=MAX_PER_CLASS)
    return counts


def imbalanced_subset(x: torch.Tensor, y: torch.Tensor, counts: list[int], seed: int = 0):
    """counts[c] seeded random training images of each class c."""
    g = torch.Generator().manual_seed(seed)
    idx = []
    for c, k in enumerate(counts):
        ids = torch.nonzero(y == c).flatten()
        idx.append(ids[torch.randperm(len(ids), generator=g)[:k]])
    idx = torch.cat(idx)
    return x[idx], y[idx]


def resample(x: torch.Tensor, y: torch.Tensor, method: str, seed: int = 0):
    """(x, y) after the method; balanced methods produce K * max(count) images."""
    counts = torch.bincount(y, minlength=10)
    target = int(counts.max()) * int((counts > 0).sum())
    g = torch.Generator().manual_seed(seed)
    if method == "none":
        return x, y
    if method == "oversample":
        weights = (1.0 / counts.float())[y]             # each class gets the same total weight
        idx = torch.tensor(list(WeightedRandomSampler(weights.double(), num_samples=target, replacement=True,
                                                      generator=g)))
        return x[idx], y[idx]
    if method == "bootstrap":
        idx = []
        for c in torch.nonzero(counts).flatten().tolist():
            ids = torch.nonzero(y == c).flatten()
            idx.append(ids[torch.randint(len(ids), (int(counts.max()),), generator=g)])
        idx = torch.cat(idx)
        return x[idx], y[idx]
    if method == "smote":
        from imblearn.over_sampling import SMOTE  # on first use: imbalanced-learn imports scikit-learn (~1.5 s)

        smallest = int(counts[counts > 0].min())
        if smallest < 2:
            raise InputError("resample.smote")
        sm = SMOTE(k_neighbors=min(5, smallest - 1), random_state=seed)
        xs, ys = sm.fit_resample(x.reshape(len(x), -1).numpy(), y.numpy())
        return torch.from_numpy(xs).float().reshape(-1, *x.shape[1:]), torch.from_numpy(ys).long()
    raise ValueError(f"unknown method {method!r}; choose one of {METHODS}")


def compare(counts, methods=METHODS, steps: int = 150, batch_size: int = 64, seed: int = 0, device=None,
            progress=None) -> dict:
    """Resample the imbalanced subset each way, train SmallCNN for `steps`, score on the mnist5k test set.
    progress(done, total, text) reports each method; it may raise to cancel."""
    counts = parse_counts(counts)
    if not 1 <= steps <= 2000:
        raise ValueError("steps must be in 1..2000")
    data = mnist5k()
    x, y = imbalanced_subset(data.train_x, data.train_y, counts, seed)
    minority = [c for c, k in enumerate(counts) if k < max(counts)]
    rows, hist = [], {"before": torch.bincount(y, minlength=10).tolist()}
    for k, method in enumerate(methods):
        if progress is not None:
            progress(k, len(methods), term("job.resample.method", method=method, steps=steps))
        t0 = time.perf_counter()
        try:
            xr, yr = resample(x, y, method, seed)
        except ValueError as exc:
            rows.append({"method": method, "train_images": None, "test_acc": None, "minority_acc": None,
                         "seconds": None, "note": str(exc),   # and the catalogue's entry: the tab translates it
                         "note_key": getattr(exc, "key", None), "note_values": getattr(exc, "values", None)})
            continue
        hist[method] = torch.bincount(yr, minlength=10).tolist()
        torch.manual_seed(seed)
        model = SmallCNN()
        cfg = TrainConfig(epochs=10_000, batch_size=batch_size, lr=3e-3, max_steps=steps, seed=seed, augment=False,
                          label_smoothing=0.0)
        split = Split(xr, yr, data.test_x, data.test_y, data.classes)
        m = train(model, split, cfg, device=device)
        pred = predict_all(model, data.test_x)
        per_class = [100.0 * float((pred[data.test_y == c] == c).float().mean()) for c in range(10)]
        rows.append({"method": method, "train_images": len(yr), "test_acc": round(m["test_acc"], 2),
                     "minority_acc": (round(sum(per_class[c] for c in minority) / len(minority), 2) if minority
                                      else None),
                     "seconds": round(time.perf_counter() - t0, 2), "note": ""})
    return {"counts": counts, "minority_classes": minority, "rows": rows, "histograms": hist, "steps": steps}


def resample_code(counts: list[int], method: str, steps: int = 60) -> str:
    """Plain PyTorch for one method, then the tab's short training run on what it made: the data, the subset, the
    small CNN and the training loop written out (training.plain); SMOTE needs imbalanced-learn."""
    head = (f"{joined_imports(DATA_IMPORTS + train_imports(augment=False) + ['import torch.nn as nn'])}\n\n"
            f"{data_source('mnist5k')}\n\n\n"
            f"# ---- the imbalanced subset: counts[c] seeded random training images of class c\n"
            f"{source(imbalanced_subset)}\n\n\n"
            f"counts = {counts}  # training images per digit class\n"
            "x, y = imbalanced_subset(train_x, train_y, counts, seed=0)   # (N, 1, 28, 28), (N,), seeded\n"
            "g = torch.Generator().manual_seed(0)              # every draw below is seeded, as in the tab\n")
    body = {
        "none": "x_res, y_res = x, y                                # train on the imbalanced subset as it is\n",
        "oversample": ("from torch.utils.data import WeightedRandomSampler   # noqa: E402\n"
                       "class_count = torch.bincount(y)\n"
                       "weights = (1.0 / class_count.float())[y]          # rare classes drawn more often\n"
                       "sampler = WeightedRandomSampler(weights.double(), num_samples=len(class_count) * "
                       "int(class_count.max()),\n"
                       "                                replacement=True, generator=g)\n"
                       "idx = torch.tensor(list(sampler))                 # or DataLoader(TensorDataset(x, y), "
                       "batch_size=64, sampler=sampler)\n"
                       "x_res, y_res = x[idx], y[idx]\n"),
        "bootstrap": ("n = int(torch.bincount(y).max())\n"
                      "idx = torch.cat([ids[torch.randint(len(ids), (n,), generator=g)]   # draw with replacement\n"
                      "                 for ids in (torch.nonzero(y == c).flatten() for c in y.unique())])\n"
                      "x_res, y_res = x[idx], y[idx]\n"),
        "smote": ("# SMOTE comes from imbalanced-learn (pip install imbalanced-learn); the rest is plain PyTorch\n"
                  "from imblearn.over_sampling import SMOTE   # noqa: E402\n"
                  f"xs, ys = SMOTE(k_neighbors={min(5, min(counts) - 1)}, random_state=0).fit_resample("
                  "x.reshape(len(x), -1).numpy(), y.numpy())\n"
                  "x_res = torch.from_numpy(xs).float().reshape(-1, 1, 28, 28)  # synthetic images between neighbours\n"
                  "y_res = torch.from_numpy(ys).long()\n"),
    }[method]
    tail = ("print(\"class counts\", torch.bincount(y_res, minlength=10).tolist(), \"images\", len(y_res))\n\n\n"
            f"# ---- the tab's short run: the same small CNN, {int(steps)} steps, scored on the balanced mnist5k "
            "test set\n"
            f"{source(SmallCNN)}\n\n\n"
            f"{train_source(augment=False)}\n\n\n"
            "torch.manual_seed(0)\n"
            "model = SmallCNN()\n"
            "acc = train(model, x_res, y_res, test_x, test_y, epochs=10_000, batch_size=64, lr=3e-3, "
            f"max_steps={int(steps)}, seed=0,\n"
            "            label_smoothing=0.0)\n"
            "print(f\"test accuracy {acc:.2f}%\")\n")
    return head + body + tail
