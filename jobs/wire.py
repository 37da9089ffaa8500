"""What the server, the job runners and the job worker share: the wire format, the errors a job ends with, and
the worker's thread budget. Light on purpose (no torch at import): the worker imports it before it lowers
its CPU priority.

Protocol (one multiprocessing Connection, JSON only in both directions; the server never unpickles anything
the worker sends):
  server -> worker  {"type": "job", "id", "kind", "params", "dir"} | {"type": "cancel", "id"}
  worker -> server  {"type": "ready", ...} | {"type": "event", "id", "event": {...}}
                    | {"type": "done", "id", "result": <plain JSON with tensor references>} + one safetensors blob
                    | {"type": "error", "id", "kind": "visitor"|"internal"|"cancelled", "key", "values"}
An error travels as its message key and values (core.errors.wire), so the server shows it in the visitor's
language; an unexpected one is logged by the worker, and only its id travels.
Tensors in a result travel as one safetensors blob (`encode`/`decode`); files the visitor downloads are written
by the job into its own folder. A worker that dies mid-job (killed, out of memory) fails that job with a clear
message, its folder is deleted (nothing partial is kept), and the next job starts a fresh worker.
"""
from __future__ import annotations

import json
import os

from core.errors import VisitorError
from core.settings import settings


def job_threads() -> int:
    """The worker's torch thread budget: PLAYGROUND_JOB_THREADS, else all cores but one, so interactive requests
    keep a core (on a busy 2-core machine one thread trains as fast as two, which spin-wait for each other when
    other processes hold the cores: docs/numbers.md)."""
    v = settings().job_threads
    return max(1, v) if v is not None else max(1, (os.cpu_count() or 1) - 1)


class JobError(VisitorError):
    """A job failed: why, for the visitor (keys job.*, or the key of the visitor error the job raised)."""

    key = "job.failed"


class JobRefused(JobError):
    """A job was not accepted (e.g. this session already has one); nothing was queued."""

    key = "job.refused"


class JobCancelled(JobError):
    """The job stopped on Cancel before it had a result (e.g. while decoding a zip)."""

    key = "job.cancelled"


class WorkerDied(JobError):
    """The worker process stopped in the middle of a job."""

    key = "job.worker_died"


def error_from(msg: dict) -> JobError:
    """The JobError (JobCancelled) a worker's error message describes."""
    values = msg.get("values") if isinstance(msg.get("values"), dict) else {}
    cls = JobCancelled if msg.get("kind") == "cancelled" else JobError
    return cls(str(msg.get("key") or cls.key), **{str(k): v for k, v in values.items()})


# ---------------------------------------------------------------- wire format: JSON + one safetensors blob

def encode(obj) -> tuple[dict | list, bytes | None]:
    """(plain JSON value, safetensors bytes or None). Tensors become {"__tensor__": key}; tuples become lists."""
    import torch  # here, not at the top: the job worker imports this module before it lowers its priority

    tensors: dict = {}

    def walk(v):
        if isinstance(v, torch.Tensor):
            key = f"t{len(tensors)}"
            tensors[key] = v.detach().cpu().contiguous().clone()
            return {"__tensor__": key}
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise TypeError("job results need string keys")
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise TypeError(f"a job result cannot carry a {type(v).__name__}")

    plain = walk(obj)
    if not tensors:
        return plain, None
    from safetensors.torch import save  # as torch above

    return plain, save(tensors)


def decode(plain, blob: bytes | None):
    tensors = {}
    if blob:
        from safetensors.torch import load  # as torch in encode()

        tensors = load(blob)

    def walk(v):
        if isinstance(v, dict):
            if set(v) == {"__tensor__"}:
                return tensors[v["__tensor__"]]
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(plain)


def send_msg(conn, msg: dict, blob: bytes | None = None) -> None:
    conn.send_bytes(json.dumps(dict(msg, blob=blob is not None)).encode())
    if blob is not None:
        conn.send_bytes(blob)


def recv_msg(conn) -> tuple[dict, bytes | None]:
    msg = json.loads(conn.recv_bytes().decode())
    if not isinstance(msg, dict):
        raise ValueError("bad message from the job worker")
    return msg, (conn.recv_bytes() if msg.get("blob") else None)
