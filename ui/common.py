"""What every tab shares: the interactive and job concurrency groups, the hidden API buttons, checked numbers, the
sketchpad's emptiness, the upload box that leaves decoding to us, and code display (errors: ui/errors.py)."""
from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import math
import threading
from dataclasses import dataclass

import gradio as gr
import numpy as np

from core.errors import InputError, render, term
from core.settings import settings
from ui import first_screens, i18n, open_in_playground
from ui.errors import api

log = logging.getLogger("playground")

# Two paths. Interactive events (classify, sketch, sandboxes, AE/GAN, look inside, previews) answer in
# milliseconds and several visitors are served together. Jobs (fine-tune, resume, compression, ensembles,
# resampling, autocast timing) run one at a time in the job worker process (jobs/queue.py, its own queue
# with positions and Cancel); their Gradio handlers only follow a job, so a few may wait at once.
# Settings: PLAYGROUND_INTERACTIVE_CONCURRENCY, PLAYGROUND_JOB_HANDLERS (docs/configuration.md); read when the
# tabs are built, which is when Gradio takes them.
INTERACTIVE = dict(concurrency_id="interactive", concurrency_limit=max(1, settings().interactive_concurrency))
JOB = dict(concurrency_id="jobs", concurrency_limit=max(1, settings().job_handlers))
# A tab's own gr.Tabs(elem_classes=TABS_CLASS): on a phone its buttons wrap onto more rows instead of hiding behind
# Gradio's "..." menu (app.CSS)
TABS_CLASS = ["wrap-tabs"]


@dataclass(frozen=True)
class Place:
    """Where a tab is being built, handed to its build_tab by app.build_app instead of gradio's global context: the
    app's Blocks (its page-load events) and the tab's own gr.Tab (its select event: the work of a first visit).
    A tab built alone (a test) gets neither, and wires no such event."""

    demo: gr.Blocks | None = None
    tab: gr.Tab | None = None

    def on_load(self, fn, inputs, outputs, **kwargs):
        """demo.load(fn, ...) on every page load; None when the tab is built alone. A first screen: the visitor's
        own events cancel it while it is late (ui.first_screens.never_overwritten)."""
        event = None if self.demo is None else self.demo.load(fn, inputs, outputs, **kwargs)
        first_screens.remember(self.demo, event)
        return event

    def on_select(self, fn, inputs, outputs, **kwargs):
        """tab.select(fn, ...) when the visitor opens the tab; None when the tab is built alone. A first screen,
        as on_load's."""
        event = None if self.tab is None else self.tab.select(fn, inputs, outputs, **kwargs)
        first_screens.remember(self.demo, event)
        return event


ALONE = Place()


