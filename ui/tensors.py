"""Tensors tab: type PyTorch tensor code, see every named result's value, shape, dtype, device, stride and a
heatmap or histogram; the code runs in the sandbox (playground/evaluator.py, playground/pool.py)."""
from __future__ import annotations

import os

import gradio as gr

from playground.limits import WORKERS, Limits
from playground.pool import SandboxBusy, SandboxUnavailable, run_tensors
from playground.pool import prewarm as start_worker
from playground.presets import DEFAULT_TENSOR, TENSOR_PRESETS
from ui.common import code_block, friendly

HEADERS = ["line", "name / expression", "shape", "dtype", "device", "requires_grad", "grad_fn", "stride",
           "contiguous"]
# The sandbox events (Tensors and Autograd) share their own group: several run together, and the pool
# (playground/pool.py: one program per session, per-address cap, fair order) bounds the work. Twice the pool
# size plus two lets refused requests answer at once while every worker is busy.
SANDBOX_CONCURRENCY = dict(concurrency_id="sandbox", concurrency_limit=2 * WORKERS + 2)
# Tensor values are printed with aligned columns; they need a monospace font.
MONO_CSS = ("<style>#tensor-result textarea, #autograd-result textarea "
            "{font-family: var(--font-mono, ui-monospace, monospace) !important}</style>")


def visitor(request: gr.Request | None) -> dict:
    """Who is asking: the session (one program at a time each) and the client address (fair share). On a Space
    every request comes through its proxy, so the address is the first hop of X-Forwarded-For there; elsewhere
    the header is not trusted (anyone can send it) and the socket peer is used."""
    if request is None:
        return {}
    host = getattr(getattr(request, "client", None), "host", None)
    if os.environ.get("SPACE_ID"):
        forwarded = (getattr(request, "headers", None) or {}).get("x-forwarded-for", "")
        host = forwarded.split(",")[0].strip() or host
    return {"session": getattr(request, "session_hash", None), "address": host}


def stopped(exc: Exception) -> str:
    """The result text for a program the sandbox refused to start or stopped."""
    return f"Not run: {exc}" if isinstance(exc, SandboxBusy) else f"Stopped: {exc}"


def limits_note() -> None:
    """The line that says which limits apply on this machine, and the monospace style for the results."""
    gr.HTML(f"<p>{Limits().describe(WORKERS)}.</p>", head=MONO_CSS, elem_classes=["sandbox-limits"],
            js_on_load=None)


@friendly
def tensor_eval(code: str = TENSOR_PRESETS[DEFAULT_TENSOR], request: gr.Request = None):
    """Run a tensor program in the sandbox (the public API: /tensor_eval). Returns the result text first."""
    try:
        r = run_tensors(code or "", **visitor(request))
    except SandboxUnavailable as exc:
        return stopped(exc), [], [], ""
    return r["text"], r["rows"], [(img, caption) for img, caption in r["images"]], r["code"]


def prewarm() -> None:
    """Start a sandbox worker in the background when a visitor starts typing (a cold start takes seconds)."""
    start_worker()


def load_preset(name: str) -> str:
    return TENSOR_PRESETS.get(name, "")


def build_tab() -> None:
    gr.Markdown("Type PyTorch tensor code: assignments and expressions over `torch` (no imports needed; `device` is "
                "the playground's device). Each named result shows its value, shape, dtype, device, requires_grad, "
                "stride and contiguity; 2-D tensors get a heatmap, larger ones a histogram. The code runs in a "
                "sandbox: only an allow-list of torch functions and Tensor methods, every allocation size-checked "
                "on the `meta` device first, in a separate process with CPU, memory and time limits.")
    limits_note()
    with gr.Row():
        with gr.Column(scale=1):
            preset = gr.Dropdown(list(TENSOR_PRESETS), value=DEFAULT_TENSOR, label="Preset (tutorial section 2.1 "
                                 "and more)", elem_id="tensor-preset")
            code = gr.Code(TENSOR_PRESETS[DEFAULT_TENSOR], language="python", interactive=True, lines=12,
                           label="Your PyTorch code", elem_id="tensor-code")
            run = gr.Button("Run", variant="primary", elem_id="tensor-run")
        with gr.Column(scale=1):
            result = gr.Textbox(label="Result (values, shapes, errors as PyTorch reports them)", lines=20,
                                max_lines=40, elem_id="tensor-result")
    pictures = gr.Gallery(label="Heatmaps (2-D) and histograms (larger tensors)", columns=3, height="auto",
                          object_fit="contain", elem_id="tensor-pictures")
    table = gr.Dataframe(headers=HEADERS, label="Every named result", interactive=False, elem_id="tensor-table")
    plain = code_block("The same as a plain PyTorch script")

    outputs = [result, table, pictures, plain]
    common = SANDBOX_CONCURRENCY
    code.focus(prewarm, None, None, api_visibility="private", queue=False, show_progress="hidden")
    run.click(tensor_eval, [code], outputs, api_name="tensor_eval", **common)
    preset.change(load_preset, preset, code, api_visibility="private").then(
        tensor_eval, [code], outputs, api_visibility="private", **common)
