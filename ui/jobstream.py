"""Gradio side of jobs (jobs/queue.py): the job stream (run_job: submit for this session, follow while yielding
updates, the job's error raised for the tab's error boundary, ui/errors.py), queue/progress status HTML, and the
per-session Cancel. Shared by the Fine-tune, Compression, Ensembles and Data tabs."""
from __future__ import annotations

import html

import gradio as gr

from core.errors import text_of
from jobs.queue import get_queue
from ui.admission import client_ip

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


def progress_html(elem_id: str, text: str, done: int, total: int) -> str:
    pct = 100.0 * done / max(1, total)
    bar = f"<progress value='{done}' max='{max(1, total)}' style='width:100%'></progress>"
    return f"<div id='{elem_id}'>{bar}<div>{html.escape(text)} ({pct:.0f}%)</div></div>"


def queued_text(job) -> str:
    q = get_queue()
    pos = q.position(job)
    ahead = "1 job is" if pos == 1 else f"{pos} jobs are"
    return (f"Queued: {ahead} ahead of yours in the job queue (one job runs at a time here, and visitors take "
            "turns; this tab's other buttons keep working). It starts by itself; Cancel takes it out of the queue.")


def ended_text(job) -> str:
    """How a job that did not finish ended, in the visitor's words (cancelled, or failed)."""
    return text_of(job.error) if job.error is not None else "Cancelled before it started."


def job_status(elem_id: str, job, describe) -> str:
    """Status HTML for a job in any state; describe(event) -> (text, done, total) for a running job's last event."""
    if job.state == "queued":
        return progress_html(elem_id, queued_text(job), 0, 1)
    if job.state == "running":
        ev = job.last
        if ev is None:
            return progress_html(elem_id, "starting (the training process loads the data and the model)", 0, 1)
        return progress_html(elem_id, *describe(ev))
    if job.state in ("cancelled", "failed"):
        return progress_html(elem_id, ended_text(job), 0, 1)
    return progress_html(elem_id, "done", 1, 1)


def stage_text(ev: dict) -> tuple[str, int, int]:
    """A stage event {"phase", "text", "done", "total"} as status text."""
    return f"{ev.get('phase', '')}: {ev.get('text', '')}", int(ev.get("done", 0)), int(ev.get("total", 1))


def run_job(kind: str, params: dict, request: gr.Request | None, show):
    """The one job stream every job tab uses: submit a job for this visitor and follow it, yielding show(job)
    while it waits or runs. Returns the finished job, or None when it was cancelled (after yielding show(job)
    once more, so the status says so); raises the job's error (written for the visitor) when it failed. A second
    job of the same visitor is refused at once (JobRefused). Closing the stream cancels the job (follow)."""
    job = submit(kind, params, request)
    for j in follow(job):
        if j.finished.is_set():
            break
        yield show(j)
    if job.state == "failed":
        raise job.error
    if job.state != "done":
        yield show(job)
        return None
    return job
