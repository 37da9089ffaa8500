"""Pure functions for the autoencoder and GAN tabs: reconstruction, PSNR, the PCA baseline, latent maps, sampling.

Nothing here imports gradio; the tabs (ui/autoencoder.py, ui/gan.py) only convert values and call these.
"""
from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn as nn

from zoo.classify import load_model

# The zoo's one process-wide model cache (lazy, locked, built outside inference_mode) serves this family too.
load = load_model


# --- measuring reconstructions ------------------------------------------------------------------

def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error of two (B, 1, 28, 28) batches -> (B,)."""
    return (a - b).pow(2).flatten(1).mean(1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of a whole set, peak 1.0: 10*log10(1 / MSE over every pixel of every image)."""
    return float(10 * torch.log10(1.0 / (a - b).pow(2).mean().clamp_min(1e-10)))


def psnr_each(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(1.0 / mse(a, b).clamp_min(1e-10))


@torch.no_grad()
def reconstruct_batch(model: nn.Module, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """model(x) for (N, 1, 28, 28) in [0, 1], in chunks, returned on the CPU."""
    dev = next(model.parameters()).device
    return torch.cat([model(x[i:i + batch].to(dev)).cpu() for i in range(0, len(x), batch)])


class PCA:
    """The linear baseline: project onto the top-k principal components of the training images and back."""

    def __init__(self, train_x: torch.Tensor, k: int):
        flat = train_x.flatten(1).double()
        self.mean = flat.mean(0)
        _, _, vh = torch.linalg.svd(flat - self.mean, full_matrices=False)
        self.components = vh[:k]                                      # (k, 784)
        self.k = k

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1).double() - self.mean) @ self.components.T   # (B, k)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z.double() @ self.components + self.mean).float().view(-1, 1, 28, 28)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))                            # unclamped, as sklearn's inverse_transform


@lru_cache(maxsize=4)
def pca(k: int) -> PCA:
    from training.data import mnist5k

    return PCA(mnist5k().train_x, k)


