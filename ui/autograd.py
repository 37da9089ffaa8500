"""Autograd tab: write leaves with requires_grad=True and an expression (or the tutorial's Net), call
backward(), see every leaf's .grad and the autograd graph; the Train button repeats the `# step` block
(forward, loss, backward, optimizer.step()) and plots the loss."""
from __future__ import annotations

import time

import gradio as gr
import pandas as pd

from playground.pool import run_autograd, sandbox_mode
from playground.pool import prewarm as start_worker
from playground.presets import AUTOGRAD_PRESETS, DEFAULT_AUTOGRAD, WHOLE_PROGRAM_AUTOGRAD
from ui.common import ALONE, Place, code_block
from ui.errors import api
from ui import first_screens
from ui.tensors import (SANDBOX_CONCURRENCY, run_status, cancelled_note, limits_note, mode_note, stopped, streamed,
                        visitor)

DEFAULT_CODE = AUTOGRAD_PRESETS[DEFAULT_AUTOGRAD]
LEAF_HEADERS = ["leaf", "shape", "data", "grad"]
STEP_HEADERS = ["parameter", "before step", "grad", "after step"]


def _loss_frame(losses: list[float]):
    return pd.DataFrame({"step": list(range(1, len(losses) + 1)), "loss": [float(x) for x in losses]})


def _outputs(r: dict):
    return (r["text"], r["graph"], r["leaves"], r["step_rows"], _loss_frame(r["losses"]), r["code"])


def _failed(exc) -> tuple:
    return (stopped(exc), None, [], [], _loss_frame([]), "")


def _note(r: dict, started: float) -> str:
    """The status line beside the result (the same as the Tensors tab's: tensors.run_status)."""
    if "notes" not in r:   # the restricted language
        return mode_note()
    return run_status(r, started)


def _run(code: str, lr: float, steps: int, request, extra=()):
    """The streamed run behind both buttons: partial printed output, then every output (and `extra`)."""
    who = visitor(request)
    started = time.perf_counter()

    def finish(box):
        if "error" in box:
            return (*_failed(box["error"]), f"**{stopped(box['error'])}**", *extra[1:])
        r = box["value"]
        return (*_outputs(r), _note(r, started), *extra[:1])

    for kind, value in streamed(lambda out, cancelled: run_autograd(code or "", lr=float(lr), steps=steps,
                                                                    on_output=out, cancelled=cancelled, **who),
                                finish):
        if kind == "partial":
            yield ((value or "")[-20000:], *[gr.skip()] * 5, "Running...", *[gr.skip()] * len(extra[:1]))
        else:
            yield value


@api
def autograd_run(code: str = DEFAULT_CODE, lr: float = 0.01, request: gr.Request = None):
    """Run the program once, call backward(), draw the graph (the public API: /autograd_run).
    Returns (result text, graph image, leaf grads, optimizer step table, loss curve, plain PyTorch code, notes)."""
    yield from _run(code, lr, 0, request)


@api
def autograd_train(code: str = DEFAULT_CODE, lr: float = 0.01, steps_done: int = 0, steps_per_click: int = 10,
                   request: gr.Request = None):
    """Run setup, then the `# step` block steps_done + steps_per_click times (from the same seed, so clicks add
    up like one long run); returns autograd_run's outputs plus the new step count."""
    total = int(steps_done or 0) + int(steps_per_click)
    yield from _run(code, lr, total, request, extra=(total, int(steps_done or 0)))


def first_screen_outputs() -> tuple:
    """The default program's outputs, for every visitor's first screen (ui/first_screens.py; once per server)."""
    r = run_autograd(DEFAULT_CODE, lr=0.01, steps=0)
    note = "The tutorial's Net, run when the server started: press Run + backward() or Train."
    return (*_outputs(r), note if "notes" in r else mode_note())


def prewarm() -> None:
    """Start a sandbox worker in the background when a visitor starts typing (a cold start takes seconds)."""
    start_worker()


def load_preset(name: str):
    return AUTOGRAD_PRESETS.get(name, ""), 0


def build_tab(place: Place = ALONE) -> None:
    gr.Markdown("Give leaves `requires_grad=True`, build an expression or a model (the tutorial's `class Net` "
                "runs as printed), call `backward()`: see every leaf's `.grad` and the real autograd graph of the "
                "last tensor `backward()` was called on (grad_fn nodes; leaves with data and grad). **Train** "
                "repeats the lines below a `# step` comment (forward, loss, backward, `optimizer.step()`): "
                "parameters before and after, and the loss curve. `lr` is the slider's value.")
    limits_note()
    steps_done = gr.State(0)
    with gr.Row():
        with gr.Column(scale=1):
            shown = [n for n in AUTOGRAD_PRESETS if sandbox_mode() != "restricted" or n not in WHOLE_PROGRAM_AUTOGRAD]
            preset = gr.Dropdown(shown, value=DEFAULT_AUTOGRAD, label="Preset",
                                 elem_id="autograd-preset")
            code = gr.Code(DEFAULT_CODE, language="python", interactive=True, lines=14, label="Your PyTorch code",
                           elem_id="autograd-code")
            with gr.Row():
                lr = gr.Slider(0.001, 1.0, value=0.01, step=0.001, label="lr (SGD learning rate)",
                               elem_id="autograd-lr")
                per_click = gr.Slider(1, 50, value=10, step=1, label="steps per Train click")
            with gr.Row():
                run = gr.Button("Run + backward()", variant="primary", elem_id="autograd-run")
                train = gr.Button("Train step(s)", elem_id="autograd-train")
                reset = gr.Button("Reset training", elem_id="autograd-reset")
                cancel = gr.Button("Cancel", elem_id="autograd-cancel")
        with gr.Column(scale=1):
            result = gr.Textbox(label="Result: gradients, optimizer step, loss, what the program printed",
                                lines=16, max_lines=40, elem_id="autograd-result")
            status = gr.Markdown(elem_id="autograd-status")
    graph = gr.Image(label="Autograd graph", type="numpy", interactive=False, elem_id="autograd-graph")
    with gr.Row():
        leaves = gr.Dataframe(headers=LEAF_HEADERS, label="Leaves and their .grad", interactive=False,
                              elem_id="autograd-leaves")
        step_table = gr.Dataframe(headers=STEP_HEADERS, label="Last optimizer.step()", interactive=False,
                                  elem_id="autograd-steps")
    curve = gr.LinePlot(_loss_frame([]), x="step", y="loss", title="Loss over training steps", height=260,
                        elem_id="autograd-loss")
    plain = code_block("The same as a plain PyTorch script")

    outputs = [result, graph, leaves, step_table, curve, plain, status]
    common = SANDBOX_CONCURRENCY
    code.focus(prewarm, None, None, api_visibility="private", queue=False, show_progress="hidden")
    ran = run.click(autograd_run, [code, lr], outputs, api_name="autograd_run", **common)
    trained = train.click(autograd_train, [code, lr, steps_done, per_click], [*outputs, steps_done],
                          api_name="autograd_train", **common)
    first_screens.install("autograd", first_screen_outputs, outputs, status, [run.click, train.click, preset.change])
    reset.click(lambda: (0, _loss_frame([])), None, [steps_done, curve], api_visibility="private")
    for changed in (code, lr):
        changed.change(lambda: 0, None, steps_done, api_visibility="private", queue=False)
    loaded = preset.change(load_preset, preset, [code, steps_done], api_visibility="private").then(
        autograd_run, [code, lr], outputs, api_visibility="private", **common)
    cancel.click(cancelled_note, None, status, cancels=[ran, trained, loaded], api_visibility="private", queue=False)
