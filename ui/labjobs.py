"""What the Ensembles and the Compression sub-tabs share: their digits models, and a job's stream (queue position
and stage in a status box beside the button; Cancel is ui.jobstream.cancel_button)."""
from __future__ import annotations

import gradio as gr

from ui.common import JOB
from ui.i18n import request_language
from ui.jobstream import job_status, run_job, stage_text
from zoo import list_models

COMMON = JOB


def digits_models() -> list[str]:
    return list_models("digits")


def lab_job(elem_id: str, kind: str, params: dict, n_outs: int, request):
    """Submit and follow a job: yields (skip..., status) while it waits or runs; returns the finished job, or
    None when it was cancelled. A refused or failed job raises (the API's error; the page shows it under the
    button)."""
    skip = gr.skip()
    language = request_language(request)

    def show(job):
        return (skip,) * n_outs + (job_status(elem_id, job, stage_text, language),)

    return (yield from run_job(kind, params, request, show))

