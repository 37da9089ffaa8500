"""Tensors tab: paste or type a whole PyTorch program (imports, classes, loops, DataLoaders, torch.save) and see
what it prints, as it prints it, plus every module-level tensor's value, shape, dtype, device and stride, heatmaps,
histograms and the program's matplotlib figures. The program runs in the sandbox (playground/pool.py): a fresh
process fenced by the operating system, or the restricted language where no fence can be built."""
from __future__ import annotations

import threading
import time

import gradio as gr

from core.errors import text_of
from playground.limits import PROGRAMS_AT_ONCE, WORKERS
from playground.pool import SandboxBusy, SandboxUnavailable, get_sandbox, run_tensors, sandbox_mode
from playground.pool import prewarm as start_worker
from playground.presets import DEFAULT_TENSOR, PROGRAM_PRESETS, TENSOR_PRESETS
from ui import first_screens
from ui.admission import client_ip
from ui.common import ALONE, Place, code_block
from ui.errors import api

HEADERS = ["line", "name / expression", "type / shape", "dtype", "device", "requires_grad", "grad_fn", "stride",
           "contiguous"]
# The sandbox events (Tensors and Autograd) share their own group: several run together, and the pool
# (playground/pool.py: one program per session, per-address cap, fair order) bounds the work. Twice the pool
# size plus two lets refused requests answer at once while every worker is busy.
SANDBOX_CONCURRENCY = dict(concurrency_id="sandbox", concurrency_limit=2 * max(WORKERS, PROGRAMS_AT_ONCE) + 2)
# Tensor values are printed with aligned columns; they need a monospace font.
MONO_CSS = ("<style>#tensor-result textarea, #autograd-result textarea, #tensor-values textarea "
            "{font-family: var(--font-mono, ui-monospace, monospace) !important}</style>")
STREAM_EVERY_S = 0.25


def visitor(request: gr.Request | None) -> dict:
    """Who is asking: the session (one program at a time each) and the client address (fair share), the same
    address the queue's admission uses (ui.admission.client_ip)."""
    if request is None:
        return {}
    return {"session": getattr(request, "session_hash", None), "address": client_ip(request)}


def stopped(exc: Exception) -> str:
    """The result text for a program the sandbox refused to start or stopped."""
    return f"Not run: {text_of(exc)}" if isinstance(exc, SandboxBusy) else f"Stopped: {text_of(exc)}"


def mode_note() -> str:
    """What kind of program this server runs, in one sentence (shown in both sandbox tabs)."""
    mode = sandbox_mode()
    if mode == "restricted":
        return ("This server runs the sandbox's **restricted language** (assignments and expressions over torch; no "
                "imports, classes or loops): the operating system's fence (Landlock and seccomp, Linux) is not "
                "available here and the app is reachable by others.")
    return ""


def limits_note() -> None:
    """The line that says which limits apply on this machine, and the monospace style for the results."""
    note = mode_note()
    gr.HTML(f"<p>{get_sandbox().describe()}.</p>" + (f"<p>{note}</p>" if note else ""), head=MONO_CSS,
            elem_classes=["sandbox-limits"], js_on_load=None)


def streamed(run, on_done):
    """Run `run(on_output, cancelled)` in a thread; yield ("partial", printed) while it runs and ("done", value)
    at the end. Closing the generator (Cancel, a closed page) stops the program."""
    box: dict = {"printed": None}
    done = threading.Event()
    cancel = threading.Event()

    def work():
        try:
            box["value"] = run(lambda s: box.__setitem__("printed", s), cancel.is_set)
        except SandboxUnavailable as exc:
            box["error"] = exc
        except Exception as exc:  # noqa: BLE001 - re-raised in the generator's thread
            box["crash"] = exc
        finally:
            done.set()

    threading.Thread(target=work, daemon=True, name="sandbox-run").start()
    shown = None
    try:
        while not done.wait(STREAM_EVERY_S):
            if box["printed"] != shown:
                shown = box["printed"]
                yield "partial", shown
        if "crash" in box:
            raise box["crash"]
        yield "done", on_done(box)
    finally:
        cancel.set()   # a normal end: the run is over already; otherwise this stops it


def run_status(r: dict, started: float) -> str:
    notes = list(r.get("notes") or [])
    if r.get("stopped"):
        return "\n\n".join([f"**Stopped:** {r['stopped']}.", *notes])
    head = f"Ran in {time.perf_counter() - started:.2f} s on `{r.get('device', 'cpu')}`"
    if r.get("fence", {}) and r["fence"].get("fenced"):
        head += ", in a fresh process fenced by the operating system"
    if not r.get("printed") and not r.get("error") and "values" in r:
        head += "; the program printed nothing (its tensors are listed below)"
    return "\n\n".join([head + ".", *notes])


