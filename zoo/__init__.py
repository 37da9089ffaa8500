"""Model zoo: registry, architectures, weights metadata, Hub/safetensors I/O and inference."""
from zoo import catalog, generative  # noqa: F401  (importing them registers the zoo's entries)
from zoo.registry import get_model, get_spec, list_models, register_model

__all__ = ["get_model", "get_spec", "list_models", "register_model"]
