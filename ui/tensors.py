"""Tensors tab: type PyTorch tensor code, see every named result's value, shape, dtype, device, stride and a
heatmap or histogram; the code runs in the sandbox (playground/evaluator.py, playground/worker.py)."""
from __future__ import annotations

import gradio as gr

from playground.presets import DEFAULT_TENSOR, TENSOR_PRESETS
from ui.common import GPU_CONCURRENCY_ID, GPU_CONCURRENCY_LIMIT, code_block, friendly

HEADERS = ["line", "name / expression", "shape", "dtype", "device", "requires_grad", "grad_fn", "stride",
           "contiguous"]


@friendly
def tensor_eval(code: str = TENSOR_PRESETS[DEFAULT_TENSOR]):
    """Run a tensor program in the sandbox (the public API: /tensor_eval). Returns the result text first."""
    from playground.worker import SandboxUnavailable, run_tensors

    try:
        r = run_tensors(code or "")
    except SandboxUnavailable as exc:
        return f"Stopped: {exc}", [], [], ""
    return r["text"], r["rows"], [(img, caption) for img, caption in r["images"]], r["code"]


def prewarm() -> None:
    """Start the sandbox worker in the background when a visitor starts typing (a cold start takes seconds)."""
    from playground.worker import prewarm as start

    start()


def load_preset(name: str) -> str:
    return TENSOR_PRESETS.get(name, "")


def build_tab() -> None:
    gr.Markdown("Type PyTorch tensor code: assignments and expressions over `torch` (no imports needed; `device` is "
                "the playground's device). Each named result shows its value, shape, dtype, device, requires_grad, "
                "stride and contiguity; 2-D tensors get a heatmap, larger ones a histogram. The code runs in a "
                "sandbox: only an allow-list of torch functions and Tensor methods, every allocation size-checked "
                "on the `meta` device first, in a separate process with CPU, memory and time limits.")
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
    common = dict(concurrency_id=GPU_CONCURRENCY_ID, concurrency_limit=GPU_CONCURRENCY_LIMIT)
    code.focus(prewarm, None, None, api_visibility="private", queue=False, show_progress="hidden")
    run.click(tensor_eval, [code], outputs, api_name="tensor_eval", **common)
    preset.change(load_preset, preset, code, api_visibility="private").then(
        tensor_eval, [code], outputs, api_visibility="private", **common)
