"""A torchvision.transforms.v2 augmentation pipeline built from one settings dataclass, and its exact code.

`steps(settings)` is the single source: `build_pipeline` instantiates it and `pipeline_code` prints it,
so the code shown in the app is the pipeline that ran. Geometric steps run on the uint8 image (so
`fill` is 0-255), then ToDtype scales to float32 in [0, 1], then Normalize.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from core.seeding import global_seed

PADDING_MODES = ("constant", "edge", "reflect", "symmetric")
MAX_SIDE = 1024
MAX_DRAWS = 32


class AugmentError(ValueError):
    """Settings the pipeline refuses, written for the visitor: a message key and its values, as
    core.errors.VisitorError's (which counts this class as its own by `visitor_error`: this file ships alone in an
    exported run and imports nothing of ours), and the English text, which core/locales/en.json repeats."""

    visitor_error = True
    key = "augment.invalid"

    def __init__(self, key: str, text: str, /, **values):
        self.key, self.values = key, values
        super().__init__(text.format(**values))


@dataclass
class AugmentSettings:
    """Every control of the data tab. 0 switches a step off (sizes, degrees, jitter amounts)."""

    resize: int = 64                  # v2.Resize((resize, resize))
    crop_size: int = 64               # v2.RandomCrop(size, padding, pad_if_needed, fill, padding_mode)
    crop_padding: int = 4
    pad_if_needed: bool = False
    fill: int = 0                     # 0-255: the padding value for padding_mode="constant" (and rotation)
    padding_mode: str = "constant"    # "constant" | "edge" | "reflect" | "symmetric"
    rrc_size: int = 0                 # v2.RandomResizedCrop(size, scale=(rrc_scale_min, 1.0))
    rrc_scale_min: float = 0.5
    hflip_p: float = 0.5              # v2.RandomHorizontalFlip(p)
    vflip_p: float = 0.0              # v2.RandomVerticalFlip(p)
    rotation: float = 15.0            # v2.RandomRotation(degrees)
    brightness: float = 0.2           # v2.ColorJitter(...)
    contrast: float = 0.2
    saturation: float = 0.0
    hue: float = 0.0
    normalize: bool = False           # v2.Normalize(mean, std)
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AugmentSettings":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise AugmentError("augment.unknown", "unknown augmentation settings: {names}",
                               names=", ".join(sorted(unknown)))
        kw = dict(d)
        for k in ("mean", "std"):
            if k in kw:
                kw[k] = tuple(float(v) for v in kw[k])
        s = cls(**kw)
        validate(s)
        return s


def validate(s: AugmentSettings) -> AugmentSettings:
    """Refuse settings torchvision would reject late or that would eat the server (huge sizes)."""
    for name in ("resize", "crop_size", "rrc_size"):
        v = getattr(s, name)
        if not (isinstance(v, int) and 0 <= v <= MAX_SIDE):
            raise AugmentError("augment.size", "{name} must be a whole number from 0 to {max_side} (0 = off)",
                               name=name, max_side=MAX_SIDE)
    if not 0 <= s.crop_padding <= 256:
        raise AugmentError("augment.crop_padding", "The RandomCrop padding must be from 0 to 256")
    if not 0 <= s.fill <= 255:
        raise AugmentError("augment.fill", "fill must be from 0 to 255 (a pixel value of the uint8 image)")
    if s.padding_mode not in PADDING_MODES:
        raise AugmentError("augment.padding_mode", "padding_mode must be one of {modes}",
                           modes=", ".join(PADDING_MODES))
    if not 0 < s.rrc_scale_min <= 1:
        raise AugmentError("augment.rrc_scale", "RandomResizedCrop's minimum scale must be above 0 and at most 1")
    if not (0 <= s.hflip_p <= 1 and 0 <= s.vflip_p <= 1):
        raise AugmentError("augment.flip", "The flip probabilities must be from 0 to 1")
    if not 0 <= s.rotation <= 180:
        raise AugmentError("augment.rotation", "The rotation degrees must be from 0 to 180")
    if not all(0 <= v <= 5 for v in (s.brightness, s.contrast, s.saturation)):
        raise AugmentError("augment.jitter", "ColorJitter's brightness, contrast and saturation must be from 0 to 5")
    if not 0 <= s.hue <= 0.5:
        raise AugmentError("augment.hue", "ColorJitter's hue must be from 0 to 0.5")
    if not (len(s.mean) == len(s.std) and len(s.mean) in (1, 3)):
        raise AugmentError("augment.mean_std", "Normalize's mean and std need 1 or 3 values each")
    if not all(v > 0 for v in s.std):
        raise AugmentError("augment.std", "Normalize's std values must be positive")
    return s


def steps(s: AugmentSettings) -> list[tuple[str, dict[str, Any]]]:
    """The pipeline as (v2 class name, keyword arguments), in order."""
    validate(s)
    out: list[tuple[str, dict[str, Any]]] = [("ToImage", {})]
    if s.resize:
        out.append(("Resize", {"size": (s.resize, s.resize), "antialias": True}))
    if s.crop_size:
        out.append(("RandomCrop", {"size": s.crop_size, "padding": s.crop_padding or None,
                                   "pad_if_needed": s.pad_if_needed, "fill": s.fill, "padding_mode": s.padding_mode}))
    if s.rrc_size:
        out.append(("RandomResizedCrop", {"size": s.rrc_size, "scale": (s.rrc_scale_min, 1.0), "antialias": True}))
    if s.hflip_p:
        out.append(("RandomHorizontalFlip", {"p": s.hflip_p}))
    if s.vflip_p:
        out.append(("RandomVerticalFlip", {"p": s.vflip_p}))
    if s.rotation:
        out.append(("RandomRotation", {"degrees": s.rotation, "fill": s.fill}))
    jitter = {k: getattr(s, k) for k in ("brightness", "contrast", "saturation", "hue") if getattr(s, k)}
    if jitter:
        out.append(("ColorJitter", jitter))
    out.append(("ToDtype", {"dtype": torch.float32, "scale": True}))
    if s.normalize:
        out.append(("Normalize", {"mean": list(s.mean), "std": list(s.std)}))
    return out


def build_pipeline(s: AugmentSettings):
    """v2.Compose of steps(s)."""
    from torchvision.transforms import v2

    return v2.Compose([getattr(v2, name)(**kw) for name, kw in steps(s)])


def _fmt(v: Any) -> str:
    if isinstance(v, torch.dtype):
        return str(v)  # 'torch.float32'
    if isinstance(v, float):
        return repr(round(v, 6))
    return repr(v)


def pipeline_code(s: AugmentSettings) -> str:
    """The exact Compose that build_pipeline(s) makes, as Python source."""
    lines = ["import torch", "from torchvision.transforms import v2", "", "transform = v2.Compose(["]
    for name, kw in steps(s):
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in kw.items())
        lines.append(f"    v2.{name}({args}),")
    lines += ["])", "", "x = transform(img)  # img: a PIL image or (C, H, W) uint8 tensor -> float32 tensor"]
    return "\n".join(lines)


def draws_code(s: AugmentSettings, image_code: str, n: int, seed: int) -> str:
    """pipeline_code(s) as a script that makes the tab's n seeded draws from the image that `image_code` loads
    (as `img`) and prints the numbers the tab shows about them."""
    head = pipeline_code(s).split("\nx = transform")[0]
    return head + f'''
{image_code}
torch.manual_seed({int(seed)})                        # the tab's seed: the same seed gives the same draws
draws = torch.stack([transform(img) for _ in range({int(n)})])   # the {int(n)} draws shown, one after another
print("final tensor per draw:", tuple(draws.shape[1:]), draws.dtype,
      f"range [{{draws.min():.3f}}, {{draws.max():.3f}}], mean {{draws.double().mean():.3f}}")
'''


def to_image_tensor(src, max_side: int | None = None) -> torch.Tensor:
    """A user's image (path, bytes, PIL, array) decoded safely -> (C, H, W) uint8, C = 1 or 3. With max_side,
    a larger picture is scaled down by PIL on its uint8 pixels first (cheap: no float copy of 40 megapixels)."""
    import numpy as np
    from torchvision.transforms.v2 import functional as TF

    # zoo here, not at the top: this file ships alone in an exported run (training/finetuning/export.py), which never
    # decodes a visitor's picture
    from zoo.images import flatten_alpha, open_image

    if isinstance(src, torch.Tensor):
        return src
    if isinstance(src, np.ndarray) and src.dtype == np.uint8 and src.ndim == 2:
        return torch.from_numpy(src.copy()).unsqueeze(0)
    img = flatten_alpha(open_image(src))
    img = img.convert("L" if img.mode in ("L", "1", "I", "I;16", "F") else "RGB")
    if max_side is not None and max(img.size) > max_side:
        img.thumbnail((max_side, max_side), resample=3)  # 3 = bicubic, antialiased; keeps the aspect ratio
    return TF.pil_to_tensor(img)


def draw(img: torch.Tensor, s: AugmentSettings, n: int = 8, seed: int = 0) -> torch.Tensor:
    """n random draws of the pipeline on one image, seeded (same seed -> same draws): (n, C, H, W)."""
    return torch.stack(draw_each(img, s, n, seed, keep=lambda x: x))


def draw_each(img: torch.Tensor, s: AugmentSettings, n: int, seed: int, keep) -> list:
    """The same n seeded draws as draw(), but each goes through keep(x) at once and only keep's result is held:
    a preview keeps a small picture and a few numbers per draw, not n full-size float tensors."""
    if not 1 <= n <= MAX_DRAWS:
        raise AugmentError("augment.draws", "The number of random draws must be from 1 to {max_draws}",
                           max_draws=MAX_DRAWS)
    pipe = build_pipeline(s)
    with global_seed(seed):   # v2 draws from torch's global RNG: seeded for this call alone, the caller's kept
        return [keep(pipe(img)) for _ in range(n)]


def fit_within(img: torch.Tensor, max_side: int = MAX_SIDE) -> torch.Tensor:
    """(C, H, W) scaled down (antialiased) so its longer side is at most max_side; smaller images unchanged.
    The pipeline's own sizes stop at MAX_SIDE, so a preview never needs more than this of the input."""
    from torchvision.transforms.v2 import functional as TF

    h, w = img.shape[-2:]
    if max(h, w) <= max_side:
        return img
    k = max_side / max(h, w)
    return TF.resize(img, [max(1, round(h * k)), max(1, round(w * k))], antialias=True)


