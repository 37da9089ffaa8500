"""Resumable training checkpoints in one safetensors file: no pickle anywhere.

The tutorial's `torch.save({'epoch':..., 'model_state_dict':..., 'optimizer_state_dict':...})` is a
pickle: loading one runs whatever code it names. Here tensors (model, optimizer moments, RNG state,
the epoch's permutation) are safetensors entries, and everything else (config, epoch/step, scheduler,
optimizer hyper-parameters) is JSON inside the safetensors metadata. Saves are atomic (temp file,
fsync, os.replace via zoo.hub), so a killed save leaves the previous checkpoint intact. Loading checks
every key, type, range and shape before anything reaches a model or optimizer.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import torch

FORMAT = "pytorch-playground-checkpoint"
VERSION = "1"
MAX_BYTES = 1 << 30            # 1 GiB: far above any zoo model + Adam state we train here
MAX_META_CHARS = 1 << 20
MAX_TENSORS = 10_000           # ResNet-50's weights + Adam state is ~1,000 tensors
MAX_HEADER_BYTES = 4 * MAX_META_CHARS   # the metadata JSON (escaped) + one entry per tensor
OPTIM_TENSORS = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "step"}
SCHED_KEYS = {"total_steps", "_schedule_phases", "_anneal_func_type", "cycle_momentum", "use_beta1", "base_lrs",
              "last_epoch", "_step_count", "_is_initial", "_get_lr_called_within_step", "_last_lr", "lr_lambdas",
              "verbose"}
GROUP_KEYS = {"params", "lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "foreach", "capturable",
              "differentiable", "fused", "decoupled_weight_decay", "initial_lr", "max_lr", "min_lr", "max_momentum",
              "base_momentum", "momentum", "dampening", "nesterov"}


class CheckpointError(ValueError):
    """A checkpoint that is not ours, damaged, or hostile; the message says which check failed.

    Written for the visitor: a message key and its values, as core.errors.VisitorError's (which counts this class
    as its own by `visitor_error`: this file ships alone in an exported run and imports nothing of ours), and the
    English text, which the app's catalogue (core/locales/en.json) repeats word for word. A value may be another
    message (core.errors.term) that carries its English as "text"."""

    visitor_error = True
    key = "checkpoint.refused"

    def __init__(self, key: str, text: str, /, **values):
        self.key, self.values = key, values
        super().__init__(text.format(**{k: v.get("text", v) if isinstance(v, dict) else v for k, v in values.items()}))


@dataclass
class Checkpoint:
    """What a checkpoint holds: model weights, the trainer's resume state, and JSON metadata."""

    model_state: dict[str, torch.Tensor]
    train_state: dict            # as train(..., state_out=) writes it, without "model"
    meta: dict                   # config, stage, classes, ... (JSON)


