"""What the Ensembles and the Compression sub-tabs share: their digits models, and a job endpoint's stream
(queue position and stage in a status box beside the button, Cancel)."""
from __future__ import annotations

import gradio as gr

from ui.common import JOB, friendly
from ui.jobstream import cancel_session, follow, job_status, progress_html, stage_text, submit, ui_twin
from zoo import list_models

COMMON = JOB


def digits_models() -> list[str]:
    return list_models("digits")


def run_job(elem_id: str, kind: str, params: dict, n_outs: int, request):
    """Submit and follow a job: yields (skip..., status) while it waits or runs; returns the finished job, or
    None when it was cancelled. A refused or failed job raises (the API's error; the page's twin shows it)."""
    skip = gr.skip()
    job = submit(kind, params, request)
    for j in follow(job):
        if j.finished.is_set():
            break
        yield (skip,) * n_outs + (job_status(elem_id, j, stage_text),)
    if job.state == "failed":
        raise gr.Error(str(job.error), print_exception=False)
    if job.state != "done":
        yield (skip,) * n_outs + (job_status(elem_id, job, stage_text),)
        return None
    return job


def twin(fn, elem_id: str, n_outs: int):
    """The page's version of a job endpoint: a problem shows in the status beside the button."""
    return ui_twin(fn, lambda text: (gr.skip(),) * n_outs + (progress_html(elem_id, text, 0, 1, error=True),))


@friendly
def cancel(request: gr.Request = None):
    """Take this visitor's job out of the queue, or stop it after its current step (/cancel does the same)."""
    return cancel_session(request)
