"""Autograd tab: write leaves with requires_grad=True and an expression (or the tutorial's Net), call
backward(), see every leaf's .grad and the autograd graph; the Train button repeats the `# step` block
(forward, loss, backward, optimizer.step()) and plots the loss. The page's text is gr.I18n's; what a run writes
(the result's lines, the tables' headers, the status, the loss plot's titles) is in the request's language."""
from __future__ import annotations

import time

import gradio as gr
import pandas as pd

from core.i18n import t
from playground.pool import run_autograd, sandbox_mode
from playground.pool import prewarm as start_worker
from playground.presets import AUTOGRAD_PRESETS, DEFAULT_AUTOGRAD, WHOLE_PROGRAM_AUTOGRAD, preset as preset_code
from ui.common import ALONE, Place, code_block, in_one_thread
from ui.errors import api
from ui import first_screens
from ui.i18n import follow_headers, label, request_language
from ui.tensors import (SANDBOX_CONCURRENCY, cancelled_note, initial_code, limits_html, limits_note, mode_note,
                        preset_choices, run_status, running, stopped, streamed, visitor)

DEFAULT_CODE = AUTOGRAD_PRESETS[DEFAULT_AUTOGRAD]
LEAF_KEYS = ["autograd.col.leaf", "autograd.col.shape", "autograd.col.data", "autograd.col.grad"]
STEP_KEYS = ["autograd.col.parameter", "autograd.col.before", "autograd.col.grad", "autograd.col.after"]
LEAF_HEADERS = [t(k, "en") for k in LEAF_KEYS]
STEP_HEADERS = [t(k, "en") for k in STEP_KEYS]


def _loss_frame(losses: list[float]):
    return pd.DataFrame({"step": list(range(1, len(losses) + 1)), "loss": [float(x) for x in losses]})


def _curve(losses: list[float], language: str = "en") -> gr.LinePlot:
    """The loss plot with its title and axes in `language` (a plot's text is not carried by gr.I18n). Only the page
    load's events (private) send it: the API's events send the curve's value alone, as they always did, and the
    titles the page load wrote stay."""
    return gr.LinePlot(_loss_frame(losses), title=t("autograd.curve.title", language),
                       x_title=t("autograd.curve.step", language), y_title=t("autograd.curve.loss", language))


def _table(keys: list[str], rows: list, language: str = "en") -> dict:
    return {"headers": [t(k, language) for k in keys], "data": rows}


def _outputs(r: dict, language: str = "en", curve=_loss_frame):
    return (r["text"], r["graph"], _table(LEAF_KEYS, r["leaves"], language),
            _table(STEP_KEYS, r["step_rows"], language), curve(r["losses"]), r["code"])


def _failed(exc, language: str = "en") -> tuple:
    return (stopped(exc, language), None, _table(LEAF_KEYS, [], language), _table(STEP_KEYS, [], language),
            _loss_frame([]), "")


def _note(r: dict, started: float, language: str = "en") -> str:
    """The status line beside the result (the same as the Tensors tab's: tensors.run_status)."""
    if "notes" not in r:   # the restricted language
        return mode_note(language)
    return run_status(r, started, language)


def _run(code: str, lr: float, steps: int, request, extra=()):
    """The streamed run behind both buttons: partial printed output, then every output (and `extra`)."""
    who = visitor(request)
    language = request_language(request)   # the page's choice, else Accept-Language
    started = time.perf_counter()

    def finish(box):
        if "error" in box:
            return (*_failed(box["error"], language), f"**{stopped(box['error'], language)}**", *extra[1:])
        r = box["value"]
        return (*_outputs(r, language), _note(r, started, language), *extra[:1])

    for kind, value in streamed(lambda out, cancelled: run_autograd(code or "", lr=float(lr), steps=steps,
                                                                    on_output=out, cancelled=cancelled,
                                                                    language=language, **who),
                                finish):
        if kind == "partial":
            yield ((value or "")[-20000:], *[gr.skip()] * 5, running(language), *[gr.skip()] * len(extra[:1]))
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


def first_screen_outputs(language: str = "en") -> tuple:
    """The default program's outputs in one language, for every visitor's first screen (ui/first_screens.py: once
    per server and language)."""
    r = run_autograd(preset_code(DEFAULT_AUTOGRAD, language), lr=0.01, steps=0, language=language)
    return (*_outputs(r, language, lambda losses: _curve(losses, language)),
            t("autograd.status.first_screen", language) if "notes" in r else mode_note(language))


def cold_outputs(language: str = "en") -> tuple:
    """While the sandbox starts: the tables' headers, the plot's titles and the status in the visitor's language."""
    return (gr.skip(), gr.skip(), _table(LEAF_KEYS, [], language), _table(STEP_KEYS, [], language),
            _curve([], language), gr.skip(), first_screens.cold_start(language))


