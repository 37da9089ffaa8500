"""Safetensors files for compressed digits models (int8, pruned, students), and loading them back.

Safetensors format of a compressed model ("playground-compressed/1"): the state dict with
* float / int tensors stored as they are;
* a quantized tensor `k` stored as `k` = its int8/uint8 integer values (`int_repr()`), `k.__scale`
  (float32: a scalar, or one per channel) and `k.__zero_point` (int64), with metadata `q:k` =
  "per_tensor" or "per_channel:<axis>" and `qdtype:k` = "torch.qint8" / "torch.quint8";
* a tuple (packed Linear params) stored item by item as `k.__0`, `k.__1` with metadata `tuple:k` = n;
  a torch.dtype value as metadata `dtype:k`; None as metadata `none:k`;
* metadata `playground` = JSON {format, base, technique, path, shapes}: `shapes` are the float layers'
  weight shapes, so a channel-pruned model is rebuilt at its smaller size before the weights go in.
`load_compressed(path)` rebuilds the model (base architecture -> shapes -> the same quantization
transform, uncalibrated) and loads the file strictly; tests check it agrees with the in-memory model.
"""
from __future__ import annotations

import json
import math
import os

import torch
import torch.nn as nn
from safetensors import safe_open

from training.compression.quantize import quantize_dynamic_linear, quantize_static_fx
from zoo.digits import StudentCNN
from zoo.hub import WeightsError, load_safetensors, save_safetensors_atomic
from zoo.registry import get_spec, list_models

FORMAT = "playground-compressed/1"
# How each technique was done (the API it used): shown in the lab's table, stored in each file's header.
PATHS = {
    "fp32": "nn.Module as shipped (fp32)",
    "int8-static-fx": "torch.ao.quantization.quantize_fx prepare_fx/convert_fx, x86 engine, calibrated "
                      "(deprecated API, still the one that runs int8 convs on CPU in torch 2.14)",
    "int8-dynamic-linear": "torch.ao.quantization.quantize_dynamic({nn.Linear}, dtype=torch.qint8)",
    "bf16": "model.to(torch.bfloat16)",
    "magnitude-pruned": "torch.nn.utils.prune.global_unstructured(L1Unstructured) + prune.remove",
    "channel-pruned": "L1-norm filter pruning: smaller Conv2d/BatchNorm2d/Linear rebuilt",
}


# ------------------------------------------------------------------------------------ shapes <-> model
def layer_shapes(model: nn.Module) -> dict[str, list[int]]:
    """Weight shapes of the conv/BN/linear layers (enough to rebuild a channel-pruned model)."""
    return {n: list(m.weight.shape) for n, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))}


def rebuild_from_shapes(model: nn.Module, shapes: dict[str, list[int]]) -> nn.Module:
    """Replace every conv/BN/linear whose recorded shape differs with a fresh layer of that shape.
    Shapes come from a file's header: they are checked (positive, and at most 16M weights in all) before
    anything is allocated."""
    total = 0
    for name, shape in shapes.items():
        if not (isinstance(shape, list) and 1 <= len(shape) <= 4
                and all(isinstance(d, int) and 0 < d <= 65536 for d in shape)):
            raise ValueError(f"bad layer shape for {name!r}: {shape!r}")
        total += math.prod(shape)
    if total > 16_000_000:
        raise ValueError(f"the recorded layer shapes add up to {total:,} weights; digits models have far fewer")
    for name, shape in shapes.items():
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, attr) if not attr.isdigit() else parent[int(attr)]
        if list(old.weight.shape) == list(shape):
            continue
        if isinstance(old, nn.Conv2d):
            new = nn.Conv2d(shape[1], shape[0], old.kernel_size, old.stride, old.padding, old.dilation,
                            bias=old.bias is not None)
        elif isinstance(old, nn.Linear):
            new = nn.Linear(shape[1], shape[0], bias=old.bias is not None)
        elif isinstance(old, nn.BatchNorm2d):
            new = nn.BatchNorm2d(shape[0], eps=old.eps, momentum=old.momentum)
        else:  # pragma: no cover - layer_shapes only records these three
            raise ValueError(f"cannot rebuild {name}")
        if attr.isdigit():
            parent[int(attr)] = new
        else:
            setattr(parent, attr, new)
    return model


# -------------------------------------------------------------------------------- safetensors format
def flatten_state(state: dict) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A (possibly quantized) state dict -> plain tensors + string metadata (see the module docstring)."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, str] = {}

    def put(k, v):
        if isinstance(v, torch.Tensor):
            if v.is_quantized:
                tensors[k] = v.int_repr().contiguous()
                meta[f"qdtype:{k}"] = str(v.dtype)
                if v.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                    tensors[k + ".__scale"] = v.q_per_channel_scales().float()
                    tensors[k + ".__zero_point"] = v.q_per_channel_zero_points().long()
                    meta[f"q:{k}"] = f"per_channel:{v.q_per_channel_axis()}"
                else:
                    tensors[k + ".__scale"] = torch.tensor(v.q_scale(), dtype=torch.float32)
                    tensors[k + ".__zero_point"] = torch.tensor(v.q_zero_point(), dtype=torch.int64)
                    meta[f"q:{k}"] = "per_tensor"
            else:
                tensors[k] = v.detach().contiguous()
        elif isinstance(v, tuple):
            meta[f"tuple:{k}"] = str(len(v))
            for i, item in enumerate(v):
                put(f"{k}.__{i}", item)
        elif isinstance(v, torch.dtype):
            meta[f"dtype:{k}"] = str(v)
        elif v is None:
            meta[f"none:{k}"] = "1"
        else:
            raise TypeError(f"cannot store {k} of type {type(v).__name__} in safetensors")

    for key, value in state.items():
        put(key, value)
    return tensors, meta


