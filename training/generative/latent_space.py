"""The autoencoder tab's views that need the mnist5k data: the PCA baseline fitted on its train split, both
models' PSNR on its test split, and the latent-2 map of its test split (codes, extent, decodings over it, the
map as a clickable picture). Model inference itself is in zoo/generative_ops.py.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from core.fonts import text_language
from core.i18n import current_language, t
from training.data.datasets import mnist5k
from zoo.generative_ops import PCA, decode_points, load, psnr, reconstruct_batch
from zoo.pictures import colormap, fig_to_array, figure


# --- the PCA baseline ---------------------------------------------------------------------------

@lru_cache(maxsize=4)
def pca(k: int) -> PCA:
    return PCA(mnist5k().train_x, k)


@lru_cache(maxsize=8)
def test_set_psnr(name: str) -> tuple[float, float, int]:
    """(autoencoder PSNR, PCA PSNR at the same latent size, latent) on the whole mnist5k test split."""
    model = load(name)
    x = mnist5k().test_x
    return psnr(reconstruct_batch(model, x), x), psnr(pca(model.latent)(x), x), model.latent


# --- the latent-2 map ---------------------------------------------------------------------------

@lru_cache(maxsize=2)
def test_codes(name: str = "ae_digits_2") -> tuple[np.ndarray, np.ndarray]:
    """(codes (1000, 2), labels (1000,)) of the mnist5k test set under the latent-2 encoder."""
    d = mnist5k()
    model = load(name)
    with torch.no_grad():
        z = model.encode(d.test_x.to(next(model.parameters()).device)).cpu().numpy()
    return z, d.test_y.numpy()


def map_extent(name: str = "ae_digits_2", margin: float = 0.1) -> tuple[float, float, float, float]:
    """(xmin, xmax, ymin, ymax) around the 1st-99th percentile of the test codes (what the sliders span)."""
    z, _ = test_codes(name)
    lo, hi = np.percentile(z, 1, axis=0), np.percentile(z, 99, axis=0)
    pad = (hi - lo) * margin
    lo, hi = lo - pad, hi + pad
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def decode_grid(name: str = "ae_digits_2", n: int = 15) -> torch.Tensor:
    """An n x n grid of decodings over the map's extent (top row = largest z2), as (n*n, 1, 28, 28)."""
    x0, x1, y0, y1 = map_extent(name)
    xs, ys = torch.linspace(x0, x1, n), torch.linspace(y1, y0, n)
    zz = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1).reshape(-1, 2)  # (n*n, 2) as (z1, z2)
    return decode_points(name, zz)


# --- the map as a picture (clickable: pixel -> latent point) ------------------------------------

MAP_PX, MAP_AX = 520, (0.09, 0.07, 0.88, 0.83)   # square picture; axes [left, bottom, width, height] in figure units


def map_image(name: str = "ae_digits_2", marker: tuple[float, float] | None = None,
              point: tuple[float, float] | None = None, language: str | None = None) -> np.ndarray:
    """The test set's latent-2 codes scattered by digit, the user's input as a star, the picked point as a cross;
    its legend in `language` (None: the request's) where a CJK font can draw it, else in English."""
    language = text_language(language or current_language())
    z, y = test_codes(name)
    x0, x1, y0, y1 = map_extent(name)
    fig = figure(MAP_PX / 100, MAP_PX / 100, dpi=100)
    ax = fig.add_axes(MAP_AX)
    cmap = colormap("tab10")
    for d in range(10):
        sel = y == d
        ax.scatter(z[sel, 0], z[sel, 1], s=7, color=cmap(d), label=str(d), alpha=0.75, linewidths=0)
    if marker is not None:
        ax.scatter([marker[0]], [marker[1]], marker="*", s=420, c="gold", edgecolors="black", linewidths=1.2,
                   zorder=5, label=t("latent.your_digit", language))
    if point is not None:
        ax.scatter([point[0]], [point[1]], marker="X", s=160, c="black", edgecolors="white", linewidths=1.2, zorder=6,
                   label=t("latent.picked_point", language))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("z1", labelpad=1)
    ax.set_ylabel("z2", labelpad=1)
    ax.tick_params(labelsize=7)
    # Two rows above the axes (digits, then the two markers), legend symbols at one size: the big star and
    # cross of the plot overlapped their own labels, and one row of 12 ran past the picture's edge.
    leg = ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8, ncol=6, frameon=False,
                    columnspacing=1.0, handletextpad=0.3, borderaxespad=0.2, labelspacing=0.3)
    for h in leg.legend_handles:
        h.set_sizes([40])
    return fig_to_array(fig)


def map_pixel_to_latent(px: float, py: float, name: str = "ae_digits_2", size: tuple[int, int] | None = None
                        ) -> tuple[float, float]:
    """A click at pixel (px, py) of map_image (top-left origin) -> the latent point under it (clipped to the axes)."""
    w, h = size or (MAP_PX, MAP_PX)
    left, bottom, aw, ah = MAP_AX
    fx = (px / w - left) / aw                     # 0..1 across the axes
    fy = (1 - py / h - bottom) / ah               # 0..1 up the axes
    fx, fy = min(max(fx, 0.0), 1.0), min(max(fy, 0.0), 1.0)
    x0, x1, y0, y1 = map_extent(name)
    return x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)
