"""Post-training int8 quantization of a digits model, on the CPU.

Which int8 path runs, and why. In torch 2.14 `torch.ao.quantization` is deprecated (its successor is
torchao) but it still runs, and it is the only path here that quantizes *convolutions* for the CPU:
torchao 0.18's `quantize_` imports with this torch but only swaps nn.Linear weights, and its PT2E flow
only gets faster once lowered by torch.compile/inductor. So:

* "int8 static (FX)": `torch.ao.quantization.quantize_fx.prepare_fx` -> calibrate on train images ->
  `convert_fx`, x86 (fbgemm/oneDNN) engine: conv+BN+ReLU are fused, weights int8 per channel,
  activations uint8 per tensor, so convs run as int8 kernels.
* "int8 dynamic (Linear)": `torch.ao.quantization.quantize_dynamic` on nn.Linear only (weights int8,
  activations quantized on the fly); convs stay fp32.
"""
from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager

import torch
import torch.nn as nn
from torch.ao.quantization import get_default_qconfig_mapping, quantize_dynamic
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

QUANT_ENGINE = "x86"


@contextmanager
def _quiet():
    """torch.ao.quantization warns that it is deprecated on every call; we say so once, in the UI."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


def quantize_static_fx(model: nn.Module, calib_x: torch.Tensor | None, batch_size: int = 128) -> nn.Module:
    """Post-training static int8 (FX graph mode). calib_x: normalised images; None = uncalibrated skeleton."""
    torch.backends.quantized.engine = QUANT_ENGINE
    model = copy.deepcopy(model).cpu().eval()
    example = (torch.zeros(1, 1, 28, 28),)
    with _quiet():
        prepared = prepare_fx(model, get_default_qconfig_mapping(QUANT_ENGINE), example)
        with torch.inference_mode():
            if calib_x is None:
                prepared(example[0])
            else:
                for i in range(0, len(calib_x), batch_size):
                    prepared(calib_x[i:i + batch_size])   # observers record activation ranges
        return convert_fx(prepared)


def quantize_dynamic_linear(model: nn.Module) -> nn.Module:
    """Dynamic int8 for nn.Linear layers only."""
    torch.backends.quantized.engine = QUANT_ENGINE
    with _quiet():
        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear}, dtype=torch.qint8)
