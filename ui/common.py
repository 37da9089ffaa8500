"""What every tab shares: the error boundary, the interactive and job concurrency groups, code display."""
from __future__ import annotations

import functools
import hashlib
import inspect
import io
import logging
import math
import os
import tempfile

import gradio as gr
import numpy as np
from PIL import Image

from core.errors import VisitorError, describe
from training.checkpoint import CheckpointError
from training.data.datasets import DatasetUnavailable
from core.settings import settings
from ui import open_in_playground
from zoo.hub import WeightsError, WeightsUnavailable, atomic_write_bytes
from zoo.images import ImageInputError

log = logging.getLogger("playground")

# Two paths. Interactive events (classify, sketch, sandboxes, AE/GAN, look inside, previews) answer in
# milliseconds and several visitors are served together. Jobs (fine-tune, resume, compression, ensembles,
# resampling, autocast timing) run one at a time in the job worker process (jobs/queue.py, its own queue
# with positions and Cancel); their Gradio handlers only follow a job, so a few may wait at once.
# Settings: PLAYGROUND_INTERACTIVE_CONCURRENCY, PLAYGROUND_JOB_HANDLERS (docs/configuration.md); read when the
# tabs are built, which is when Gradio takes them.
INTERACTIVE = dict(concurrency_id="interactive", concurrency_limit=max(1, settings().interactive_concurrency))
JOB = dict(concurrency_id="jobs", concurrency_limit=max(1, settings().job_handlers))


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is written for the user (shown as is): core.errors.VisitorError and its kin, and
    the two an exported run ships alone (training/data/datasets.py and training/checkpoint.py import nothing of
    ours)."""
    return (VisitorError, DatasetUnavailable, CheckpointError, ImageInputError, WeightsUnavailable, WeightsError)


def error_message(exc: BaseException, where: str) -> str:
    """The text a visitor sees for an exception: the one error model (core.errors.describe) decides; a
    ValueError from one of our checks of a visitor's value still says what is wrong (until each is an
    InputError); anything else is logged with an id and shown without internals."""
    if isinstance(exc, gr.Error):
        return str(exc.message)
    if isinstance(exc, user_errors()):
        return describe(exc, where)[1] if isinstance(exc, VisitorError) else _capital(str(exc))
    if isinstance(exc, ValueError):   # our checks of a value the visitor gave: the message says what is wrong
        return _capital(str(exc))
    return describe(exc, where)[1]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def friendly(fn):
    """Error boundary for a callback: expected errors become gr.Error with their message; anything else is
    logged with its traceback and shown as a short message. The server keeps serving either way.

    Use it for API endpoints (a gradio_client caller gets an exception with the message). For the UI, use
    `with_status`, which shows the message next to the input instead of painting every output red."""

    if inspect.isgeneratorfunction(fn):  # a streaming event stays a generator function (Gradio checks)
        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as exc:  # noqa: BLE001 - the boundary of a public server
                raise gr.Error(error_message(exc, fn.__name__), print_exception=False) from None

        return streaming

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary of a public server
            raise gr.Error(error_message(exc, fn.__name__), print_exception=False) from None

    return wrapper


KEEP = object()  # in a `with_status` reset tuple: leave this output as it is (gr.skip())


def status_box(elem_id: str | None = None) -> gr.Markdown:
    """The one place a tab's messages appear: put it right under the input it is about. Hidden while empty."""
    return gr.Markdown(visible=False, elem_id=elem_id, elem_classes=["input-status"])


def show_status(message: str = "") -> gr.Markdown:
    """An update for a status_box: the message, or hidden when there is none."""
    return gr.Markdown(value=message, visible=bool(message))


