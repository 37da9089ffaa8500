"""Attribution with captum: Grad-CAM on an automatically chosen layer, and plain gradient saliency.

Which layer for Grad-CAM is the question pytorch-grad-cam's users ask most. Its answer (and ours): the
deepest layer that still has a spatial layout, because Grad-CAM weighs that layer's channels by their
pooled gradients - deeper means more class-specific, but past the last spatial layer there is no "where".
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.errors import InputError
from core.i18n import current_language, t


MIN_CAM_SIDE = 7   # the coarsest map worth showing: ResNet-18's layer4 at 224 px is 7x7

_auto_cache: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


def _candidates(model: nn.Module) -> tuple[list[str], str]:
    """Layers Grad-CAM may use, shallow to deep, and the family they come from."""
    if hasattr(model, "fc"):
        stages = [s for s in ("layer1", "layer2", "layer3", "layer4")
                  if isinstance(getattr(model, s, None), nn.Sequential)]
        if stages:  # torchvision ResNets and ResNetDigits: the last block of each stage
            return [f"{s}.{len(getattr(model, s)) - 1}" for s in stages], "resnet"
    feats = getattr(model, "features", None)
    if isinstance(feats, nn.Sequential):
        relus = [f"features.{i}" for i, m in enumerate(feats) if isinstance(m, nn.ReLU)]
        if relus:  # VGG / AlexNet: the ReLU after each convolution
            return relus, "features"
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)], "conv"


def private_view(model: nn.Module) -> nn.Module:
    """The same network for this call alone: its modules copied (hooks of its own), its parameters and buffers the
    shared model's own tensors (no memory, no copy). The zoo's models are shared by every visitor's thread; a hook
    added to a shared one (captum's, the layer probe's) fires in another visitor's Classify meanwhile: their forward
    pass changed Grad-CAM's saved activations, and adding or removing it while they iterate a module's hooks breaks
    theirs. Hooks go on a private view instead."""
    import copy

    memo = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return copy.deepcopy(model, memo)


@torch.no_grad()
def _spatial_sizes(model: nn.Module, names: list[str], shape: tuple[int, ...]) -> dict[str, tuple[int, int]]:
    """Output H, W of each named module for an input of this shape (one probe forward pass, hooks removed)."""
    sizes, handles = {}, []
    model = private_view(model)

    def record(name):
        def hook(_m, _i, o):  # returns None: a forward hook that returns a value replaces the output
            sizes.setdefault(name, tuple(o.shape[-2:]) if o.dim() == 4 else (0, 0))
        return hook

    try:
        for n in names:
            handles.append(model.get_submodule(n).register_forward_hook(record(n)))
        p = next(model.parameters(), None)
        model(torch.zeros(shape, device=p.device if p is not None else "cpu"))
    finally:
        for h in handles:
            h.remove()
    return sizes


def auto_target_layer(model: nn.Module, input_shape: tuple[int, ...], language: str | None = None) -> tuple[str, str]:
    """(module name, why) of the Grad-CAM target layer for this architecture and input size; why in `language`
    (None: the request's).

    Rule: the deepest candidate whose map is at least 7x7. At 224 px that is exactly pytorch-grad-cam's advice
    (ResNet `layer4[-1]`, 7x7; VGG/AlexNet the last conv's ReLU). On 28 px digits the last ResNet stage is 4x4
    - every cell sees the whole digit, so the map says little about *where* - so the rule steps back a stage.
    """
    key = tuple(int(s) for s in input_shape)
    hit = _auto_cache.get(model, {}).get(key)
    if hit is not None:
        return hit[0], _said(hit[1], language)
    names, family = _candidates(model)
    if not names:
        raise InputError("inspect.no_conv")
    sizes = _spatial_sizes(model, names, key)
    ok = [n for n in names if min(sizes.get(n, (0, 0))) >= MIN_CAM_SIDE]
    name = ok[-1] if ok else max(names, key=lambda n: min(sizes.get(n, (0, 0))))
    h, w = sizes.get(name, (0, 0))
    deepest = names[-1]
    what = {"resnet": "inspect.why.what_resnet", "features": "inspect.why.what_features",
            "conv": "inspect.why.what_conv"}[family]
    why = [("inspect.why.rule", {"name": name, "h": h, "w": w, "what": {"key": what}, "side": MIN_CAM_SIDE})]
    if name != deepest:
        dh, dw = sizes.get(deepest, (0, 0))
        why.append(("inspect.why.step_back", {"deepest": deepest, "dh": dh, "dw": dw, "name": name}))
    elif family == "resnet":
        why.append(("inspect.why.resnet_advice", {"stage": name.split(".")[0]}))
    else:
        why.append(("inspect.why.features_advice", {}))
    _auto_cache.setdefault(model, {})[key] = (name, why)
    return name, _said(why, language)


def _said(parts: list[tuple[str, dict]], language: str | None = None) -> str:
    """Sentences (catalogue key, values; a value {"key": k} is that entry) in a language (None: the request's),
    one after another (Chinese sentences are not separated by a space)."""
    language = language or current_language()
    texts = [t(key, language, **{k: t(v["key"], language) if isinstance(v, dict) else v for k, v in values.items()})
             for key, values in parts]
    return ("" if language == "zh" else " ").join(texts)


@dataclass
class Attribution:
    """Heat maps for one input and one target class (both in [0, 1], the input's H x W)."""

    gradcam: np.ndarray
    saliency: np.ndarray
    gradcam_raw: np.ndarray      # the layer-resolution map before upsampling (ReLU'd, not normalised)
    target: int
    predicted: int
    probs: np.ndarray            # softmax over classes
    layer: str
    why: str


def _norm(a: torch.Tensor) -> np.ndarray:
    a = a.detach().float().cpu()
    m = float(a.max())
    return (a / m).numpy() if m > 0 else torch.zeros_like(a).numpy()


def attribute(model: nn.Module, x: torch.Tensor, target: int | None = None, layer: str | None = None,
              language: str | None = None) -> Attribution:
    """Grad-CAM (captum LayerGradCam, ReLU'd as in the paper) and |d logit / d input| saliency for x (1, C, H, W).

    target None = the predicted class. The shared model is not changed: captum's hooks go on a private view of it,
    and torch.autograd.grad leaves .grad untouched. language: of `why` (None: the request's).
    """
    from captum.attr import LayerAttribution, LayerGradCam, Saliency  # lazily: captum + scipy take ~0.5 s to import

    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"attribute expects one input (1, C, H, W); got {tuple(x.shape)}")
    auto_name, why = auto_target_layer(model, tuple(x.shape), language)
    if layer and layer != auto_name:
        why = _said([("inspect.why.chosen", {"layer": layer, "auto": auto_name})], language)
    layer = layer or auto_name
    model = private_view(model)   # captum hooks this one: the shared model never carries them (private_view)
    module = model.get_submodule(layer)
    with torch.enable_grad():
        xi = x.detach().clone().requires_grad_(True)   # so gradients flow even if the weights are frozen
        with torch.no_grad():
            probs = model(x).softmax(dim=1)[0]
        predicted = int(probs.argmax())
        n_classes = probs.numel()
        if target is None:
            target = predicted
        if not 0 <= int(target) < n_classes:
            raise InputError("inspect.class_range", target=str(target), last=n_classes - 1)
        target = int(target)
        cam = LayerGradCam(model, module).attribute(xi, target=target, relu_attributions=True)   # (1, 1, h, w)
        if cam.dim() != 4:
            raise InputError("inspect.not_spatial", name=layer)
        up = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")  # (1, 1, H, W)
        sal = Saliency(model).attribute(xi, target=target, abs=True)     # (1, C, H, W)
    return Attribution(gradcam=_norm(F.relu(up[0, 0])), saliency=_norm(sal[0].amax(dim=0)),
                       gradcam_raw=cam[0, 0].detach().cpu().numpy(), target=target, predicted=predicted,
                       probs=probs.detach().cpu().numpy(), layer=layer, why=why)
