"""Weights I/O: safetensors only, strict key checks, the Hub through huggingface_hub (cache, offline mode).

Nothing here ever unpickles: user files and downloads are read with safetensors, which stores raw
tensors and cannot run code.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
import torch.nn as nn
from filelock import FileLock  # a huggingface_hub dependency: flock on Linux/macOS, msvcrt.locking on Windows
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from core.errors import InputError, VisitorError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = WEIGHTS_DIR / "manifest.json"


class WeightsUnavailable(VisitorError, RuntimeError):
    """The weights cannot be had now (offline and not cached, repo or file missing); keys weights.*."""

    key = "weights.unavailable"


class WeightsError(InputError):
    """A weights file that is not what it claims: not safetensors, corrupt, or the wrong keys/shapes."""

    key = "weights.invalid"


def weights_dir() -> str:
    return str(WEIGHTS_DIR)


def read_manifest() -> dict:
    """Measured facts about the shipped weights (accuracy, training command), written by the trainers."""
    if MANIFEST.exists():
        return json.loads(MANIFEST.read_text())
    return {}


def update_manifest(name: str, entry: dict) -> None:
    """Set one model's entry; a lock file serialises concurrent trainers (read-modify-write)."""
    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    with FileLock(str(WEIGHTS_DIR / ".manifest.lock")):
        data = read_manifest()
        data[name] = entry
        atomic_write_bytes(MANIFEST, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def atomic_write_bytes(path: Path | str, payload: bytes) -> None:
    """Write via a temp file in the same folder, fsync, then os.replace: a crash leaves old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    if hasattr(os, "fchmod"):  # not on Windows (before Python 3.13), where mode bits mean little
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; a weights file is as readable as any other
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # persist the rename itself
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def save_safetensors_atomic(state: dict[str, torch.Tensor], path: str, metadata: dict[str, str] | None = None) -> str:
    """Save a state dict as safetensors, atomically. Shared tensors are cloned (safetensors refuses aliases)."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return path


MAX_HEADER_BYTES = 8 << 20      # a safetensors header is JSON: ResNet-50's is ~30 kB, a checkpoint's with its metadata
                                # (<= 1 MB of JSON) a few MB; 8 MB parses in < 1 s (a million entries is ~60 MB)
MAX_TENSORS = 10_000            # ResNet-50 + its Adam state is ~1,000 tensors


def check_safetensors_header(path: str, max_header_bytes: int = MAX_HEADER_BYTES,
                             max_tensors: int = MAX_TENSORS) -> dict:
    """Read a safetensors file's header with our own bounds before any library parses it: the 8-byte length,
    then at most max_header_bytes of JSON, then at most max_tensors entries. Returns the parsed header.
    A file that claims a huge header, or lists a million (even empty) tensors, is refused in milliseconds
    instead of costing seconds and gigabytes inside the safetensors parser."""
    name = os.path.basename(str(path))
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if n <= 1 or n > size - 8:
                raise WeightsError("weights.not_safetensors", name=name)
            if n > max_header_bytes:
                raise WeightsError("weights.header_too_large", name=name, size_mb=n / 2**20,
                                   limit_mb=max_header_bytes / 2**20)
            raw = f.read(n)
    except OSError as exc:      # its strerror, not str(exc): that names the server's path
        raise WeightsError("weights.unreadable", name=name, reason=exc.strerror or "") from None
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise WeightsError("weights.header_not_json", name=name) from None
    if not isinstance(header, dict):
        raise WeightsError("weights.header_not_json", name=name)
    count = len(header) - ("__metadata__" in header)
    if count > max_tensors:
        raise WeightsError("weights.too_many_tensors", name=name, count=count, limit=max_tensors)
    return header


def load_safetensors(path: str, max_tensors: int = MAX_TENSORS) -> dict[str, torch.Tensor]:
    """Read a safetensors file (header bounded first); anything else (a pickle, a truncated or garbage file) is a
    WeightsError."""
    check_safetensors_header(path, max_tensors=max_tensors)
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        why = (exc.strerror or "") if isinstance(exc, OSError) else str(exc)[:200]   # OSError's str names the path
        raise WeightsError("weights.damaged", name=os.path.basename(path), detail=why) from None


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """load_state_dict(strict=True) with a readable error listing the first missing/unexpected/mis-shaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys (e.g. {missing[:3]})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} keys (e.g. {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (e.g. {shapes[:2]})")
        raise WeightsError("weights.mismatch", details="; ".join(parts))
    model.load_state_dict(state, strict=True)


# The app's own public weights: the repos the README's front matter lists (models:, preload_from_hub) and the
# catalogue's defaults (zoo/catalog.py DIGITS_REPO and ALEXNET_REPO, zoo/generative.py). They are downloaded with
# no token at all: huggingface_hub would otherwise send the server's HF_TOKEN or saved login with every request,
# handing the owner's credentials to whatever answers at HF_ENDPOINT, for files anyone may read. A repo the
# operator configures instead (PLAYGROUND_HUB_REPO, PLAYGROUND_ALEXNET_REPO), which may be private, keeps
# huggingface_hub's default: the operator's own token. tests/test_abuse_routes.py checks this list against both.
PUBLIC_REPOS = frozenset({
    "timm/resnet18.tv_in1k", "timm/resnet50.tv_in1k", "timm/vgg16.tv_in1k",
    "pytorch-playground/digits-zoo", "pytorch-playground/alexnet.tv_in1k",
})


def hub_token(repo_id: str) -> bool | None:
    """The token argument for huggingface_hub: False (send none) for PUBLIC_REPOS, None (its default: HF_TOKEN or
    the saved login) for a repo the operator chose."""
    return False if repo_id in PUBLIC_REPOS else None


def hub_offline() -> bool:
    # Read at call time (huggingface_hub reads HF_HUB_OFFLINE once, at import).
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def download(repo_id: str, filename: str, revision: str = "main", cache_dir: str | None = None) -> str:
    """hf_hub_download with our error messages, and no long waits when the Hub is unreachable.

    A cached file is used as is (no network). Otherwise one metadata request (no retries, 5 s timeout)
    tells quickly whether the Hub answers; huggingface_hub's own retry loop would take ~25 s to give up.
    Offline (HF_HUB_OFFLINE=1) only the cache is looked at.
    """
    # huggingface_hub on first use (~0.2 s): every process imports zoo, few ever download
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import (EntryNotFoundError, HfHubHTTPError, HFValidationError,
                                        LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError)

    token = hub_token(repo_id)
    kw = dict(revision=revision, cache_dir=cache_dir, endpoint=hub_endpoint(), token=token)
    try:
        try:
            return hf_hub_download(repo_id, filename, local_files_only=True, **kw)
        except LocalEntryNotFoundError:
            if hub_offline():
                raise
        get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision, endpoint=hub_endpoint()), timeout=5,
                             token=token)
        return hf_hub_download(repo_id, filename, etag_timeout=10, **kw)
    except HFValidationError:
        raise WeightsUnavailable("weights.bad_repo_id", repo_id=repo_id, filename=filename) from None
    except LocalEntryNotFoundError:
        raise WeightsUnavailable("weights.offline", repo_id=repo_id, filename=filename) from None
    except RepositoryNotFoundError:
        raise WeightsUnavailable("weights.no_repo", repo_id=repo_id) from None
    except RevisionNotFoundError:
        raise WeightsUnavailable("weights.no_revision", repo_id=repo_id, revision=revision) from None
    except EntryNotFoundError:
        raise WeightsUnavailable("weights.no_file", repo_id=repo_id, filename=filename) from None
    except HfHubHTTPError as exc:
        raise WeightsUnavailable("weights.refused", repo_id=repo_id, filename=filename, detail=str(exc)[:300]) from None
    except (OSError, ConnectionError):  # DNS failure, refused connection, timeout (httpx errors too)
        raise WeightsUnavailable("weights.unreachable", repo_id=repo_id, filename=filename) from None
    except Exception as exc:  # httpx.ConnectError etc. are not OSErrors
        if type(exc).__module__.startswith(("httpx", "httpcore")):
            raise WeightsUnavailable("weights.unreachable", repo_id=repo_id, filename=filename) from None
        raise


def weights_path(spec) -> str:
    """The local file for a spec's weights: shipped in the repo if present, else the Hub (cache first)."""
    w = spec.weights
    if w.local_file:
        local = WEIGHTS_DIR / w.local_file
        if local.exists():
            return str(local)
    return download(w.repo_id, w.filename, w.revision)


def load_weights(model: nn.Module, spec, path: str | None = None) -> nn.Module:
    """Load spec's weights (or an explicit safetensors path) into model, strictly."""
    state = load_safetensors(path or weights_path(spec))
    if spec.weights.key_map is not None:
        state = spec.weights.key_map(state)
    load_state_strict(model, state)
    return model


def publish(files: dict[str, str], repo_id: str, token: str, private: bool = False,
            commit_message: str = "Upload weights from PyTorch Playground") -> str:
    """Create (if needed) a model repo and upload {path_in_repo: local_path}; returns the commit URL.

    `token` is required and used as given: huggingface_hub falls back to HF_TOKEN or the machine's saved login
    when a token is None, and on a public server those are the owner's credentials, never a visitor's.
    Only .safetensors, .json and .md files are accepted: a published repo never carries a pickle.
    """
    from huggingface_hub import CommitOperationAdd, HfApi  # on first use, as in download()

    if not isinstance(token, str) or not token.strip():
        raise InputError("publish.no_token")
    for dest in files:
        if not dest.endswith((".safetensors", ".json", ".md")):
            raise InputError("publish.file_kind", name=dest)
    api = HfApi(endpoint=hub_endpoint(), token=token.strip())
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    ops = [CommitOperationAdd(path_in_repo=dest, path_or_fileobj=src) for dest, src in files.items()]
    info = api.create_commit(repo_id, operations=ops, commit_message=commit_message)
    return info.commit_url
