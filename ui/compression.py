"""Compression sub-tab: shrink one digits model (int8, bf16, pruning, distillation) as a job, with size, latency
and accuracy measured on this machine (training/compression/compress.py); and autocast training step times."""
from __future__ import annotations

import math
import re
from dataclasses import asdict
from typing import TYPE_CHECKING

import gradio as gr

from training.compression.compress import LabConfig
from training.compression.compress_code import compress_code
from training.compression.distill import check_teacher
from core.errors import InputError, render
from core.fonts import text_language, use_in_matplotlib
from core.i18n import N_, current_language, t
from training.compression.compressed_io import PATHS
from ui import code_comments
from ui.common import api_endpoint, code_block
from ui.errors import KEEP, api, page, status_box
from ui.i18n import follow_headers, label, request_language
from ui.jobstream import cancel_button, progress_html
from ui.labjobs import COMMON, digits_models, lab_job
from core.device import get_device

if TYPE_CHECKING:
    from matplotlib.figure import Figure

L = LabConfig()                                 # the one place the lab's defaults are said
WIDTHS = ",".join(map(str, L.student_widths))   # as the Student size dropdown and /compress take them
COMPRESS_HEADERS = ["technique", "params", "nonzero", "size_kb", "smaller_x", "latency_ms", "faster_x", "accuracy",
                    "acc_change", "path"]
# The table's columns in the catalogue (in English they stay the lab's own names: COMPRESS_HEADERS)
HEADER_KEYS = [N_("compress.table.technique"), N_("compress.table.params"), N_("compress.table.nonzero"),
               N_("compress.table.size_kb"), N_("compress.table.smaller_x"), N_("compress.table.latency_ms"),
               N_("compress.table.faster_x"), N_("compress.table.accuracy"), N_("compress.table.acc_change"),
               N_("compress.table.path")]
AMP_HEADERS = [N_("compress.amp.mode"), N_("compress.amp.ms"), N_("compress.amp.loss")]
# The techniques run_lab names (training/compression/compress.py), in words of the catalogue
TECHNIQUES = {"baseline fp32": N_("compress.technique.baseline"),
              "int8 static (FX)": N_("compress.technique.int8_static"),
              "int8 dynamic (Linear only)": N_("compress.technique.int8_dynamic"),
              "bf16 weights+activations": N_("compress.technique.bf16")}
# The paths that are written in words (the others are PyTorch calls, the same in every language)
PATH_KEYS = {PATHS["fp32"]: N_("compress.path.fp32"), PATHS["int8-static-fx"]: N_("compress.path.int8_static"),
             PATHS["channel-pruned"]: N_("compress.path.channel")}
_MAGNITUDE = re.compile(r"magnitude pruned (\S+)$")
_CHANNEL = re.compile(r"channel pruned keep (\S+?)(?: \+ (\d+) ft steps( \(KD\))?)?( \+ int8)?$")
_TEACHER = re.compile(r"teacher (\S+)$")
_DISTILLED = re.compile(r"student distilled \(T=([^,]+), alpha=([^,)]+)(?:, mixup ([^)]+))?\)$")
_ALONE = re.compile(r"same student alone(?: \(mixup ([^)]+)\))?$")
_STUDENT_PATH = re.compile(r"StudentCNN trained (\d+) steps with train_student \(KD loss, Hinton et al\. 2015\)$")


def technique_name(name: str, language: str | None = None) -> str:
    """A technique's name as run_lab writes it, in a language (English: the same words)."""
    if name in TECHNIQUES:
        return t(TECHNIQUES[name], language)
    if m := _MAGNITUDE.match(name):
        return t("compress.technique.magnitude", language, sparsity=m[1])
    if m := _CHANNEL.match(name):
        text = t("compress.technique.channel", language, keep=m[1])
        if m[2]:
            text += t("compress.technique.ft_steps_kd" if m[3] else "compress.technique.ft_steps", language, n=m[2])
        return text + (t("compress.technique.plus_int8", language) if m[4] else "")
    if m := _TEACHER.match(name):
        return t("compress.technique.teacher", language, name=m[1])
    if m := _DISTILLED.match(name):
        return t("compress.technique.distilled_mixup" if m[3] else "compress.technique.distilled", language,
                 temperature=m[1], alpha=m[2], mixup=m[3])
    if m := _ALONE.match(name):
        return t("compress.technique.alone_mixup" if m[1] else "compress.technique.alone", language, mixup=m[1])
    return name


