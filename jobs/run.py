"""What runs one job, wherever it runs (the worker process, or in-process on ZeroGPU and in tests): its Context,
the job kind's function (jobs/kinds.py) and the error it ends with.
"""
from __future__ import annotations

import threading
from typing import Callable

import torch

from core.errors import INTERNAL_KEY, wire
from jobs import kinds
from jobs.kinds import Cancelled
from jobs.wire import JobCancelled, JobError


class Context:
    """What a job gets: its own folder, a way to stream events, and the cancel flag."""

    def __init__(self, job_dir: str, emit: Callable[[dict], None], stop: threading.Event):
        self.dir, self.emit, self.stop = job_dir, emit, stop

    def stopped(self) -> bool:
        return self.stop.is_set()


def job_error(exc: BaseException) -> JobError:
    """The error a job ends with: a cancel, running out of memory, the key and values of a visitor error the job
    raised (the visitor's settings, data, weights or checkpoint), or, for anything else, the internal error with
    the id its traceback was logged under (core.errors decides which, as for every request)."""
    if isinstance(exc, (Cancelled, JobCancelled)):
        return JobCancelled()
    if isinstance(exc, JobError):
        return exc
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        torch.cuda.empty_cache()
        return JobError("job.gpu_out_of_memory")
    if isinstance(exc, MemoryError):
        return JobError("job.out_of_memory")
    sent = wire(exc, where="a job")
    return JobError(sent["key"], **sent["values"])


def error_reply(exc: BaseException) -> dict:
    """The wire's error message for a job that raised exc (see jobs/wire.py), without its id."""
    err = job_error(exc)
    kind = "cancelled" if isinstance(err, JobCancelled) else "internal" if err.key == INTERNAL_KEY else "visitor"
    return {"type": "error", "kind": kind, **wire(err)}


def run_kind(kind: str, params: dict, ctx: Context):
    fn = kinds.KINDS.get(kind)
    if fn is None:
        raise KeyError(f"unknown job kind {kind!r}")
    return fn(params, ctx)
