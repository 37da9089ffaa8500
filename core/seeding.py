"""Seeded draws from torch's process-wide random generator, one at a time.

Some of torch's own code draws only from the global generator (torchvision's v2 transforms; a model's default
initialisation), so a seeded result there means: seed the global generator, draw, give the caller's state back.
In the server several visitors do that at once, in threads, and the generator is one for the whole process:
one visitor's seed would be drawn by another's pipeline, and the "same seed, same result" promise would break.
Everything that seeds it goes through global_seed, which takes turns.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

_TURN = threading.Lock()


@contextlib.contextmanager
def global_seed(seed: int) -> Iterator[None]:
    """torch's global CPU generator seeded with `seed` inside the block, for this thread alone; the state it had
    before comes back after."""
    with _TURN, torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