def path_text(path: str, language: str | None = None) -> str:
    """How a technique was done (its API path, steps joined by ' -> '), in a language."""
    if m := _STUDENT_PATH.match(path):
        return t("compress.path.student", language, steps=m[1])
    return " -> ".join(t(PATH_KEYS[part], language) if part in PATH_KEYS else part for part in path.split(" -> "))


def _compress_code(cfg) -> str:
    return compress_code(cfg)   # plain PyTorch, written out (training/compression/compress_code.py)


def _plot(rows, language: str | None = None) -> Figure:
    """Size and latency against accuracy, one colour and marker per technique (matplotlib's object API: no
    pyplot state in the server, and the figure is freed with its last reference). Its words in `language` where
    a CJK font can draw them (core.fonts), else in English."""
    from matplotlib.figure import Figure      # on first use: matplotlib costs the server ~0.4 s at start
    from matplotlib.ticker import NullFormatter

    use_in_matplotlib()
    language = text_language(language or current_language())
    fig = Figure(figsize=(11, 5.2))
    axes = fig.subplots(1, 2)
    markers = "osD^vP*Xph<>"
    for i, r in enumerate(rows):      # one colour and marker per technique, named once in the legend below:
        style = dict(s=45, marker=markers[i % len(markers)], color=f"C{i % 10}")   # labels on the points overlap
        axes[0].scatter(r["size_kb"], r["accuracy"], label=technique_name(r["technique"], language), **style)
        axes[1].scatter(r["latency_ms"], r["accuracy"], **style)
    axes[0].set_xscale("log")
    axes[0].xaxis.set_minor_formatter(NullFormatter())   # no overlapping minor labels
    axes[0].set_xlabel(t("compress.plot.size", language))
    axes[1].set_xlabel(t("compress.plot.latency", language))
    for ax in axes:
        ax.set_ylabel(t("compress.plot.accuracy", language))
        ax.set_ylim(max(0, min(r["accuracy"] for r in rows) - 1), 100)
        ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.02 + 0.045 * math.ceil(len(rows) / 3), 1, 1))
    return fig


@api
def compress(base: str = L.base, sparsity: float = L.sparsity, keep_ratio: float = L.keep_ratio,
             finetune_steps: int = L.finetune_steps, distill_steps: int = L.distill_steps,
             temperature: float = L.temperature, alpha: float = L.alpha, latency_batch: int = L.latency_batch,
             repeats: int = L.repeats, finetune_distill: bool = L.finetune_distill, student_widths: str = WIDTHS,
             teacher: str = L.teacher, mixup: float = L.mixup, alone_mixup: float = L.alone_mixup,
             request: gr.Request = None):
    """Compress a digits model every way, as a job; streams its stage, then (table, plot, safetensors files,
    notes, code, status). API: /compress."""
    cfg = _lab_config(base, sparsity, keep_ratio, finetune_steps, distill_steps, temperature, alpha,
                      latency_batch, repeats, finetune_distill, student_widths, teacher, mixup, alone_mixup)
    job = yield from lab_job("compress-progress", "compress", {"config": asdict(cfg)}, 5, request)
    if job is None:
        return
    language = request_language(request)
    yield _compress_outputs(job.result, cfg, language) + (
        progress_html("compress-progress", t("job.status.done", language), 1, 1),)


