"""Activations: the model's own graph (torch.fx, as torchvision's feature extractor names it), every node's output
for one input, and per-layer statistics (mean, std, fraction of inactive ReLU units).

Why an fx.Interpreter rather than torchvision's create_feature_extractor: the zoo's networks use
`ReLU(inplace=True)` and torchvision's ResNet does `out += identity`, so a tensor returned for node N is
overwritten by the in-place op that follows it. We clone each node's output the moment it is computed,
which gives exactly what a forward hook on that layer sees (tests/test_introspect.py checks this).
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from core.errors import InputError

SAMPLE_SIZE = 4096          # values kept per layer for the histograms (a strided subsample)
# Nodes that only reshape or read attributes: their values repeat their input's, so they are not "layers".
_SKIP_FUNCS = {"flatten", "view", "reshape", "getattr", "size", "getitem", "contiguous", "squeeze", "unsqueeze"}
_RELU_KINDS = {"ReLU", "relu", "relu_", "ReLU6", "relu6"}


@dataclass(frozen=True)
class GraphNode:
    """One node of the traced graph: its torchvision-style name and what it runs."""

    name: str                  # e.g. "layer1.0.relu_1" (the second call of module layer1.0.relu)
    op: str                    # "placeholder" | "call_module" | "call_function" | "call_method"
    kind: str                  # module class name ("Conv2d") or function name ("add")
    module: str | None = None  # qualified module name for call_module nodes

    @property
    def is_relu(self) -> bool:
        return self.kind in _RELU_KINDS

    @property
    def is_layer(self) -> bool:
        """Worth showing: a module call or a computing function (add, relu, cat...), not a reshape or the input."""
        return self.op in ("call_module", "call_function", "call_method") and self.kind not in _SKIP_FUNCS


@dataclass
class _Traced:
    gm: torch.fx.GraphModule
    nodes: list[GraphNode]
    by_fx: dict  # fx.Node -> GraphNode


_traced: "weakref.WeakKeyDictionary[nn.Module, _Traced]" = weakref.WeakKeyDictionary()
_trace_lock = threading.Lock()


def _fn_name(target) -> str:
    name = getattr(target, "__name__", None) or str(target)
    return name.split(".")[-1]


def _one_thread_patcher():
    """torch.fx's _Patcher, with every patch it makes seen only by the thread that traces.

    While it traces, torch.fx replaces nn.Module.__call__ and __getattr__ (and a few functions) for the whole
    process. In the server other visitors' forward passes run in other threads meanwhile (Classify, the
    Autoencoder...): their module calls went into the tracer, which handed them a Proxy instead of a tensor and
    recorded their modules as its own nodes. Each patch made by this patcher calls the tracer's function in the
    tracing thread and what it replaced in any other."""
    import builtins

    from torch.fx import _symbolic_trace as st

    class OneThreadPatcher(st._Patcher):
        def __init__(self) -> None:
            super().__init__()
            self.owner = threading.get_ident()

        def _bound(self, new_fn, orig_fn):
            owner = self.owner

            def fn(*args, **kwargs):
                if threading.get_ident() == owner:
                    return new_fn(*args, **kwargs)
                return orig_fn(*args, **kwargs)
            return fn

        def patch(self, frame_dict, name, new_fn, deduplicate=True):
            orig = frame_dict[name] if name in frame_dict else getattr(builtins, name, None)
            if orig is None or getattr(orig, "__fx_already_patched", False):
                return super().patch(frame_dict, name, new_fn, deduplicate)
            return super().patch(frame_dict, name, self._bound(new_fn, orig), deduplicate)

        def patch_method(self, cls, name, new_fn, deduplicate=True):
            orig = getattr(cls, name)
            if getattr(orig, "__fx_already_patched", False):
                return super().patch_method(cls, name, new_fn, deduplicate)
            return super().patch_method(cls, name, self._bound(new_fn, orig), deduplicate)

    return OneThreadPatcher


def _bind_fx_patches_to_their_thread() -> None:
    """Make torch.fx trace with _one_thread_patcher's patcher, once (checked against torch's code: it must make its
    patcher from the module's _Patcher, with patch and patch_method, or tracing here stays unsafe and says so)."""
    import inspect

    from torch.fx import _symbolic_trace as st

    if getattr(st._Patcher, "_playground_one_thread", False):
        return
    source = inspect.getsource(st._new_patcher)
    if "CURRENT_PATCHER = _Patcher()" not in source or not all(
            list(inspect.signature(getattr(st._Patcher, m)).parameters)[:4] == p
            for m, p in (("patch", ["self", "frame_dict", "name", "new_fn"]),
                         ("patch_method", ["self", "cls", "name", "new_fn"]))):
        raise RuntimeError(f"look_inside.activations was written for torch 2.14's torch.fx patcher (installed: torch "
                           f"{torch.__version__}): tracing would not be safe beside other threads' forward passes")
    patcher = _one_thread_patcher()
    patcher._playground_one_thread = True
    st._Patcher = patcher


