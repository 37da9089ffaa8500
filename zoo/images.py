"""Image input for the zoo: safe decoding of anything a user can upload, and MNIST-style digit preprocessing.

Hostile or odd files end as ImageInputError with a message fit for the UI, never as a crash:
decompression bombs, truncated files, non-images, animated images (first frame), EXIF rotation,
CMYK, 16-bit, palette with transparency, tiny or extreme aspect ratios. Importing this module bounds every
Image.open in the process (zoo.image_limits.restrict_pil: formats, bytes, pixels, pieces of the file).
"""
from __future__ import annotations

import io
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from core.i18n import N_, t
from zoo.image_limits import ALLOWED_FORMATS, MAX_FILE_BYTES, MAX_PIXELS, ImageInputError, restrict_pil
from zoo.strokes import box_side, crop_to_ink, thin_thick_strokes

__all__ = ["ALLOWED_FORMATS", "MAX_FILE_BYTES", "MAX_PIXELS", "ImageInputError", "open_image", "probe"]
MAX_ASPECT = 50.0              # a 1x5000 strip is not a photo of anything
# Every process that decodes a visitor's picture imports this module first (the server through the tabs, the job
# worker through the zip decoder): from here on no Image.open in it, Gradio's included, is unbounded.
restrict_pil()


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Any numeric array -> uint8, scaling 16-bit and float ranges sensibly."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        a = np.nan_to_num(arr.astype(np.float32))
        if a.max(initial=0) <= 1.0:
            a = a * 255.0
        return np.clip(a, 0, 255).astype(np.uint8)
    a = arr.astype(np.float64)
    hi = 65535.0 if a.max(initial=0) > 255 else 255.0
    return np.clip(a / hi * 255.0, 0, 255).astype(np.uint8)


def _normalise_mode(img: Image.Image) -> Image.Image:
    """Return an RGB or RGBA image whatever the source mode (P, LA, CMYK, I;16, I, F, 1, ...)."""
    if img.mode in ("RGB", "RGBA"):
        return img
    if img.mode == "P":  # palette: transparency may live in the palette
        return img.convert("RGBA")
    if img.mode in ("LA", "PA", "La"):
        return img.convert("RGBA")
    if img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return img.convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return Image.fromarray(_to_uint8(np.asarray(img))).convert("RGB")
    return img.convert("RGB")  # "1", "L" and anything else PIL can convert


def open_image(src) -> Image.Image:
    """Decode a path, bytes, PIL image or array into an RGB/RGBA PIL image, safely (see module doc)."""
    if src is None:
        raise ImageInputError("image.none")
    if isinstance(src, dict):  # a Gradio ImageEditor/Sketchpad value
        src = src.get("composite") if src.get("composite") is not None else src.get("background")
        if src is None:
            raise ImageInputError("image.sketch_empty")
    if isinstance(src, np.ndarray):
        if src.ndim not in (2, 3) or src.size == 0 or (src.ndim == 3 and src.shape[2] not in (1, 3, 4)):
            raise ImageInputError("image.array_shape", shape=str(tuple(src.shape)))
        arr = _to_uint8(src)
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[:, :, 0]
        return _check_geometry(_normalise_mode(Image.fromarray(arr)))
    if isinstance(src, Image.Image):
        return _check_geometry(_normalise_mode(src))
    return _decode_bytes(_read_capped(src))


def _open_bounded(data: bytes) -> Image.Image:
    """Image.open over ALLOWED_FORMATS, recognised by their header (not the file name): the structure check and the
    pixel cap of zoo.image_limits run before anything is decoded."""
    try:
        img = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except UnidentifiedImageError:
        raise ImageInputError("image.unknown_format") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise Image.DecompressionBombError("too many pixels")
    return img


def probe(src) -> tuple[str, int, int]:
    """(format, width, height) of a picture file or its bytes, from its header only (nothing decoded), after the
    same checks as open_image; ImageInputError otherwise."""
    data = _read_capped(src)
    try:
        img = _open_bounded(data)
        return img.format, img.size[0], img.size[1]
    except Image.DecompressionBombError:
        raise ImageInputError("image.too_many_pixels", limit_mp=MAX_PIXELS // 1_000_000) from None
    except ImageInputError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, struct.error):
        raise ImageInputError("image.damaged") from None