def _lab_config(base, sparsity, keep_ratio, finetune_steps, distill_steps, temperature, alpha, latency_batch, repeats,
                finetune_distill, student_widths, teacher, mixup, alone_mixup):
    if base not in digits_models():
        raise InputError("compress.base", models=", ".join(digits_models()))
    if not 0 <= float(sparsity) < 1 or not 0 < float(keep_ratio) <= 1:
        raise InputError("compress.sparsity")
    if not 1 <= int(latency_batch) <= 256 or not 3 <= int(repeats) <= 200:
        raise InputError("compress.latency")
    if not (0 <= int(finetune_steps) <= 1000 and 0 <= int(distill_steps) <= 2000):
        raise InputError("compress.steps")
    if not (0.5 <= float(temperature) <= 20 and 0 <= float(alpha) <= 1):
        raise InputError("compress.temperature")
    try:
        widths = tuple(int(w) for w in str(student_widths).split(","))
    except ValueError:
        widths = ()
    if len(widths) != 3 or not all(1 <= w <= 128 for w in widths):
        raise InputError("compress.student_widths")
    check_teacher(teacher)               # before run_lab's quantizing and pruning, not after
    if not (0 <= float(mixup) <= 2 and 0 <= float(alone_mixup) <= 2):
        raise InputError("compress.mixup")
    cfg = LabConfig(base=base, teacher=teacher, sparsity=float(sparsity), keep_ratio=float(keep_ratio),
                    finetune_steps=int(finetune_steps), finetune_distill=bool(finetune_distill),
                    distill_steps=int(distill_steps), temperature=float(temperature), alpha=float(alpha),
                    student_widths=widths, latency_batch=int(latency_batch), repeats=int(repeats),
                    mixup=float(mixup), alone_mixup=float(alone_mixup))
    return cfg


def _note(note, language: str | None = None) -> str:
    """One of run_lab's notes (a catalogue entry with its values, or plain text) in a language."""
    if isinstance(note, dict) and isinstance(note.get("key"), str):
        return render(note["key"], note.get("values") or {}, language)
    return str(note)


def _compress_outputs(lab: dict, cfg, language: str | None = None):
    rows = lab["rows"]
    table = [[technique_name(r["technique"], language), *[r[h] for h in COMPRESS_HEADERS[1:-1]],
              path_text(r["path"], language)] for r in rows]
    paths = t("compress.notes.separator", language).join(
        t("compress.notes.path", language, technique=technique_name(r["technique"], language),
          path=path_text(r["path"], language)) for r in rows[1:4])
    notes = "  \n".join([t("compress.notes.paths", language, paths=paths)]
                        + [_note(n, language) for n in lab["notes"]]
                        + [t("compress.notes.magnitude", language)])
    if lab["extra"]:
        d, a = lab["extra"]["distilled"], lab["extra"]["alone"]
        notes += t("compress.notes.distillation", language, steps=d["steps"], distilled=d["test_acc"],
                   alone=a["test_acc"], distilled_s=d["seconds"], alone_s=a["seconds"])
    return ({"headers": [t(k, language) for k in HEADER_KEYS], "data": table}, _plot(rows, language),
            list(lab["files"].values()), notes, code_comments.translate(_compress_code(cfg), language))


@api
def autocast_training(steps: int = 5, request: gr.Request = None):
    """Mixed-precision training: ms per step of a small CNN in fp32 vs autocast (bf16 on CPU, fp16 on CUDA),
    timed as a job (alone in the worker, so other visitors' requests do not disturb the timing)."""
    amp = "fp16" if get_device().type == "cuda" else "bf16"
    params = {"steps": max(1, min(int(steps), 50)), "amp": amp}
    job = yield from lab_job("amp-progress", "autocast", params, 1, request)
    if job is None:
        return
    r = job.result
    language = request_language(request)
    table = [["fp32", round(r["off"]["ms_per_step"], 2), round(r["off"]["loss"], 4)],
             [f"autocast {amp}", round(r[amp]["ms_per_step"], 2), round(r[amp]["loss"], 4)]]
    yield ({"headers": [t(k, language) for k in AMP_HEADERS], "data": table},
           progress_html("amp-progress", t("compress.amp.done", language, device=r["device"]), 1, 1))


# The page: a problem shows under the button, the progress is cleared (the last run's results stay)
compress_ui = page((KEEP, KEEP, KEEP, KEEP, KEEP, ""))(compress)
autocast_ui = page((KEEP, ""))(autocast_training)


# Sliders and checkboxes: several side by side on a wide screen, one per line on a phone (a Chinese label
# beside a slider's number box wrapped after every character)
WIDE = {"min_width": 200}