def _json_safe(obj):
    """Tuples -> lists, and refuse anything JSON cannot carry (no silent str())."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"non-finite number {obj} in checkpoint state")
        return obj
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return obj.item()
    raise TypeError(f"cannot store a {type(obj).__name__} as JSON in a checkpoint")


def pack(model_state: dict[str, torch.Tensor], train_state: dict, meta: dict) -> tuple[dict, dict]:
    """(tensors, metadata) for safetensors."""
    tensors = {f"model/{k}": v for k, v in model_state.items()}
    opt = train_state["optimizer"]
    scalars: dict[str, dict] = {}
    for pid, st in opt["state"].items():
        for name, v in st.items():
            if isinstance(v, torch.Tensor):
                if name not in OPTIM_TENSORS:
                    raise ValueError(f"unexpected optimizer state {name!r}")
                tensors[f"optim/{int(pid)}/{name}"] = v
            else:
                scalars.setdefault(str(pid), {})[name] = v
    tensors["rng/generator"] = train_state["generator"]
    tensors["rng/torch"] = train_state["torch_rng"]
    if train_state.get("perm") is not None:
        tensors["run/perm"] = train_state["perm"]
    doc = {
        "meta": meta,
        "optimizer": {"param_groups": opt["param_groups"], "scalars": scalars},
        "scheduler": train_state["scheduler"],
        "position": {k: train_state[k] for k in ("step", "epoch", "batch_in_epoch", "total_steps")},
        "best_acc": train_state.get("best_acc"),
    }
    metadata = {"format": FORMAT, "version": VERSION, "json": json.dumps(_json_safe(doc))}
    return tensors, metadata


def save_checkpoint(path: str, model_state: dict[str, torch.Tensor], train_state: dict, meta: dict) -> str:
    """Write a checkpoint atomically (temp file + fsync + os.replace)."""
    from safetensors.torch import save

    # zoo is imported here, not at the top: this file ships alone in an exported run (training/finetuning/export.py),
    # where only the standard library, torch and safetensors exist; save_checkpoint and check_fits never run there.
    from zoo.hub import atomic_write_bytes

    tensors, metadata = pack(model_state, train_state, meta)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return path


def _need(cond: bool, why: str) -> None:
    """A check of a file's inner structure: its details (names of tensors and fields) are the format's own."""
    if not cond:
        raise CheckpointError("checkpoint.refused", "refused checkpoint: {why}", why=why)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_plain(v, where: str, depth: int = 0) -> None:
    """JSON values only, shallow, finite."""
    _need(depth < 4, f"{where} is nested too deeply")
    if isinstance(v, dict):
        for k, x in v.items():
            _check_plain(x, f"{where}.{k}", depth + 1)
    elif isinstance(v, list):
        _need(len(v) <= 10_000, f"{where} is too long")
        for x in v:
            _check_plain(x, where, depth + 1)
    else:
        _need(v is None or isinstance(v, (bool, str)) or _is_num(v), f"{where} holds a non-finite or odd value")


def _validate_doc(doc) -> None:
    _need(isinstance(doc, dict) and {"meta", "optimizer", "scheduler", "position"} <= set(doc),
          "metadata lacks meta/optimizer/scheduler/position")
    _need(isinstance(doc["meta"], dict), "meta must be an object")
    pos = doc["position"]
    _need(isinstance(pos, dict) and all(isinstance(pos.get(k), int) and not isinstance(pos.get(k), bool)
                                        and 0 <= pos[k] <= 10_000_000
                                        for k in ("step", "epoch", "batch_in_epoch", "total_steps")),
          "position (step/epoch/batch_in_epoch/total_steps) must be small non-negative integers")
    _need(pos["step"] <= pos["total_steps"], "step is past the run's total steps")
    _need(doc.get("best_acc") is None or (_is_num(doc["best_acc"]) and 0 <= doc["best_acc"] <= 100),
          "best_acc must be a percentage")
    opt = doc["optimizer"]
    _need(isinstance(opt, dict) and isinstance(opt.get("param_groups"), list) and 1 <= len(opt["param_groups"]) <= 64,
          "optimizer.param_groups must be a non-empty list")
    seen: set[int] = set()
    for g in opt["param_groups"]:
        _need(isinstance(g, dict) and set(g) <= GROUP_KEYS,
              f"unknown optimizer setting in {sorted(set(g) - GROUP_KEYS) if isinstance(g, dict) else g!r}")
        _check_plain(g, "param_group")
        params = g.get("params")
        _need(isinstance(params, list) and all(isinstance(p, int) and not isinstance(p, bool) and 0 <= p < 100_000
                                               for p in params), "param_group.params must be parameter indices")
        _need(not (seen & set(params)) and len(set(params)) == len(params), "a parameter index appears twice")
        seen |= set(params)
        _need(_is_num(g.get("lr")) and 0 <= g["lr"] <= 10, "learning rates must be finite, in 0..10")
    _need(isinstance(opt.get("scalars", {}), dict), "optimizer scalars must be an object")
    sched = doc["scheduler"]
    _need(isinstance(sched, dict) and set(sched) <= SCHED_KEYS,
          f"unknown scheduler fields {sorted(set(sched) - SCHED_KEYS) if isinstance(sched, dict) else sched!r}")
    _check_plain(sched, "scheduler")
    _need(sched.get("_anneal_func_type", "cos") in ("cos", "linear"), "unknown annealing function")
    doc["_param_ids"] = seen


def _no_constants(name: str):
    raise ValueError(f"{name} is not allowed")


def _read_header(path: str, max_bytes: int) -> tuple[str, dict]:
    """(file name, parsed header) by our own bounded read, before any safetensors parser sees the file: the file
    size, the header's length (a pickle or other format fails here), at most MAX_HEADER_BYTES of JSON and
    MAX_TENSORS entries. A file listing a million (even empty) tensors is refused in milliseconds."""
    name = os.path.basename(str(path))
    try:
        size = os.path.getsize(path)
        if size > max_bytes:
            raise CheckpointError("checkpoint.too_large", "{name} is {size_mb:.0f} MB; the limit is {limit_mb} MB",
                                  name=name, size_mb=size / 2**20, limit_mb=max_bytes // 2**20)
        with open(path, "rb") as f:
            head = f.read(8)
            header_len = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 <= header_len <= min(size - 8, MAX_HEADER_BYTES):
                raise CheckpointError("checkpoint.not_safetensors", "{name} is not a safetensors file (a pickle or "
                                      "other format?), or its header is over {limit_mb} MB",
                                      name=name, limit_mb=MAX_HEADER_BYTES >> 20)
            raw = f.read(header_len)
    except OSError as exc:      # its strerror, not str(exc): that names the server's path
        raise CheckpointError("checkpoint.unreadable", "{name} could not be read ({reason})", name=name,
                              reason=exc.strerror or "") from None
    try:
        header = json.loads(raw, parse_constant=_no_constants)
    except ValueError:
        header = None
    if not isinstance(header, dict):
        raise CheckpointError("checkpoint.header_not_json", "{name} is not a safetensors file (its header is not "
                              "a JSON object)", name=name)
    count = len(header) - ("__metadata__" in header)
    if count > MAX_TENSORS:
        raise CheckpointError("checkpoint.too_many_tensors", "{name} lists {count:,} tensors; the limit is {limit:,}",
                              name=name, count=count, limit=MAX_TENSORS)
    return name, header


def _doc(name: str, header: dict) -> dict:
    """The checkpoint's metadata document from its (already bounded) header, validated."""
    md = header.get("__metadata__") or {}
    if not isinstance(md, dict) or md.get("format") != FORMAT:
        raise CheckpointError("checkpoint.not_ours", "{name} is not a PyTorch Playground checkpoint (plain weights "
                              "go to the weights upload)", name=name)
    if md.get("version") != VERSION:
        raise CheckpointError("checkpoint.version", "{name} is a checkpoint of version {version}, which this app "
                              "does not read (it reads version {ours})", name=name, version=str(md.get("version")),
                              ours=VERSION)
    raw = md.get("json", "")
    _need(isinstance(raw, str) and 0 < len(raw) <= MAX_META_CHARS, "metadata JSON missing or too large")
    try:
        doc = json.loads(raw, parse_constant=_no_constants)
    except ValueError as exc:
        raise CheckpointError("checkpoint.refused", "refused checkpoint: {why}",
                              why=f"metadata is not valid JSON ({exc})") from None
    _validate_doc(doc)
    return doc


