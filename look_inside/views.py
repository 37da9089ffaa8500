"""Look inside a zoo model: each view (activations, attribution, weights, checkpoint comparison, summary) as a
pure function from plain inputs to pictures (numpy RGB), table rows and text. The tab and the benchmark call these.
"""
from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from look_inside import activations as A
from look_inside import plots
from look_inside import weights as W
from look_inside.attribution import attribute
from training.data.datasets import mnist5k
from core.cache import LRUCache
from core.errors import InputError
from core.fonts import text_language
from core.i18n import current_language, t
from zoo.catalog import categories_of
from zoo.classify import load_model, preprocess
from core.device import get_device
from zoo.inference import device_of
from zoo.pictures import to_rgb, upscale
from zoo.registry import ModelSpec, get_spec

TRAINED = "trained"
RANDOM = "random init"
_lock = threading.Lock()                      # one seeded random init / torchinfo summary at a time
_random_models: LRUCache[nn.Module] = LRUCache(2)
_architectures: LRUCache[nn.Module] = LRUCache(2)


def weights_label(weights: str, seed: int, language: str | None = None) -> str:
    """Which weights a view shows, in a language (None: the request's)."""
    return (t("inspect.weights.trained", language) if weights == TRAINED
            else t("inspect.weights.random", language, seed=int(seed)))


def _languages(language: str | None) -> tuple[str, str]:
    """(the text's language, the pictures' language): None is the request's; a picture is written in English where
    no CJK font can draw Chinese (core.fonts)."""
    language = language or current_language()
    return language, text_language(language)


def _random_model(name: str, seed: int) -> nn.Module:
    return _random_models.get_or_build(
        (name, seed), lambda: W.random_init(get_spec(name).builder, seed).to(get_device()))


def get_inspect_model(name: str, weights: str = TRAINED, seed: int = 0) -> nn.Module:
    """The trained zoo model (shared, cached; WeightsUnavailable offline for ImageNet) or a seeded random init."""
    if weights == TRAINED:
        return load_model(name)
    if weights != RANDOM:
        raise InputError("inspect.weights", trained=TRAINED, random=RANDOM)
    with _lock:
        return _random_model(name, int(seed))


def _architecture(name: str) -> nn.Module:
    """A private instance for torchinfo (which adds hooks), on the meta device: weights do not change shapes or
    counts, and on meta tensors a forward pass computes only shapes. A real forward of a big model at a big input
    takes seconds and hundreds of MB under this module's lock (a few of them stalled the tab for everyone); on meta
    it takes milliseconds and no memory for any input size, with the same summary text (docs/numbers.md)."""
    def build() -> nn.Module:
        with torch.device("meta"):
            return get_spec(name).builder().eval()
    return _architectures.get_or_build(name, build)


def input_tensor(spec: ModelSpec, src) -> torch.Tensor:
    """(1, C, H, W) exactly as the Classify tab feeds the model (zoo.classify.preprocess)."""
    return preprocess(spec, src).unsqueeze(0)


def input_picture(spec: ModelSpec, x: torch.Tensor, size: int = 224) -> np.ndarray:
    """What the model saw, de-normalised, as RGB uint8, digits upscaled (nearest) to ~size."""
    return upscale(to_rgb(x[0], spec.weights.mean, spec.weights.std, rounded=False), size)


# ---- activations --------------------------------------------------------------------------------------------

@dataclass
class ActivationView:
    grid: np.ndarray
    hist: np.ndarray | None
    rows: list[list]
    text: str
    layer: str
    timings_ms: dict


_dead_cache: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
DEAD_BATCH = 256


