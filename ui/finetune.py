"""Fine-tune tab: two-stage fine-tuning of a zoo model with live curves, cancel, errors per cell, checkpoints.

Runs are jobs (jobs/queue.py): they train in the job worker process, one at a time, while this tab's
handlers only follow them, so other visitors' interactive requests are not held up. How a run is shown:
ui/finetune_results.py; publishing it to the Hub: ui/finetune_publish.py."""
from __future__ import annotations

import gradio as gr

from training.checkpoint import read_checkpoint_meta
from training.finetuning.finetune import SavedRun
from training.finetuning.finetune_code import finetune_code
from core.errors import InputError
from core.i18n import N_, t
from training.finetuning.finetune_config import (AUGMENT, DEFAULTS, PUBLIC_LIMITS, UNFREEZE, FinetuneConfig,
                                                 check_resumable, config_from_header, finetunable_models)
from jobs.queue import job_threads
from ui import code_comments, export_run
from ui.common import ALONE, JOB, Place, api_endpoint, code_block
from ui.errors import KEEP, api, page, status_box
from ui.finetune_inputs import data_tab_settings, run_config
from ui.finetune_publish import oauth_enabled, publish
from ui.finetune_results import (SERIES_COLOURS, confusion_table, curves, live_curves, metrics_md, misclassified,
                                 pick_cell, pick_class, worst_cell)
from ui.i18n import follow_headers, label, request_language
from ui.jobstream import cancel_button, job_status, progress_html, run_job, stage_text
from zoo import get_spec
from core.device import describe_device
from zoo.hub import weights_path

TARGET_CHOICES = [(label("finetune.ui.target.digits"), "digits"), (label("finetune.ui.target.mnist5k"), "mnist5k"),
                  (label("finetune.ui.target.zip"), "zip"), (label("finetune.ui.target.mnist"), "MNIST"),
                  (label("finetune.ui.target.fashion"), "FashionMNIST"),
                  (label("finetune.ui.target.cifar"), "CIFAR-10")]
UNFREEZE_KEYS = {"all": N_("finetune.ui.unfreeze.all"), "last1": N_("finetune.ui.unfreeze.last1"),
                 "last2": N_("finetune.ui.unfreeze.last2"), "none": N_("finetune.ui.unfreeze.none")}
AUGMENT_KEYS = {"none": N_("finetune.ui.augment.none"), "affine": N_("finetune.ui.augment.affine"),
                "data-tab": N_("finetune.ui.augment.data_tab")}
N_OUTS = 12          # status, loss, acc, metrics, per-class, confusion, files, code, state, true, pred, message


def _progress_html(text: str, done: int, total: int) -> str:
    return progress_html("ft-progress", text, done, total)


# Before a run, and after a problem: an empty bar (no words, so nothing to translate)
IDLE = "<div id='ft-progress' data-state='idle'><progress value='0' max='1' style='width:100%'></progress></div>"


def _describe(ev: dict, language: str | None = None) -> tuple[str, int, int]:
    if ev.get("phase") in ("fine-tune", "scratch"):
        fine_tune = ev["phase"] == "fine-tune"
        acc = (t("finetune.progress.acc", language, acc=ev["test_acc"]) if ev.get("test_acc") is not None
               else "")
        if ev.get("loss") is None:
            key = "finetune.progress.resuming_stage" if fine_tune else "finetune.progress.resuming"
            return t(key, language, stage=ev.get("stage"), done=ev["done"]) + acc, 0, 1
        key = "finetune.progress.finetune" if fine_tune else "finetune.progress.scratch"
        return (t(key, language, stage=ev.get("stage"), done=ev["done"], total=ev["total"], loss=ev["loss"]) + acc,
                ev["done"], ev["total"])
    return stage_text(ev, language)


PER_CLASS_KEYS = [N_("finetune.table.class"), N_("finetune.table.accuracy"), N_("finetune.table.test_images")]


def per_class_headers(language: str | None = None) -> list[str]:
    return [t(k, language) for k in PER_CLASS_KEYS]


