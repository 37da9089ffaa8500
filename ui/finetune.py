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
from training.finetuning.finetune_config import (AUGMENT, DEFAULTS, PUBLIC_LIMITS, UNFREEZE, FinetuneConfig,
                                                 check_resumable, config_from_header, finetunable_models)
from jobs.queue import job_threads
from ui import export_run
from ui.common import ALONE, JOB, Place, api_endpoint, code_block
from ui.errors import KEEP, api, page, status_box
from ui.finetune_inputs import data_tab_settings, run_config
from ui.finetune_publish import oauth_enabled, publish
from ui.finetune_results import (SERIES_COLOURS, confusion_table, curves, live_curves, metrics_md, misclassified,
                                 pick_cell, pick_class, worst_cell)
from ui.jobstream import cancel_session, job_status, progress_html, run_job
from zoo import get_spec
from core.device import describe_device
from zoo.hub import weights_path

TARGET_CHOICES = [("sklearn digits (offline)", "digits"), ("mnist5k (offline)", "mnist5k"),
                  ("my ImageFolder zip", "zip"), ("MNIST (download)", "MNIST"),
                  ("FashionMNIST (download)", "FashionMNIST"), ("CIFAR-10 (download)", "CIFAR-10")]
N_OUTS = 12          # status, loss, acc, metrics, per-class, confusion, files, code, state, true, pred, message


@api
def cancel(request: gr.Request = None):
    """Take this session's job out of the queue, or stop it after its current step (keeping the best weights)."""
    msg = cancel_session(request)
    if msg.startswith("Cancelling"):
        return "Cancelling: the run stops after the step in flight and keeps its best weights."
    return msg


def _progress_html(text: str, done: int, total: int) -> str:
    return progress_html("ft-progress", text, done, total)


def _describe(ev: dict) -> tuple[str, int, int]:
    if ev.get("phase") in ("fine-tune", "scratch"):
        what = "fine-tuning" if ev["phase"] == "fine-tune" else "training from scratch (same steps, for comparison)"
        stage = f"stage {ev['stage']}, " if ev["phase"] == "fine-tune" else ""
        acc = f", test acc {ev['test_acc']:.1f}%" if ev.get("test_acc") is not None else ""
        if ev.get("loss") is None:
            return f"resuming at {stage}step {ev['done']}{acc}", 0, 1
        return f"{what}: {stage}step {ev['done']}/{ev['total']}, loss {ev['loss']:.3f}{acc}", ev["done"], ev["total"]
    return f"{ev.get('phase', '')}: {ev.get('text', '')}", int(ev.get("done", 0)), int(ev.get("total", 1))


def _result_outputs(r: dict, cfg):
    loss_df, acc_df = curves(r["history"], (r["scratch"] or {}).get("history"))
    per_class = [[c, round(a, 2), int(sum(r["confusion"][i]))] for i, (c, a) in
                 enumerate(zip(r["classes"], r["per_class"]))]
    status = _progress_html("done" if not r["stopped"] else "cancelled: best weights kept", 1, 1)
    run_cfg = FinetuneConfig(**r["config"])
    saved = SavedRun(run_cfg, tuple(r["classes"]), r["test_acc"], r["weights"], r["gallery"])
    state = {"result": saved, "gallery": r["gallery"]}
    t, p = worst_cell(r["confusion"])
    classes = list(r["classes"])
    return (status, loss_df, acc_df, metrics_md(r), per_class, confusion_table(r["confusion"], classes),
            [r["weights"], r["checkpoint"]], finetune_code(cfg or run_cfg), state,
            gr.update(choices=classes, value=classes[t]), gr.update(choices=classes, value=classes[p]), "")


