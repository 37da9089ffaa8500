"""Example inputs shared by the tabs: ten mnist5k test digits (one per class) shipped as 28x28 PNGs, and
skimage's sample photos. Nothing is computed when the app starts: the PNGs are files in ui/example_images/,
written once by

    python -m ui.examples

Each example's name is a catalogue key (EXAMPLE_KEYS, PHOTOS). gr.Examples shows its names as given (a label()
there is shown as its raw marker), so a tab lays them out in English and sends them in the page's language with
an event (gr.Dataset(sample_labels=...)).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
from PIL import Image

from core.i18n import N_
from training.data.datasets import mnist5k

FOLDER = Path(__file__).resolve().parent / "example_images"
PHOTOS = {N_("examples.photo_chelsea"): "chelsea.png", N_("examples.photo_coffee"): "coffee.png",
          N_("examples.photo_astronaut"): "astronaut.png", N_("examples.photo_rocket"): "rocket.jpg"}
# The shipped digits' names (English: 'MNIST test #i (a d)'), by file name: write_digit_examples picks the same
# digits every time (the first of each class in mnist5k's test split).
EXAMPLE_KEYS = {
    "mnist_test_1_digit_0": N_("examples.mnist_test_1_digit_0"),
    "mnist_test_0_digit_1": N_("examples.mnist_test_0_digit_1"),
    "mnist_test_6_digit_2": N_("examples.mnist_test_6_digit_2"),
    "mnist_test_7_digit_3": N_("examples.mnist_test_7_digit_3"),
    "mnist_test_3_digit_4": N_("examples.mnist_test_3_digit_4"),
    "mnist_test_2_digit_5": N_("examples.mnist_test_2_digit_5"),
    "mnist_test_8_digit_6": N_("examples.mnist_test_8_digit_6"),
    "mnist_test_10_digit_7": N_("examples.mnist_test_10_digit_7"),
    "mnist_test_16_digit_8": N_("examples.mnist_test_16_digit_8"),
    "mnist_test_11_digit_9": N_("examples.mnist_test_11_digit_9"),
    "noise_28": N_("examples.noise"),
}


def digit_examples() -> list[tuple[str, str]]:
    """(name's catalogue key, path) of the shipped digits, in class order: 'MNIST test #i (a d)'."""
    files = sorted(FOLDER.glob("mnist_test_*_digit_*.png"), key=lambda p: int(p.stem.rsplit("_", 1)[1]))
    return [(EXAMPLE_KEYS[p.stem], str(p)) for p in files]


def noise_example() -> tuple[str, str]:
    """(name's key, path) of a 28x28 picture of uniform noise (seed 0): not a digit, to show what an autoencoder
    does with it."""
    return EXAMPLE_KEYS["noise_28"], str(FOLDER / "noise_28.png")


def photo_examples() -> list[tuple[str, str]]:
    """(name's key, path) of skimage's sample photos, read where scikit-image installed them (no import needed)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(list(spec.submodule_search_locations)[0]) / "data"
    return [(k, str(root / f)) for k, f in PHOTOS.items() if (root / f).exists()]


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
