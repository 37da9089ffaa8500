"""Honest numbers for a model, measured here: parameters, size on disk (safetensors), CPU latency, accuracy.

Latency is the median of `repeats` timed forward passes after `warmup` untimed ones, under
torch.inference_mode, on the CPU (the device this machine has). Sizes are the byte length of the
safetensors file the model would be saved as, header included, so what is compared is what is shipped.

Denormals: an fp32 forward with denormal floats in its activations is many times slower than with them flushed
to zero (torch.set_flush_denormal(True); docs/numbers.md). A compressed model that merely avoids denormals would
look "faster" for the wrong reason, so every latency here is measured with flush-to-zero on for all models alike
(`ftz=True`), and restored afterwards.
"""
from __future__ import annotations

import statistics
import time
from contextlib import contextmanager

import torch
import torch.nn as nn
from safetensors.torch import save

from training.compression.compressed_io import flatten_state
from zoo import inference
from zoo.catalog import MNIST_MEAN, MNIST_STD


def count_params(model: nn.Module) -> int:
    """Parameters of a float model; for a quantized model (no nn.Parameters) the weights it stores."""
    n = sum(p.numel() for p in model.parameters())
    if n:
        return n
    tensors, _ = flatten_state(model.state_dict())   # quantized modules keep their weights in packed params
    return sum(v.numel() for k, v in tensors.items() if k.endswith((".weight", ".bias", "weight", "bias"))
               and v.dim() >= 1)


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> int:
    """Size in bytes of these tensors written as one safetensors file (no disk touched)."""
    return len(save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata))


def model_bytes(model: nn.Module) -> int:
    """Size on disk of the model as this project saves it (quantized tensors as int8 + scales)."""
    tensors, meta = flatten_state(model.state_dict())
    return safetensors_bytes(tensors, meta)


@contextmanager
def flush_denormal(on: bool = True):
    """Flush denormal floats to zero while timing (see the module docstring); restores the old setting."""
    if not on:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def prepare_input(x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Images in [0, 1] -> the normalised tensor the digits models expect."""
    return ((x - MNIST_MEAN) / MNIST_STD).to(dtype)


@torch.inference_mode()
def compare_latency(models: dict[str, tuple[nn.Module, torch.dtype]], batch: int = 1, repeats: int = 30,
                    warmup: int = 5, ftz: bool = True, threads: int | None = 1) -> dict[str, float]:
    """Median latency (ms) of several models measured *interleaved*: each round times every model once,
    so a burst of load from other processes on a shared CPU hits all of them alike. threads=1 by default:
    on a CPU shared with other work a single thread gives steadier numbers (restored afterwards)."""
    x = torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    inputs = {k: prepare_input(x, dt) for k, (_, dt) in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        _timed(models, inputs, times, repeats, warmup, ftz)
    finally:
        torch.set_num_threads(old_threads)
    return {k: statistics.median(v) for k, v in times.items()}


def _timed(models, inputs, times, repeats, warmup, ftz) -> None:
    with flush_denormal(ftz):
        for k, (m, _) in models.items():
            for _ in range(warmup):
                m(inputs[k])
        for _ in range(repeats):
            for k, (m, _) in models.items():
                t0 = time.perf_counter()
                m(inputs[k])
                times[k].append((time.perf_counter() - t0) * 1000)


def predict_logits(model: nn.Module, x: torch.Tensor, dtype: torch.dtype = torch.float32,
                   batch_size: int = 250) -> torch.Tensor:
    """Logits (N, 10) as float32 for images x (N, 1, 28, 28) in [0, 1]: zoo.inference's batched loop with the
    digits' normalisation (prepare_input's), inputs cast to `dtype` (a bf16 model gets bf16 images)."""
    return inference.predict_logits(model, x, MNIST_MEAN, MNIST_STD, batch_size, dtype=dtype).float()


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype = torch.float32) -> float:
    """Top-1 accuracy in percent (works for quantized models too: they have no parameters to ask a device of)."""
    return 100.0 * (predict_logits(model, x, dtype).argmax(1) == y).float().mean().item()