def _follow_run(kind: str, params: dict, cfg, request):
    """Submit the job and stream: queue position, live curves and progress, then the results (a second job of
    this visitor is refused at once; a failed one raises its error)."""
    skip = gr.skip()
    shown = [-1]

    def show(j):
        status = job_status("ft-progress", j, _describe)
        if j.finished.is_set():                          # cancelled: the "Cancelling" note goes
            return (status,) + (skip,) * (N_OUTS - 2) + ("",)
        n = len(j.events)
        if n != shown[0] and j.state == "running":       # redraw the curves only when a step came in
            shown[0] = n
            loss_df, acc_df = live_curves(list(j.events), bool(params.get("compare_scratch")))
            return (status, loss_df, acc_df) + (skip,) * (N_OUTS - 3)      # a "Cancelling" note stays up
        return (status,) + (skip,) * (N_OUTS - 1)

    job = yield from run_job(kind, params, request, show)
    if job is not None:
        yield _result_outputs(job.result, cfg)


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
RESET = (_progress_html("idle", 0, 1),) + (KEEP,) * (N_OUTS - 2) + ("",)
finetune_ui = page(RESET)(finetune)
resume_ui = page(RESET)(resume)


def build_tab(place: Place = ALONE) -> None:   # place: not needed here (ui.common.Place)
    device = describe_device()
    if device.startswith("cpu"):   # jobs train with their own thread budget; the rest serves interactive requests
        n = job_threads()
        device = f"cpu ({n} thread{'s' if n > 1 else ''} for training jobs)"
    gr.Markdown("The tutorial's fine-tuning schedule (4.3): **stage 1** freezes the pretrained backbone and trains a "
                "new head; **stage 2** unfreezes all (or the last blocks) at a lower learning rate. Curves stream "
                "while it trains; Cancel stops after the current step and keeps the best weights. Training jobs run "
                "one at a time in a separate process: when someone else is training, your run waits and the status "
                f"shows your place in the queue. Device: **{device}**.")
    gpu = JOB
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown([(f"{get_spec(n).title} [{n}]", n) for n in finetunable_models()],
                                value=D.model, label="Pretrained model", elem_id="ft-model")
            target = gr.Dropdown(TARGET_CHOICES, value=D.target, label="Target data", elem_id="ft-target")
            # no fixed height: at 90 px the drop zone's "Click to Upload" was cut off
            zip_file = gr.File(label="ImageFolder zip (class folders of images)", file_types=[".zip"],
                               type="filepath", elem_id="ft-zip")
            few_shot = gr.Slider(*PUBLIC_LIMITS["few_shot"], value=D.few_shot, step=1,
                                 label="Few-shot: training images per class (0 = all)")
            with gr.Row():
                s1_epochs = gr.Slider(*PUBLIC_LIMITS["stage1_epochs"], value=D.stage1_epochs, step=1,
                                      label="Stage 1 epochs (head)")
                s1_lr = gr.Number(D.stage1_lr, label="Stage 1 lr")
            with gr.Row():
                s2_epochs = gr.Slider(*PUBLIC_LIMITS["stage2_epochs"], value=D.stage2_epochs, step=1,
                                      label="Stage 2 epochs")
                s2_lr = gr.Number(D.stage2_lr, label="Stage 2 lr (lower)")
            unfreeze = gr.Radio(list(UNFREEZE), value=D.unfreeze, label="Stage 2 unfreezes")
            with gr.Row():
                optimizer = gr.Dropdown(["adamw", "adam", "sgd"], value=D.optimizer, label="Optimizer")
                batch_size = gr.Slider(*PUBLIC_LIMITS["batch_size"], value=D.batch_size, step=8, label="Batch size")
            with gr.Row():
                amp = gr.Radio(["off", "bf16", "fp16"], value=D.amp, label="Mixed precision")
                augment = gr.Radio(list(AUGMENT), value=D.augment, label="Augmentation",
                                   info="data-tab: the random steps you last applied on the Data tab")
            scratch = gr.Checkbox(True, label="Compare with training from scratch (same steps)")
            with gr.Row():
                max_steps = gr.Number(0, precision=0, label="Max steps per stage (0 = no cap)")  # checked: run_config
                seed = gr.Number(D.seed, precision=0, label="Seed")  # checked: run_config
            with gr.Row():
                start = gr.Button("Start fine-tuning", variant="primary", elem_id="ft-start")
                stop_btn = gr.Button("Cancel", variant="stop", elem_id="ft-cancel")
            start_status = status_box("ft-start-message")   # a problem with these settings sits under the buttons
            cancel_msg = gr.Markdown(elem_id="ft-message")
            # "Export this run": /export_run, the same inputs as /finetune
            export_run.attach([model, target, zip_file, few_shot, s1_epochs, s1_lr, s2_epochs, s2_lr, unfreeze,
                               optimizer, batch_size, amp, augment, scratch, max_steps, seed])
        with gr.Column(scale=2):
            status = gr.HTML(_progress_html("idle", 0, 1), elem_id="ft-status")
            with gr.Row():
                # min_width: side by side on a wide screen, one above the other on a phone. Fixed colours, named in
                # the labels: Gradio's legend under a labelled chart of this height is cut off. The series are
                # reserved in the first value (ui/finetune_results._reserve), or later ones are not drawn.
                loss_plot = gr.LinePlot(x="step", y="loss", color="series", height=280, elem_id="ft-loss",
                                        label="Training loss (blue: stage 1, orange: stage 2, grey: from scratch)",
                                        min_width=340, color_map=SERIES_COLOURS)
                acc_plot = gr.LinePlot(x="step", y="test_acc", color="series", height=280, elem_id="ft-acc",
                                       label="Test accuracy, % (blue: fine-tune, grey: from scratch)",
                                       min_width=340, color_map=SERIES_COLOURS)
            metrics = gr.Markdown(elem_id="ft-metrics")
            with gr.Row():
                per_class = gr.Dataframe(headers=["class", "accuracy %", "test images"], label="Per-class accuracy "
                                         "(click a row to pick it as the true class)", interactive=False,
                                         elem_id="ft-per-class")
                confusion = gr.Dataframe(headers=["true \\ predicted"], interactive=False, elem_id="ft-confusion",
                                         label="Confusion matrix: rows true, columns predicted (click a cell to "
                                               "see its test images)")
            with gr.Row():
                true_c = gr.Dropdown([], label="True class", elem_id="ft-true")
                pred_c = gr.Dropdown([], label="Predicted class", elem_id="ft-pred")
                show_cell = gr.Button("Show these test images", elem_id="ft-show-cell")
            cell_status = status_box("ft-cell-message")
            cell_note = gr.Markdown()
            cell_gallery = gr.Gallery(label="Test images in that confusion-matrix cell", columns=8, height=200,
                                      elem_id="ft-cell-gallery")
            files = gr.File(label="Fine-tuned weights (.safetensors) and resumable checkpoint", file_count="multiple",
                            interactive=False, elem_id="ft-files")
            with gr.Accordion("Resume from a checkpoint / publish to the Hub", open=False):
                with gr.Row():
                    ckpt_in = gr.File(label="Checkpoint (.safetensors)", file_types=[".safetensors"],
                                      type="filepath", elem_id="ft-ckpt-in")   # no fixed height, as the zip's
                    resume_btn = gr.Button("Resume", elem_id="ft-resume")
                resume_msg = status_box("ft-resume-message")   # a problem with the checkpoint, under its button
                if oauth_enabled():
                    gr.LoginButton()
                with gr.Row():
                    repo = gr.Textbox(label="Hub repo id (user/name)")
                    token = gr.Textbox(label="Your Hub token (write)", type="password",
                                       info="used for this upload only; the server's own token never is")
                    pub_btn = gr.Button("Publish")
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
    stop_btn.click(cancel, None, cancel_msg, api_name="cancel", concurrency_limit=None)
    show_cell.click(page(([], ""))(misclassified), [state, true_c, pred_c], [cell_gallery, cell_note, cell_status],
                    api_visibility="private")
    per_class.select(pick_class, state, true_c, api_visibility="private")
    confusion.select(page((KEEP, KEEP, [], ""))(pick_cell), state,
                     [true_c, pred_c, cell_gallery, cell_note, cell_status], api_visibility="private")
    pub_btn.click(page(("",))(publish), [state, repo, token], [pub_msg, pub_status], api_visibility="private")