def _read_capped(src) -> bytes:
    if isinstance(src, (bytes, bytearray)):
        data = bytes(src)
    else:
        path = os.fspath(src)
        try:
            size = os.path.getsize(path)
        except OSError:
            raise ImageInputError("image.unreadable") from None
        if size > MAX_FILE_BYTES:
            raise ImageInputError("image.file_too_large", size_mb=size / 2**20, limit_mb=MAX_FILE_BYTES // 2**20)
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    if not data:
        raise ImageInputError("image.file_empty")
    return data


def _decode_bytes(data: bytes) -> Image.Image:
    try:
        img = _open_bounded(data)
        # No n_frames (Pillow walks every page or frame to count them: quadratic for TIFF) and no seek: an opened
        # file stands at its first frame, the one an animated GIF/WebP/APNG is classified by.
        img.load()
        try:
            img = ImageOps.exif_transpose(img)  # phone photos store rotation in EXIF
        except Exception:  # noqa: BLE001 - a damaged EXIF block: keep the pixels as stored
            pass
    except ImageInputError:
        raise
    except Image.DecompressionBombError:
        raise ImageInputError("image.too_many_pixels", limit_mp=MAX_PIXELS // 1_000_000) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageInputError("image.truncated", detail=str(exc)[:120]) from None
    return _check_geometry(_normalise_mode(img))


def _check_geometry(img: Image.Image) -> Image.Image:
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageInputError("image.no_pixels")
    if w * h > MAX_PIXELS:
        raise ImageInputError("image.too_large", width=w, height=h, limit_mp=MAX_PIXELS // 1_000_000)
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ImageInputError("image.aspect", width=w, height=h, max_aspect=MAX_ASPECT)
    return img


def flatten_alpha(img: Image.Image, background: int = 255) -> Image.Image:
    """Composite RGBA onto a solid background (white by default) -> RGB."""
    if img.mode != "RGBA":
        return img.convert("RGB")
    bg = Image.new("RGB", img.size, (background,) * 3)
    bg.paste(img, mask=img.getchannel("A"))
    return bg


def _ink_map(img: Image.Image) -> np.ndarray:
    """Grayscale float array in [0, 1] where ink is bright (MNIST's white-on-black), whatever the input polarity."""
    if img.mode == "RGBA":
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0
        if alpha.min() < 0.99:  # a drawing on a transparent canvas: ink = opaque and dark
            gray = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
            opaque = gray[alpha > 0.5]
            dark_ink = opaque.size == 0 or float(opaque.mean()) < 0.5
            return alpha * (1.0 - gray) if dark_ink else alpha * gray
    gray = np.asarray(flatten_alpha(img).convert("L"), dtype=np.float32) / 255.0
    # Decide polarity from the border: a light border means dark ink on paper -> invert.
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return 1.0 - gray if np.median(border) > 0.5 else gray


# MNIST's digits have their centre of mass here (row, column; pixel centres at 0..27), not at the field's
# geometric centre 13.5: measured over all 5,000 mnist5k digits by bench/bench_preprocess.py (13.99, 14.00;
# spread 0.29 px, that of an integer shift), and checked against mnist5k in tests/test_images.py.
MNIST_COM = (14.0, 14.0)
MNIST_BOX = 20                 # the longest side of the ink's bounding box (all nonzero pixels), in pixels


def _centre_of_mass(m: torch.Tensor) -> tuple[float, float]:
    total = m.sum()
    cy = (m.sum(1) * torch.arange(m.shape[0])).sum() / total
    cx = (m.sum(0) * torch.arange(m.shape[1])).sum() / total
    return float(cy), float(cx)


def is_mnist_format(ink: np.ndarray) -> bool:
    """True when an ink map is already what MNIST's preprocessing makes: 28x28, a clean black background, all
    ink inside a 20x20 box and the centre of mass within a pixel of MNIST's. Such a picture goes to the model
    unchanged: cropping and re-centring it again would only shift and blur it."""
    if ink.shape != (28, 28) or ink.max(initial=0) < 0.1 or np.median(ink) > 0.02:
        return False
    if box_side(ink > 0.5 / 255) > MNIST_BOX + 1:
        return False
    cy, cx = _centre_of_mass(torch.from_numpy(np.ascontiguousarray(ink)))
    return abs(cy - MNIST_COM[0]) <= 1.0 and abs(cx - MNIST_COM[1]) <= 1.0


def mnist_preprocess(src, threshold: float = 0.05) -> torch.Tensor:
    """Any digit picture -> (1, 28, 28) float tensor in [0, 1], made the way MNIST was made.

    LeCun et al.: the ink's bounding box is scaled to fit 20x20 keeping its aspect ratio, then placed
    in a 28x28 field so that its centre of mass is where MNIST's are (MNIST_COM). White ink on black.
    Brush strokes far thicker than MNIST's pen (a small digit drawn with a big brush) are thinned first
    (zoo.strokes). A picture that is already in that format (an MNIST digit saved as a 28x28 PNG) is passed
    through unchanged (only inverted if it is dark ink on white). `threshold` (of the peak) decides which pixels
    count as ink for the bounding box: low, so the anti-aliased edges of a stroke stay inside the box, as in MNIST.
    """
    img = open_image(src)
    ink = _ink_map(img)
    if is_mnist_format(ink):
        return torch.from_numpy(np.ascontiguousarray(ink)).float()[None]
    ink = ink - np.median(ink) if np.median(ink) > 0.05 else ink  # remove a flat grey background
    ink = np.clip(ink, 0, 1)
    peak = ink.max(initial=0)
    if peak < 0.1:
        raise ImageInputError("image.no_digit")
    ink = ink / peak
    crop = thin_thick_strokes(crop_to_ink(ink, threshold), threshold)
    t = torch.from_numpy(np.ascontiguousarray(crop)).float()[None, None]  # (1, 1, h, w)
    h, w = crop.shape
    scale = MNIST_BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) != (h, w):
        # antialias=True averages the thick strokes of a big canvas down like MNIST's own anti-aliasing.
        t = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    canvas = torch.zeros(1, 1, 28, 28)
    top, left = (28 - nh) // 2, (28 - nw) // 2
    canvas[..., top:top + nh, left:left + nw] = t
    # Shift so the centre of mass lands where MNIST's does (an integer shift, as MNIST's was; clipped to the field).
    cy, cx = _centre_of_mass(canvas[0, 0])
    dy, dx = int(round(MNIST_COM[0] - cy)), int(round(MNIST_COM[1] - cx))
    dy = max(-top, min(dy, 28 - (top + nh)))
    dx = max(-left, min(dx, 28 - (left + nw)))
    canvas = torch.roll(canvas, shifts=(dy, dx), dims=(2, 3))
    return canvas[0]


# ---- photo or digit-like picture? ------------------------------------------------------------------------------
# A digit picture (MNIST, a sketch, a scan of ink on paper) is two-toned: a flat background and one or two
# strokes that cover a small part of it. A photo is not: many colours, mid-tones, texture everywhere, many
# separate shapes. Each threshold below was set from the measurements in bench/bench_preprocess.py (skimage
# photos and crops of them, LFW faces vs mnist5k digits, sklearn digits, thick sketches, scanned-looking
# digits); that benchmark prints the confusion this rule gives (bench/results/preprocess.json).
PHOTO_RULES = (
    # (feature, comparison, threshold, what it means for a visitor)
    ("colour_variety", ">", 0.03, "it has many colours"),
    ("ink_fraction", ">", 0.30, "its foreground covers too much of the picture for a digit"),
    ("shapes", ">", 3, "it has many separate shapes"),
    ("bimodality", "<", 0.65, "it is not two-toned like ink on paper"),
    ("background_texture", ">", 0.30, "its background is textured"),
)
# Each reason's catalogue key: the visitor reads it in the page's language (reason_text); photo_reasons itself
# says them in English.
REASON_KEYS = {
    "it has many colours": N_("image.reason.colours"),
    "its foreground covers too much of the picture for a digit": N_("image.reason.foreground"),
    "it has many separate shapes": N_("image.reason.shapes"),
    "it is not two-toned like ink on paper": N_("image.reason.tones"),
    "its background is textured": N_("image.reason.texture"),
}


def reason_text(why: str, language: str | None = None) -> str:
    """One of photo_reasons' reasons in a language (None: the request's)."""
    return t(REASON_KEYS[why], language) if why in REASON_KEYS else why


def photo_features(src) -> dict[str, float]:
    """The measurements PHOTO_RULES looks at, on a thumbnail of at most 128x128 (a few ms for any size).

    colour_variety: mean |chroma - median chroma| (tinted paper has one chroma, a photo many);
    ink_fraction: the part of the picture on the ink side of Otsu's threshold; shapes: connected ink regions
    over 0.2% of the picture; bimodality: Otsu's between-class / total variance (1.0 = two pure tones);
    background_texture: mean |Laplacian| over the background, relative to the ink/background contrast.
    """
    import scipy.ndimage as ndi

    img = open_image(src).copy()
    img.thumbnail((128, 128))
    v = _ink_map(img)                                            # ink bright, background dark
    rgb = np.asarray(flatten_alpha(img), np.float32) / 255.0
    chroma = rgb.max(2) - rgb.min(2)
    colour_variety = float(np.abs(chroma - np.median(chroma)).mean())
    hist = np.histogram(v, bins=64, range=(0.0, 1.0))[0].astype(np.float64)
    p = hist / max(hist.sum(), 1.0)
    c = (np.arange(64) + 0.5) / 64
    mu = float((p * c).sum())
    var = float((p * (c - mu) ** 2).sum())
    w0 = np.cumsum(p)[:-1]                                       # class 0 = bins < t, for t = 1..63
    m0c = np.cumsum(p * c)[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu * w0 - m0c) ** 2 / (w0 * (1 - w0))       # Otsu's between-class variance
    between = np.nan_to_num(between, nan=0.0, posinf=0.0)
    t = int(np.argmax(between)) + 1
    bimodality = float(between[t - 1] / var) if var > 1e-12 else 1.0
    mask = v >= t / 64
    w = float(p[t:].sum())
    m0 = float((p[:t] * c[:t]).sum() / max(1 - w, 1e-9))
    m1 = float((p[t:] * c[t:]).sum() / max(w, 1e-9))
    lab, _ = ndi.label(mask)
    sizes = np.bincount(lab.ravel())[1:]
    shapes = int((sizes >= 0.002 * v.size).sum())
    lap = np.abs(4 * v[1:-1, 1:-1] - v[:-2, 1:-1] - v[2:, 1:-1] - v[1:-1, :-2] - v[1:-1, 2:])
    bg = ~mask[1:-1, 1:-1]
    texture = float(lap[bg].mean() / max(m1 - m0, 1e-3)) if bg.any() else 0.0
    return {"colour_variety": colour_variety, "ink_fraction": float(mask.mean()), "shapes": shapes,
            "bimodality": bimodality, "background_texture": texture}


# A drawing made on the app's sketchpad is judged by its colour only. The pad's brush paints one fixed colour
# (black), so a drawing has no colour at all, however big, thick, thin or off-centre it is: the other rules describe
# a digit's *shape* on paper and turned a 0 drawn across the whole pad away ("its foreground covers too much"),
# issue #26 item 1. The colour rule stays so that a photo an API client sends as a sketch still goes to ImageNet.
DRAWN_RULES = ("colour_variety",)


def photo_reasons(src, drawn: bool = False) -> list[str]:
    """Why src looks like a photo rather than a digit-like picture ([] = digit-like). An MNIST-format picture
    (28x28, centred like MNIST) is always digit-like. drawn: src came from the sketchpad (see DRAWN_RULES)."""
    img = open_image(src)
    if img.size == (28, 28) and is_mnist_format(_ink_map(img)):
        return []
    f = photo_features(img)
    rules = [r for r in PHOTO_RULES if r[0] in DRAWN_RULES] if drawn else PHOTO_RULES
    return [why for name, op, thr, why in rules if (f[name] > thr if op == ">" else f[name] < thr)]


def looks_like_photo(src, drawn: bool = False) -> bool:
    """True when src is a photo (see PHOTO_RULES), so a digits model would give a meaningless answer."""
    return bool(photo_reasons(src, drawn))


def imagenet_preprocess(src, resize: int = 256, crop: int = 224, mean=(0.485, 0.456, 0.406),
                        std=(0.229, 0.224, 0.225)) -> torch.Tensor:
    """torchvision's ImageClassification transform for the IMAGENET1K_V1 weights -> (3, 224, 224)."""
    import torchvision.transforms.v2.functional as TF

    img = flatten_alpha(open_image(src))
    x = TF.pil_to_tensor(img)                                   # (3, H, W) uint8
    x = TF.resize(x, [resize], antialias=True)                  # shorter side -> 256
    x = TF.center_crop(x, [crop, crop])                         # (3, 224, 224)
    x = TF.to_dtype(x, torch.float32, scale=True)
    return TF.normalize(x, list(mean), list(std))
