"""Fast pictures for the "Look inside" views, as numpy RGB arrays (uint8, H x W x 3).

Feature-map grids, filters and overlays are drawn with numpy (+ PIL for the small labels): a matplotlib
figure with 64 subplots costs ~1 s, the numpy grid ~1-3 ms. Charts (histograms, bars) use one matplotlib
Figure each (zoo/pictures.py: Agg canvas, no pyplot, so no global state: safe in a server thread).
Titles and axis labels come from the caller, already in the visitor's language (look_inside.views); a text with
Chinese in it is drawn with the CJK font (core.fonts), other text with PIL's own.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.fonts import has_cjk, pil_font
from zoo.pictures import fig_to_array, figure, lut, upscale

BG = 255          # grid background (white)
LABEL_H = 16      # pixels of the label band above each tile


def colorize(a: np.ndarray, cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """2-D array -> (H, W, 3) uint8 through a colormap; min-max scaled unless vmin/vmax are given."""
    a = np.asarray(a, dtype=np.float32)
    lo = float(np.nanmin(a)) if vmin is None else vmin
    hi = float(np.nanmax(a)) if vmax is None else vmax
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    idx = np.clip((np.nan_to_num(a, nan=lo) - lo) * scale, 0, 255).astype(np.uint8)
    return lut(cmap)[idx]


@lru_cache(maxsize=4)
def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def _font_for(text: str, size: int = 12):
    """PIL's own font, or the CJK font for a text with Chinese in it."""
    return pil_font(size) if has_cjk(text) else _font(size)


