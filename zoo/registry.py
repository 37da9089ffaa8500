"""A torchvision-style model registry whose entries carry their weights' metadata (timm PretrainedCfg).

The entries themselves are registered by zoo/catalog.py and zoo/generative.py, which the zoo package imports
(zoo/__init__.py, as torchvision.models' does): importing any zoo module fills the registry first.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch.nn as nn

from zoo.hub import load_weights


@dataclass(frozen=True)
class Weights:
    """Where a model's weights live and what they expect: weights as data (torchvision WeightsEnum)."""

    repo_id: str                      # Hub repo holding the safetensors file
    filename: str                     # file inside that repo
    input_size: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    categories: tuple[str, ...]
    num_params: int
    accuracy: dict[str, float] = field(default_factory=dict)  # e.g. {"mnist5k-test": 99.1}
    train_command: str = ""           # how these weights were made
    local_file: str | None = None     # shipped inside the repo (offline); None = Hub only
    revision: str = "main"
    key_map: Callable[[dict], dict] | None = None  # maps the file's keys to the model's
    source: str = ""                  # where the weights come from, in words


@dataclass(frozen=True)
class ModelSpec:
    """One zoo entry: a builder plus its weights' metadata."""

    name: str
    family: str                       # "digits" or "imagenet"
    builder: Callable[[], nn.Module]
    weights: Weights
    title: str = ""
    about: str = ""                   # what was kept of / changed from the original architecture


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a model to the zoo; a second entry under the same name is a bug, so it is refused."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, in registration order, optionally of one family."""
    return [n for n, s in _REGISTRY.items() if family is None or s.family == family]


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(_REGISTRY)}") from None


def get_model(name: str, weights: str | None = "default", **load_kwargs) -> nn.Module:
    """Build a zoo model; weights='default' loads its weights strictly (local file, cache or Hub),
    None = random init."""
    spec = get_spec(name)
    model = spec.builder()
    if weights is not None:
        load_weights(model, spec, **load_kwargs)
    return model.eval()