_DTYPES = {"torch.qint8": torch.qint8, "torch.quint8": torch.quint8, "torch.float16": torch.float16,
           "torch.float32": torch.float32, "torch.bfloat16": torch.bfloat16, "torch.int8": torch.int8}


def unflatten_state(tensors: dict[str, torch.Tensor], meta: dict[str, str]) -> dict:
    """The inverse of flatten_state."""
    def get(k):
        if f"tuple:{k}" in meta:
            return tuple(get(f"{k}.__{i}") for i in range(int(meta[f"tuple:{k}"])))
        if f"none:{k}" in meta:
            return None
        if f"dtype:{k}" in meta:
            return _DTYPES[meta[f"dtype:{k}"]]
        v = tensors[k]
        scheme = meta.get(f"q:{k}")
        if scheme is None:
            return v
        qdtype = _DTYPES[meta[f"qdtype:{k}"]]
        scale, zp = tensors[k + ".__scale"], tensors[k + ".__zero_point"]
        if scheme == "per_tensor":
            return torch._make_per_tensor_quantized_tensor(v, float(scale), int(zp))
        axis = int(scheme.split(":")[1])
        q = torch._make_per_channel_quantized_tensor(v, scale.double(), zp, axis)
        assert q.dtype == qdtype, (q.dtype, qdtype)
        return q

    keys = set()
    for k in tensors:
        if ".__" in k:
            continue
        keys.add(k)
    for mk in meta:
        kind, _, k = mk.partition(":")
        if kind in ("tuple", "dtype", "none"):
            keys.add(k)
    # The items of a tuple are reached through their tuple key, not on their own.
    tuples = [t.partition(":")[2] for t in meta if t.startswith("tuple:")]
    keys = {k for k in keys if not any(k.startswith(t + ".__") for t in tuples)}
    return {k: get(k) for k in sorted(keys)}


def save_compressed(model: nn.Module, path: str, base: str, technique: str, shapes: dict | None = None) -> str:
    """Write a compressed model as safetensors (format in the module docstring)."""
    tensors, meta = flatten_state(model.state_dict())
    info = {"format": FORMAT, "base": base, "technique": technique, "path": PATHS.get(technique, technique),
            "shapes": shapes or {}}
    meta["playground"] = json.dumps(info)
    return save_safetensors_atomic(tensors, path, metadata=meta)


def skeleton(base: str, technique: str, shapes: dict | None = None) -> nn.Module:
    """An empty model of the right structure for `technique` (weights come from the file)."""
    if base == "student":
        model = StudentCNN()
    elif base in list_models("digits"):
        model = get_spec(base).builder()
    else:
        raise ValueError(f"unknown base model {base!r}")
    if shapes:
        rebuild_from_shapes(model, shapes)
    model.eval()                      # after the rebuild: fresh layers start in train mode
    if technique.endswith("int8-static-fx"):
        return quantize_static_fx(model, None)
    if technique == "int8-dynamic-linear":
        return quantize_dynamic_linear(model)
    if technique == "bf16":
        return model.to(torch.bfloat16)
    if technique in ("fp32", "magnitude-pruned", "channel-pruned", "student"):
        return model
    raise ValueError(f"unknown technique {technique!r}")


def load_compressed(path: str) -> tuple[nn.Module, dict]:
    """Load a file written by save_compressed: (model, info). Refuses anything that is not that format."""
    tensors = load_safetensors(path)          # a WeightsError for anything that is not safetensors
    with safe_open(path, framework="pt") as f:
        meta = dict(f.metadata() or {})
    try:
        info = json.loads(meta.pop("playground"))
        assert info["format"] == FORMAT
    except Exception:  # noqa: BLE001 - any malformed header is the same answer
        raise WeightsError("weights.not_compressed", name=os.path.basename(path)) from None
    try:
        model = skeleton(info["base"], info["technique"], info.get("shapes"))
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise WeightsError("weights.compressed_header", name=os.path.basename(path), detail=str(e)[:200]) from None
    try:
        state = unflatten_state(tensors, meta)
        # Quantized modules read their format version from the state dict's _metadata (a plain dict loses
        # it, and version None means the old layout); the skeleton has the same modules, so use its versions.
        state = type(model.state_dict())(state)
        state._metadata = model.state_dict()._metadata  # type: ignore[attr-defined]
        model.load_state_dict(state, strict=True)
    except (KeyError, ValueError, TypeError, RuntimeError, AssertionError) as e:
        raise WeightsError("weights.compressed_mismatch", name=os.path.basename(path), detail=str(e)[:200]) from None
    return model.eval(), info
