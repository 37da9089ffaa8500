"""How the UI shows an error, the same way in every tab. The words come from the one decision (core.errors.describe:
a visitor error's message from the catalogue, anything else logged with its traceback and shown as "Something went
wrong" with the id the log holds). Then:

- on the page (`page`): the message appears in a status box (`status_box`) right under the input it is about, and
  the event's outputs are reset to what `reset` says (no stale result next to the message, no red "Error" badges
  over every output); a streaming event (a job) shows its updates, and a failure ends it the same way;
- through the API (`api`): the same words as an exception (gr.Error), which a gradio_client caller receives.

A tab writes its function once, for the API, and shows it on the page with `page(reset)(fn)`; `endpoint` registers
the hidden API button. Both work for plain functions and for generators (streams).

The words are in the language of the event's request (ui.i18n.event_language: the page's language, else the
request's Accept-Language), the same for the page and for an API caller.
"""
from __future__ import annotations

import functools
import inspect

import gradio as gr

from core.errors import describe
from ui.i18n import event_language

KEEP = object()  # in a `page` reset tuple: leave this output as it is (gr.skip())


def message(exc: BaseException, where: str = "", language: str | None = None) -> str:
    """The words a visitor reads for an exception, in `language` (None: the event's request's); a gr.Error raised
    by Gradio's own checks keeps its own."""
    if isinstance(exc, gr.Error):
        return str(exc.message)
    return describe(exc, where, language or event_language())[1]


def status_box(elem_id: str | None = None) -> gr.Markdown:
    """The one place a tab's messages appear: put it right under the input it is about. Hidden while empty."""
    return gr.Markdown(visible=False, elem_id=elem_id, elem_classes=["input-status"])


def show_status(text: str = "") -> gr.Markdown:
    """An update for a status_box: the message, or hidden when there is none."""
    return gr.Markdown(value=text, visible=bool(text))


def _raw(fn):
    """The function an `api` wrapper wraps (the page shows its errors itself)."""
    return getattr(fn, "__api_of__", fn)


def api(fn):
    """An API endpoint's error boundary: any failure reaches the caller as gr.Error with its words; the server
    keeps serving. For a generator (a job's stream) too: closing the stream closes fn's generator."""
    if inspect.isgeneratorfunction(fn):  # a streaming event stays a generator function (Gradio checks)
        @functools.wraps(fn)
        def streaming(*args, **kwargs):
            it = fn(*args, **kwargs)
            try:
                while True:
                    try:
                        item = next(it)
                    except StopIteration:
                        return
                    except gr.Error:
                        raise
                    except Exception as exc:  # noqa: BLE001 - the boundary of a public server
                        raise gr.Error(message(exc, fn.__name__), print_exception=False) from None
                    yield item
            finally:
                it.close()

        streaming.__api_of__ = fn
        return streaming

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary of a public server
            raise gr.Error(message(exc, fn.__name__), print_exception=False) from None

    wrapper.__api_of__ = fn
    return wrapper


def page(reset: tuple, empty=None):
    """A page event's error boundary: the callback's outputs plus ONE more, the status (list the status_box last
    in `outputs`). `reset` has one entry per output of the callback: what it becomes when there is nothing to show
    (a value: None clears a picture, "" a text; or KEEP: untouched). Then:

    - success: the callback's outputs, and the status is hidden (a stream: each update, the first one hiding an
      earlier message);
    - `empty(*args)` is true (e.g. a cleared sketchpad): the `reset` values and a hidden status, quietly;
    - a failure: the `reset` values and the message in the status. The server keeps serving.

        classify_page = page(reset=(None, None, ""), empty=sketch_is_empty)(classify)
        sketch.change(classify_page, [sketch, model], [label, picture, code, status])
    """

    def blank():
        return tuple(gr.skip() if r is KEEP else r for r in reset)

    def deco(fn):
        fn = _raw(fn)
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def streaming(*args, **kwargs):
                if empty is not None and empty(*args, **kwargs):
                    yield (*blank(), show_status(""))
                    return
                it = fn(*args, **kwargs)
                status = show_status("")          # the first update hides an earlier message; then untouched
                try:
                    while True:
                        try:
                            out = next(it)
                        except StopIteration:
                            return
                        except Exception as exc:  # noqa: BLE001 - the boundary of a public server
                            yield (*blank(), show_status(message(exc, fn.__name__)))
                            return
                        yield (*(out if isinstance(out, tuple) else (out,)), status)
                        status = gr.skip()
                finally:
                    it.close()

            wrapper = streaming
        else:
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                if empty is not None and empty(*args, **kwargs):
                    return (*blank(), show_status(""))
                try:
                    out = fn(*args, **kwargs)
                except Exception as exc:  # noqa: BLE001 - the boundary of a public server
                    return (*blank(), show_status(message(exc, fn.__name__)))
                return (*(out if isinstance(out, tuple) else (out,)), show_status(""))

        # its own event name, so the API endpoint of the same function keeps the plain one
        name = fn.__name__ if fn.__name__.endswith("_ui") else f"{fn.__name__}_ui"
        wrapper.__name__ = wrapper.__qualname__ = name
        return wrapper

    return deco