def whole_number(value, what: str, lo: int = 0, hi: int = 2**31 - 1) -> int:
    """A whole number a visitor typed, checked here rather than by gr.Number(minimum=..., maximum=...): Gradio's
    own check fails inside its preprocessing and paints every output of the event red, while a ValueError from
    here reaches the status line under the input (with_status) or the API caller (friendly)."""
    try:
        v = float(lo if value is None or value == "" else value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (math.isfinite(v) and v == int(v) and lo <= v <= hi):
        raise ValueError(f"{what} must be a whole number from {lo:,} to {hi:,} (got {value}).")
    return int(v)


def with_status(reset: tuple, empty=None):
    """Error boundary for UI events: a user error becomes a message in a status_box, not red "Error" badges.

    The decorated callback returns its outputs as usual; the wrapper appends ONE more output, the status
    (so list the status_box last in `outputs`). `reset` has one entry per output of the callback and says
    what each becomes when there is nothing to show: a value (None clears a picture, "" a text) or KEEP
    (untouched: e.g. the latent map, which does not depend on this input). Then:

    - success: the callback's outputs, and the status is hidden;
    - `empty(*args)` is true (e.g. a cleared sketchpad): the `reset` values and a hidden status, quietly;
    - a user error (bad file, blank image, weights that cannot be had, ValueError...): the `reset` values
      (no stale result next to the message) and the message in the status;
    - anything else: logged with its traceback; a short message in the status. The server keeps serving.

    API endpoints should keep raising (see `friendly` and `api_endpoint`), so a gradio_client caller gets an
    exception rather than a half-empty result:

        @with_status(reset=(None, None, ""), empty=sketch_is_empty)
        def classify_ui(sketch, model): ...
        sketch.change(classify_ui, [sketch, model], [label, picture, code, status])
    """

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            blank = tuple(gr.skip() if r is KEEP else r for r in reset)
            if empty is not None and empty(*args, **kwargs):
                return (*blank, show_status(""))
            try:
                out = fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the boundary of a public server
                return (*blank, show_status(error_message(exc, fn.__name__)))
            out = out if isinstance(out, tuple) else (out,)
            return (*out, show_status(""))

        if not fn.__name__.endswith("_ui"):  # keep the plain name free for the API endpoint of the same function
            wrapper.__name__ = wrapper.__qualname__ = f"{fn.__name__}_ui"
        return wrapper

    return deco


def api_endpoint(fn, inputs, outputs, api_name: str, one_thread: bool = False, **kwargs):
    """Register `fn` as a named API endpoint only (no button on the page): UI events can then show errors in a
    status_box while API callers keep getting the outputs they always got, and errors as exceptions.

    one_thread: for a hot endpoint of small, fast outputs (/classify). Gradio hands every input component's
    preprocess and every output component's postprocess to a worker thread of its own, one after another: 7
    thread hops for /classify besides the function, each a handover of Python's GIL among the requests running
    at once. Here the event runs with preprocess=False and postprocess=False, and the same component methods
    run in the one thread that runs `fn` (uploads are still checked and moved into Gradio's cache by Gradio)."""
    if one_thread:
        fn = _in_one_thread(fn, inputs, outputs)
        kwargs.update(preprocess=False, postprocess=False)
    return gr.Button(visible=False, elem_classes=["api-only"]).click(fn, inputs, outputs, api_name=api_name, **kwargs)


def _in_one_thread(fn, inputs, outputs):
    """fn taking the event's serialized inputs and returning serialized outputs, through the components' own
    preprocess and postprocess (what Gradio does between the two when they are on)."""
    @functools.wraps(fn)
    def wrapper(*raw):
        args = []
        for comp, value in zip(inputs, raw):
            model = getattr(comp, "data_model", None)
            if value is not None and model is not None:
                value = model.model_validate(value, context={"validate_meta": True})
            args.append(comp.preprocess(value))
        result = fn(*args)
        result = result if len(outputs) > 1 else (result,)
        out = []
        for comp, value in zip(outputs, result):
            value = comp.postprocess(value)
            out.append(value.model_dump() if hasattr(value, "model_dump") else value)
        return out if len(outputs) > 1 else out[0]

    return wrapper


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
                raise gr.Error("The pasted data is not an image.", print_exception=False) from None
        return str(payload.path)


def example_png(arr, key: str) -> str:
    """An example picture as a PNG file for an upload box: written once per key, atomically (two visitors
    picking the same example never read a half-written file)."""
    name = hashlib.sha1(key.encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), "playground-examples", f"{name}.png")
    if not os.path.exists(path):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        atomic_write_bytes(path, buf.getvalue())
    return path


def code_block(label: str = "PyTorch code that produces this result", value: str | None = None, **kw) -> gr.Code:
    """The code panel under a result. No max_lines: the panel grows with the code, so the line numbers run to
    the last line (a capped panel scrolled its text but stopped its gutter early)."""
    panel = gr.Code(value=value, label=label, language="python", interactive=False, lines=8, max_lines=None,
                    elem_classes=["code-panel"], **kw)
    open_in_playground.button_for(panel)
    return panel
