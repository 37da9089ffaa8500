"""Pure functions for the autoencoder and GAN tabs: reconstruction, PSNR, the PCA baseline, decoding, sampling.

Model inference only: what needs the mnist5k data (the fitted PCA baseline, the latent-2 map of the test set)
is in training/generative/latent_space.py. Nothing here imports gradio; the tabs (ui/autoencoder.py, ui/gan.py) only
convert values and call these.
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from zoo.catalog import MNIST_MEAN, MNIST_STD
from zoo.classify import load_model
from zoo.inference import predict_logits
from zoo.pictures import colormap, to_uint8

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


def reconstruct_batch(model: nn.Module, x: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """model(x) for (N, 1, 28, 28) in [0, 1], in chunks, returned on the CPU."""
    return predict_logits(model, x, batch_size=batch)


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


def add_noise(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Gaussian noise of std sigma, clipped to [0, 1]: what the denoising autoencoder was trained to undo."""
    if sigma <= 0:
        return x
    g = torch.Generator().manual_seed(int(seed))
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def random_noise_images(n: int, seed: int = 0) -> torch.Tensor:
    """Uniform noise 'images' (not digits): an autoencoder of digits must not give these back."""
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def decode_points(name: str, z: torch.Tensor) -> torch.Tensor:
    model = load(name)
    return model.decode(z.float().to(next(model.parameters()).device)).cpu()   # (B, 1, 28, 28)


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


END_CANDIDATES = 16   # noise vectors of a seed tried for each end of an interpolation (see end_latent)
END_SURE = 0.8        # ... and how sure resnet_digits must be that G drew the digit asked


def digit_probs(images: torch.Tensor) -> torch.Tensor:
    """resnet_digits' class probabilities for (N, 1, 28, 28) images in [0, 1]: (N, 10)."""
    return predict_logits(load_model("resnet_digits"), images, MNIST_MEAN, MNIST_STD, 500).softmax(1)


def read_digits(images: torch.Tensor) -> torch.Tensor:
    """The digit resnet_digits reads in each (N, 1, 28, 28) image in [0, 1]: (N,) long."""
    return digit_probs(images).argmax(1)


@torch.no_grad()
def end_latent(seed: int, digit: int | None, truncation: float = 0.0,
               name: str = "gan_digits_g") -> tuple[torch.Tensor, int]:
    """(z, k): the noise for one end of an interpolation, row k of latent(seed, END_CANDIDATES, ...): the first
    row that G draws as a clear `digit` (resnet_digits at least END_SURE sure), else the row it is surest of.
    A conditional G does not always draw the digit it is asked for (about 1 in 3 of this one's untruncated 3s
    read as another digit), and a strip asked to start at a 3 started at a 5. Row 0 for an unconditional G."""
    g = load(name)
    zs = latent(seed, END_CANDIDATES, g.z_dim, truncation)                       # (16, z_dim)
    if not g.n_classes or digit is None:
        return zs[0], 0
    dev = next(g.parameters()).device
    drawn = g(zs.to(dev), torch.full((len(zs),), int(digit), device=dev)).cpu()  # (16, 1, 28, 28)
    sure = digit_probs(drawn)[:, int(digit)]                                      # (16,)
    hits = (sure >= END_SURE).nonzero().flatten()
    k = int(hits[0]) if len(hits) else int(sure.argmax())
    return zs[k], k


@torch.no_grad()
def interpolate(seed_a: int, seed_b: int, steps: int = 10, digit_a: int = 3, digit_b: int | None = None,
                truncation: float = 0.0, name: str = "gan_digits_g") -> tuple[torch.Tensor, tuple[int, int]]:
    """(steps, 1, 28, 28) images along the path from seed_a's noise to seed_b's (slerp), and, for a
    conditional G, from digit_a's label embedding to digit_b's (linear; digit_b=None keeps digit_a); with the
    rows (ka, kb) of each seed's noise used (end_latent: the first that G draws as that end's digit)."""
    g = load(name)
    dev = next(g.parameters()).device
    db = digit_a if digit_b is None else digit_b
    (za, ka), (zb, kb) = end_latent(seed_a, digit_a, truncation, name), end_latent(seed_b, db, truncation, name)
    t = torch.linspace(0, 1, int(steps))
    z = slerp(za, zb, t).to(dev)                                                  # (steps, z_dim)
    if not g.n_classes:
        return g(z).cpu(), (ka, kb)
    ea, eb = g.embed(torch.tensor([int(digit_a), int(db)], device=dev))          # (16,), (16,)
    tt = t.view(-1, 1).to(dev)
    e = (1 - tt) * ea + tt * eb                                                   # (steps, 16)
    h = g.fc(torch.cat([z, e], 1)).view(-1, 2 * g.width, 7, 7)                    # (steps, 96, 7, 7)
    return ((g.net(h) + 1) / 2).cpu(), (ka, kb)                                   # (steps, 1, 28, 28)


@torch.no_grad()
def realness(images: torch.Tensor, labels: torch.Tensor | None = None, name: str = "gan_digits_d") -> torch.Tensor:
    """The discriminator's probability that each image is a real mnist5k digit (of that label)."""
    d = load(name)
    dev = next(d.parameters()).device
    return torch.sigmoid(d(images.to(dev), None if labels is None else labels.to(dev))).cpu()


# --- pictures -----------------------------------------------------------------------------------

def grid(images: torch.Tensor, nrow: int | None = None, scale: int = 3, pad: int = 2) -> np.ndarray:
    """(N, 1, 28, 28) -> one uint8 picture of the images in rows, as torchvision.utils.make_grid lays them out
    (written out here: importing torchvision costs the server about a second at start and on first use)."""
    n = len(images)
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    images = images.detach().clamp(0, 1)[:, 0]                               # (N, H, W)
    if n == 1:                                                               # make_grid: one image, no frame
        return to_uint8(images[0], scale)
    cols, rows = min(nrow, n), math.ceil(n / min(nrow, n))
    h, w = images.shape[1] + pad, images.shape[2] + pad
    g = torch.full((rows * h + pad, cols * w + pad), 0.35, dtype=images.dtype)   # (H, W), grey between tiles
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        g[r * h + pad:(r + 1) * h, c * w + pad:(c + 1) * w] = img
    return to_uint8(g, scale)


def error_map(x: torch.Tensor, r: torch.Tensor, scale: int = 8) -> np.ndarray:
    """|reconstruction - input| as an RGB heat map (black = exact, yellow = wrong)."""
    err = (r - x).abs().squeeze().clamp(0, 1).numpy()
    rgb = (colormap("inferno")(err)[..., :3] * 255).astype(np.uint8)
    return rgb.repeat(scale, 0).repeat(scale, 1)


def gif_bytes(images: torch.Tensor, scale: int = 6, ms: int = 90, bounce: bool = True) -> bytes:
    """An animated GIF of the frames (N, 1, 28, 28), played forward then back."""
    frames = [Image.fromarray(to_uint8(f, scale), mode="L") for f in images]
    if bounce and len(frames) > 2:
        frames = frames + frames[-2:0:-1]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=ms, loop=0)
    return buf.getvalue()
