"""Plain PyTorch for the code panels (issue #26 item 2): what a snippet writes out instead of importing this project.

A learner copies a code panel into a fresh environment with only torch, torchvision, safetensors, huggingface_hub,
numpy and pillow. So the panels of Classify (digits), Autoencoder and GAN carry the model's class and the
preprocessing as source text: the classes are copied verbatim from zoo/digits.py and zoo/generative.py with
inspect.getsource (as training/export.py does), and the preprocessing is the plain function below, which the tests
hold to zoo.images.mnist_preprocess (tests/test_snippets.py). Weights are read with safetensors from the Hub repo the
app's weights are published to (zoo/publish.py), the same files as zoo/weights/.

Nothing here imports gradio or the rest of the project at module level.
"""
from __future__ import annotations

import inspect
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

# What the standalone preprocessing leaves out of the tab's (zoo.images.mnist_preprocess), said in the panel.
PREPROCESS_NOTE = ("# The tab also thins brush strokes far thicker than MNIST's pen (scipy/skimage erosion)\n"
                   "# and checks that the file is a safe picture; this copy leaves both out\n"
                   "# (the same tensor for strokes of MNIST's width).")


def mnist_preprocess(path) -> torch.Tensor:
    """A digit picture -> (1, 28, 28) in [0, 1], white ink on black, made the way MNIST was made: the ink's box
    scaled to fit 20x20, placed in 28x28 with its centre of mass at (14, 14). A 28x28 MNIST-format picture is
    passed through as it is."""
    img = ImageOps.exif_transpose(Image.open(path))
    img = img.convert("RGBA") if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info else img.convert("RGB")
    gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0 if img.mode == "RGBA" else None
    if alpha is not None and alpha.min() < 0.99:                 # drawn on a transparent canvas: ink = opaque
        opaque = gray[alpha > 0.5]
        ink = alpha * (1 - gray) if opaque.size == 0 or opaque.mean() < 0.5 else alpha * gray
    else:
        if alpha is not None:                                      # opaque RGBA: on white, as the tab does
            gray = np.asarray(Image.alpha_composite(Image.new("RGBA", img.size, "white"), img).convert("L"),
                              dtype=np.float32) / 255.0
        border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
        ink = 1 - gray if np.median(border) > 0.5 else gray        # dark ink on light paper -> white on black

    def centre_of_mass(m):
        total = m.sum()
        return float((m.sum(1) * torch.arange(m.shape[0])).sum() / total), \
            float((m.sum(0) * torch.arange(m.shape[1])).sum() / total)

    if ink.shape == (28, 28) and ink.max() >= 0.1 and np.median(ink) <= 0.02:   # already MNIST's format?
        ys, xs = np.nonzero(ink > 0.5 / 255)
        cy, cx = centre_of_mass(torch.from_numpy(np.ascontiguousarray(ink)))
        if max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 <= 21 and abs(cy - 14) <= 1 and abs(cx - 14) <= 1:
            return torch.from_numpy(np.ascontiguousarray(ink)).float()[None]
    ink = np.clip(ink - np.median(ink) if np.median(ink) > 0.05 else ink, 0, 1)   # no flat grey background
    if ink.max() < 0.1:
        raise ValueError("no digit found in the picture")
    ink = ink / ink.max()
    ys, xs = np.nonzero(ink > 0.05)
    crop = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]                 # the ink's bounding box
    t = torch.from_numpy(np.ascontiguousarray(crop)).float()[None, None]     # (1, 1, h, w)
    h, w = crop.shape
    nh, nw = max(1, round(h * 20 / max(h, w))), max(1, round(w * 20 / max(h, w)))   # longest side -> 20 px
    if (nh, nw) != (h, w):
        t = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    canvas = torch.zeros(1, 1, 28, 28)
    top, left = (28 - nh) // 2, (28 - nw) // 2
    canvas[..., top:top + nh, left:left + nw] = t
    cy, cx = centre_of_mass(canvas[0, 0])                            # an integer shift to MNIST's (14, 14)
    dy = max(-top, min(int(round(14 - cy)), 28 - (top + nh)))
    dx = max(-left, min(int(round(14 - cx)), 28 - (left + nw)))
    return torch.roll(canvas, shifts=(dy, dx), dims=(2, 3))[0]     # (1, 28, 28)


def source(*objs) -> str:
    """The source text of classes, functions (verbatim, inspect.getsource) and module constants (`NAME = value`,
    given as (name, value) pairs), separated by blank lines as in a module."""
    parts = []
    for obj in objs:
        if isinstance(obj, tuple):
            parts.append(f"{obj[0]} = {obj[1]!r}")
        else:
            parts.append(inspect.getsource(obj).rstrip("\n"))
    return "\n\n\n".join(parts)


@lru_cache(maxsize=None)
def digits_classes(builder_name: str) -> str:
    """The source of a digits model class and what it is built from (zoo/digits.py)."""
    from zoo import digits as d

    needs = {"ResNetDigits": (d.BasicBlock, d.ResNetDigits),
             "VGGDigits": (("VGG_DIGITS_CFG", d.VGG_DIGITS_CFG), d.make_layers, d.VGGDigits),
             "AlexNetDigits": (d.LocalResponseNorm, d.AlexNetDigits),
             "StudentCNN": (d.StudentCNN,)}[builder_name]
    return source(*needs)


@lru_cache(maxsize=1)
def preprocess_source() -> str:
    """The plain preprocessing function above, as the panels show it (with what it leaves out)."""
    return PREPROCESS_NOTE + "\n" + source(mnist_preprocess)


def hub_file(repo_id: str, filename: str) -> str:
    """The line that fetches one of the app's weights files from the Hub (cached after the first call)."""
    return f'hf_hub_download("{repo_id}", "{filename}")'