def for_display(x: torch.Tensor, s: AugmentSettings) -> torch.Tensor:
    """Undo Normalize (if on) so a draw can be shown as a picture: (..., C, H, W) in [0, 1]."""
    if s.normalize:
        m = torch.tensor(s.mean).view(-1, 1, 1)
        sd = torch.tensor(s.std).view(-1, 1, 1)
        x = x * sd + m
    return x.clamp(0, 1)


def batch_transform(s: AugmentSettings, size: int):
    """The pipeline's random steps as a training-time transform on float batches (B, C, size, size) in [0, 1].

    Sizes are pinned to the model's input: RandomCrop(size, padding) pads then crops back, and
    RandomResizedCrop outputs `size`. Resize/ToImage/ToDtype/Normalize are left out (the trainer
    normalises). Each image gets its own random parameters. Returns None when nothing random is on.
    """
    from torchvision.transforms import v2

    validate(s)
    fill = s.fill / 255.0
    ts = []
    if s.crop_size and s.crop_padding:
        ts.append(v2.RandomCrop(size, padding=s.crop_padding, fill=fill, padding_mode=s.padding_mode))
    if s.rrc_size:
        ts.append(v2.RandomResizedCrop(size, scale=(s.rrc_scale_min, 1.0), antialias=True))
    if s.hflip_p:
        ts.append(v2.RandomHorizontalFlip(s.hflip_p))
    if s.vflip_p:
        ts.append(v2.RandomVerticalFlip(s.vflip_p))
    if s.rotation:
        ts.append(v2.RandomRotation(s.rotation, fill=fill))
    jitter = {k: getattr(s, k) for k in ("brightness", "contrast", "saturation", "hue") if getattr(s, k)}
    if jitter:
        ts.append(v2.ColorJitter(**jitter))
    if not ts:
        return None
    pipe = v2.Compose(ts)

    def apply(xb: torch.Tensor) -> torch.Tensor:
        return torch.stack([pipe(x) for x in xb])

    apply.pipeline = pipe  # for display / code
    return apply


