"""Tensors tab: paste or type a whole PyTorch program (imports, classes, loops, DataLoaders, torch.save) and see
what it prints, as it prints it, plus every module-level tensor's value, shape, dtype, device and stride, heatmaps,
histograms and the program's matplotlib figures. The program runs in the sandbox (playground/pool.py): a fresh
process fenced by the operating system, or the restricted language where no fence can be built."""
from __future__ import annotations

import re
import threading
import time

import gradio as gr

from core.errors import VisitorError, text_of
from core.i18n import t
from playground.limits import PROGRAMS_AT_ONCE, WORKERS
from playground.pool import SandboxBusy, SandboxUnavailable, get_sandbox, run_tensors, sandbox_mode
from playground.pool import prewarm as start_worker
from playground.presets import DEFAULT_TENSOR, PROGRAM_PRESETS, TENSOR_PRESETS, preset as preset_code
from ui import first_screens
from ui.admission import client_ip
from ui.common import ALONE, Place, code_block, in_one_thread, stop_requested
from ui.errors import api
from ui.i18n import follow_headers, label, request_language

# The table's columns: the catalogue's keys (a Dataframe's headers are not carried by gr.I18n, so each answer sends
# them in the visitor's language); the English ones are the component's own.
HEADER_KEYS = ["tensors.col.line", "tensors.col.name", "tensors.col.type", "tensors.col.dtype", "tensors.col.device",
               "tensors.col.requires_grad", "tensors.col.grad_fn", "tensors.col.stride", "tensors.col.contiguous"]
HEADERS = [t(k, "en") for k in HEADER_KEYS]
# The presets' names in the dropdown: the name stays the value (the same in both languages), the key its display
# name; a name that is code (ones, rand, view) reads the same in both.
PRESET_KEYS = {
    "Tutorial 2.1: all eight operations": "presets.tutorial_2_1",
    "+ (elementwise)": "presets.elementwise",
    "mm: the tutorial's shape error": "presets.mm_error",
    "mm: fixed with b.T": "presets.mm_fixed",
    "** (power)": "presets.power",
    "> (comparison)": "presets.comparison",
    "* (scale)": "presets.scale",
    "broadcasting": "presets.broadcasting",
    "indexing and slicing": "presets.indexing",
    "reductions": "presets.reductions",
    "dtype casts and device": "presets.dtype_device",
    "heatmap and histogram": "presets.heatmap_histogram",
    "Tutorial 2.1 as printed (import, print, the mm error)": "presets.tutorial_2_1_printed",
    "A model class and a training loop": "presets.model_loop",
    "Dataset + DataLoader (tutorial 2.5)": "presets.dataset_loader",
    "Save and load (tutorial 2.4)": "presets.save_load",
    "One-hot labels with numpy and scikit-learn (tutorial 4.1.2)": "presets.one_hot",
    "torchvision transforms on a picture (tutorial 4.1.1, 4.2)": "presets.transforms",
    "A loss curve with matplotlib": "presets.loss_curve",
    "Scalar chain rule": "presets.chain_rule",
    "softmax + cross-entropy": "presets.softmax_ce",
    "Tutorial 2.2: Net + MSELoss + SGD": "presets.tutorial_2_2",
    "Tutorial 2.2 as printed (class Net)": "presets.tutorial_2_2_printed",
}
# The sandbox events (Tensors and Autograd) share their own group: several run together, and the pool
# (playground/pool.py: one program per session, per-address cap, fair order) bounds the work. Twice the pool
# size plus two lets refused requests answer at once while every worker is busy.
SANDBOX_CONCURRENCY = dict(concurrency_id="sandbox", concurrency_limit=2 * max(WORKERS, PROGRAMS_AT_ONCE) + 2)
# Tensor values are printed with aligned columns; they need a monospace font.
MONO_CSS = ("<style>#tensor-result textarea, #autograd-result textarea, #tensor-values textarea "
            "{font-family: var(--font-mono, ui-monospace, monospace) !important}</style>")
STREAM_EVERY_S = 0.25
BOLD = re.compile(r"\*\*(.+?)\*\*")


def visitor(request: gr.Request | None) -> dict:
    """Who is asking: the session (one program at a time each) and the client address (fair share), the same
    address the queue's admission uses (ui.admission.client_ip)."""
    if request is None:
        return {}
    return {"session": getattr(request, "session_hash", None), "address": client_ip(request)}


def headers(language: str = "en") -> list[str]:
    return [t(k, language) for k in HEADER_KEYS]


def table_value(rows: list, language: str = "en") -> dict:
    """The table's value with its headers in the visitor's language (the API's shape: headers and data)."""
    return {"headers": headers(language), "data": rows}


