"""Generative-family networks for 28x28 digits: a convolutional autoencoder and a class-conditional DCGAN.

* ConvAutoencoder(latent): two strided 3x3 convs squeeze the digit to a `latent`-number code, a linear
  layer and two transposed convs paint it back (Hinton & Salakhutdinov 2006 taught the idea; the
  conv/deconv layout follows the PyTorch examples). latent=16 is the default, latent=2 draws a map,
  and the "denoising" weights were trained on noisy inputs with clean targets (Vincent et al. 2008).
* Generator / Discriminator: DCGAN (Radford et al. 2015) at 28x28: G maps noise z (plus the wanted
  digit, as a learned embedding) through a linear layer to 7x7 feature maps and two stride-2
  transposed convs with BatchNorm+ReLU to a tanh image; D is two stride-2 convs with LeakyReLU and a
  linear score (plus a minibatch-std feature against mode collapse), made class-conditional by
  projection (Miyato & Koyama 2018: score += <embed(y), h>).
  G outputs images in [0, 1] (tanh mapped), so they look like mnist5k's tensors.

Registered in the zoo as family "generative"; the weights ship in zoo/weights like the digits family.
"""
from __future__ import annotations

import json

import torch
import torch.nn as nn

from core.settings import settings
from zoo.hub import WEIGHTS_DIR, read_manifest
from zoo.registry import ModelSpec, Weights, register_model

Z_DIM = 64          # the generator's noise size
N_CLASSES = 10


class ConvAutoencoder(nn.Module):
    """Conv encoder -> `latent` numbers -> conv-transpose decoder; 28x28 in [0, 1] back to 28x28 in [0, 1]."""

    def __init__(self, latent: int = 16, width: int = 32):
        super().__init__()
        self.latent = latent
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(1, w, 3, stride=2, padding=1), nn.ReLU(inplace=True),          # (B, 32, 14, 14)
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(inplace=True),      # (B, 64, 7, 7)
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(inplace=True),            # (B, 64, 7, 7)
            nn.Flatten(),                                                            # (B, 3136)
            nn.Linear(2 * w * 7 * 7, latent),                                        # (B, latent)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, 2 * w * 7 * 7), nn.ReLU(inplace=True),                 # (B, 3136)
            nn.Unflatten(1, (2 * w, 7, 7)),                                          # (B, 64, 7, 7)
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(inplace=True),            # (B, 64, 7, 7)
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1), nn.ReLU(inplace=True),  # (B, 32, 14, 14)
            nn.ConvTranspose2d(w, 1, 4, stride=2, padding=1),                        # (B, 1, 28, 28) logits
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:   # x: (B, 1, 28, 28) in [0, 1]
        return self.encoder(x)                             # (B, latent)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:  # z: (B, latent)
        return self.decoder(z)                             # (B, 1, 28, 28)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))              # (B, 1, 28, 28) in [0, 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))                 # (B, 1, 28, 28)


class Generator(nn.Module):
    """DCGAN generator: (z, digit) -> 28x28 image in [0, 1]. n_classes=0 makes it unconditional."""

    def __init__(self, z_dim: int = Z_DIM, n_classes: int = N_CLASSES, width: int = 64, embed_dim: int = 16):
        super().__init__()
        self.z_dim, self.n_classes, self.width = z_dim, n_classes, width
        self.embed = nn.Embedding(n_classes, embed_dim) if n_classes else None
        cin = z_dim + (embed_dim if n_classes else 0)
        self.fc = nn.Sequential(nn.Linear(cin, 2 * width * 7 * 7, bias=False),
                                nn.BatchNorm1d(2 * width * 7 * 7), nn.ReLU(inplace=True))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),   # (B, 64, 14, 14)
            nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),                     # (B, 1, 28, 28)
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # z: (B, z_dim), y: (B,)
        if self.embed is not None:
            if y is None:
                raise ValueError("this generator is class-conditional: pass the digits y")
            z = torch.cat([z, self.embed(y)], dim=1)                 # (B, z_dim + 16)
        h = self.fc(z).view(-1, 2 * self.width, 7, 7)                # (B, 128, 7, 7)
        return (self.net(h) + 1) / 2                                 # (B, 1, 28, 28) in [0, 1]


