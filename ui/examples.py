"""Example inputs shared by the tabs: ten mnist5k test digits (one per class) shipped as 28x28 PNGs, and
skimage's sample photos. Nothing is computed when the app starts: the PNGs are files in ui/example_images/,
written once by

    python -m ui.examples
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.datasets import mnist5k

FOLDER = Path(__file__).resolve().parent / "example_images"
PHOTOS = {"cat (chelsea)": "chelsea.png", "coffee cup": "coffee.png", "astronaut": "astronaut.png",
          "rocket": "rocket.jpg"}


def digit_examples() -> list[tuple[str, str]]:
    """(label, path) of the shipped digits, in class order: 'MNIST test #i (a d)'."""
    out = []
    for p in sorted(FOLDER.glob("mnist_test_*_digit_*.png"), key=lambda p: int(p.stem.rsplit("_", 1)[1])):
        idx, digit = p.stem.split("_")[2], p.stem.rsplit("_", 1)[1]
        out.append((f"MNIST test #{idx} (a {digit})", str(p)))
    return out


def noise_example() -> tuple[str, str]:
    """A 28x28 picture of uniform noise (seed 0): not a digit, to show what an autoencoder does with it."""
    return "random noise (not a digit)", str(FOLDER / "noise_28.png")


def photo_examples() -> list[tuple[str, str]]:
    """(label, path) of skimage's sample photos, read where scikit-image installed them (no import needed)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(list(spec.submodule_search_locations)[0]) / "data"
    return [(f"photo: {k}", str(root / f)) for k, f in PHOTOS.items() if (root / f).exists()]


def write_digit_examples() -> list[str]:
    """Save the first mnist5k test digit of each class as a 28x28 PNG (white ink on black, as MNIST)."""
    s = mnist5k()
    FOLDER.mkdir(exist_ok=True)
    paths = []
    for d in range(10):
        i = int((s.test_y == d).nonzero()[0])
        p = FOLDER / f"mnist_test_{i}_digit_{d}.png"
        Image.fromarray((s.test_x[i, 0].numpy() * 255).round().astype(np.uint8)).save(p)
        paths.append(os.fspath(p))
    noise = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    Image.fromarray(noise).save(noise_example()[1])
    return paths + [noise_example()[1]]


if __name__ == "__main__":
    print("\n".join(write_digit_examples()))
