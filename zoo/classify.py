"""Classification as pure functions: input -> preprocessed tensor -> top-k, plus the code that reproduces it."""
from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

import torch
import torch.nn as nn

from core.cache import LRUCache
from core.errors import term
from core.i18n import N_, t
from core.settings import settings
from zoo.catalog import categories_of
from core.device import get_device
from zoo.hub import WEIGHTS_DIR, WeightsError, WeightsUnavailable
from zoo.images import REASON_KEYS, ImageInputError, imagenet_preprocess, mnist_preprocess, photo_reasons, reason_text
from zoo.registry import ModelSpec, get_model, get_spec, list_models

# Most recently used models stay loaded; PLAYGROUND_MODEL_CACHE bounds how many (VGG-16 alone is 528 MB, so
# a visitor walking through every ImageNet model must not keep them all).
MODEL_CACHE = max(1, settings().model_cache)
_models: LRUCache[nn.Module] = LRUCache(MODEL_CACHE)   # two first requests for one model build it once


def _build(name: str) -> nn.Module:
    # Never under inference_mode: the cached model is shared with tabs that need autograd
    # (Grad-CAM, saliency), and parameters created there would be inference tensors.
    with torch.inference_mode(False):
        return get_model(name).to(get_device()).eval()


def load_model(name: str) -> nn.Module:
    """The zoo model with its weights, on the device, built once per process (lazily, on first use); at most
    MODEL_CACHE models are kept, least recently used first out (a download blocks only its own model)."""
    return _models.get_or_build(name, lambda: _build(name), maxsize=MODEL_CACHE)


# A photo given to a digits model goes here instead (when its weights can be had): digits models only know 0-9.
PHOTO_MODEL = "resnet18"


class PhotoNeedsImageNet(ImageInputError):
    """A photo was given to a digits model and no ImageNet model can be loaded now; the message says what to do."""

    key = "image.photo_needs_imagenet"


def weights_on_disk(name: str) -> bool:
    """True when a model's weights are here already (shipped in zoo/weights/ or in the Hugging Face cache):
    no download needed. Looks at files only; never touches the network."""
    from huggingface_hub import try_to_load_from_cache  # on first use, as in zoo.hub.download (~0.2 s)

    w = get_spec(name).weights
    if w.local_file and (WEIGHTS_DIR / w.local_file).exists():
        return True
    try:
        return isinstance(try_to_load_from_cache(w.repo_id, w.filename, revision=w.revision), str)
    except Exception:  # noqa: BLE001 - an odd repo id or cache: then it is not usable from disk either
        return False


def model_unavailable(name: str, inspecting: bool = False) -> WeightsUnavailable:
    """The error for a model whose weights cannot be had now, in plain words (instead of HF_HUB_OFFLINE and cache
    paths), ending with what the visitor can do instead: pick a digits model, or (inspecting: Look inside) look at
    the architecture with random weights."""
    spec = get_spec(name)
    key = "weights.model_unreachable_inspect" if inspecting else "weights.model_unreachable"
    return WeightsUnavailable(key, title=spec.title, size_mb=spec.weights.num_params * 4 / 2**20)


def route(name: str, src, drawn: bool = False, language: str | None = None) -> tuple[str, str]:
    """Which model should answer: (model name, a note for the visitor; "" when it is `name` itself).

    A digits model given a photo (zoo.images.photo_reasons) would answer a confident, meaningless digit, so
    the photo goes to PHOTO_MODEL when its weights can be had, and is refused in plain words when not.
    drawn: src was drawn on the sketchpad, so only a picture in colour counts as a photo (never a drawing made
    with the pad's black brush, whatever its size or place). language: the note's (None: the request's)."""
    if get_spec(name).family != "digits":
        return name, ""
    reasons = photo_reasons(src, drawn=drawn)
    if not reasons:
        return name, ""
    photo = get_spec(PHOTO_MODEL)
    try:
        load_model(PHOTO_MODEL)
    except (WeightsUnavailable, WeightsError):
        why = term(REASON_KEYS[reasons[0]]) if reasons[0] in REASON_KEYS else reasons[0]
        raise PhotoNeedsImageNet("image.photo_needs_imagenet", reason=why,
                                 model=photo.title.split(" (")[0]) from None
    return PHOTO_MODEL, t("classify.photo_note", language, reason=reason_text(reasons[0], language),
                          model=photo.title, name=name)


