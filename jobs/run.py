"""What runs one job, wherever it runs (the worker process, or in-process on ZeroGPU and in tests): its Context,
the job kind's function (jobs/kinds.py) and what its error means for the visitor.
"""
from __future__ import annotations

import logging
import threading
import traceback
from typing import Callable

import torch

from jobs import kinds
from training.data.datasets import DatasetUnavailable
from jobs.kinds import Cancelled
from zoo.hub import WeightsError, WeightsUnavailable
from zoo.images import ImageInputError

log = logging.getLogger("playground.jobworker")


class Context:
    """What a job gets: its own folder, a way to stream events, and the cancel flag."""

    def __init__(self, job_dir: str, emit: Callable[[dict], None], stop: threading.Event):
        self.dir, self.emit, self.stop = job_dir, emit, stop

    def stopped(self) -> bool:
        return self.stop.is_set()


def classify_error(exc: BaseException) -> tuple[str, str]:
    """(kind, message for the visitor): 'user' errors keep their message; the rest are summarised."""
    user = (ValueError, WeightsUnavailable, WeightsError, ImageInputError, DatasetUnavailable)
    if isinstance(exc, Cancelled):
        return "cancelled", "Cancelled before it finished; nothing from it was kept."
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        torch.cuda.empty_cache()
        return "oom", ("The GPU ran out of memory for this job. Try a smaller batch size, bf16 or a smaller model; "
                       "the next job starts clean.")
    if isinstance(exc, MemoryError):
        return "oom", "Out of memory for this job; try a smaller data set or batch size."
    if isinstance(exc, user):
        return "user", str(exc)
    log.error("job failed:\n%s", traceback.format_exc())
    return "internal", f"Something went wrong ({type(exc).__name__}: {str(exc)[:200]})."


def run_kind(kind: str, params: dict, ctx: Context):
    fn = kinds.KINDS.get(kind)
    if fn is None:
        raise ValueError(f"unknown job kind {kind!r}")
    return fn(params, ctx)
