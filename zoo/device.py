"""The one place that chooses the compute device (cuda when present, else cpu)."""
import os
from functools import lru_cache

import torch


@lru_cache(maxsize=1)
def get_device() -> torch.device:
    """cuda if available (and not disabled by PLAYGROUND_DEVICE=cpu), else cpu."""
    forced = os.environ.get("PLAYGROUND_DEVICE", "").strip().lower()
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_device() -> str:
    """A short human description, e.g. 'cuda (NVIDIA H100)' or 'cpu (2 threads)'."""
    dev = get_device()
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({torch.get_num_threads()} threads)"