def prewarm() -> None:
    """Start a sandbox worker in the background when a visitor starts typing (a cold start takes seconds)."""
    start_worker()


def load_preset(name: str, request: gr.Request = None):
    """A preset's code, its comments in the visitor's language, and no steps done."""
    return (preset_code(name, request_language(request)) if name in AUTOGRAD_PRESETS else ""), 0


def build_tab(place: Place = ALONE) -> None:
    gr.Markdown(label("autograd.intro"))
    limits = limits_note()
    steps_done = gr.State(0)
    with gr.Row():
        with gr.Column(scale=1):
            shown = [n for n in AUTOGRAD_PRESETS if sandbox_mode() != "restricted" or n not in WHOLE_PROGRAM_AUTOGRAD]
            preset = gr.Dropdown(preset_choices(shown), value=DEFAULT_AUTOGRAD, label=label("autograd.preset.label"),
                                 elem_id="autograd-preset")
            code = gr.Code(DEFAULT_CODE, language="python", interactive=True, lines=14,
                           label=label("autograd.code.label"), elem_id="autograd-code")
            with gr.Row():
                lr = gr.Slider(0.001, 1.0, value=0.01, step=0.001, label=label("autograd.lr.label"),
                               elem_id="autograd-lr")
                per_click = gr.Slider(1, 50, value=10, step=1, label=label("autograd.per_click.label"))
            with gr.Row():
                run = gr.Button(label("autograd.run"), variant="primary", elem_id="autograd-run")
                train = gr.Button(label("autograd.train"), elem_id="autograd-train")
                reset = gr.Button(label("autograd.reset"), elem_id="autograd-reset")
                cancel = gr.Button(label("sandbox.cancel"), elem_id="autograd-cancel")
        with gr.Column(scale=1):
            result = gr.Textbox(label=label("autograd.result.label"), lines=16, max_lines=40,
                                elem_id="autograd-result")
            status = gr.Markdown(elem_id="autograd-status")
    graph = gr.Image(label=label("autograd.graph.label"), type="numpy", interactive=False, elem_id="autograd-graph")
    with gr.Row():
        leaves = gr.Dataframe(headers=LEAF_HEADERS, label=label("autograd.leaves.label"), interactive=False,
                              elem_id="autograd-leaves")
        step_table = gr.Dataframe(headers=STEP_HEADERS, label=label("autograd.steps.label"), interactive=False,
                                  elem_id="autograd-steps")
    follow_headers(leaves, LEAF_KEYS)       # after a switch of language (ui.i18n)
    follow_headers(step_table, STEP_KEYS)
    curve = gr.LinePlot(_loss_frame([]), x="step", y="loss", title=t("autograd.curve.title", "en"),
                        x_title=t("autograd.curve.step", "en"), y_title=t("autograd.curve.loss", "en"), height=260,
                        elem_id="autograd-loss")
    plain = code_block(label("sandbox.plain.label"))

    outputs = [result, graph, leaves, step_table, curve, plain, status]
    common = SANDBOX_CONCURRENCY
    code.focus(prewarm, None, None, api_visibility="private", queue=False, show_progress="hidden")
    # a run's outputs are processed in the thread that runs it (ui.common.in_one_thread): one thread per run, and
    # Cancel or a closed page stops even a program that prints nothing
    run_fn, one_thread = in_one_thread(autograd_run, [code, lr], outputs)
    train_fn, _ = in_one_thread(autograd_train, [code, lr, steps_done, per_click], [*outputs, steps_done])
    ran = run.click(run_fn, [code, lr], outputs, api_name="autograd_run", **one_thread, **common)
    trained = train.click(train_fn, [code, lr, steps_done, per_click], [*outputs, steps_done],
                          api_name="autograd_train", **one_thread, **common)
    first_screens.install(place, "autograd", first_screen_outputs, outputs, cold_outputs,
                          [run.click, train.click, preset.change],
                          extra=[(limits, limits_html), (code, initial_code(DEFAULT_AUTOGRAD))])
    reset.click(lambda: (0, _loss_frame([])), None, [steps_done, curve], api_visibility="private")
    for changed in (code, lr):
        changed.change(lambda: 0, None, steps_done, api_visibility="private", queue=False)
    loaded = preset.change(load_preset, preset, [code, steps_done], api_visibility="private").then(
        run_fn, [code, lr], outputs, api_visibility="private", **one_thread, **common)
    cancel.click(cancelled_note, None, status, cancels=[ran, trained, loaded], api_visibility="private", queue=False)
