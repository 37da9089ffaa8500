"""Gradio side of jobs (jobs/queue.py): the job stream (run_job: submit for this session, follow while yielding
updates, the job's error raised for the tab's error boundary, ui/errors.py), queue/progress status HTML, and the
per-session Cancel. Shared by the Fine-tune, Compression, Ensembles and Data tabs."""
from __future__ import annotations

import html

import gradio as gr

from core.errors import render, text_of
from core.i18n import N_, t
from jobs.queue import CANCEL_NOTHING, CANCELLING, get_queue
from ui.admission import client_ip
from ui.errors import api
from ui.i18n import request_language

POLL_S = 0.5
# A stage event's phase (jobs/kinds.py) -> its name in the catalogue
PHASES = {"compressing": N_("job.phase.compressing"), "building the ensemble": N_("job.phase.ensemble"),
          "resampling": N_("job.phase.resampling"), "decoding the zip": N_("job.phase.zip"),
          "timing": N_("job.phase.timing"), "saving": N_("job.phase.saving")}


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


def cancel_session(request: gr.Request | None, cancelling: str | None = None) -> str:
    """Cancel this visitor's job and say what happened in their language; `cancelling`: the tab's own words
    (a catalogue key) for a running job that stops after its step in flight."""
    key = get_queue().request_cancel(session(request))
    return t(cancelling if cancelling and key == CANCELLING else key, request_language(request))


def cancel_button(button: gr.Button, output, cancelling: str | None = None, api_name: str | None = None):
    """Wire a job tab's Cancel (every job tab's, the one way): this visitor's job leaves the queue, or stops after
    its step in flight. Not queued behind the jobs' handlers (concurrency_limit=None): a Cancel never waits for
    the job it cancels.

    On the page the job's own stream says so (job_status: "Cancelling..." while the step in flight ends, then
    "Cancelled"), not the click's reply: `output` is one of the job's outputs too, and a reply that reached the
    page after the job's last message replaced "Cancelled" with "Cancelling..." for good. With no job to cancel,
    the click says so in a notice. api_name: also an API endpoint of that name (/cancel) on a hidden button,
    whose reply is the words (cancelling: the tab's own, a catalogue key, for a running job)."""

    def cancel_job(request: gr.Request = None):
        """The page's Cancel: the stream reports a cancelled job; a notice says when there was none."""
        key = get_queue().request_cancel(session(request))
        if key == CANCEL_NOTHING:
            gr.Info(t(key, request_language(request)))
        return gr.skip()

    def cancel(request: gr.Request = None):
        """Take this visitor's job out of the queue, or stop it after its current step (a fine-tune keeps its
        best weights)."""
        return cancel_session(request, cancelling)

    # The page's Cancel has a function name of its own: Gradio names an event after its function, and /cancel is
    # Fine-tune's public endpoint.
    event = button.click(api(cancel_job), None, output, concurrency_limit=None, api_visibility="private")
    if api_name:
        gr.Button(visible=False, elem_classes=["api-only"]).click(api(cancel), None, output, concurrency_limit=None,
                                                                  api_name=api_name)
    return event


def progress_html(elem_id: str, text: str, done: int, total: int) -> str:
    pct = 100.0 * done / max(1, total)
    bar = f"<progress value='{done}' max='{max(1, total)}' style='width:100%'></progress>"
    return f"<div id='{elem_id}'>{bar}<div>{html.escape(text)} ({pct:.0f}%)</div></div>"


def queued_text(job, language: str | None = None) -> str:
    pos = get_queue().position(job)
    return t("job.status.queued_one" if pos == 1 else "job.status.queued", language, n=pos)


def ended_text(job, language: str | None = None) -> str:
    """How a job that did not finish ended, in the visitor's words (cancelled, or failed)."""
    return text_of(job.error, language) if job.error is not None else t("job.status.cancelled_early", language)


def job_status(elem_id: str, job, describe, language: str | None = None) -> str:
    """Status HTML for a job in any state, in a language; describe(event, language) -> (text, done, total) for a
    running job's last event."""
    if job.state == "queued":
        return progress_html(elem_id, queued_text(job, language), 0, 1)
    if job.state == "running":
        if job.cancel_requested.is_set():                  # the visitor's Cancel: the step in flight ends first
            return progress_html(elem_id, t(CANCELLING, language), 0, 1)
        ev = job.last
        if ev is None:
            return progress_html(elem_id, t("job.status.starting", language), 0, 1)
        return progress_html(elem_id, *describe(ev, language))
    if job.state in ("cancelled", "failed"):
        return progress_html(elem_id, ended_text(job, language), 0, 1)
    return progress_html(elem_id, t("job.status.done", language), 1, 1)


def event_text(ev: dict, language: str | None = None) -> str:
    """A stage event's words in a language (its catalogue key where it has one, else its English text)."""
    if isinstance(ev.get("key"), str):
        return render(ev["key"], ev.get("values") or {}, language)
    return str(ev.get("text", ""))


def phase_text(phase: str, language: str | None = None) -> str:
    """A stage event's phase ("compressing") in a language."""
    return t(PHASES[phase], language) if phase in PHASES else phase


def stage_text(ev: dict, language: str | None = None) -> tuple[str, int, int]:
    """A stage event {"phase", "text", "done", "total"} as status text."""
    text = t("job.status.stage", language, phase=phase_text(ev.get("phase", ""), language),
             text=event_text(ev, language))
    return text, int(ev.get("done", 0)), int(ev.get("total", 1))


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