def preset_choices(names) -> list:
    """Dropdown choices: (display name in the browser's language, the preset's name)."""
    return [(label(PRESET_KEYS[n]) if n in PRESET_KEYS else n, n) for n in names]


def stopped(exc: Exception, language: str = "en") -> str:
    """The result text for a program the sandbox refused to start or stopped."""
    key = "sandbox.not_run" if isinstance(exc, SandboxBusy) else "sandbox.stopped"
    why = exc.text(language) if isinstance(exc, VisitorError) else text_of(exc, language)   # as the catalogue writes it
    return t(key, language, why=why)


def mode_note(language: str = "en") -> str:
    """What kind of program this server runs, in one sentence (shown in both sandbox tabs)."""
    return t("sandbox.restricted_note", language) if sandbox_mode() == "restricted" else ""


def limits_html(language: str = "en") -> str:
    """Which limits apply on this machine (and the restricted language's sentence), in `language`."""
    note = BOLD.sub(r"<strong>\1</strong>", mode_note(language))   # the status's Markdown, in HTML
    return (t("sandbox.limits.sentence", language, line=get_sandbox().describe(language))
            + (f"</p><p>{note}" if note else "")).join(("<p>", "</p>"))


def limits_note() -> gr.HTML:
    """The line that says which limits apply on this machine, and the monospace style for the results. Its words
    are the server's (values: the limits), so each page load writes them in the visitor's language
    (first_screens.install's `extra`); the page is built with the English."""
    return gr.HTML(limits_html(), head=MONO_CSS, elem_classes=["sandbox-limits"], js_on_load=None)


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
            if stop_requested():   # the visitor cancelled or left (in_one_thread): stop the program now
                return
            if box["printed"] != shown:
                shown = box["printed"]
                yield "partial", shown
        if "crash" in box:
            raise box["crash"]
        yield "done", on_done(box)
    finally:
        cancel.set()   # a normal end: the run is over already; otherwise this stops it


def run_status(r: dict, started: float, language: str = "en") -> str:
    """The status line under a run's output: how long it took and where, and the sandbox's notes."""
    notes = list(r.get("notes") or [])
    if r.get("stopped"):
        return "\n\n".join([t("sandbox.stopped_status", language, why=r["stopped"]), *notes])
    head = t("tensors.status.ran", language, seconds=f"{time.perf_counter() - started:.2f}",
             device=r.get("device", "cpu"))
    if r.get("fence", {}) and r["fence"].get("fenced"):
        head += t("tensors.status.fenced", language)
    if not r.get("printed") and not r.get("error") and "values" in r:
        head += t("tensors.status.printed_nothing", language)
    return "\n\n".join([t("tensors.status.end", language, sentence=head), *notes])


def running(language: str = "en") -> str:
    return t("tensors.status.running", language)


@api
def tensor_eval(code: str = TENSOR_PRESETS[DEFAULT_TENSOR], request: gr.Request = None):
    """Run a program in the sandbox (the public API: /tensor_eval). The first output is what the program
    printed, in order (its traceback at the end if it raised); then the rows, pictures, the plain script, the
    values of every named tensor and bare expression, notes, and the visitor's files. Our own words (the status,
    a refusal, the table's headers) are in the request's language; what the program printed is as it printed it."""
    started = time.perf_counter()
    who = visitor(request)
    language = request_language(request)   # the page's choice, else Accept-Language

    def finish(box):
        if "error" in box:
            why = stopped(box["error"], language)
            return why, table_value([], language), [], "", "", f"**{why}**", []
        return tab_outputs(box["value"], language, run_status(box["value"], started, language))

    for kind, value in streamed(lambda out, cancelled: run_tensors(code or "", on_output=out, cancelled=cancelled,
                                                                   language=language, **who), finish):
        if kind == "partial":
            yield value, gr.skip(), gr.skip(), gr.skip(), gr.skip(), running(language), gr.skip()
        else:
            yield value


def tab_outputs(r: dict, language: str, status: str) -> tuple:
    """A run's result as the tab's outputs (the table's headers and the status in `language`)."""
    if "values" not in r:  # the restricted language: its own text already holds the values
        return r["text"], table_value(r["rows"], language), list(r["images"]), r["code"], "", mode_note(language), []
    pictures = [(img, cap) for img, cap in r["images"]] + [(img, cap) for img, cap in r["figures"]]
    return (r["text"], table_value(r["rows"], language), pictures, r["code"], r["values"], status, r.get("files", []))