def trace(model: nn.Module) -> _Traced:
    """Trace the model once (eval graph) with torchvision's NodePathTracer; cached per model object.

    Childless modules that are not torch.nn's own (e.g. our LocalResponseNorm) are kept as leaves, so every
    module the user can see in print(model) is one node. Tracing patches nn.Module.__call__ for a moment; the
    patches are seen by the tracing thread only (_bind_fx_patches_to_their_thread), and traces take turns (a lock).
    """
    hit = _traced.get(model)
    if hit is not None:
        return hit
    from torchvision.models.feature_extraction import NodePathTracer  # on first use: torchvision costs ~1 s at start

    with _trace_lock:
        hit = _traced.get(model)
        if hit is not None:
            return hit
        _bind_fx_patches_to_their_thread()
        leaves = sorted({type(m) for m in model.modules() if not any(m.children())
                         and not type(m).__module__.startswith("torch.nn")}, key=lambda t: t.__name__)
        tracer = NodePathTracer(leaf_modules=leaves)
        graph = tracer.trace(model)  # the model is in eval mode (zoo models always are)
        gm = torch.fx.GraphModule(tracer.root, graph)
        # gm's fx nodes are the graph's own nodes, so tracer.node_to_qualname keys them directly.
        nodes, by_fx = [], {}
        for n in graph.nodes:
            if n not in tracer.node_to_qualname:
                continue  # the output node
            if n.op == "call_module":
                kind, module = type(model.get_submodule(n.target)).__name__, str(n.target)
            elif n.op in ("call_function", "call_method"):
                kind, module = _fn_name(n.target), None
            else:
                kind, module = n.op, None
            g = GraphNode(tracer.node_to_qualname[n], n.op, kind, module)
            nodes.append(g)
            by_fx[n] = g
        hit = _Traced(gm, nodes, by_fx)
        _traced[model] = hit
        return hit


def graph_nodes(model: nn.Module, layers_only: bool = True) -> list[GraphNode]:
    """The model's graph nodes in execution order (the names torchvision's get_graph_node_names gives)."""
    nodes = trace(model).nodes
    return [n for n in nodes if n.is_layer] if layers_only else list(nodes)


@dataclass
class LayerStats:
    """Statistics of one node's output for one input (std is numpy's: population, ddof=0)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    mean: float
    std: float
    min: float
    max: float
    frac_zero: float                 # fraction of outputs exactly 0 (for a ReLU: inactive units)
    dead_channels: float | None      # ReLU with (B, C, ...) output: fraction of channels that are 0 everywhere
    is_relu: bool
    sample: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.float32))


def _stats(node: GraphNode, t: torch.Tensor) -> LayerStats:
    f = t.detach()
    if f.dtype != torch.float32:
        f = f.float()
    flat = f.reshape(-1)
    n = flat.numel()
    if n == 0:
        nan = float("nan")
        return LayerStats(node.name, node.kind, tuple(t.shape), nan, nan, nan, nan, nan, None, node.is_relu)
    # Two-pass mean/variance with BLAS dot products: the same numbers as numpy (population std, ddof=0) at a
    # fraction of torch.var_mean's cost; likewise sign().abs().sum() counts non-zeros faster than count_nonzero
    # (docs/numbers.md, "Why the code is as it is"). It matters: ResNet-18 has 68 nodes.
    mean = flat.mean()
    d = flat - mean
    var = torch.dot(d, d) / n
    lo, hi = torch.aminmax(flat)
    n_zero = n - int(flat.sign().abs().sum())
    dead = None
    if node.is_relu and f.dim() >= 2:
        # A ReLU channel is 0 everywhere iff its max is 0 (outputs are >= 0).
        per_channel_max = f.amax(dim=[d for d in range(f.dim()) if d != 1])    # (C,), no copy
        dead = float((per_channel_max <= 0).float().mean())
    step = max(1, n // SAMPLE_SIZE)
    sample = flat[::step][:SAMPLE_SIZE].cpu().numpy().astype(np.float32, copy=True)
    return LayerStats(node.name, node.kind, tuple(t.shape), float(mean), float(var.sqrt()), float(lo), float(hi),
                      n_zero / n, dead, node.is_relu, sample)


class _Recorder(torch.fx.Interpreter):
    """Runs the traced graph node by node; clones the outputs we keep before any in-place op can touch them."""

    def __init__(self, traced: _Traced, keep: set[str] | None, with_stats: bool):
        super().__init__(traced.gm, garbage_collect_values=True)
        self.traced, self.keep, self.with_stats = traced, keep, with_stats
        self.acts: dict[str, torch.Tensor] = {}
        self.stats: list[LayerStats] = []

    def run_node(self, n):
        out = super().run_node(n)
        node = self.traced.by_fx.get(n)
        if node is not None and isinstance(out, torch.Tensor):
            if self.keep is None or node.name in self.keep:
                self.acts[node.name] = out.detach().clone()
            if self.with_stats and node.is_layer and out.is_floating_point():
                self.stats.append(_stats(node, out))
        return out


@dataclass
class Capture:
    """What one forward pass left behind: kept node outputs, per-layer stats, and the logits."""

    acts: dict[str, torch.Tensor]
    stats: list[LayerStats]
    logits: torch.Tensor


@torch.inference_mode()
def capture(model: nn.Module, x: torch.Tensor, keep: list[str] | None = None, stats: bool = True) -> Capture:
    """Run x (a batch) through the model; keep the outputs of nodes `keep` (None = every node) and, if asked,
    compute statistics for every layer node. The logits are the model's own output."""
    traced = trace(model)
    names = {n.name for n in traced.nodes}
    if keep is not None:
        unknown = [k for k in keep if k not in names]
        if unknown:
            raise InputError("inspect.no_layer", name=str(unknown[0]))
    rec = _Recorder(traced, None if keep is None else set(keep), stats)
    logits = rec.run(x)
    return Capture(rec.acts, rec.stats, logits.detach())


