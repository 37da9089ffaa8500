"""Gradio side of jobs (jobs/queue.py): submit for this session, follow the job while yielding updates,
queue/progress/error status HTML, and the per-session Cancel. Shared by the Fine-tune, Compression,
Ensembles and Data tabs."""
from __future__ import annotations

import functools
import html

import gradio as gr

from jobs.queue import JobError, get_queue
from ui.admission import client_ip
from ui.common import error_message

POLL_S = 0.5


def session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "default"


def submit(kind: str, params: dict, request: gr.Request | None):
    """Queue a job for this visitor; a second job of the same visitor, or one past their address's share, is
    refused at once (JobRefused). The address lets the job queue take addresses in turn (jobs/queue.py)."""
    return get_queue().submit(session(request), kind, params, address=client_ip(request))


def follow(job):
    """Yield the job every POLL_S until it ends. Closing the generator (Gradio cancel, a disconnect) cancels the
    job and waits for the step in flight, so nothing keeps running for a visitor who left."""
    try:
        yield job
        while not job.finished.wait(POLL_S):
            yield job
    finally:
        if not job.finished.is_set():
            get_queue().cancel(job.session)
            job.finished.wait()


def cancel_session(request: gr.Request | None) -> str:
    return get_queue().cancel(session(request))


def progress_html(elem_id: str, text: str, done: int, total: int, error: bool = False) -> str:
    pct = 100.0 * done / max(1, total)
    style = " style='color:#b91c1c'" if error else ""
    bar = "" if error else f"<progress value='{done}' max='{max(1, total)}' style='width:100%'></progress>"
    return (f"<div id='{elem_id}'{style}>{bar}<div>{html.escape(text)}" + ("" if error else f" ({pct:.0f}%)")
            + "</div></div>")


def queued_text(job) -> str:
    q = get_queue()
    pos = q.position(job)
    ahead = "1 job is" if pos == 1 else f"{pos} jobs are"
    return (f"Queued: {ahead} ahead of yours in the job queue (one job runs at a time here, and visitors take "
            "turns; this tab's other buttons keep working). It starts by itself; Cancel takes it out of the queue.")


def job_status(elem_id: str, job, describe) -> str:
    """Status HTML for a job in any state; describe(event) -> (text, done, total) for a running job's last event."""
    if job.state == "queued":
        return progress_html(elem_id, queued_text(job), 0, 1)
    if job.state == "running":
        ev = job.last
        if ev is None:
            return progress_html(elem_id, "starting (the training process loads the data and the model)", 0, 1)
        return progress_html(elem_id, *describe(ev))
    if job.state == "cancelled":
        return progress_html(elem_id, str(job.error) if job.error else "Cancelled before it started.", 0, 1)
    if job.state == "failed":
        return progress_html(elem_id, str(job.error), 0, 1, error=True)
    return progress_html(elem_id, "done", 1, 1)


def stage_text(ev: dict) -> tuple[str, int, int]:
    """A stage event {"phase", "text", "done", "total"} as status text."""
    return f"{ev.get('phase', '')}: {ev.get('text', '')}", int(ev.get("done", 0)), int(ev.get("total", 1))


def error_text(exc: BaseException) -> str:
    """What a visitor reads for an exception: the one decision (ui.common.error_message, core.errors.describe);
    a job's own errors (refused, cancelled, the worker died) are written for the visitor too."""
    if isinstance(exc, JobError):
        return str(exc)
    return error_message(exc, "job endpoint")


def _guarded(fn, on_failure):
    """fn's stream, item by item; when it fails, on_failure(exc) either raises or gives one last item to yield.
    Closing the wrapper closes fn's generator (its finally cancels the job)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        it = fn(*args, **kwargs)
        try:
            while True:
                try:
                    v = next(it)
                except StopIteration:
                    return
                except Exception as exc:  # noqa: BLE001 - the boundary of a public server
                    yield on_failure(exc)
                    return
                yield v
        finally:
            it.close()

    return wrapper


def api_errors(fn):
    """For a job endpoint (a generator): any failure reaches an API caller as gr.Error with its message."""

    def fail(exc):
        if isinstance(exc, gr.Error):
            raise exc
        raise gr.Error(error_text(exc), print_exception=False) from None

    return _guarded(fn, fail)


def ui_twin(fn, on_error):
    """The page's version of a job endpoint: the same stream, but a failure becomes on_error(message) (a message
    beside the button, finished outputs untouched) instead of red "Error" badges over every output."""

    def fail(exc):
        if isinstance(exc, gr.Error):
            return on_error(str(exc.message))
        raise exc

    wrapper = _guarded(fn, fail)
    wrapper.__name__ = wrapper.__qualname__ = f"{fn.__name__}_page"   # its own (private) event name
    return wrapper
