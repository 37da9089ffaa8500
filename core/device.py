"""The one place that chooses the compute device (cuda when present, else cpu), ZeroGPU's rule included.

On a ZeroGPU Space a GPU is attached only while a function decorated with `spaces.GPU` runs, and CUDA must not be
initialised anywhere else ("CUDA must not be initialized in the main process"). So there get_device() answers
cuda only inside gpu_scope() (which ui/gpu.py enters inside its spaces.GPU wrapper) and cpu everywhere else:
interactive models, which take milliseconds on a CPU, never wait for a GPU to be attached. Nothing here
initialises CUDA: torch.cuda.is_available() asks the driver how many devices there are, it creates no context.
"""
from __future__ import annotations

import contextlib
import contextvars
import os

import torch

from core.settings import settings

_IN_GPU_SCOPE = contextvars.ContextVar("playground_gpu_scope", default=False)


def on_zero_gpu() -> bool:
    """True on a ZeroGPU Space (the platform sets SPACES_ZERO_GPU)."""
    return os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "true", "yes")


@contextlib.contextmanager
def gpu_scope():
    """Inside this block (a spaces.GPU call on ZeroGPU) the GPU may be used."""
    token = _IN_GPU_SCOPE.set(True)
    try:
        yield
    finally:
        _IN_GPU_SCOPE.reset(token)


def in_gpu_scope() -> bool:
    return _IN_GPU_SCOPE.get()


def get_device() -> torch.device:
    """PLAYGROUND_DEVICE if set; on ZeroGPU cuda only inside gpu_scope(), else cpu; elsewhere cuda if available."""
    forced = settings().device.strip().lower()
    if forced:
        return torch.device(forced)
    if on_zero_gpu() and not in_gpu_scope():
        return torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def use_serving_threads() -> int:
    """Called once by the server process before it serves (app.main, bench_serving): one intra-op thread per
    forward pass (PLAYGROUND_SERVER_THREADS overrides). The server runs only interactive inference, several
    visitors at once (the interactive group's concurrency; jobs have their own worker process and thread budget),
    so requests share the cores side by side instead of each small forward pass starting threads that fight the
    other requests' for the same cores."""
    n = max(1, settings().server_threads)
    torch.set_num_threads(n)
    return n


def describe_device() -> str:
    """A short human description, e.g. 'cuda (NVIDIA H100)' or 'cpu (2 threads)'; on ZeroGPU, without touching
    CUDA (this runs while the UI is built)."""
    if on_zero_gpu() and not in_gpu_scope() and not settings().device:
        return "ZeroGPU (a GPU is attached for each training job; quick models run on the CPU)"
    dev = get_device()
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({torch.get_num_threads()} threads)"
