"""What every tab shares: the error boundary, the GPU concurrency group, code display."""
from __future__ import annotations

import functools
import logging
import traceback

import gradio as gr

log = logging.getLogger("playground")

# Every event that runs models on the accelerator joins this group, so a GPU serves one at a time
# and the queue (bounded in app.py) tells others their position instead of running them together.
GPU_CONCURRENCY_ID = "gpu"
GPU_CONCURRENCY_LIMIT = 1


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is written for the user (shown as is)."""
    from zoo.hub import WeightsError, WeightsUnavailable
    from zoo.images import ImageInputError

    errors: list[type[BaseException]] = [ImageInputError, WeightsUnavailable, WeightsError]
    try:
        from training.data import DatasetUnavailable

        errors.append(DatasetUnavailable)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def friendly(fn):
    """Error boundary for a callback: expected errors become gr.Error with their message; anything else is
    logged with its traceback and shown as a short message. The server keeps serving either way."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except user_errors() as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except (ValueError, TypeError, KeyError) as exc:
            raise gr.Error(f"{type(exc).__name__}: {exc}", print_exception=False) from None
        except MemoryError:
            raise gr.Error("Out of memory for this request; try a smaller input.", print_exception=False) from None
        except Exception as exc:  # noqa: BLE001 - the boundary of a public server
            log.error("callback %s failed:\n%s", fn.__name__, traceback.format_exc())
            raise gr.Error(f"Something went wrong ({type(exc).__name__}: {str(exc)[:200]}).", print_exception=False) from None

    return wrapper


def code_block(label: str = "PyTorch code that produces this result") -> gr.Code:
    return gr.Code(label=label, language="python", interactive=False, lines=12)
