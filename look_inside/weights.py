"""Weights as data: per-tensor statistics, first-layer filters, two checkpoints compared layer by layer,
checkpoint files checked strictly, and a torchinfo model summary for a chosen input size.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
from torchinfo import summary

from core.errors import InputError
from core.seeding import global_seed
from zoo.hub import WeightsError, load_safetensors, load_state_strict

ZERO_TOL = 1e-3            # |w| below this counts as "near zero" (absolute: pruned weights are exactly 0)
MAX_CHECKPOINT_BYTES = 600 * 1024 * 1024   # VGG-16 in float32 is 528 MB; anything larger is not one of ours
HIST_SAMPLE = 20_000       # values per tensor kept for histograms (a strided subsample)


@dataclass
class TensorStats:
    """Statistics of one parameter tensor (std is numpy's default: population, ddof=0)."""

    name: str
    shape: tuple[int, ...]
    numel: int
    mean: float
    std: float
    min: float
    max: float
    l2: float
    frac_near_zero: float
    nonfinite: int             # NaN/inf count; the other numbers are over the finite values


def tensor_stats(name: str, t: torch.Tensor, zero_tol: float = ZERO_TOL) -> TensorStats:
    """Float64-accurate statistics without a float64 copy: sums and norms accumulate in float64 (much faster than
    var_mean on a float64 copy: docs/numbers.md, "Why the code is as it is")."""
    v = t.detach().reshape(-1)
    if not v.is_floating_point() or v.dtype in (torch.float16, torch.bfloat16):
        v = v.float()
    total = v.sum(dtype=torch.float64)
    bad = 0
    if not torch.isfinite(total):          # rare: find and drop NaN/inf (or an overflowing sum) the slow way
        finite = torch.isfinite(v)
        bad = int((~finite).sum())
        v = v[finite]
        total = v.sum(dtype=torch.float64)
    n = v.numel()
    if n == 0:
        nan = float("nan")
        return TensorStats(name, tuple(t.shape), t.numel(), nan, nan, nan, nan, nan, nan, bad)
    mean = float(total) / n
    std = float(torch.linalg.vector_norm(v - mean, dtype=torch.float64)) / n ** 0.5   # two-pass: stable
    lo, hi = torch.aminmax(v)
    near = int((v.abs() < zero_tol).sum())
    return TensorStats(name, tuple(t.shape), t.numel(), mean, std, float(lo), float(hi),
                       float(torch.linalg.vector_norm(v, dtype=torch.float64)), near / n, bad)


def param_tensors(model: nn.Module, include_bn: bool = True) -> dict[str, torch.Tensor]:
    """Learned parameters by name, in network order (BatchNorm's weight/bias optional: they are scales, not filters)."""
    out = {}
    for mod_name, mod in model.named_modules():
        is_bn = isinstance(mod, nn.modules.batchnorm._BatchNorm)
        for p_name, p in mod.named_parameters(recurse=False):
            if is_bn and not include_bn:
                continue
            out[f"{mod_name}.{p_name}" if mod_name else p_name] = p.detach()
    return out


def weight_table(tensors: dict[str, torch.Tensor], zero_tol: float = ZERO_TOL) -> list[TensorStats]:
    return [tensor_stats(n, t, zero_tol) for n, t in tensors.items()]


TABLE_HEADERS = ["tensor", "shape", "numel", "mean", "std", "min", "max", "L2 norm", "fraction near zero",
                 "non-finite"]


def table_rows(stats: list[TensorStats]) -> list[list]:
    r = lambda v: None if v != v else float(f"{v:.5g}")  # noqa: E731 - NaN -> empty cell
    return [[s.name, "x".join(map(str, s.shape)), s.numel, r(s.mean), r(s.std), r(s.min), r(s.max), r(s.l2),
             r(s.frac_near_zero), s.nonfinite] for s in stats]


def sample(t: torch.Tensor, n: int = HIST_SAMPLE) -> np.ndarray:
    """A strided subsample of a tensor's values (deterministic; enough for a histogram)."""
    v = t.detach().reshape(-1).float()
    step = max(1, v.numel() // n)
    return v[::step][:n].cpu().numpy()


def first_conv(model: nn.Module) -> tuple[str, torch.Tensor]:
    """The first Conv2d's weight (O, I, k, k): the only filters that look at pixels, so the only ones worth viewing."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m.weight.detach()
    raise ValueError("this model has no Conv2d layer")


# ---- checkpoints -------------------------------------------------------------------------------------------

def random_init(builder, seed: int = 0) -> nn.Module:
    """The architecture with PyTorch's default initialisation, reproducibly (torch.manual_seed before building)."""
    with global_seed(seed):   # seeded for this call alone: anyone else's random stream is left as it was
        return builder().eval()


def load_checkpoint(spec, path: str) -> nn.Module:
    """A user's .safetensors file loaded into a fresh model of this architecture, strictly.

    Refused with a WeightsError (message for the user): not a .safetensors name, too large, not safetensors
    (a pickle, garbage, truncated), wrong keys or shapes for this architecture, non-float parameters.
    Never unpickles anything.
    """
    if not path:
        raise WeightsError("inspect.no_checkpoint")
    base = os.path.basename(str(path))
    if not base.lower().endswith(".safetensors"):
        raise WeightsError("weights.not_safetensors_name", name=base)
    size = os.path.getsize(path)
    if size > MAX_CHECKPOINT_BYTES:
        raise WeightsError("weights.too_large", name=base, size_mb=size / 2**20, limit_mb=MAX_CHECKPOINT_BYTES / 2**20)
    state = load_safetensors(path)
    model = spec.builder()
    own = dict(model.named_parameters())
    if spec.weights.key_map is not None and not set(own) <= set(state):
        state = spec.weights.key_map(state)
    for k in own:
        if k in state and not state[k].is_floating_point():
            raise WeightsError("weights.not_float", name=base, tensor=k, dtype=str(state[k].dtype))
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        load_state_strict(model, state)
    except WeightsError:
        if not _resize_head(model, state):
            raise
        load_state_strict(model, state)   # strict again: only the classifier's output size may differ
    return model.eval()


def _resize_head(model: nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """Fine-tuning replaces the last Linear with one sized for the new classes
    (training/finetuning/transfer.replace_head). If that is the file's only difference, give the model a head of the
    file's size; return its name."""
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        return None
    name = linears[-1]
    old = model.get_submodule(name)
    w = state.get(f"{name}.weight")
    own = model.state_dict()
    others_fit = set(own) == set(state) and all(state[k].shape == v.shape for k, v in own.items()
                                                 if not k.startswith(f"{name}."))
    if w is None or w.dim() != 2 or w.shape[1] != old.in_features or not others_fit or not 0 < w.shape[0] <= 100_000:
        return None
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child,
            nn.Linear(old.in_features, int(w.shape[0]), bias=old.bias is not None))
    return name


@dataclass
class Change:
    """How one tensor moved between checkpoint A and B."""

    name: str
    rel_change: float      # ||B - A|| / ||A||
    cosine: float          # cos(A, B) as flat vectors
    norm_a: float
    norm_b: float


def compare(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[Change]:
    """Layer-by-layer change between two state dicts of the same architecture (same keys and shapes)."""
    if set(a) != set(b):
        raise InputError("inspect.compare_tensors")
    out = []
    for k, ta in a.items():
        tb = b[k]
        if ta.shape != tb.shape:   # a replaced classifier head: no element-wise change to measure
            out.append(Change(k, float("nan"), float("nan"), float(ta.double().norm()), float(tb.double().norm())))
            continue
        va, vb = ta.reshape(-1).double(), tb.reshape(-1).double()
        na, nb = float(va.norm()), float(vb.norm())
        diff = float((vb - va).norm())
        cos = float(va @ vb / (na * nb)) if na > 0 and nb > 0 else float("nan")
        out.append(Change(k, diff / na if na > 0 else float("inf") if diff > 0 else 0.0, cos, na, nb))
    return out


COMPARE_HEADERS = ["tensor", "relative change ||B-A||/||A||", "cosine(A, B)", "||A||", "||B||"]


def compare_rows(changes: list[Change]) -> list[list]:
    r = lambda v: None if v != v else float(f"{v:.5g}")  # noqa: E731
    return [[c.name, r(c.rel_change), r(c.cosine), r(c.norm_a), r(c.norm_b)] for c in changes]


# ---- model summary -----------------------------------------------------------------------------------------

def model_summary(model: nn.Module, input_size: tuple[int, ...], depth: int = 4) -> tuple[list[list], str]:
    """torchinfo for a (1, C, H, W) input: per-layer rows (name, type, output shape, params, output memory)
    and torchinfo's own totals text. Run on a model nobody else is using (torchinfo adds hooks). The input goes
    where the model is: a model on the meta device (look_inside.views) is summarised without computing anything."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        st = summary(model, input_size=input_size, depth=depth, verbose=0, device=str(device),
                     col_names=("output_size", "num_params", "mult_adds"), mode="eval")
    except Exception as exc:  # torchinfo wraps the model's own error (e.g. a too-small input) in a RuntimeError
        cause = exc.__cause__ or exc
        first = (str(cause).splitlines() or [""])[0][:300]
        raise InputError("inspect.input_size", size=" x ".join(map(str, input_size)), detail=first) from None
    qual = {id(m): n for n, m in model.named_modules()}   # full names: a table cannot show torchinfo's tree
    rows = []
    for li in st.summary_list:
        if li.depth == 0:
            continue
        shape = li.output_size if isinstance(li.output_size, (list, tuple)) else []
        numel = int(np.prod(shape)) if shape else 0
        rows.append([qual.get(id(li.module), li.var_name or ""), li.class_name, "x".join(map(str, shape)),
                     li.num_params, int(li.macs),
                     round(numel * 4 / 2**20, 3)])
    return rows, str(st)


SUMMARY_HEADERS = ["layer", "type", "output shape", "params", "mult-adds", "output memory (MB, float32)"]