def preprocess(spec: ModelSpec, src) -> torch.Tensor:
    """The exact input tensor the model sees, without the batch dimension."""
    if spec.family == "digits":
        x = mnist_preprocess(src)                                 # (1, 28, 28) in [0, 1]
        return (x - spec.weights.mean[0]) / spec.weights.std[0]
    return imagenet_preprocess(src, mean=spec.weights.mean, std=spec.weights.std)  # (3, 224, 224)


@dataclass
class Prediction:
    """One model's answer for one input."""

    model: str
    probs: dict[str, float]       # top-k class -> probability
    label: str
    confidence: float
    latency_ms: float             # preprocessing + forward, measured here
    input_tensor: torch.Tensor    # what the model saw (normalised, no batch dim)


# A forward pass of a small digits model is a few hundred tiny ops, each taking and giving back Python's GIL:
# run by several requests at once they hand the GIL to each other at every op and spend the CPU on the handover
# (nearly twice the CPU per call, no faster in wall time: docs/numbers.md). One at a time in the process they cost
# what they cost alone. Large models (ImageNet at 224 px) spend their time inside
# kernels that release the GIL, so they run side by side.
_SMALL_FORWARD = threading.Lock()


def _forward_turn(spec: ModelSpec):
    return _SMALL_FORWARD if spec.family == "digits" else contextlib.nullcontext()


def predict(name: str, src, topk: int = 5, x: torch.Tensor | None = None) -> Prediction:
    """Classify src (path, bytes, PIL, array or sketch dict) with zoo model `name`."""
    spec = get_spec(name)
    model = load_model(name)
    t0 = time.perf_counter()
    if x is None:
        x = preprocess(spec, src)
    pre = time.perf_counter() - t0
    with _forward_turn(spec), torch.inference_mode():
        t1 = time.perf_counter()                                   # the wait for a turn is not the model's latency
        logits = model(x.unsqueeze(0).to(get_device()))           # (1, num_classes)
        probs = logits.softmax(dim=1)[0].float().cpu()
        fwd = time.perf_counter() - t1
    latency = (pre + fwd) * 1000
    cats = categories_of(spec)
    k = max(1, min(int(topk), len(cats)))
    top = probs.topk(k)
    out = {cats[i]: float(p) for p, i in zip(top.values.tolist(), top.indices.tolist())}
    best = int(top.indices[0])
    return Prediction(name, out, cats[best], float(top.values[0]), latency, x)


def compare_family(src, family: str, known: Prediction | None = None) -> list[dict]:
    """The same input through every model of a family: prediction, confidence, latency, or why it could not run.

    `known`: a prediction already made for src by one of the family's models (the one the visitor asked for);
    its row reuses it, and its input tensor serves the models that share its preprocessing, instead of running
    that model and the preprocessing again."""
    rows, cache = [], {}
    if known is not None:
        w = get_spec(known.model).weights
        cache[(w.input_size, w.mean, w.std)] = known.input_tensor
    for name in list_models(family):
        spec = get_spec(name)
        try:
            # Models of one family share preprocessing: compute it once.
            key = (spec.weights.input_size, spec.weights.mean, spec.weights.std)
            if key not in cache:
                cache[key] = preprocess(spec, src)
            p = known if known is not None and known.model == name else predict(name, src, topk=1, x=cache[key])
            rows.append({"model": name, "prediction": p.label, "confidence": round(p.confidence, 4),
                         "latency_ms": round(p.latency_ms, 2), "status": "ok"})
        except WeightsUnavailable:
            rows.append({"model": name, "prediction": "", "confidence": None, "latency_ms": None,
                         "status": "needs download (the Hub cannot be reached now)",
                         "status_key": N_("classify.status.needs_download")})
        except WeightsError as exc:
            rows.append({"model": name, "prediction": "", "confidence": None, "latency_ms": None,
                         "status": f"unusable weights: {str(exc)[:160]}",
                         "status_key": N_("classify.status.unusable"), "problem": str(exc)[:160]})
    return rows


