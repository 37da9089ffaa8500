"""The job worker: `python -m jobs.worker`, one warm process that runs training jobs one at a time.

It lowers its own CPU priority (nice) and sets its torch thread budget before importing anything heavy, then
reads jobs from the server over a multiprocessing Connection (JSON messages, see jobs/wire.py). A reader
thread receives cancel messages while a job runs; jobs check the flag after every step (and between images
while decoding a zip), so Cancel takes effect within one step. What runs a job is in jobs/run.py.
"""
from __future__ import annotations

import logging
import os
import queue
import threading

from core.settings import settings
from core.spawn import connect_to_parent
from jobs.wire import encode, job_threads, recv_msg, send_msg


def _setup() -> dict:
    """Priority and thread budget first (they apply to every thread torch starts later), then warm imports."""
    nice = settings().job_nice
    if nice > 0 and hasattr(os, "nice"):      # POSIX; on Windows the worker runs at normal priority
        try:
            os.nice(nice)
        except OSError:
            pass
    # torch and the job kinds (which import it) only now, on purpose: after nice and the thread budget, which
    # apply to every thread torch starts later; before the first job, so that it does not pay for the imports.
    import torch

    threads = job_threads()
    torch.set_num_threads(max(1, threads))
    from core.device import get_device
    from jobs import run  # noqa: F401  (the job kinds and the training they run)

    return {"pid": os.getpid(), "threads": torch.get_num_threads(), "device": str(get_device()), "nice": nice}


def main(conn) -> None:
    try:
        info = _setup()
    except BaseException as exc:  # noqa: BLE001 - report and stop
        send_msg(conn, {"type": "error", "message": f"the job worker failed to start: {type(exc).__name__}: {exc}"})
        return
    send_msg(conn, dict(info, type="ready"))
    from jobs.run import Context, error_reply, run_kind  # imported by _setup, after nice (see there)

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
            reply, reply_blob = dict(error_reply(exc), id=job_id), None
        with lock:
            current.update(id=None, stop=None)
        try:
            send_msg(conn, reply, reply_blob)
        except (OSError, ValueError):
            return


if __name__ == "__main__":  # python -m jobs.worker (the server writes "host port key" to stdin)
    logging.basicConfig(level=logging.INFO)
    main(connect_to_parent())