def _grid(tiles: list[np.ndarray], labels: list[str] | None, cols: int | None, pad: int = 4,
          title: str | None = None) -> np.ndarray:
    """Lay equal-size RGB tiles in a grid with a label band above each (PIL text), white background."""
    n = len(tiles)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    th, tw = tiles[0].shape[:2]
    lh = LABEL_H if labels else 0
    top = 22 if title else 0
    out = np.full((top + rows * (th + lh + pad) + pad, cols * (tw + pad) + pad, 3), BG, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = top + pad + r * (th + lh + pad) + lh, pad + c * (tw + pad)
        out[y:y + th, x:x + tw] = t
    if labels or title:
        if title:  # a grid narrower than its title gets white margins
            need = int(_font_for(title, 13).getlength(title)) + 12
            if need > out.shape[1]:
                extra = need - out.shape[1]
                out = np.pad(out, ((0, 0), (extra // 2, extra - extra // 2), (0, 0)), constant_values=BG)
        off = (out.shape[1] - (cols * (tw + pad) + pad)) // 2
        im = Image.fromarray(out)
        d = ImageDraw.Draw(im)
        font = _font(12)
        for i, text in enumerate(labels or []):
            r, c = divmod(i, cols)
            d.text((off + pad + c * (tw + pad) + 2, top + pad + r * (th + lh + pad) + 1), text, fill=(40, 40, 40),
                   font=font)
        if title:
            d.text((out.shape[1] / 2, 5), title, fill=(20, 20, 20), font=_font_for(title, 13), anchor="mt")
        out = np.asarray(im)
    return out


def feature_grid(maps: np.ndarray, labels: list[str], tile: int = 96, cols: int | None = None,
                 shared_scale: bool = False, cmap: str = "viridis", title: str | None = None) -> np.ndarray:
    """(K, H, W) feature maps -> one picture, each map min-max scaled (or all on one shared scale)."""
    maps = np.asarray(maps, dtype=np.float32)
    vmin, vmax = (float(maps.min()), float(maps.max())) if shared_scale else (None, None)
    tiles = [upscale(colorize(m, cmap, vmin, vmax), tile) for m in maps]
    # Tiles of one layer share H, W, so the upscaled tiles share a size too.
    return _grid(tiles, labels, cols, title=title)


def vector_tile(v: np.ndarray, tile: int = 256, cmap: str = "viridis") -> np.ndarray:
    """A 1-D activation (a Linear layer's output) as a near-square heat image, row-major, padding shown white."""
    v = np.asarray(v, dtype=np.float32).reshape(-1)
    w = math.ceil(math.sqrt(v.size))
    h = math.ceil(v.size / w)
    rgb = np.full((h * w, 3), BG, np.uint8)
    rgb[:v.size] = colorize(v[None, :], cmap)[0]
    return upscale(rgb.reshape(h, w, 3), tile)


def overlay(base: np.ndarray, heat: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blend a [0, 1] heat map (same H, W as base) over an RGB or grey base image."""
    base = np.asarray(base)
    if base.ndim == 2:
        base = np.repeat(base[:, :, None], 3, axis=2)
    h = colorize(heat, cmap, 0.0, 1.0).astype(np.float32)
    a = alpha * np.clip(heat, 0, 1)[:, :, None] ** 0.5  # low heat stays mostly see-through
    return (base.astype(np.float32) * (1 - a) + h * a).astype(np.uint8)


def filters_grid(w: np.ndarray, tile: int = 48, max_filters: int = 64) -> np.ndarray:
    """First-layer conv weights (O, I, k, k) as images: RGB when I == 3 (each filter min-max scaled, as AlexNet's
    paper shows them), else the mean over input channels on a diverging map centred on 0 (red +, blue -)."""
    w = np.asarray(w, dtype=np.float32)[:max_filters]
    tiles = []
    for f in w:
        if f.shape[0] == 3:
            lo, hi = f.min(), f.max()
            rgb = ((f - lo) / (hi - lo + 1e-12) * 255).astype(np.uint8).transpose(1, 2, 0)
        else:
            g = f.mean(axis=0)
            m = float(np.abs(g).max()) or 1.0
            rgb = colorize(g, "RdBu_r", -m, m)
        tiles.append(upscale(rgb, tile))
    return _grid(tiles, [f"#{i}" for i in range(len(tiles))], cols=min(16, math.ceil(math.sqrt(len(tiles)) * 1.5)))


# ---- matplotlib charts ----------------------------------------------------------------------------------------

def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick positions (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    span = hi - lo
    if not np.isfinite(span) or span <= 0:
        return [lo]
    raw = span / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if v != 0 else "0"


def ridgeline(names: list[str], rows: list[np.ndarray], title: str, xlabel: str, bins: int = 60,
              clip_pct: float = 99.5, extra: list[str] | None = None, width: int = 860, row_h: int = 22) -> np.ndarray:
    """Per-layer histograms stacked as a ridgeline (one row per layer, each scaled to its own peak) on one shared
    x axis spanning every row's central clip_pct% - so a layer with a different scale stands out.

    Drawn with numpy + PIL polygons: an order of magnitude faster than the same picture from matplotlib, which spends
    most of its time laying out tick labels (docs/numbers.md, "Why the code is as it is").
    """
    los, his = [], []
    for r in rows:
        r = np.asarray(r, np.float64).ravel()
        r = r[np.isfinite(r)]
        if r.size:
            lo_r, hi_r = np.percentile(r, [100 - clip_pct, clip_pct])
            los.append(lo_r)
            his.append(hi_r)
    lo, hi = (min(los), max(his)) if los else (-1.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    labels = [f"{nm}  {e}" if extra else nm for nm, e in zip(names, extra or names)]
    font = _font(11)
    left = min(340, 16 + max((int(_font_for(t, 11).getlength(t)) for t in labels), default=40))
    top, bottom, right = 30, 44, 16
    n = len(rows)
    height = top + (n + 1) * row_h + bottom
    im = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(im)
    x0, x1 = left, width - right
    px = lambda v: x0 + (v - lo) / (hi - lo) * (x1 - x0)  # noqa: E731
    edges = np.linspace(lo, hi, bins + 1)
    xs = px(edges)
    if lo < 0 < hi:
        d.line([(px(0), top), (px(0), height - bottom)], fill=(190, 190, 190), width=1)
    for i, (vals, text) in enumerate(zip(rows, labels)):
        base = top + (i + 1) * row_h + row_h // 2
        vals = np.asarray(vals, np.float64).ravel()
        vals = vals[np.isfinite(vals)]
        if vals.size:
            h, _ = np.histogram(vals, bins=edges)  # values outside the range are dropped, not piled on the edges
            h = h / max(h.max(), 1) * row_h * 1.4  # a little overlap with the row above, as ridgelines do
            pts = [(float(xs[0]), base)]
            for j in range(bins):
                pts += [(float(xs[j]), base - h[j]), (float(xs[j + 1]), base - h[j])]
            pts.append((float(xs[-1]), base))
            d.polygon(pts, fill=(120, 165, 210), outline=(31, 119, 180))
        d.line([(x0, base), (x1, base)], fill=(150, 150, 150), width=1)
        d.text((left - 8, base - 2), text, fill=(30, 30, 30), font=_font_for(text, 11), anchor="rs")
    yb = height - bottom + 4
    d.line([(x0, yb), (x1, yb)], fill=(60, 60, 60), width=1)
    for t in nice_ticks(lo, hi):
        d.line([(px(t), yb), (px(t), yb + 4)], fill=(60, 60, 60), width=1)
        d.text((px(t), yb + 6), _fmt(t), fill=(30, 30, 30), font=font, anchor="mt")
    d.text(((x0 + x1) / 2, height - 6), xlabel, fill=(30, 30, 30), font=_font_for(xlabel, 11), anchor="ms")
    d.text((width / 2, 8), title, fill=(20, 20, 20), font=_font_for(title, 13), anchor="mt")
    return np.asarray(im)


def hbars(names: list[str], values: list[float], title: str, xlabel: str, highlight: str | None = None,
          log: bool = False) -> np.ndarray:
    """Horizontal bars, one per layer (top to bottom in network order)."""
    n = len(names)
    h = max(2.4, 0.22 * n + 1.0)
    fig = figure(8.5, h)
    ax = fig.add_axes((0.34, 0.5 / h + 0.02, 0.62, 1 - 0.95 / h))
    vals = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    colors = ["#d62728" if nm == highlight else "#1f77b4" for nm in names]
    ax.barh(np.arange(n), vals, color=colors)
    ax.set_yticks(np.arange(n))
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    if log and (vals > 0).any():
        ax.set_xscale("log")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    return fig_to_array(fig)


def overlaid_hist(a: np.ndarray, b: np.ndarray, title: str, labels: tuple[str, str], bins: int = 80,
                  xlabel: str = "weight value") -> np.ndarray:
    """Two distributions of one layer's weights on one axis (the checkpoint comparison's close-up)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    both = np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]]) if a.size + b.size else np.zeros(1)
    lo, hi = np.percentile(both, [0.1, 99.9]) if both.size else (-1, 1)
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    fig = figure(8.5, 3.0)
    ax = fig.add_axes((0.08, 0.16, 0.9, 0.74))
    edges = np.linspace(lo, hi, bins + 1)
    ax.hist(np.clip(a, lo, hi), bins=edges, alpha=0.6, label=labels[0], color="#1f77b4")
    ax.hist(np.clip(b, lo, hi), bins=edges, alpha=0.5, label=labels[1], color="#ff7f0e")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(labelsize=7)
    return fig_to_array(fig)