def build_tab() -> None:
    """The Compression sub-tab (inside the Ensembles & compression tab)."""
    models = digits_models()
    with gr.Row():
        base = gr.Dropdown(models, value=L.base, label=label("compress.ui.base"), elem_id="compress-base")
        sparsity = gr.Slider(0.0, 0.95, value=L.sparsity, step=0.05, label=label("compress.ui.sparsity"), **WIDE)
        keep = gr.Slider(0.1, 1.0, value=L.keep_ratio, step=0.05, label=label("compress.ui.keep"), **WIDE)
        ft = gr.Slider(0, 1000, value=L.finetune_steps, step=10, label=label("compress.ui.finetune_steps"),
                       min_width=260)   # the checkbox beside it goes to the next line on a phone
        ft_kd = gr.Checkbox(L.finetune_distill, label=label("compress.ui.finetune_distill"), **WIDE)
    with gr.Row():
        dsteps = gr.Slider(0, 2000, value=L.distill_steps, step=10, label=label("compress.ui.distill_steps"), **WIDE)
        teacher = gr.Dropdown(models + [(label("compress.ui.zoo_average"), "zoo_average")],
                              value=L.teacher, label=label("compress.ui.teacher"), elem_id="compress-teacher",
                              min_width=220)
        widths = gr.Dropdown([(label("compress.ui.widths_16"), "16,32,64"),
                              (label("compress.ui.widths_8"), "8,16,32"), (label("compress.ui.widths_4"), "4,8,16")],
                             value=WIDTHS,
                             label=label("compress.ui.student_size"), min_width=240)
        temp = gr.Slider(0.5, 20, value=L.temperature, step=0.5, label=label("compress.ui.temperature"), **WIDE)
        alpha = gr.Slider(0.0, 1.0, value=L.alpha, step=0.05, label=label("compress.ui.alpha"), **WIDE)
    with gr.Row():
        mix = gr.Slider(0.0, 2.0, value=L.mixup, step=0.1, label=label("compress.ui.mixup"), **WIDE)
        alone_mix = gr.Slider(0.0, 2.0, value=L.alone_mixup, step=0.1, label=label("compress.ui.alone_mixup"), **WIDE)
        lbatch = gr.Slider(1, 256, value=L.latency_batch, step=1, label=label("compress.ui.latency_batch"), **WIDE)
        reps = gr.Slider(3, 200, value=L.repeats, step=1, label=label("compress.ui.repeats"), **WIDE)
    with gr.Row():
        c_btn = gr.Button(label("compress.ui.run"), variant="primary", elem_id="compress-btn", scale=3)
        c_cancel = gr.Button(label("compress.ui.cancel"), variant="stop", elem_id="compress-cancel", scale=1)
    c_message = status_box("compress-message")   # a problem with these settings sits under the buttons
    c_status = gr.HTML(elem_id="compress-status")
    c_table = gr.Dataframe(headers=COMPRESS_HEADERS, label=label("compress.ui.table"),
                           interactive=False, elem_id="compress-table")
    follow_headers(c_table, HEADER_KEYS)   # in the page's language from the first screen, and after a switch
    c_plot = gr.Plot(label=label("compress.ui.plot"))
    c_files = gr.File(label=label("compress.ui.files"), file_count="multiple",
                      elem_id="compress-files")
    c_notes = gr.Markdown()
    c_code = code_block()
    c_inputs = [base, sparsity, keep, ft, dsteps, temp, alpha, lbatch, reps, ft_kd, widths, teacher, mix,
                alone_mix]
    c_outs = [c_table, c_plot, c_files, c_notes, c_code, c_status]
    c_btn.click(compress_ui, c_inputs, c_outs + [c_message], api_visibility="private", show_progress="hidden",
                **COMMON)
    api_endpoint(compress, c_inputs, c_outs, "compress", **COMMON)
    cancel_button(c_cancel, c_status)
    gr.Markdown(label("compress.ui.amp_heading"))
    with gr.Row():
        amp_steps = gr.Slider(1, 50, value=5, step=1, label=label("compress.ui.amp_steps"))
        amp_btn = gr.Button(label("compress.ui.amp_run"), elem_id="amp-btn")
    amp_message = status_box("amp-message")
    amp_status = gr.HTML(elem_id="amp-status")
    amp_table = gr.Dataframe(headers=[t(k, "en") for k in AMP_HEADERS], interactive=False,
                             label=label("compress.ui.amp_table"))
    follow_headers(amp_table, AMP_HEADERS)
    amp_btn.click(autocast_ui, amp_steps, [amp_table, amp_status, amp_message], api_visibility="private",
                  show_progress="hidden", **COMMON)
    api_endpoint(autocast_training, amp_steps, [amp_table, amp_status], "autocast_training", **COMMON)
