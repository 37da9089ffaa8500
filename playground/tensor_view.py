"""How a tensor is shown: a one-line summary (shape, dtype, device, grad, stride), its value printed the way
PyTorch prints it (truncated), and a picture (heatmap for 2-D, histogram for larger tensors).

The summary's words are the server's, in the visitor's language (summary_line, fact_block, values_text): a whole
program's process reads no catalogue, so it sends the facts (summarize, value_text) and the server writes the
lines; the words a picture has are handed to render() (picture_words, computed in the server)."""
from __future__ import annotations

import functools

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from core.fonts import has_cjk, pil_font, text_language
from core.i18n import t
from zoo.pictures import lut

PRINT_OPTIONS = dict(threshold=120, edgeitems=3, linewidth=96, precision=4)
HEATMAP_MAX_SIDE = 64      # 2-D tensors up to 64x64 get a heatmap (annotated up to 8x8), larger ones a histogram
HISTOGRAM_MIN_NUMEL = 17   # 1-D and N-D tensors with more elements than this get a histogram


def value_text(value) -> str:
    """repr-like text for any sandbox value, truncated."""
    if isinstance(value, torch.Tensor):
        torch.set_printoptions(**PRINT_OPTIONS)
        text = str(value)
    else:
        text = repr(value)
    return text if len(text) <= 4000 else text[:4000] + " ..."


def summarize(value) -> dict:
    """Facts about a value; for tensors: shape, dtype, device, requires_grad, grad_fn, stride, contiguity."""
    if not isinstance(value, torch.Tensor):
        return {"type": type(value).__name__}
    return {
        "type": "Tensor",
        "shape": tuple(value.shape),
        "dtype": str(value.dtype).replace("torch.", ""),
        "device": str(value.device),
        "requires_grad": bool(value.requires_grad),
        "grad_fn": type(value.grad_fn).__name__ if value.grad_fn is not None else "",
        "is_leaf": bool(value.is_leaf),
        "stride": tuple(value.stride()) if value.layout == torch.strided else (),
        "contiguous": bool(value.is_contiguous()) if value.layout == torch.strided else False,
        "numel": int(value.numel()),
    }


def summary_line(name: str, s: dict, language: str = "en") -> str:
    """One value's facts on a line ("a: shape (2, 3) | float32 | cpu | requires_grad=False | stride (3, 1)
    contiguous"), the words in `language` (names, dtypes and PyTorch's attributes as PyTorch writes them)."""
    if not isinstance(s, dict) or s.get("type") != "Tensor":
        return t("sandbox.fact.name", language, name=name, facts=(s or {}).get("type") if isinstance(s, dict) else s)
    parts = [t("sandbox.fact.shape", language, shape=_tuple(s.get("shape"))), str(s.get("dtype")),
             str(s.get("device")), f"requires_grad={s.get('requires_grad')}"]
    if s.get("grad_fn"):
        parts.append(f"grad_fn={s['grad_fn']}")
    parts.append(t("sandbox.fact.contiguous" if s.get("contiguous") else "sandbox.fact.not_contiguous", language,
                   stride=_tuple(s.get("stride"))))
    return t("sandbox.fact.name", language, name=name, facts=" | ".join(parts))


def _tuple(value) -> str:
    """A shape or stride as Python writes a tuple ((2, 3), (6,), ()), also when it crossed as a JSON list."""
    return str(tuple(value)) if isinstance(value, (list, tuple)) else str(value)


def fact_block(line, name: str, s: dict, text: str, language: str = "en") -> str:
    """A value in the values text: "[line N] " + its summary line, then its value as PyTorch prints it."""
    return t("sandbox.fact.line", language, line=line, summary=summary_line(name, s, language)) + "\n" + str(text)


def values_text(entries, language: str = "en", limit: int = 200_000) -> str:
    """The values text from the facts a whole program's process sent ([line, name, summary, value text] each;
    what it sends is untrusted: anything else is skipped), our words in `language`."""
    if isinstance(entries, str):
        return entries[:limit]
    blocks, size = [], 0
    for entry in entries if isinstance(entries, list) else []:
        if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[2], dict)):
            continue
        line, name, s, text = entry
        block = fact_block(line if isinstance(line, int) else "", str(name)[:60], s, str(text)[:4100], language)
        blocks.append(block)
        size += len(block) + 2
        if size > limit:
            break
    return "\n\n".join(blocks)[:limit]