def reference_dead(model: nn.Module, spec: ModelSpec) -> dict[str, float] | None:
    """Digits models: the fraction of each ReLU layer's units that are 0 on all of the first 256 mnist5k test
    digits (computed once per model). None for ImageNet models (no reference images ship offline)."""
    if spec.family != "digits":
        return None
    hit = _dead_cache.get(model)
    if hit is None:
        xb = (mnist5k().test_x[:DEAD_BATCH] - spec.weights.mean[0]) / spec.weights.std[0]
        hit = A.dead_units(model, xb.to(device_of(model)))
        _dead_cache[model] = hit
    return hit


def layer_choices(model: nn.Module) -> list[str]:
    return [n.name for n in A.graph_nodes(model)]


def render_grid(act: torch.Tensor, top_k: int, shared_scale: bool, layer: str = "",
                language: str | None = None) -> tuple[np.ndarray, str]:
    """One node's output for one input (C, H, W) or (F,) -> the picture and a one-line description (in a
    language; None: the request's)."""
    language, drawn = _languages(language)
    if act.dim() == 3:
        idx, maps = A.top_channels(act, top_k)
        means = maps.reshape(len(maps), -1).mean(axis=1)
        labels = [f"ch {int(i)}  {m:.2f}" for i, m in zip(idx, means)]
        title = t("inspect.grid.title", drawn, layer=layer, n=len(idx), total=act.shape[0])
        return (plots.feature_grid(maps, labels, shared_scale=shared_scale, title=title),
                t("inspect.grid.what", language, n=len(idx), total=act.shape[0], h=act.shape[1], w=act.shape[2]))
    v = act.reshape(-1).float().cpu().numpy()
    return plots.vector_tile(v), t("inspect.grid.vector", language, n=v.size)


def activation_view(model: nn.Module, spec: ModelSpec, x: torch.Tensor, layer: str | None = None,
                    top_k: int = 16, shared_scale: bool = False, histograms: bool = True,
                    language: str | None = None) -> ActivationView:
    """Forward once, keeping `layer`'s output and every layer's statistics; draw the grid (and the histograms).
    language: of the text and the pictures (None: the request's)."""
    language = language or current_language()
    layer = layer or A.default_layer(model)   # (traces the graph once per model: not part of the timing)
    t0 = time.perf_counter()
    cap = A.capture(model, x.to(device_of(model)), keep=[layer])
    t1 = time.perf_counter()
    act = cap.acts[layer][0]
    grid, what = render_grid(act, top_k, shared_scale, layer, language)
    t2 = time.perf_counter()
    hist = activation_histograms(cap.stats, language) if histograms else None
    t3 = time.perf_counter()
    probs = cap.logits.float().softmax(1)[0]
    best = int(probs.argmax())
    cats = categories_of(spec)
    label = cats[best] if best < len(cats) else str(best)
    s = next((s for s in cap.stats if s.name == layer), None)
    stat = ("" if not s else t("inspect.act.relu_stats", language, mean=f"{s.mean:.3f}", std=f"{s.std:.3f}",
                                zero=f"{s.frac_zero:.0%}", dead=f"{s.dead_channels:.0%}") if s.is_relu
            else t("inspect.act.stats", language, mean=f"{s.mean:.3f}", std=f"{s.std:.3f}"))
    text = (t("inspect.act.output", language, layer=layer, shape=tuple(cap.acts[layer].shape), what=what)
            + ("" if language == "zh" or not stat else " ") + stat + "  \n"
            + t("inspect.act.timing", language, label=label, p=f"{float(probs[best]):.1%}",
                forward=f"{1000 * (t1 - t0):.0f}", grid=f"{1000 * (t2 - t1):.0f}", hist=f"{1000 * (t3 - t2):.0f}"))
    dead = reference_dead(model, spec)
    if dead and layer in dead:
        text += "  \n" + t("inspect.act.dead", language, n=DEAD_BATCH, dead=f"{dead[layer]:.0%}", layer=layer)
    return ActivationView(grid, hist, A.stats_table(cap.stats, dead), text, layer,
                          {"forward_capture": 1000 * (t1 - t0), "grid": 1000 * (t2 - t1),
                           "histograms": 1000 * (t3 - t2)})


