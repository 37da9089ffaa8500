"""What every tab shares: the error boundary, the interactive and job concurrency groups, code display."""
from __future__ import annotations

import functools
import logging
import os
import traceback

import gradio as gr

log = logging.getLogger("playground")

# Two paths. Interactive events (classify, sketch, sandboxes, AE/GAN, look inside, previews) answer in
# milliseconds and several visitors are served together. Jobs (fine-tune, resume, compression, ensembles,
# resampling, autocast timing) run one at a time in the job worker process (training/jobs.py, its own queue
# with positions and Cancel); their Gradio handlers only follow a job, so a few may wait at once.
# Settings: PLAYGROUND_INTERACTIVE_CONCURRENCY, PLAYGROUND_JOB_HANDLERS (README: Two commands).
def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


INTERACTIVE = dict(concurrency_id="interactive", concurrency_limit=_env_int("PLAYGROUND_INTERACTIVE_CONCURRENCY", 4))
JOB = dict(concurrency_id="jobs", concurrency_limit=_env_int("PLAYGROUND_JOB_HANDLERS", 8))
# Old names, until every tab has moved to INTERACTIVE (the sandbox tabs have their own group).
GPU_CONCURRENCY_ID, GPU_CONCURRENCY_LIMIT = INTERACTIVE["concurrency_id"], INTERACTIVE["concurrency_limit"]


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
    import hashlib
    import io
    import os
    import tempfile

    from PIL import Image

    from zoo.hub import _atomic_write_bytes

    name = hashlib.sha1(key.encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), "playground-examples", f"{name}.png")
    if not os.path.exists(path):
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG")
        _atomic_write_bytes(path, buf.getvalue())
    return path


def code_block(label: str = "PyTorch code that produces this result") -> gr.Code:
    return gr.Code(label=label, language="python", interactive=False, lines=12)