class ImageTensorDataset(torch.utils.data.Dataset):
    """Images (N, C, H, W) in [0, 1] with labels; an optional per-item transform."""

    def __init__(self, x, y, transform=None):
        self.x, self.y, self.transform = x, y, transform

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        img = self.x[i]
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.y[i])


def make_dataset(x: torch.Tensor, y: torch.Tensor, transform=None) -> ImageTensorDataset:
    """A custom torch.utils.data.Dataset over image tensors (the tutorial's CustomImageDataset)."""
    return ImageTensorDataset(x, y, transform)


def _dataset_code_template(imports=()) -> str:
    """The code shown in the Data tab: the imports, the class above, verbatim, then the DataLoader lines."""
    import inspect

    src = inspect.getsource(ImageTensorDataset).replace("torch.utils.data.Dataset", "Dataset")
    src = src.replace("{", "{{").replace("}", "}}")  # it is a str.format template
    head = list(dict.fromkeys(["import torch", *imports, "from torch.utils.data import DataLoader, Dataset"]))
    head = [i for i in head if i.startswith("import ")] + [i for i in head if not i.startswith("import ")]
    return "\n".join(head).replace("{", "{{").replace("}", "}}") + "\n\n" + src + "\n\n" + _LOADER_CODE


_LOADER_CODE = '''{data}
dataset = ImageTensorDataset(x, y)          # x: {shape}, y: {yshape}
loader = DataLoader(dataset, batch_size={batch_size}, shuffle={shuffle}, num_workers={num_workers}, \
pin_memory={pin_memory},
                    generator=torch.Generator().manual_seed({seed}))
images, labels = next(iter(loader))         # images: {bshape}, labels: {lshape}
print("images", tuple(images.shape), images.dtype, "labels", labels.tolist())
'''


