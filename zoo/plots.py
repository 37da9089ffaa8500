"""Fast pictures for the "Look inside" views, as numpy RGB arrays (uint8, H x W x 3).

Feature-map grids, filters and overlays are drawn with numpy (+ PIL for the small labels): a matplotlib
figure with 64 subplots costs ~1 s, the numpy grid ~1-3 ms. Charts (histograms, bars) use one matplotlib
Figure each, Agg canvas, no pyplot (no global state, safe in a server thread); matplotlib is imported lazily.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

BG = 255          # grid background (white)
LABEL_H = 16      # pixels of the label band above each tile


@lru_cache(maxsize=16)
def lut(name: str = "viridis") -> np.ndarray:
    """A matplotlib colormap as a (256, 3) uint8 lookup table (matplotlib imported once, here)."""
    import matplotlib

    return (matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def colorize(a: np.ndarray, cmap: str = "viridis", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """2-D array -> (H, W, 3) uint8 through a colormap; min-max scaled unless vmin/vmax are given."""
    a = np.asarray(a, dtype=np.float32)
    lo = float(np.nanmin(a)) if vmin is None else vmin
    hi = float(np.nanmax(a)) if vmax is None else vmax
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    idx = np.clip((np.nan_to_num(a, nan=lo) - lo) * scale, 0, 255).astype(np.uint8)
    return lut(cmap)[idx]


def upscale(img: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor so the longer side is at most `size` (every pixel visible)."""
    f = max(1, size // max(img.shape[0], img.shape[1]))
    return img.repeat(f, axis=0).repeat(f, axis=1) if f > 1 else img


@lru_cache(maxsize=4)
def _font(size: int = 12):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def _grid(tiles: list[np.ndarray], labels: list[str] | None, cols: int | None, pad: int = 4) -> np.ndarray:
    """Lay equal-size RGB tiles in a grid with a label band above each (PIL text), white background."""
    n = len(tiles)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    th, tw = tiles[0].shape[:2]
    lh = LABEL_H if labels else 0
    out = np.full((rows * (th + lh + pad) + pad, cols * (tw + pad) + pad, 3), BG, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = pad + r * (th + lh + pad) + lh, pad + c * (tw + pad)
        out[y:y + th, x:x + tw] = t
    if labels:
        from PIL import Image, ImageDraw

        im = Image.fromarray(out)
        d = ImageDraw.Draw(im)
        font = _font(12)
        for i, text in enumerate(labels):
            r, c = divmod(i, cols)
            d.text((pad + c * (tw + pad) + 2, pad + r * (th + lh + pad) + 1), text, fill=(40, 40, 40), font=font)
        out = np.asarray(im)
    return out


def feature_grid(maps: np.ndarray, labels: list[str], tile: int = 96, cols: int | None = None,
                 shared_scale: bool = False, cmap: str = "viridis") -> np.ndarray:
    """(K, H, W) feature maps -> one picture, each map min-max scaled (or all on one shared scale)."""
    maps = np.asarray(maps, dtype=np.float32)
    vmin, vmax = (float(maps.min()), float(maps.max())) if shared_scale else (None, None)
    tiles = [upscale(colorize(m, cmap, vmin, vmax), tile) for m in maps]
    # Tiles of one layer share H, W, so the upscaled tiles share a size too.
    return _grid(tiles, labels, cols)


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

def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=100)
    return fig


def fig_to_array(fig) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def _ridge_rows(ax, rows, lo, hi, bins, color, alpha, label=None):
    edges = np.linspace(lo, hi, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for i, vals in enumerate(rows):
        vals = np.asarray(vals, dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            continue
        h, _ = np.histogram(vals, bins=edges)   # values outside the range are dropped, not piled on the edges
        h = h / max(h.max(), 1) * 0.9
        y0 = -i
        ax.fill_between(centres, y0, y0 + h, color=color, alpha=alpha, lw=0, label=label if i == 0 else None)
        ax.plot(centres, y0 + h, color=color, lw=0.6)


def ridgeline(names: list[str], rows: list[np.ndarray], title: str, xlabel: str, rows_b: list[np.ndarray] | None = None,
              labels: tuple[str, str] = ("A", "B"), bins: int = 60, clip_pct: float = 99.5,
              extra: list[str] | None = None) -> np.ndarray:
    """Per-layer histograms stacked in one axes (a ridgeline: one row per layer, each scaled to its peak), on one
    shared x axis spanning every row's central clip_pct% (so a layer with a different scale stands out).
    rows_b overlays a second set."""
    los, his = [], []
    for r in rows + (rows_b or []):
        r = np.asarray(r, np.float64).ravel()
        r = r[np.isfinite(r)]
        if r.size:
            lo_r, hi_r = np.percentile(r, [100 - clip_pct, clip_pct])
            los.append(lo_r)
            his.append(hi_r)
    lo, hi = (min(los), max(his)) if los else (-1.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    n = len(rows)
    fig = _figure(8.5, max(2.6, 0.26 * n + 1.2))
    ax = fig.add_axes((0.32 if extra else 0.26, 0.55 / max(2.6, 0.26 * n + 1.2) + 0.02, 0.64 if extra else 0.7,
                       1 - (1.05 / max(2.6, 0.26 * n + 1.2))))
    _ridge_rows(ax, rows, lo, hi, bins, "#1f77b4", 0.55 if rows_b is not None else 0.7, labels[0])
    if rows_b is not None:
        _ridge_rows(ax, rows_b, lo, hi, bins, "#ff7f0e", 0.45, labels[1])
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.set_yticks([-i + 0.35 for i in range(n)])
    ax.set_yticklabels([f"{nm}  {e}" if extra else nm for nm, e in zip(names, extra or names)], fontsize=7)
    ax.set_ylim(-n + 0.8, 1.1)
    ax.set_xlim(lo, hi)
    ax.axvline(0, color="0.6", lw=0.6)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    for s in ("top", "right", "left"):
        ax.spines[s].set_visible(False)
    return fig_to_array(fig)


def hbars(names: list[str], values: list[float], title: str, xlabel: str, highlight: str | None = None,
          log: bool = False) -> np.ndarray:
    """Horizontal bars, one per layer (top to bottom in network order)."""
    n = len(names)
    h = max(2.4, 0.22 * n + 1.0)
    fig = _figure(8.5, h)
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


def overlaid_hist(a: np.ndarray, b: np.ndarray, title: str, labels: tuple[str, str], bins: int = 80) -> np.ndarray:
    """Two distributions of one layer's weights on one axis (the checkpoint comparison's close-up)."""
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    both = np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]]) if a.size + b.size else np.zeros(1)
    lo, hi = np.percentile(both, [0.1, 99.9]) if both.size else (-1, 1)
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    fig = _figure(8.5, 3.0)
    ax = fig.add_axes((0.08, 0.16, 0.9, 0.74))
    edges = np.linspace(lo, hi, bins + 1)
    ax.hist(np.clip(a, lo, hi), bins=edges, alpha=0.6, label=labels[0], color="#1f77b4")
    ax.hist(np.clip(b, lo, hi), bins=edges, alpha=0.5, label=labels[1], color="#ff7f0e")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("weight value", fontsize=8)
    ax.tick_params(labelsize=7)
    return fig_to_array(fig)