def activation_histograms(stats: list[A.LayerStats], language: str | None = None) -> np.ndarray:
    """Ridgeline of every ReLU output (zeros left out: their share is in the label) plus the logits; its text in
    a language (None: the request's)."""
    drawn = _languages(language)[1]
    rows = [s for s in stats if s.is_relu]
    if stats and stats[-1] not in rows:
        rows.append(stats[-1])
    names, vals, extra = [], [], []
    for s in rows:
        v = s.sample[s.sample != 0] if s.is_relu else s.sample
        names.append(s.name)
        vals.append(v)
        extra.append(t("inspect.hist.zero", drawn, p=f"{s.frac_zero:.0%}") if s.is_relu
                     else t("inspect.hist.output", drawn))
    return plots.ridgeline(names, vals, t("inspect.hist.title", drawn), t("inspect.hist.xlabel", drawn), extra=extra)


# ---- attribution --------------------------------------------------------------------------------------------

@dataclass
class AttributionView:
    gradcam: np.ndarray
    saliency: np.ndarray
    text: str
    layer: str
    target: int


def attribution_view(model: nn.Module, spec: ModelSpec, x: torch.Tensor, target: int | None = None,
                     layer: str | None = None, language: str | None = None) -> AttributionView:
    """Grad-CAM and saliency over the input, and what they show (in a language; None: the request's)."""
    language = language or current_language()
    t0 = time.perf_counter()
    a = attribute(model, x.to(device_of(model)), target=target, layer=layer or None, language=language)
    base = input_picture(spec, x)
    f = base.shape[0] // a.gradcam.shape[0]
    up = lambda h: h.repeat(f, 0).repeat(f, 1) if f > 1 else h  # noqa: E731
    cats = categories_of(spec)
    which = (t("inspect.attr.predicted", language) if a.target == a.predicted
             else t("inspect.attr.chosen", language, predicted=cats[a.predicted]))
    text = (t("inspect.attr.target", language, target=cats[a.target], which=which, p=f"{a.probs[a.target]:.1%}",
              why=a.why) + "  \n"
            + t("inspect.attr.saliency", language, ms=f"{1000 * (time.perf_counter() - t0):.0f}"))
    return AttributionView(plots.overlay(base, up(a.gradcam)), plots.overlay(base, up(a.saliency), cmap="inferno"),
                           text, a.layer, a.target)


# ---- weights ------------------------------------------------------------------------------------------------

@dataclass
class WeightsView:
    hist: np.ndarray
    rows: list[list]
    filters: np.ndarray
    text: str


def weights_view(model: nn.Module, label: str, include_bn: bool = False, zero_tol: float = W.ZERO_TOL,
                 language: str | None = None, drawn_label: str | None = None) -> WeightsView:
    """Weight histograms, statistics and first-layer filters. label: which weights (weights_label); the text in
    a language (None: the request's); drawn_label: label in the pictures' language where that differs."""
    language, drawn = _languages(language)
    tensors = W.param_tensors(model, include_bn=True)
    stats = W.weight_table(tensors, zero_tol)
    shown = {k: v for k, v in tensors.items() if include_bn or (k.endswith(".weight") and v.dim() > 1)}
    hist = plots.ridgeline(list(shown), [W.sample(v) for v in shown.values()],
                           t("inspect.w.hist_title", drawn, label=drawn_label or label), t("inspect.w.xlabel", drawn),
                           extra=[f"({v.numel():,})" for v in shown.values()])
    conv_name, w = W.first_conv(model)
    filters = plots.filters_grid(w.float().cpu().numpy())
    total = sum(t.numel() for t in tensors.values())
    worst = max(stats, key=lambda s: s.frac_near_zero if s.frac_near_zero == s.frac_near_zero else -1)
    text = t("inspect.w.text_rgb" if w.shape[1] == 3 else "inspect.w.text_mean", language, n=len(stats),
             total=f"{total:,}", label=label, conv=conv_name, shape=tuple(w.shape), tol=f"{zero_tol:g}",
             worst=worst.name, frac=f"{worst.frac_near_zero:.1%}")
    if any(s.nonfinite for s in stats):
        text += ("" if language == "zh" else " ") + t("inspect.w.nonfinite", language,
                                                      n=sum(s.nonfinite for s in stats))
    return WeightsView(hist, W.table_rows(stats), filters, text)