@api
def tensor_eval(code: str = TENSOR_PRESETS[DEFAULT_TENSOR], request: gr.Request = None):
    """Run a program in the sandbox (the public API: /tensor_eval). The first output is what the program
    printed, in order (its traceback at the end if it raised); then the rows, pictures, the plain script, the
    values of every named tensor and bare expression, notes, and the visitor's files."""
    started = time.perf_counter()
    who = visitor(request)

    def finish(box):
        if "error" in box:
            return stopped(box["error"]), [], [], "", "", f"**{stopped(box['error'])}**", []
        r = box["value"]
        if "values" not in r:  # the restricted language: its own text already holds the values
            return r["text"], r["rows"], list(r["images"]), r["code"], "", mode_note(), []
        pictures = [(img, cap) for img, cap in r["images"]] + [(img, cap) for img, cap in r["figures"]]
        return (r["text"], r["rows"], pictures, r["code"], r["values"], run_status(r, started), r.get("files", []))

    for kind, value in streamed(lambda out, cancelled: run_tensors(code or "", on_output=out, cancelled=cancelled,
                                                                   **who), finish):
        if kind == "partial":
            yield value, gr.skip(), gr.skip(), gr.skip(), gr.skip(), "Running...", gr.skip()
        else:
            yield value


def cancelled_note() -> str:
    return "**Cancelled:** the program was stopped (what it printed before is above)."


def first_screen_outputs() -> tuple:
    """The default preset's outputs, for every visitor's first screen (ui/first_screens.py; once per server)."""
    r = run_tensors(TENSOR_PRESETS[DEFAULT_TENSOR])
    if "values" not in r:
        return r["text"], r["rows"], list(r["images"]), r["code"], "", mode_note(), None
    status = "The default preset, run when the server started: edit it or pick another, then press Run."
    return (r["text"], r["rows"], list(r["images"]) + list(r["figures"]), r["code"], r["values"], status, None)


def prewarm() -> None:
    """Start the sandbox in the background when a visitor starts typing (a cold start takes seconds)."""
    start_worker()


def presets() -> dict[str, str]:
    """The presets this server can run: whole programs too, unless it runs the restricted language."""
    return TENSOR_PRESETS if sandbox_mode() == "restricted" else {**TENSOR_PRESETS, **PROGRAM_PRESETS}


def load_preset(name: str) -> str:
    return {**TENSOR_PRESETS, **PROGRAM_PRESETS}.get(name, "")


def build_tab(place: Place = ALONE) -> dict:
    gr.Markdown("Paste or type a **whole PyTorch program**: imports, classes (`nn.Module`, `Dataset`), functions, "
                "loops, `DataLoader`, `torch.save`/`torch.load`, matplotlib. It runs as `python program.py` would, "
                "and you see what it prints as it prints it. `torch`, `nn`, `F`, `optim` and `device` are already "
                "defined; a bare expression on its own line is shown with its value. Every module-level tensor "
                "gets a row (shape, dtype, device, stride) and 2-D ones a heatmap, larger ones a histogram. Files "
                "your program writes stay in your own folder for this visit (a later run can load them).")
    limits_note()
    with gr.Row():
        with gr.Column(scale=1):
            preset = gr.Dropdown(list(presets()), value=DEFAULT_TENSOR, label="Preset (the tutorial's programs "
                                 "and more)", elem_id="tensor-preset")
            code = gr.Code(TENSOR_PRESETS[DEFAULT_TENSOR], language="python", interactive=True, lines=14,
                           label="Your PyTorch program", elem_id="tensor-code")
            with gr.Row():
                run = gr.Button("Run", variant="primary", elem_id="tensor-run")
                cancel = gr.Button("Cancel", elem_id="tensor-cancel")
        with gr.Column(scale=1):
            result = gr.Textbox(label="Output (what the program printed; errors as Python reports them)", lines=16,
                                max_lines=40, elem_id="tensor-result")
            status = gr.Markdown(elem_id="tensor-status")
    values = gr.Textbox(label="Named tensors and bare expressions: values", lines=8, max_lines=30,
                        elem_id="tensor-values")
    pictures = gr.Gallery(label="Heatmaps (2-D), histograms (larger tensors) and the program's figures", columns=3,
                          height="auto", object_fit="contain", elem_id="tensor-pictures",
                          format="png")   # lossless (charts, text), and encoded in a third of WebP's time
    table = gr.Dataframe(headers=HEADERS, label="Every named result", interactive=False, elem_id="tensor-table")
    files = gr.File(label="Your files (this visit): what your programs saved", file_count="multiple",
                    interactive=False, height=140, elem_id="tensor-files")
    plain = code_block("The same as a plain PyTorch script")

    outputs = [result, table, pictures, plain, values, status, files]
    common = SANDBOX_CONCURRENCY
    code.focus(prewarm, None, None, api_visibility="private", queue=False, show_progress="hidden")
    ran = run.click(tensor_eval, [code], outputs, api_name="tensor_eval", **common)
    loaded = preset.change(load_preset, preset, code, api_visibility="private").then(
        tensor_eval, [code], outputs, api_visibility="private", **common)
    first_screens.install("tensors", first_screen_outputs, outputs, status, [run.click, preset.change])
    cancel.click(cancelled_note, None, status, cancels=[ran, loaded], api_visibility="private", queue=False)
    return {"code": code, "status": status}