def picture_kind(t: torch.Tensor) -> str | None:
    """'heatmap', 'histogram' or None (scalars, tiny vectors, non-numeric)."""
    if t.numel() < 2:
        return None
    if t.dim() == 2 and max(t.shape) <= HEATMAP_MAX_SIDE:
        return "heatmap"
    if t.dim() == 1 and t.numel() <= 16:
        return "heatmap"
    return "histogram"


def _as_float(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.is_complex():
        t = t.abs()
    return t.to(torch.float32).numpy()


@functools.lru_cache(maxsize=8)
def _font(size: int = 12):
    """Pillow's built-in font at this size, parsed once per process (the sandbox's template warms it: a program's
    process then draws with it at once instead of decoding the font again, ~3 ms)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def picture_words(language: str = "en") -> dict:
    """The words render() draws, in `language` (English where no CJK font can draw Chinese): computed in the
    server and handed to the program's process, which reads no catalogue."""
    language = text_language(language)
    return {"value": t("sandbox.picture.value", language)}


def _font_for(text: str, size: int):
    """Pillow's built-in font, or the CJK font for text with Chinese in it (a Chinese word, a Chinese name)."""
    return pil_font(size) if has_cjk(text) else _font(size)


def render(name: str, t: torch.Tensor, words: dict | None = None) -> np.ndarray | None:
    """An RGB picture of the tensor, or None when there is nothing to draw. Drawn with PIL (a few ms, far less than
    matplotlib): a heatmap with a colour scale for 2-D, else a histogram. `words`: picture_words(language)
    (English when None)."""
    kind = picture_kind(t)
    if kind is None:
        return None
    data = _as_float(t)
    W, H, top, left = 360, 260, 24, 10
    img = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(img)
    title = f"{name}  {tuple(t.shape)}"[:56]
    draw.text((left, 5), title, fill="black", font=_font_for(title, 13))
    finite = data[np.isfinite(data)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if kind == "heatmap":
        grid = data.reshape(1, -1) if data.ndim == 1 else data
        rows, cols = grid.shape
        scaled = np.nan_to_num((grid - lo) / (hi - lo) if hi > lo else np.full_like(grid, 0.5), nan=0.0)
        rgb = lut("viridis")[np.clip((scaled * 255).astype(int), 0, 255)]
        cell = max(1, min((W - 90) // cols, (H - top - 10) // rows))
        tile = Image.fromarray(rgb).resize((cell * cols, cell * rows), Image.NEAREST)
        img.paste(tile, (left, top))
        if rows * cols <= 64 and cell >= 24:
            for (i, j), v in np.ndenumerate(grid):
                color = "black" if scaled[i, j] > 0.5 else "white"
                draw.text((left + j * cell + cell / 2, top + i * cell + cell / 2), f"{v:.2g}", fill=color,
                          anchor="mm", font=_font(11))
        bar = Image.fromarray(lut("viridis")[::-1][:, None, :].repeat(14, axis=1)).resize((14, H - top - 40))
        img.paste(bar, (W - 70, top))
        draw.text((W - 52, top), f"{hi:.3g}", fill="black", font=_font(11))
        draw.text((W - 52, H - 40 - 8), f"{lo:.3g}", fill="black", font=_font(11))
    else:
        counts, edges = np.histogram(finite if finite.size else np.zeros(1), bins=40)
        x0, y0, x1, y1 = left + 30, top + 6, W - 12, H - 30
        draw.line([(x0, y1), (x1, y1)], fill="black")
        draw.line([(x0, y0), (x0, y1)], fill="black")
        bw = (x1 - x0) / len(counts)
        for k, c in enumerate(counts):
            h = (y1 - y0) * c / max(1, counts.max())
            draw.rectangle([x0 + k * bw + 1, y1 - h, x0 + (k + 1) * bw - 1, y1], fill="#4C72B0")
        draw.text((x0, y1 + 4), f"{edges[0]:.3g}", fill="black", font=_font(11))
        draw.text((x1, y1 + 4), f"{edges[-1]:.3g}", fill="black", font=_font(11), anchor="ra")
        word = str((words or {}).get("value") or "value")[:24]
        draw.text(((x0 + x1) / 2, y1 + 4), word, fill="black", font=_font_for(word, 11), anchor="ma")
        draw.text((left, y0), f"{counts.max()}", fill="black", font=_font(11))
    return np.asarray(img)