def _result_outputs(r: dict, cfg, language: str | None = None):
    loss_df, acc_df = curves(r["history"], (r["scratch"] or {}).get("history"), language=language)
    per_class = [[c, round(a, 2), int(sum(r["confusion"][i]))] for i, (c, a) in
                 enumerate(zip(r["classes"], r["per_class"]))]
    status = _progress_html(t("job.status.done" if not r["stopped"] else "finetune.status.cancelled", language),
                            1, 1)
    run_cfg = FinetuneConfig(**r["config"])
    saved = SavedRun(run_cfg, tuple(r["classes"]), r["test_acc"], r["weights"], r["gallery"])
    state = {"result": saved, "gallery": r["gallery"]}
    worst_true, worst_pred = worst_cell(r["confusion"])
    classes = list(r["classes"])
    return (status, loss_df, acc_df, metrics_md(r, language),
            {"headers": per_class_headers(language), "data": per_class},
            confusion_table(r["confusion"], classes, language),
            [r["weights"], r["checkpoint"]], code_comments.translate(finetune_code(cfg or run_cfg), language), state,
            gr.update(choices=classes, value=classes[worst_true]),
            gr.update(choices=classes, value=classes[worst_pred]), "")


def _follow_run(kind: str, params: dict, cfg, request):
    """Submit the job and stream: queue position, live curves and progress, then the results (a second job of
    this visitor is refused at once; a failed one raises its error)."""
    skip = gr.skip()
    shown = [-1]
    language = request_language(request)

    def show(j):
        status = job_status("ft-progress", j, _describe, language)
        if j.finished.is_set():                          # cancelled: the "Cancelling" note goes
            return (status,) + (skip,) * (N_OUTS - 2) + ("",)
        # the visitor's Cancel, said by this stream (ordered with the rest of it, unlike the click's own reply)
        note = t("finetune.cancelling", language) if j.cancel_requested.is_set() and j.state == "running" else skip
        n = len(j.events)
        if n != shown[0] and j.state == "running":       # redraw the curves only when a step came in
            shown[0] = n
            loss_df, acc_df = live_curves(list(j.events), bool(params.get("compare_scratch")), language)
            return (status, loss_df, acc_df) + (skip,) * (N_OUTS - 4) + (note,)
        return (status,) + (skip,) * (N_OUTS - 2) + (note,)

    job = yield from run_job(kind, params, request, show)
    if job is not None:
        yield _result_outputs(job.result, cfg, language)


def _check_weights(name: str) -> None:
    weights_path(get_spec(name))  # local file, cache or Hub; raises WeightsUnavailable with a clear message


D = DEFAULTS


@api
def finetune(model: str = D.model, target: str = D.target, zip_file: str | None = None, few_shot: int = D.few_shot,
             stage1_epochs: int = D.stage1_epochs, stage1_lr: float = D.stage1_lr,
             stage2_epochs: int = D.stage2_epochs, stage2_lr: float = D.stage2_lr, unfreeze: str = D.unfreeze,
             optimizer: str = D.optimizer, batch_size: int = D.batch_size, amp: str = D.amp,
             augment: str = D.augment, compare_scratch: bool = True, max_steps: int = 0, seed: int = D.seed,
             request: gr.Request = None):
    """Fine-tune a zoo model (the public API: /finetune). Defaults: resnet_digits -> sklearn digits, a short
    offline run. Streams progress; the last update holds the metrics, per-class accuracy and files. A problem
    (bad settings, weights offline, a second job of yours, a failed run) is an error with its message."""
    cfg = run_config(model, target, few_shot, stage1_epochs, stage1_lr, stage2_epochs, stage2_lr, unfreeze,
                  optimizer, batch_size, amp, augment, max_steps, seed)
    _check_weights(cfg.model)  # offline + Hub-only weights: say so before loading (and resizing) any data
    if cfg.target == "zip" and not zip_file:
        raise InputError("finetune.zip_needed")
    if cfg.augment == "data-tab":
        cfg.augment_settings = data_tab_settings(request)
    params = {"config": cfg.to_dict(), "zip": zip_file, "compare_scratch": bool(compare_scratch)}
    yield from _follow_run("finetune", params, cfg, request)


@api
def resume(ckpt_file: str | None = None, zip_file: str | None = None, request: gr.Request = None):
    """Continue a run from an uploaded checkpoint. Its settings are checked against the tab's limits before
    it is queued; the worker then validates every tensor before use."""
    if not ckpt_file:
        raise InputError("finetune.no_checkpoint")
    meta, position = read_checkpoint_meta(ckpt_file)
    cfg = config_from_header(meta)
    check_resumable(meta, position)
    _check_weights(cfg.model)
    if cfg.target == "zip" and not zip_file:
        raise InputError("finetune.checkpoint_needs_zip")
    yield from _follow_run("resume", {"checkpoint": ckpt_file, "zip": zip_file}, cfg, request)


# The page: a problem shows under the button that started the run; the progress is cleared (the last run's
# results stay) and a "Cancelling" note goes.
RESET = (IDLE,) + (KEEP,) * (N_OUTS - 2) + ("",)
finetune_ui = page(RESET)(finetune)
resume_ui = page(RESET)(resume)