class Discriminator(nn.Module):
    """DCGAN discriminator with minibatch-std and a projection head: (image in [0, 1], digit) -> realness logit.

    Minibatch standard deviation (Karras et al. 2018): one extra feature map holding how much the batch
    varies, so D can tell a batch of near-copies from real digits and G is pushed away from mode collapse.
    """

    def __init__(self, n_classes: int = N_CLASSES, width: int = 64, mbstd: bool = True):
        super().__init__()
        self.mbstd = mbstd
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),          # (B, 64, 14, 14)
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True),  # (B, 128, 7, 7)
        )
        dim = (2 * width + int(mbstd)) * 7 * 7
        self.head = nn.Linear(dim, 1)
        self.embed = nn.Embedding(n_classes, dim) if n_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:  # x: (B, 1, 28, 28)
        h = self.features(x * 2 - 1)                                 # (B, 128, 7, 7); D sees [-1, 1] like G's tanh
        if self.mbstd:
            s = h.std(dim=0, unbiased=False).mean()                  # how much the batch varies (0 for one image)
            h = torch.cat([h, s.expand(h.shape[0], 1, 7, 7)], 1)      # (B, 129, 7, 7)
        h = torch.flatten(h, 1)                                      # (B, 6321)
        out = self.head(h).squeeze(1)                                # (B,)
        if self.embed is not None and y is not None:
            out = out + (self.embed(y) * h).sum(1) / h.shape[1] ** 0.5  # projection: class-match term
        return out                                                   # (B,) logits: > 0 means "real"


# --- zoo entries --------------------------------------------------------------------------------

GENERATIVE_REPO = settings().hub_repo
EXTRA_FILE = WEIGHTS_DIR / "generative.json"   # training curves + metrics of these entries (small JSON)


def read_extra() -> dict:
    """Curves and measured numbers the trainers recorded for the generative entries."""
    return json.loads(EXTRA_FILE.read_text()) if EXTRA_FILE.exists() else {}


def _builder(cls, **kw):
    def build() -> nn.Module:
        return cls(**kw)
    build.__name__ = cls.__name__
    build.kwargs = kw
    return build


# name -> (title, builder, about, train command)
ENTRIES = {
    "ae_digits_16": ("Conv autoencoder, latent 16", _builder(ConvAutoencoder, latent=16),
                     "3 convs -> 16 numbers -> linear + conv-transpose decoder",
                     "python -m training.generative.train_autoencoder --latent 16"),
    "ae_digits_2": ("Conv autoencoder, latent 2 (map)", _builder(ConvAutoencoder, latent=2),
                    "the same autoencoder squeezed to 2 numbers, so the code is a point on a plane",
                    "python -m training.generative.train_autoencoder --latent 2"),
    "dae_digits_16": ("Denoising conv autoencoder, latent 16", _builder(ConvAutoencoder, latent=16),
                      "the latent-16 autoencoder trained on noisy inputs with clean targets",
                      "python -m training.generative.train_autoencoder --latent 16 --noise 0.5"),
    "gan_digits_g": ("DCGAN generator (class-conditional)", _builder(Generator, width=48),
                     "z (64) + digit embedding (16) -> linear -> 96x7x7 -> two conv-transposes -> 28x28",
                     "python -m training.generative.train_gan"),
    "gan_digits_d": ("DCGAN discriminator (projection)", _builder(Discriminator, width=32),
                     "two strided convs + minibatch-std + linear realness score + class projection",
                     "python -m training.generative.train_gan"),
}


def _register_all() -> None:
    manifest, extra = read_manifest(), read_extra()
    for name, (title, builder, about, cmd) in ENTRIES.items():
        m = {**extra.get(name, {}).get("metrics", {}), **manifest.get(name, {}).get("metrics", {})}
        n_params = sum(p.numel() for p in builder().parameters())
        register_model(ModelSpec(
            name=name, family="generative", builder=builder, title=title, about=about,
            weights=Weights(
                repo_id=GENERATIVE_REPO, filename=f"{name}.safetensors", local_file=f"{name}.safetensors",
                input_size=(1, 28, 28), mean=(0.0,), std=(1.0,), categories=(),  # images in [0, 1], no labels out
                num_params=n_params, accuracy=m, train_command=cmd,
                source="trained by this project on mnist5k (shipped in zoo/weights)"),
        ))


_register_all()