def one_batch(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool, num_workers: int, pin_memory: bool,
              seed: int = 0, source: str = "mnist5k", data_code: str = "", data_imports=()):
    """Draw one batch through a real DataLoader; returns (images, labels, code). source: the training.data.datasets
    function x and y come from (named in the code); data_code (with data_imports): the lines that make x and y
    instead (the Data tab's plain PyTorch, training.plain: this module imports nothing of ours)."""
    from torch.utils.data import DataLoader

    if not 1 <= batch_size <= 256:
        raise AugmentError("loader.batch_size", "batch_size must be from 1 to 256")
    if not 0 <= num_workers <= 2:
        raise AugmentError("loader.num_workers", "num_workers must be 0, 1 or 2 here (a shared server)")
    pin = bool(pin_memory) and torch.cuda.is_available()  # pin_memory only matters for a CUDA copy
    loader = DataLoader(make_dataset(x, y), batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                        pin_memory=pin, generator=torch.Generator().manual_seed(int(seed)),
                        persistent_workers=False)
    images, labels = next(iter(loader))
    data = data_code or (f"from training.data.datasets import {source}\n"
                         f"x, y = {source}().train_x, {source}().train_y   # the training split, images in [0, 1]")
    code = _dataset_code_template(data_imports).format(data=data, shape=tuple(x.shape), yshape=tuple(y.shape),
                                           batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                                           pin_memory=bool(pin_memory), seed=int(seed),
                                           bshape=tuple(images.shape), lshape=tuple(labels.shape))
    return images, labels, code