def status_text(row: dict, language: str | None = None) -> str:
    """A compare_family row's status in a language (None: the request's); rows keep theirs in English."""
    if row["status"] == "ok":
        return t("classify.status.ok", language)
    return t(row["status_key"], language, problem=row.get("problem", "")) if "status_key" in row else row["status"]


def disagreement_note(rows: list[dict], family: str, language: str | None = None) -> str:
    """A plain-words warning when the digits models, given the same input, do not all read the same digit: the
    picture is an unclear digit or not a digit at all (bench_preprocess: 6 of 500 MNIST test digits, 9 of 500
    sketches, and 12 of the 30 photos that the photo check lets through). "" when they agree. ImageNet models
    disagree on ordinary photos among 1,000 classes, so they get no such note. language: None, the request's."""
    said = [(r["model"], r["prediction"]) for r in rows if r["status"] == "ok"]
    if family != "digits" or len(said) < 2 or len({label for _, label in said}) == 1:
        return ""
    each = ", ".join(f"`{m}` {label}" for m, label in said)
    return t("classify.not_sure", language, each=each)


def reproduce_code(name: str) -> str:
    """Plain PyTorch that reproduces the prediction outside the app."""
    spec = get_spec(name)
    w = spec.weights
    if spec.family == "digits":
        from zoo.standalone import digits_classes, preprocess_source   # on first use: getsource reads the files

        cls = spec.builder.__name__
        return f'''import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from huggingface_hub import hf_hub_download
from PIL import Image, ImageOps
from safetensors.torch import load_model


# ---- the model: {spec.title}, this project's architecture (zoo/digits.py), written out
{digits_classes(cls)}


# ---- the preprocessing: MNIST's recipe (crop to ink, fit 20x20, centre of mass in 28x28)
{preprocess_source()}


model = {cls}()
load_model(model, hf_hub_download("{w.repo_id}", "{w.filename}"), strict=True)   # safetensors weights
model.eval()

x = mnist_preprocess("my_digit.png")            # (1, 28, 28), white ink on black, in [0, 1]
x = (x - {w.mean[0]}) / {w.std[0]}                  # MNIST mean/std
with torch.inference_mode():
    probs = model(x.unsqueeze(0)).softmax(dim=1)  # (1, 10)
top = probs.topk(5)
print([(int(i), round(float(p), 4)) for p, i in zip(top.values[0], top.indices[0])])
'''
    fn = spec.builder.args[0] if hasattr(spec.builder, "args") else name
    remap = ""
    if w.key_map:   # timm stores VGG's classifier as convs: the key mapping (zoo/catalog.py), written out
        from zoo.standalone import source

        remap = "\nstate = timm_vgg_to_torchvision(state)   # timm stores the classifier as convs (above)"
        pre = f"\n{source(w.key_map)}\n\n\n"
    else:
        pre = ""
    return f'''import torch, torchvision
from huggingface_hub import hf_hub_download
from safetensors.torch import load_file
from PIL import Image
import torchvision.transforms.v2 as T

{pre}model = torchvision.models.get_model("{fn}", weights=None)
state = load_file(hf_hub_download("{w.repo_id}", "{w.filename}")){remap}
model.load_state_dict(state, strict=True)
model.eval()

preprocess = T.Compose([T.ToImage(), T.Resize(256, antialias=True), T.CenterCrop(224),
                        T.ToDtype(torch.float32, scale=True),
                        T.Normalize(mean={list(w.mean)}, std={list(w.std)})])
x = preprocess(Image.open("photo.jpg").convert("RGB"))  # (3, 224, 224)
with torch.inference_mode():
    probs = model(x.unsqueeze(0)).softmax(dim=1)  # (1, 1000)
categories = torchvision.models.get_model_weights("{fn}").IMAGENET1K_V1.meta["categories"]
top = probs.topk(5)
print([(categories[i], round(float(p), 4)) for p, i in zip(top.values[0], top.indices[0])])
'''