def _device_note() -> gr.Markdown:
    """The device jobs train on, under the tab's introduction."""
    device = describe_device()
    if device.startswith("ZeroGPU"):
        return gr.Markdown(label("finetune.ui.device.zerogpu"), elem_id="ft-device")
    if device.startswith("cpu"):   # jobs train with their own thread budget; the rest serves interactive requests
        return gr.Markdown(label("finetune.ui.device.cpu_one" if job_threads() == 1 else "finetune.ui.device.cpu"),
                           elem_id="ft-device")
    with gr.Row():
        gr.Markdown(label("finetune.ui.device.gpu"), elem_id="ft-device")
        return gr.Markdown(f"`{device}`")


def build_tab(place: Place = ALONE) -> None:   # place: not needed here (ui.common.Place)
    gr.Markdown(label("finetune.ui.intro"))
    _device_note()
    gpu = JOB
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown([(f"{get_spec(n).title} [{n}]", n) for n in finetunable_models()],
                                value=D.model, label=label("finetune.ui.model"), elem_id="ft-model")
            target = gr.Dropdown(TARGET_CHOICES, value=D.target, label=label("finetune.ui.target"), elem_id="ft-target")
            # no fixed height: at 90 px the drop zone's "Click to Upload" was cut off
            zip_file = gr.File(label=label("finetune.ui.zip"), file_types=[".zip"],
                               type="filepath", elem_id="ft-zip")
            few_shot = gr.Slider(*PUBLIC_LIMITS["few_shot"], value=D.few_shot, step=1,
                                 label=label("finetune.ui.few_shot"))
            with gr.Row():   # min_width: side by side on a wide screen, one above the other on a phone
                s1_epochs = gr.Slider(*PUBLIC_LIMITS["stage1_epochs"], value=D.stage1_epochs, step=1,
                                      label=label("finetune.ui.stage1_epochs"), min_width=210)
                s1_lr = gr.Number(D.stage1_lr, label=label("finetune.ui.stage1_lr"))
            with gr.Row():
                s2_epochs = gr.Slider(*PUBLIC_LIMITS["stage2_epochs"], value=D.stage2_epochs, step=1,
                                      label=label("finetune.ui.stage2_epochs"), min_width=210)
                s2_lr = gr.Number(D.stage2_lr, label=label("finetune.ui.stage2_lr"))
            unfreeze = gr.Radio([(label(UNFREEZE_KEYS[u]), u) for u in UNFREEZE], value=D.unfreeze,
                                label=label("finetune.ui.unfreeze"))
            with gr.Row():
                optimizer = gr.Dropdown(["adamw", "adam", "sgd"], value=D.optimizer,
                                        label=label("finetune.ui.optimizer"))
                batch_size = gr.Slider(*PUBLIC_LIMITS["batch_size"], value=D.batch_size, step=8,
                                       label=label("finetune.ui.batch_size"), min_width=210)
            with gr.Row():
                amp = gr.Radio([(label("finetune.ui.amp.off"), "off"), "bf16", "fp16"], value=D.amp,
                               label=label("finetune.ui.amp"))
                augment = gr.Radio([(label(AUGMENT_KEYS[a]), a) for a in AUGMENT], value=D.augment,
                                   label=label("finetune.ui.augment"), info=label("finetune.ui.augment.info"))
            scratch = gr.Checkbox(True, label=label("finetune.ui.scratch"))
            with gr.Row():
                max_steps = gr.Number(0, precision=0, label=label("finetune.ui.max_steps"))  # checked: run_config
                seed = gr.Number(D.seed, precision=0, label=label("finetune.ui.seed"))  # checked: run_config
            with gr.Row():
                start = gr.Button(label("finetune.ui.start"), variant="primary", elem_id="ft-start")
                stop_btn = gr.Button(label("finetune.ui.cancel"), variant="stop", elem_id="ft-cancel")
            start_status = status_box("ft-start-message")   # a problem with these settings sits under the buttons
            cancel_msg = gr.Markdown(elem_id="ft-message")
            # "Export this run": /export_run, the same inputs as /finetune
            export_run.attach([model, target, zip_file, few_shot, s1_epochs, s1_lr, s2_epochs, s2_lr, unfreeze,
                               optimizer, batch_size, amp, augment, scratch, max_steps, seed])
        with gr.Column(scale=2):
            status = gr.HTML(IDLE, elem_id="ft-status")
            with gr.Row():
                # min_width: side by side on a wide screen, one above the other on a phone. Fixed colours, named in
                # the labels: Gradio's legend under a labelled chart of this height is cut off. The series are
                # reserved in the first value (ui/finetune_results._reserve), or later ones are not drawn.
                loss_plot = gr.LinePlot(x="step", y="loss", color="series", height=280, elem_id="ft-loss",
                                        label=label("finetune.ui.loss_plot"), min_width=340, color_map=SERIES_COLOURS)
                acc_plot = gr.LinePlot(x="step", y="test_acc", color="series", height=280, elem_id="ft-acc",
                                       label=label("finetune.ui.acc_plot"), min_width=340, color_map=SERIES_COLOURS)
            metrics = gr.Markdown(elem_id="ft-metrics")
            with gr.Row():
                per_class = gr.Dataframe(headers=per_class_headers("en"), label=label("finetune.ui.per_class"),
                                         interactive=False, elem_id="ft-per-class")
                confusion = gr.Dataframe(headers=confusion_table([], [], "en")["headers"], interactive=False,
                                         elem_id="ft-confusion", label=label("finetune.ui.confusion"))
                # the headers in the page's language from the first screen, and after a switch (ui.i18n); the
                # confusion table's class names stay
                follow_headers(per_class, PER_CLASS_KEYS)
                follow_headers(confusion, [N_("finetune.table.true_predicted")])
            with gr.Row():
                true_c = gr.Dropdown([], label=label("finetune.ui.true_class"), elem_id="ft-true")
                pred_c = gr.Dropdown([], label=label("finetune.ui.pred_class"), elem_id="ft-pred")
                show_cell = gr.Button(label("finetune.ui.show_cell"), elem_id="ft-show-cell")
            cell_status = status_box("ft-cell-message")
            cell_note = gr.Markdown()
            cell_gallery = gr.Gallery(label=label("finetune.ui.cell_gallery"), columns=8, height=200,
                                      elem_id="ft-cell-gallery")
            files = gr.File(label=label("finetune.ui.files"), file_count="multiple",
                            interactive=False, elem_id="ft-files")
            with gr.Accordion(label("finetune.ui.resume_publish"), open=False):
                with gr.Row():
                    ckpt_in = gr.File(label=label("finetune.ui.checkpoint"), file_types=[".safetensors"],
                                      type="filepath", elem_id="ft-ckpt-in")   # no fixed height, as the zip's
                    resume_btn = gr.Button(label("finetune.ui.resume"), elem_id="ft-resume")
                resume_msg = status_box("ft-resume-message")   # a problem with the checkpoint, under its button
                if oauth_enabled():
                    gr.LoginButton()
                with gr.Row():
                    repo = gr.Textbox(label=label("finetune.ui.repo"))
                    token = gr.Textbox(label=label("finetune.ui.token"), type="password",
                                       info=label("finetune.ui.token.info"))
                    pub_btn = gr.Button(label("finetune.ui.publish"))
                pub_status = status_box("ft-publish-message")
                pub_msg = gr.Markdown()
            code = code_block()
    state = gr.State(None)
    outs = [status, loss_plot, acc_plot, metrics, per_class, confusion, files, code, state, true_c, pred_c, cancel_msg]
    inputs = [model, target, zip_file, few_shot, s1_epochs, s1_lr, s2_epochs, s2_lr, unfreeze, optimizer, batch_size,
              amp, augment, scratch, max_steps, seed]
    # The job's own queue (jobs/queue.py) gives the position in the status; the handlers only follow jobs.
    # The page's buttons show problems under them; the API endpoints (hidden buttons) raise them as errors.
    start.click(finetune_ui, inputs, outs + [start_status], api_visibility="private", show_progress="minimal", **gpu)
    resume_btn.click(resume_ui, [ckpt_in, zip_file], outs + [resume_msg], api_visibility="private",
                     show_progress="minimal", **gpu)
    api_endpoint(finetune, inputs, outs, "finetune", **gpu)
    api_endpoint(resume, [ckpt_in, zip_file], outs, "resume", **gpu)
    cancel_button(stop_btn, cancel_msg, N_("finetune.cancelling"), api_name="cancel")
    show_cell.click(page(([], ""))(misclassified), [state, true_c, pred_c], [cell_gallery, cell_note, cell_status],
                    api_visibility="private")
    per_class.select(pick_class, state, true_c, api_visibility="private")
    confusion.select(page((KEEP, KEEP, [], ""))(pick_cell), state,
                     [true_c, pred_c, cell_gallery, cell_note, cell_status], api_visibility="private")
    pub_btn.click(page(("",))(publish), [state, repo, token], [pub_msg, pub_status], api_visibility="private")