def add_noise(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Gaussian noise of std sigma, clipped to [0, 1]: what the denoising autoencoder was trained to undo."""
    if sigma <= 0:
        return x
    g = torch.Generator().manual_seed(int(seed))
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def random_noise_images(n: int, seed: int = 0) -> torch.Tensor:
    """Uniform noise 'images' (not digits): an autoencoder of digits must not give these back."""
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


# --- the latent-2 map ---------------------------------------------------------------------------

@lru_cache(maxsize=2)
def test_codes(name: str = "ae_digits_2") -> tuple[np.ndarray, np.ndarray]:
    """(codes (1000, 2), labels (1000,)) of the mnist5k test set under the latent-2 encoder."""
    from training.data import mnist5k

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


@torch.no_grad()
def decode_points(name: str, z: torch.Tensor) -> torch.Tensor:
    model = load(name)
    return model.decode(z.float().to(next(model.parameters()).device)).cpu()   # (B, 1, 28, 28)


def decode_grid(name: str = "ae_digits_2", n: int = 15) -> torch.Tensor:
    """An n x n grid of decodings over the map's extent (top row = largest z2), as (n*n, 1, 28, 28)."""
    x0, x1, y0, y1 = map_extent(name)
    xs, ys = torch.linspace(x0, x1, n), torch.linspace(y1, y0, n)
    zz = torch.stack(torch.meshgrid(ys, xs, indexing="ij")[::-1], -1).reshape(-1, 2)  # (n*n, 2) as (z1, z2)
    return decode_points(name, zz)


# --- GAN sampling -------------------------------------------------------------------------------

def latent(seed: int, n: int, z_dim: int, truncation: float = 0.0) -> torch.Tensor:
    """n noise vectors from one seed; truncation > 0 redraws every entry beyond +-truncation (Brock et al. 2018)."""
    g = torch.Generator().manual_seed(int(seed))
    z = torch.randn(n, z_dim, generator=g)
    if truncation and truncation > 0:
        for _ in range(100):  # redraw out-of-range entries until none is left (a few rounds suffice)
            bad = z.abs() > truncation
            if not bad.any():
                break
            z[bad] = torch.randn(int(bad.sum()), generator=g)
        z = z.clamp(-truncation, truncation)
    return z


def digit_labels(n: int, digit: int | None) -> torch.Tensor:
    """The digits to draw: all the same, or 0..9 cycling (equal classes) when digit is None."""
    return torch.full((n,), int(digit), dtype=torch.long) if digit is not None else torch.arange(n) % 10


@torch.no_grad()
def sample(seed: int, n: int = 64, digit: int | None = None, truncation: float = 0.0,
           name: str = "gan_digits_g") -> torch.Tensor:
    """n generator samples (n, 1, 28, 28) in [0, 1]; the same seed gives the same images."""
    g = load(name)
    dev = next(g.parameters()).device
    z = latent(seed, n, g.z_dim, truncation).to(dev)
    y = digit_labels(n, digit).to(dev) if g.n_classes else None
    return g(z, y).cpu()


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between two noise vectors (White 2016): stays where Gaussian noise lives."""
    omega = torch.arccos((a / a.norm() * b / b.norm()).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = t.view(-1, 1)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


@torch.no_grad()
def interpolate(seed_a: int, seed_b: int, steps: int = 10, digit_a: int = 3, digit_b: int | None = None,
                truncation: float = 0.0, name: str = "gan_digits_g") -> torch.Tensor:
    """(steps, 1, 28, 28) images along the path from seed_a's noise to seed_b's (slerp), and, for a
    conditional G, from digit_a's label embedding to digit_b's (linear; digit_b=None keeps digit_a)."""
    g = load(name)
    dev = next(g.parameters()).device
    za, zb = latent(seed_a, 1, g.z_dim, truncation)[0], latent(seed_b, 1, g.z_dim, truncation)[0]
    t = torch.linspace(0, 1, int(steps))
    z = slerp(za, zb, t).to(dev)                                                  # (steps, z_dim)
    if not g.n_classes:
        return g(z).cpu()
    db = digit_a if digit_b is None else digit_b
    ea, eb = g.embed(torch.tensor([int(digit_a), int(db)], device=dev))          # (16,), (16,)
    tt = t.view(-1, 1).to(dev)
    e = (1 - tt) * ea + tt * eb                                                   # (steps, 16)
    h = g.fc(torch.cat([z, e], 1)).view(-1, 2 * g.width, 7, 7)                    # (steps, 96, 7, 7)
    return ((g.net(h) + 1) / 2).cpu()                                             # (steps, 1, 28, 28)


@torch.no_grad()
def realness(images: torch.Tensor, labels: torch.Tensor | None = None, name: str = "gan_digits_d") -> torch.Tensor:
    """The discriminator's probability that each image is a real mnist5k digit (of that label)."""
    d = load(name)
    dev = next(d.parameters()).device
    return torch.sigmoid(d(images.to(dev), None if labels is None else labels.to(dev))).cpu()


# --- pictures -----------------------------------------------------------------------------------

def to_uint8(x: torch.Tensor, scale: int = 1) -> np.ndarray:
    """(1, H, W) or (H, W) tensor in [0, 1] -> uint8 array, upscaled by `scale` with nearest neighbour."""
    a = (x.detach().cpu().squeeze().clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    return a.repeat(scale, 0).repeat(scale, 1) if scale > 1 else a


def grid(images: torch.Tensor, nrow: int | None = None, scale: int = 3, pad: int = 2) -> np.ndarray:
    """(N, 1, 28, 28) -> one uint8 picture of the images in rows (torchvision.utils.make_grid)."""
    from torchvision.utils import make_grid

    n = len(images)
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    g = make_grid(images.clamp(0, 1), nrow=nrow, padding=pad, pad_value=0.35)[0]  # (H, W)
    return to_uint8(g, scale)


def error_map(x: torch.Tensor, r: torch.Tensor, scale: int = 8) -> np.ndarray:
    """|reconstruction - input| as an RGB heat map (black = exact, yellow = wrong)."""
    import matplotlib

    err = (r - x).abs().squeeze().clamp(0, 1).numpy()
    rgb = (matplotlib.colormaps["inferno"](err)[..., :3] * 255).astype(np.uint8)
    return rgb.repeat(scale, 0).repeat(scale, 1)


def gif_bytes(images: torch.Tensor, scale: int = 6, ms: int = 90, bounce: bool = True) -> bytes:
    """An animated GIF of the frames (N, 1, 28, 28), played forward then back."""
    from PIL import Image

    frames = [Image.fromarray(to_uint8(f, scale), mode="L") for f in images]
    if bounce and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=ms, loop=0)
    return buf.getvalue()


# --- the map as a picture (clickable: pixel -> latent point) ------------------------------------

MAP_PX, MAP_AX = 520, (0.09, 0.07, 0.88, 0.83)   # square picture; axes [left, bottom, width, height] in figure units


def map_image(name: str = "ae_digits_2", marker: tuple[float, float] | None = None,
              point: tuple[float, float] | None = None) -> np.ndarray:
    """The test set's latent-2 codes scattered by digit, the user's input as a star, the picked point as a cross."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z, y = test_codes(name)
    x0, x1, y0, y1 = map_extent(name)
    fig = plt.figure(figsize=(MAP_PX / 100, MAP_PX / 100), dpi=100)
    ax = fig.add_axes(MAP_AX)
    cmap = matplotlib.colormaps["tab10"]
    for d in range(10):
        sel = y == d
        ax.scatter(z[sel, 0], z[sel, 1], s=7, color=cmap(d), label=str(d), alpha=0.75, linewidths=0)
    if marker is not None:
        ax.scatter([marker[0]], [marker[1]], marker="*", s=420, c="gold", edgecolors="black", linewidths=1.2,
                   zorder=5, label="your digit")
    if point is not None:
        ax.scatter([point[0]], [point[1]], marker="X", s=160, c="black", edgecolors="white", linewidths=1.2, zorder=6,
                   label="picked point")
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
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return img


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
