"""The job worker: `python -m training.jobworker`, one warm process that runs training jobs one at a time.

It lowers its own CPU priority (nice) and sets its torch thread budget before importing anything heavy, then
reads jobs from the server over a multiprocessing Connection (JSON messages, see training/jobs.py). A reader
thread receives cancel messages while a job runs; jobs check the flag after every step (and between images
while decoding a zip), so Cancel takes effect within one step. The job kinds are in training/jobkinds.py.
"""
from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import traceback
from typing import Callable

log = logging.getLogger("playground.jobworker")


class Context:
    """What a job gets: its own folder, a way to stream events, and the cancel flag."""

    def __init__(self, job_dir: str, emit: Callable[[dict], None], stop: threading.Event):
        self.dir, self.emit, self.stop = job_dir, emit, stop

    def stopped(self) -> bool:
        return self.stop.is_set()


def classify_error(exc: BaseException) -> tuple[str, str]:
    """(kind, message for the visitor): 'user' errors keep their message; the rest are summarised."""
    import torch

    from zoo.hub import WeightsError, WeightsUnavailable
    from zoo.images import ImageInputError

    user: tuple = (ValueError, WeightsUnavailable, WeightsError, ImageInputError)
    try:
        from training.data import DatasetUnavailable

        user += (DatasetUnavailable,)
    except ImportError:  # pragma: no cover
        pass
    from training.jobkinds import Cancelled

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
    from training import jobkinds

    fn = jobkinds.KINDS.get(kind)
    if fn is None:
        raise ValueError(f"unknown job kind {kind!r}")
    return fn(params, ctx)


def _setup() -> dict:
    """Priority and thread budget first (they apply to every thread torch starts later), then warm imports."""
    nice = int(os.environ.get("PLAYGROUND_JOB_NICE", "10"))
    if nice > 0 and hasattr(os, "nice"):      # POSIX; on Windows the worker runs at normal priority
        try:
            os.nice(nice)
        except OSError:
            pass
    import torch

    from training.jobs import job_threads

    threads = job_threads()
    torch.set_num_threads(max(1, threads))
    from training import finetune, jobkinds, trainer  # noqa: F401 - warm: the first job does not pay for imports
    from zoo.device import get_device

    return {"pid": os.getpid(), "threads": torch.get_num_threads(), "device": str(get_device()), "nice": nice}


def main(conn) -> None:
    from training.jobs import encode, recv_msg, send_msg

    try:
        info = _setup()
    except BaseException as exc:  # noqa: BLE001 - report and stop
        send_msg(conn, {"type": "error", "message": f"the job worker failed to start: {type(exc).__name__}: {exc}"})
        return
    send_msg(conn, dict(info, type="ready"))
    jobs: queue.Queue = queue.Queue()
    current: dict = {"id": None, "stop": None}
    early_cancels: set[str] = set()
    lock = threading.Lock()

    def reader():
        while True:
            try:
                msg, _ = recv_msg(conn)
            except (EOFError, OSError, ValueError):
                jobs.put(None)
                return
            if msg.get("type") == "job":
                jobs.put(msg)
            elif msg.get("type") == "cancel":
                with lock:
                    if current["id"] == msg.get("id"):
                        current["stop"].set()
                    else:
                        early_cancels.add(str(msg.get("id")))

    threading.Thread(target=reader, name="jobworker-reader", daemon=True).start()
    while (msg := jobs.get()) is not None:
        job_id = msg["id"]
        stop = threading.Event()
        with lock:
            current.update(id=job_id, stop=stop)
            if job_id in early_cancels:
                early_cancels.discard(job_id)
                stop.set()

        def emit(event: dict, job_id=job_id) -> None:
            send_msg(conn, {"type": "event", "id": job_id, "event": event})

        try:
            result = run_kind(msg["kind"], msg.get("params") or {}, Context(msg["dir"], emit, stop))
            plain, blob = encode(result)
            reply, reply_blob = {"type": "done", "id": job_id, "result": plain}, blob
        except BaseException as exc:  # noqa: BLE001 - the worker survives any job
            kind, message = classify_error(exc)
            reply, reply_blob = {"type": "error", "id": job_id, "kind": kind, "message": message}, None
        with lock:
            current.update(id=None, stop=None)
        try:
            send_msg(conn, reply, reply_blob)
        except (OSError, ValueError):
            return


if __name__ == "__main__":  # python -m training.jobworker (the server writes "host port key" to stdin)
    from multiprocessing.connection import Client

    logging.basicConfig(level=logging.INFO)
    host, port, key = sys.stdin.readline().split()
    main(Client((host, int(port)), authkey=bytes.fromhex(key)))