def cancelled_note():
    """The status after Cancel (page text: shown in the browser's language)."""
    return label("tensors.status.cancelled")


def first_screen_outputs(language: str = "en") -> tuple:
    """The default preset's outputs in one language, for every visitor's first screen (ui/first_screens.py: once
    per server and language)."""
    r = run_tensors(preset_code(DEFAULT_TENSOR, language), language=language)   # its comments in the language
    return (*tab_outputs(r, language, t("tensors.status.first_screen", language))[:-1], None)   # no files yet


def cold_outputs(language: str = "en") -> tuple:
    """While the sandbox starts: the table's headers and the status in the visitor's language, the rest as is."""
    return (gr.skip(), table_value([], language), gr.skip(), gr.skip(), gr.skip(), first_screens.cold_start(language),
            gr.skip())


def prewarm() -> None:
    """Start the sandbox in the background when a visitor starts typing (a cold start takes seconds)."""
    start_worker()


def presets() -> dict[str, str]:
    """The presets this server can run: whole programs too, unless it runs the restricted language."""
    return TENSOR_PRESETS if sandbox_mode() == "restricted" else {**TENSOR_PRESETS, **PROGRAM_PRESETS}


def load_preset(name: str, request: gr.Request = None) -> str:
    """A preset's code, its comments in the visitor's language (the code is the same in every language)."""
    return preset_code(name, request_language(request)) if name in {**TENSOR_PRESETS, **PROGRAM_PRESETS} else ""


def initial_code(name: str):
    """fn(language) for first_screens.install's `extra`: the editor's first program in the visitor's language,
    written by the page load (the page is built with the English, which stays untouched: gr.skip()). A later
    Settings -> Language switch reloads nothing, so it never overwrites what the visitor typed."""
    def code(language: str = "en"):
        localized = preset_code(name, language)
        return gr.skip() if localized == preset_code(name) else localized
    return code


def build_tab(place: Place = ALONE) -> dict:
    gr.Markdown(label("tensors.intro"))
    limits = limits_note()
    with gr.Row():
        with gr.Column(scale=1):
            preset = gr.Dropdown(preset_choices(presets()), value=DEFAULT_TENSOR, label=label("tensors.preset.label"),
                                 elem_id="tensor-preset")
            code = gr.Code(TENSOR_PRESETS[DEFAULT_TENSOR], language="python", interactive=True, lines=14,
                           label=label("tensors.code.label"), elem_id="tensor-code")
            with gr.Row():
                run = gr.Button(label("tensors.run"), variant="primary", elem_id="tensor-run")
                cancel = gr.Button(label("sandbox.cancel"), elem_id="tensor-cancel")
        with gr.Column(scale=1):
            result = gr.Textbox(label=label("tensors.result.label"), lines=16, max_lines=40, elem_id="tensor-result")
            status = gr.Markdown(elem_id="tensor-status")
    values = gr.Textbox(label=label("tensors.values.label"), lines=8, max_lines=30, elem_id="tensor-values")
    pictures = gr.Gallery(label=label("tensors.pictures.label"), columns=3, height="auto", object_fit="contain",
                          elem_id="tensor-pictures",
                          format="png")   # lossless (charts, text), and encoded in a third of WebP's time
    table = gr.Dataframe(headers=HEADERS, label=label("tensors.table.label"), interactive=False,
                         elem_id="tensor-table")
    follow_headers(table, HEADER_KEYS)   # after a switch of language (ui.i18n)
    files = gr.File(label=label("tensors.files.label"), file_count="multiple", interactive=False, height=140,
                    elem_id="tensor-files")
    plain = code_block(label("sandbox.plain.label"))

    outputs = [result, table, pictures, plain, values, status, files]
    common = SANDBOX_CONCURRENCY
    code.focus(prewarm, None, None, api_visibility="private", queue=False, show_progress="hidden")
    # a run's outputs are small: processed in the thread that runs it, not one thread hop per component
    run_fn, one_thread = in_one_thread(tensor_eval, [code], outputs)
    ran = run.click(run_fn, [code], outputs, api_name="tensor_eval", **one_thread, **common)
    loaded = preset.change(load_preset, preset, code, api_visibility="private").then(
        run_fn, [code], outputs, api_visibility="private", **one_thread, **common)
    first_screens.install(place, "tensors", first_screen_outputs, outputs, cold_outputs, [run.click, preset.change],
                          extra=[(limits, limits_html), (code, initial_code(DEFAULT_TENSOR))])
    cancel.click(cancelled_note, None, status, cancels=[ran, loaded], api_visibility="private", queue=False)
    return {"code": code, "status": status}