@torch.inference_mode()
def capture_with_hooks(model: nn.Module, x: torch.Tensor, modules: list[str]) -> dict[str, list[torch.Tensor]]:
    """The plain-PyTorch way: forward hooks on named modules, each call's output cloned (the reference in tests,
    and what the 'code' panel shows). A module called twice (a ResNet block's ReLU) records two outputs."""
    out: dict[str, list[torch.Tensor]] = {m: [] for m in modules}
    handles = []
    try:
        for name in modules:
            mod = model.get_submodule(name)
            handles.append(mod.register_forward_hook(
                lambda _m, _inp, o, name=name: out[name].append(o.detach().clone())))
        model(x)
    finally:
        for h in handles:
            h.remove()
    return out


def default_layer(model: nn.Module) -> str:
    """The first ReLU node with a spatial (B, C, H, W) output: early feature maps, edges and strokes."""
    nodes = graph_nodes(model)
    for n in nodes:
        if n.is_relu:
            return n.name
    return nodes[0].name


def top_channels(act: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
    """act: (C, H, W) -> (indices of the k channels with the largest mean activation, those maps as numpy)."""
    means = act.float().mean(dim=(1, 2))
    k = max(1, min(int(k), act.shape[0]))
    idx = torch.topk(means, k).indices
    return idx.cpu().numpy(), act[idx].float().cpu().numpy()


def stats_table(stats: list[LayerStats], dead: dict[str, float] | None = None) -> list[list]:
    """Rows for a table: layer, kind, shape, mean, std, min, max, zero fraction, dead-channel fraction, and
    (when `dead` is given) the fraction of units dead over a reference batch."""
    rows = []
    for s in stats:
        d = (dead or {}).get(s.name)
        rows.append([s.name, s.kind, "x".join(map(str, s.shape)), round(s.mean, 4), round(s.std, 4),
                     round(s.min, 4), round(s.max, 4),
                     round(s.frac_zero, 4) if s.is_relu else None,
                     round(s.dead_channels, 4) if s.dead_channels is not None else None,
                     round(d, 4) if d is not None else None])
    return rows


STATS_HEADERS = ["layer", "kind", "output shape", "mean", "std", "min", "max", "ReLU zero fraction",
                 "ReLU channels all 0", "ReLU units dead on 256 test digits"]


@torch.inference_mode()
def dead_units(model: nn.Module, xb: torch.Tensor) -> dict[str, float]:
    """For every ReLU node: the fraction of its units (channel x position) that output 0 for *every* input of
    the batch xb - dead for this data, not just inactive for one input."""
    relus = [n.name for n in graph_nodes(model) if n.is_relu]
    cap = capture(model, xb, keep=relus, stats=False)
    return {k: float((v.amax(dim=0) <= 0).float().mean()) for k, v in cap.acts.items()}


def _call_index(node_name: str) -> int:
    """'layer1.0.relu_1' -> 1 (the second call of that module); 'relu' -> 0."""
    last = node_name.rsplit(".", 1)[-1]
    head, _, tail = last.rpartition("_")
    return int(tail) if head and tail.isdigit() else 0
