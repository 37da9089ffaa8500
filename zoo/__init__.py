"""Model zoo: registry, architectures, weights metadata and Hub/safetensors I/O."""
from zoo.registry import get_model, get_spec, list_models, register_model

__all__ = ["get_model", "get_spec", "list_models", "register_model"]