# ---- comparison ---------------------------------------------------------------------------------------------

@dataclass
class CompareView:
    bars: np.ndarray
    hist: np.ndarray
    rows: list[list]
    text: str
    layer: str


def compare_view(a: nn.Module, b: nn.Module, labels: tuple[str, str], layer: str | None = None,
                 language: str | None = None, drawn_labels: tuple[str, str] | None = None) -> CompareView:
    """Checkpoint A against B, tensor by tensor. labels: A's and B's names; the text in a language (None: the
    request's); drawn_labels: the names in the pictures' language where that differs."""
    language, drawn = _languages(language)
    ta, tb = W.param_tensors(a), W.param_tensors(b)
    changes = W.compare(ta, tb)
    reshaped = [c.name for c in changes if ta[c.name].shape != tb[c.name].shape]
    finite = [c for c in changes if np.isfinite(c.rel_change)]
    weights = [c for c in finite if c.name.endswith(".weight") and ta[c.name].dim() > 1] or finite
    if layer and layer not in ta:
        raise InputError("inspect.no_tensor", name=str(layer))
    if layer in reshaped:
        raise InputError("inspect.reshaped", name=layer)
    layer = layer or max(weights, key=lambda c: c.rel_change).name
    bars = plots.hbars([c.name for c in changes],
                       [c.rel_change if np.isfinite(c.rel_change) else np.nan for c in changes],
                       t("inspect.cmp.bars_title", drawn), t("inspect.cmp.bars_xlabel", drawn), highlight=layer)
    hist = plots.overlaid_hist(W.sample(ta[layer]), W.sample(tb[layer]),
                               t("inspect.cmp.hist_title", drawn, layer=layer), drawn_labels or labels,
                               xlabel=t("inspect.w.xlabel", drawn))
    zero_a = [c.name for c in changes if not np.isfinite(c.rel_change) and c.name not in reshaped]
    big = max(weights, key=lambda c: c.rel_change)
    small = min(weights, key=lambda c: c.rel_change)
    heads = ", ".join(f"`{n}` {tuple(ta[n].shape)} -> {tuple(tb[n].shape)}" for n in reshaped)
    sep = "" if language == "zh" else " "
    text = t("inspect.cmp.text", language, a=labels[0], b=labels[1], big=big.name, big_change=f"{big.rel_change:.3g}",
             cosine=f"{big.cosine:.3f}", small=small.name, small_change=f"{small.rel_change:.3g}")
    if zero_a:
        text += sep + t("inspect.cmp.zeros", language, n=len(zero_a), example=zero_a[0])
    if reshaped:
        text += sep + t("inspect.cmp.replaced", language, heads=heads)
    return CompareView(bars, hist, W.compare_rows(changes), text, layer)


# ---- summary ------------------------------------------------------------------------------------------------

def summary_view(name: str, height: int | None = None, width: int | None = None,
                 depth: int = 4) -> tuple[list[list], str]:
    spec = get_spec(name)
    c, h, w = spec.weights.input_size
    h, w = int(height or h), int(width or w)
    if not (8 <= h <= 1024 and 8 <= w <= 1024):
        raise InputError("inspect.summary_size", height=h, width=w)
    with _lock:  # torchinfo adds and removes hooks on this private instance: one at a time (milliseconds, on meta)
        rows, text = W.model_summary(_architecture(name), (1, c, h, w), depth=int(depth))
    return rows, text