def load_checkpoint(path: str, max_bytes: int = MAX_BYTES) -> Checkpoint:
    """Read and validate a checkpoint; anything not exactly our format raises CheckpointError."""
    from safetensors import SafetensorError, safe_open

    name, header = _read_header(path, max_bytes)
    doc = _doc(name, header)
    try:
        with safe_open(path, framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as exc:
        raise CheckpointError("checkpoint.damaged", "{name} is not a valid safetensors file ({detail})", name=name,
                              detail=str(exc)[:200]) from None
    return _unpack(tensors, doc)


def read_checkpoint_meta(path: str, max_bytes: int = MAX_BYTES) -> tuple[dict, dict]:
    """(meta, position) from a checkpoint's header alone, validated like load_checkpoint's metadata: cheap
    enough to check a resume's settings in the server before the job is queued (the job loads the tensors)."""
    name, header = _read_header(path, max_bytes)
    doc = _doc(name, header)
    return doc["meta"], doc["position"]


def _unpack(tensors: dict[str, torch.Tensor], doc: dict) -> Checkpoint:
    model_state, optim_state = {}, {}
    rng = {}
    perm = None
    ids = doc["_param_ids"]
    for k, v in tensors.items():
        kind, _, rest = k.partition("/")
        if kind == "model":
            _need(bool(rest), "empty model key")
            if v.is_floating_point():
                _need(bool(torch.isfinite(v).all()), f"model tensor {rest!r} holds NaN or inf")
            model_state[rest] = v
        elif kind == "optim":
            pid, _, nm = rest.partition("/")
            _need(pid.isdigit() and int(pid) in ids and nm in OPTIM_TENSORS, f"unexpected optimizer tensor {k!r}")
            _need(v.is_floating_point() and bool(torch.isfinite(v).all()),
                  f"optimizer tensor {k!r} is not finite floats")
            optim_state.setdefault(int(pid), {})[nm] = v
        elif k in ("rng/generator", "rng/torch"):
            _need(v.dtype == torch.uint8 and v.shape == torch.get_rng_state().shape, f"{k} is not an RNG state")
            rng[k] = v
        elif k == "run/perm":
            _need(v.dtype == torch.int64 and v.ndim == 1, "run/perm must be an int64 vector")
            _need(torch.equal(torch.sort(v).values, torch.arange(len(v))), "run/perm is not a permutation")
            perm = v
        else:
            raise CheckpointError("checkpoint.refused", "refused checkpoint: {why}", why=f"unexpected tensor {k!r}")
    _need(bool(model_state), "no model weights in the file")
    _need(set(rng) == {"rng/generator", "rng/torch"}, "RNG state missing")
    for pid, sc in doc["optimizer"].get("scalars", {}).items():
        _need(pid.isdigit() and int(pid) in ids and isinstance(sc, dict), "bad optimizer scalars")
        for nm, v in sc.items():
            _need(nm in OPTIM_TENSORS and _is_num(v), f"bad optimizer scalar {nm!r}")
            optim_state.setdefault(int(pid), {})[nm] = v
    groups = []
    for g in doc["optimizer"]["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    pos = doc["position"]
    train_state = {"optimizer": {"state": optim_state, "param_groups": groups}, "scheduler": doc["scheduler"],
                   "generator": rng["rng/generator"], "torch_rng": rng["rng/torch"], "perm": perm,
                   "best_acc": doc.get("best_acc"), **pos}
    return Checkpoint(model_state, train_state, doc["meta"])


def check_fits(ckpt: Checkpoint, model: torch.nn.Module, params: list | None = None,
               n_train: int | None = None) -> None:
    """The checkpoint matches this model (keys, shapes), the parameters the run trains (count, shapes) and data."""
    from zoo.hub import WeightsError, load_state_strict  # here, not at the top: as in save_checkpoint

    try:
        load_state_strict(model, ckpt.model_state)
    except WeightsError as exc:
        raise CheckpointError("checkpoint.does_not_fit", "refused checkpoint: the weights do not fit this model: "
                              "{details}", details=exc.values.get("details", "")) from None
    if params is not None:
        ours = list(params)
        theirs = [p for g in ckpt.train_state["optimizer"]["param_groups"] for p in g["params"]]
        _need(len(ours) == len(theirs), f"optimizer has {len(theirs)} parameters; this run trains {len(ours)}")
        for pid, st in ckpt.train_state["optimizer"]["state"].items():
            _need(pid < len(ours), "optimizer state for a parameter that does not exist")
            for nm, v in st.items():
                if isinstance(v, torch.Tensor) and nm != "step":
                    _need(v.shape == ours[pid].shape, f"optimizer {nm} of parameter {pid} has the wrong shape")
    perm = ckpt.train_state.get("perm")
    if n_train is not None and perm is not None:
        _need(len(perm) == n_train, f"the checkpoint was made on {len(perm)} training images; this data has {n_train}")
