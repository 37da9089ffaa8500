"""Pictures, in one place: tensors as uint8 images, nearest-neighbour upscaling, colormap lookup tables, and
matplotlib figures on its object API (Figure + the Agg canvas: no pyplot, so no global figure registry to
leak into or to lock, safe in server threads and in the sandbox's worker).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from core.fonts import use_in_matplotlib


def to_uint8(x: torch.Tensor, scale: int = 1) -> np.ndarray:
    """(1, H, W) or (H, W) tensor in [0, 1] -> uint8 array, upscaled by `scale` with nearest neighbour."""
    a = (x.detach().cpu().squeeze().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    return a.repeat(scale, 0).repeat(scale, 1) if scale > 1 else a


def enlarge(img: np.ndarray, min_side: int) -> np.ndarray:
    """Nearest-neighbour enlargement by the largest integer factor that keeps the longer side within min_side
    (at least 1): small images get visible pixels, large ones stay as they are."""
    k = max(1, min_side // max(img.shape[:2]))
    return img.repeat(k, 0).repeat(k, 1) if k > 1 else img


def upscale(img: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour upscale by the integer factor that brings the longer side nearest to `size` (every
    pixel stays a visible square)."""
    f = max(1, int(size / max(img.shape[0], img.shape[1]) + 0.5))
    return img.repeat(f, axis=0).repeat(f, axis=1) if f > 1 else img


def to_rgb(x: torch.Tensor, mean=0.0, std=1.0, rounded: bool = True) -> np.ndarray:
    """(C, H, W) -> (H, W, 3) uint8 RGB: x * std + mean clipped to [0, 1] (a normalised model input with its
    weights' mean/std; the defaults take x as it is), grey repeated to three channels.

    rounded: round to the nearest level (undoing the normalisation is inexact); False truncates, as the Look
    inside tab's overlays always have."""
    m = torch.tensor(mean).view(-1, 1, 1)
    s = torch.tensor(std).view(-1, 1, 1)
    img = (x.detach().cpu() * s + m).clamp(0, 1)
    a = img.permute(1, 2, 0).numpy() * 255
    arr = (a.round() if rounded else a).astype(np.uint8)
    return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr


@lru_cache(maxsize=16)
def lut(name: str = "viridis") -> np.ndarray:
    """A matplotlib colormap as a (256, 3) uint8 lookup table."""
    # matplotlib is imported on first use (about 0.3 s): most requests draw no chart.
    import matplotlib

    return (matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)


def colormap(name: str):
    """A matplotlib colormap object (for colours of a chart or values through it in float)."""
    import matplotlib  # lazily, as above

    return matplotlib.colormaps[name]


def figure(w: float, h: float, dpi: int = 100):
    """A matplotlib Figure of w x h inches with an Agg canvas attached (fig.canvas.draw() works)."""
    # matplotlib is imported on first use (about 0.3 s): most requests draw no chart.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    use_in_matplotlib()   # Chinese text in a title or a label: the CJK font where one is installed (core/fonts.py)
    fig = Figure(figsize=(w, h), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def fig_to_array(fig) -> np.ndarray:
    """Draw a figure and return its pixels as (H, W, 3) uint8 RGB."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazily, as above

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