def whole_number(value, what: str, lo: int = 0, hi: int = 2**31 - 1) -> int:
    """A whole number a visitor typed into the field `what` (a catalogue key: "field.seed"), checked here rather than
    by gr.Number(minimum=..., maximum=...): Gradio's own check fails inside its preprocessing and paints every
    output of the event red, while an InputError from here reaches the status under the input (ui.errors.page) or
    the API caller (ui.errors.api)."""
    try:
        v = float(lo if value is None or value == "" else value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (math.isfinite(v) and v == int(v) and lo <= v <= hi):
        raise InputError("input.whole_number", what=term(what), lo=lo, hi=hi, value=str(value))
    return int(v)


def api_endpoint(fn, inputs, outputs, api_name: str, one_thread: bool = False, **kwargs):
    """Register `fn` as a named API endpoint only (a hidden button; every tab's API goes through here): its errors
    reach the caller as exceptions with the visitor's words (ui.errors.api), while the page's own events show them
    in a status box (ui.errors.page) and API callers keep getting the outputs they always got.

    one_thread: for a hot endpoint of small, fast outputs (/classify). Gradio hands every input component's
    preprocess and every output component's postprocess to a worker thread of its own, one after another: 7
    thread hops for /classify besides the function, each a handover of Python's GIL among the requests running
    at once. Here the event runs with preprocess=False and postprocess=False, and the same component methods
    run in the one thread that runs `fn` (uploads are still checked and moved into Gradio's cache by Gradio)."""
    fn = fn if hasattr(fn, "__api_of__") else api(fn)
    if one_thread:
        fn, processing = in_one_thread(fn, inputs, outputs)
        kwargs.update(processing)
    return gr.Button(visible=False, elem_classes=["api-only"]).click(fn, inputs, outputs, api_name=api_name, **kwargs)


_DRIVEN = threading.local()


def stop_requested() -> bool:
    """True in a streaming event's thread (in_one_thread) once its visitor cancelled it or left: a generator that
    waits for long between its items (a program that prints nothing) looks here and stops its work."""
    stop = getattr(_DRIVEN, "stop", None)
    return bool(stop is not None and stop.is_set())


def _in_one_thread(fn, inputs, outputs):
    """fn taking the event's serialized inputs and returning (or, a generator, yielding) serialized outputs,
    through the components' own preprocess and postprocess (what Gradio does between the two when they are on).
    Arguments past the inputs (the gr.Request Gradio adds for a parameter that asks for it) pass through; an
    update (gr.skip(), gr.update(...)) goes out as it is, as Gradio sends it.

    A generator runs from its first item to its last in one thread of its own, and the event is an async
    generator that awaits its items. Cancel or a closed page then reaches it at once (stop_requested): Gradio
    closes a sync generator only between two items, so a program that printed nothing ran on to its end (and its
    visitor's next Run was refused meanwhile). It also saves Gradio's worker-thread hop per item, the last one
    made only to learn that the generator ended: ~2 ms of the server's CPU per one-liner (docs/numbers.md)."""
    def pre(raw):
        args = []
        for comp, value in zip(inputs, raw):
            model = getattr(comp, "data_model", None)
            if value is not None and model is not None:
                value = model.model_validate(value, context={"validate_meta": True})
            args.append(comp.preprocess(value))
        return [*args, *raw[len(inputs):]]

    def post(result):
        result = result if len(outputs) > 1 else (result,)
        out = []
        for comp, value in zip(outputs, result):
            if not (isinstance(value, dict) and value.get("__type__") == "update"):
                value = comp.postprocess(value)
            out.append(value.model_dump() if hasattr(value, "model_dump") else value)
        return out if len(outputs) > 1 else out[0]

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        async def streaming(*raw, **kwargs):
            loop = asyncio.get_running_loop()
            items: asyncio.Queue = asyncio.Queue()
            stop = threading.Event()

            def hand(kind, value=None):
                try:
                    loop.call_soon_threadsafe(items.put_nowait, (kind, value))
                except RuntimeError:   # the loop is closed: the server is stopping
                    pass

            def drive():
                _DRIVEN.stop = stop
                it = None
                try:
                    it = fn(*pre(raw), **kwargs)
                    for result in it:
                        if stop.is_set():
                            break
                        hand("item", post(result))
                    hand("end")
                except BaseException as exc:  # noqa: BLE001 - raised again in the event's task
                    hand("error", exc)
                finally:
                    if it is not None:
                        it.close()
                    _DRIVEN.stop = None

            # the event's context (its request, language, temp-file owner) goes with it into the thread
            threading.Thread(target=contextvars.copy_context().run, args=(drive,), daemon=True,
                             name="event-stream").start()
            try:
                while True:
                    kind, value = await items.get()
                    if kind == "end":
                        return
                    if kind == "error":
                        raise value
                    yield value
            finally:
                stop.set()   # Cancel, a closed page, or the end: the thread stops at its next item

        return streaming

    @functools.wraps(fn)
    def wrapper(*raw, **kwargs):
        return post(fn(*pre(raw), **kwargs))

    return wrapper


def in_one_thread(fn, inputs, outputs) -> tuple:
    """(fn, kwargs) for a page event of small, fast outputs run as api_endpoint(one_thread=True) runs an
    endpoint: .click(fn, inputs, outputs, **kwargs, ...)."""
    return _in_one_thread(fn, inputs, outputs), dict(preprocess=False, postprocess=False)


def sketch_is_empty(sketch, *_, **__) -> bool:
    """True for a cleared or untouched sketchpad (nothing drawn), so it resets the results without an error."""
    if sketch is None:
        return True
    if not isinstance(sketch, dict):
        return False
    layers = [layer for layer in (sketch.get("layers") or []) if layer is not None]
    comp = sketch.get("composite")
    for a in layers or ([comp] if comp is not None else []):
        a = np.asarray(a)
        if a.ndim == 3 and a.shape[2] == 4:
            if a[:, :, 3].max() > 0:
                return False
        elif a.size and a.min() < 250:  # an opaque canvas: anything darker than white is ink
            return False
    return True


class ImageFile(gr.Image):
    """A gr.Image whose value reaches the callback as the uploaded file's path, not yet decoded.

    gr.Image(type="filepath") opens every upload with PIL before our code runs, so a non-image or a bomb
    fails inside Gradio with a stack-trace message. Here the path is passed through and zoo.images
    (size caps, bomb and truncation checks) decodes it and explains what is wrong. Same front-end widget.
    """

    is_template = True  # use gr.Image's front-end component
    # (no __init__ override: Gradio records constructor arguments as the front-end props; pass type="filepath")

    def preprocess(self, payload):
        if payload is None:
            return None
        if payload.path is None:  # a data: URL pasted from the clipboard: Gradio decodes it to a file
            try:
                return super().preprocess(payload)
            except Exception:  # noqa: BLE001
                raise gr.Error(render("image.pasted_not_image"), print_exception=False) from None
        return str(payload.path)


def code_block(label=None, value: str | None = None, **kw) -> gr.Code:
    """The code panel under a result; label: its page text (ui.i18n.label("key"); by default "PyTorch code that
    produces this result"). No max_lines: the panel grows with the code, so the line numbers run to the last line
    (a capped panel scrolled its text but stopped its gutter early)."""
    label = i18n.label("common.code.label") if label is None else label
    panel = gr.Code(value=value, label=label, language="python", interactive=False, lines=8, max_lines=None,
                    elem_classes=["code-panel"], **kw)
    open_in_playground.button_for(panel)
    return panel
