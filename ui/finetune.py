"""Fine-tune tab: two-stage fine-tuning of a zoo model with live curves, cancel, errors per cell, checkpoints.

Runs are jobs (jobs/queue.py): they train in the job worker process, one at a time, while this tab's
handlers only follow them, so other visitors' interactive requests are not held up. How a run is shown:
ui/finetune_results.py; publishing it to the Hub: ui/finetune_publish.py."""
from __future__ import annotations

import gradio as gr

from training.checkpoint import read_checkpoint_meta
from training.finetuning.finetune import SavedRun
from training.finetuning.finetune_code import finetune_code
from training.finetuning.finetune_config import FinetuneConfig, check_resumable, config_from_header, finetunable_models
from jobs.queue import job_threads
from ui import export_run
from ui.common import JOB, code_block, friendly
from ui.finetune_inputs import data_tab_settings, run_config
from ui.finetune_publish import oauth_enabled, publish
from ui.finetune_results import (SERIES_COLOURS, confusion_table, curves, live_curves, metrics_md, misclassified,
                                 pick_cell, pick_class, worst_cell)
from ui.jobstream import api_errors, cancel_session, follow, job_status, progress_html, submit, ui_twin
from zoo import get_spec
from core.device import describe_device
from zoo.hub import weights_path

TARGET_CHOICES = [("sklearn digits (offline)", "digits"), ("mnist5k (offline)", "mnist5k"),
                  ("my ImageFolder zip", "zip"), ("MNIST (download)", "MNIST"),
                  ("FashionMNIST (download)", "FashionMNIST"), ("CIFAR-10 (download)", "CIFAR-10")]
N_OUTS = 12          # status, loss, acc, metrics, per-class, confusion, files, code, state, true, pred, message


@friendly
def cancel(request: gr.Request = None):
    """Take this session's job out of the queue, or stop it after its current step (keeping the best weights)."""
    msg = cancel_session(request)
    if msg.startswith("Cancelling"):
        return "Cancelling: the run stops after the step in flight and keeps its best weights."
    return msg


def _progress_html(text: str, done: int, total: int, error: bool = False) -> str:
    return progress_html("ft-progress", text, done, total, error)


def _describe(ev: dict) -> tuple[str, int, int]:
    if ev.get("phase") in ("fine-tune", "scratch"):
        what = "fine-tuning" if ev["phase"] == "fine-tune" else "training from scratch (same steps, for comparison)"
        stage = f"stage {ev['stage']}, " if ev["phase"] == "fine-tune" else ""
        acc = f", test acc {ev['test_acc']:.1f}%" if ev.get("test_acc") is not None else ""
        if ev.get("loss") is None:
            return f"resuming at {stage}step {ev['done']}{acc}", 0, 1
        return f"{what}: {stage}step {ev['done']}/{ev['total']}, loss {ev['loss']:.3f}{acc}", ev["done"], ev["total"]
    return f"{ev.get('phase', '')}: {ev.get('text', '')}", int(ev.get("done", 0)), int(ev.get("total", 1))


def _message_outputs(text: str, error: bool = True):
    """Only the status and the message beside the buttons change: finished outputs keep what they show."""
    skip = gr.skip()
    note = f"**{'Problem' if error else 'Note'}:** {text}"
    return (_progress_html(text, 0, 1, error=error),) + (skip,) * (N_OUTS - 2) + (note,)


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
    """Submit the job and stream: queue position, live curves and progress, then the results."""
    job = submit(kind, params, request)     # a second job of this visitor: refused at once
    skip = gr.skip()
    shown = -1
    for j in follow(job):
        if j.finished.is_set():
            break
        status = job_status("ft-progress", j, _describe)
        n = len(j.events)
        if n != shown and j.state == "running":       # redraw the curves only when a step came in
            shown = n
            loss_df, acc_df = live_curves(list(j.events), bool(params.get("compare_scratch")))
            yield (status, loss_df, acc_df) + (skip,) * (N_OUTS - 3)      # a "Cancelling" note stays up
        else:
            yield (status,) + (skip,) * (N_OUTS - 1)
    if job.state == "done":
        yield _result_outputs(job.result, cfg)
    elif job.state == "cancelled":
        yield (_progress_html(str(job.error or "Cancelled before it started."), 0, 1),) + (skip,) * (N_OUTS - 2) + ("",)
    else:
        raise gr.Error(str(job.error), print_exception=False)


def _check_weights(name: str) -> None:
    weights_path(get_spec(name))  # local file, cache or Hub; raises WeightsUnavailable with a clear message


@api_errors
def finetune(model: str = "resnet_digits", target: str = "digits", zip_file: str | None = None, few_shot: int = 0,
             stage1_epochs: int = 2, stage1_lr: float = 3e-3, stage2_epochs: int = 2, stage2_lr: float = 5e-4,
             unfreeze: str = "all", optimizer: str = "adamw", batch_size: int = 64, amp: str = "off",
             augment: str = "affine", compare_scratch: bool = True, max_steps: int = 0, seed: int = 0,
             request: gr.Request = None):
    """Fine-tune a zoo model (the public API: /finetune). Defaults: resnet_digits -> sklearn digits, a short
    offline run. Streams progress; the last update holds the metrics, per-class accuracy and files. A problem
    (bad settings, weights offline, a second job of yours, a failed run) is an error with its message."""
    cfg = run_config(model, target, few_shot, stage1_epochs, stage1_lr, stage2_epochs, stage2_lr, unfreeze,
                  optimizer, batch_size, amp, augment, max_steps, seed)
    _check_weights(cfg.model)  # offline + Hub-only weights: say so before loading (and resizing) any data
    if cfg.target == "zip" and not zip_file:
        raise ValueError("target 'zip' needs an ImageFolder zip (class folders of images)")
    if cfg.augment == "data-tab":
        cfg.augment_settings = data_tab_settings(request)
    params = {"config": cfg.to_dict(), "zip": zip_file, "compare_scratch": bool(compare_scratch)}
    yield from _follow_run("finetune", params, cfg, request)


@api_errors
def resume(ckpt_file: str | None = None, zip_file: str | None = None, request: gr.Request = None):
    """Continue a run from an uploaded checkpoint. Its settings are checked against the tab's limits before
    it is queued; the worker then validates every tensor before use."""
    if not ckpt_file:
        raise ValueError("upload a checkpoint (.safetensors) first")
    meta, position = read_checkpoint_meta(ckpt_file)
    cfg = config_from_header(meta)
    check_resumable(meta, position)
    _check_weights(cfg.model)
    if cfg.target == "zip" and not zip_file:
        raise ValueError("this checkpoint was trained on a zip: upload the same ImageFolder zip too")
    yield from _follow_run("resume", {"checkpoint": ckpt_file, "zip": zip_file}, cfg, request)


finetune_ui = ui_twin(finetune, lambda text: _message_outputs(text))   # the page: errors beside the button
resume_ui = ui_twin(resume, lambda text: _message_outputs(text))    # (its message box is under Resume)


def build_tab() -> None:
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
                                value="resnet_digits", label="Pretrained model", elem_id="ft-model")
            target = gr.Dropdown(TARGET_CHOICES, value="digits", label="Target data", elem_id="ft-target")
            # no fixed height: at 90 px the drop zone's "Click to Upload" was cut off
            zip_file = gr.File(label="ImageFolder zip (class folders of images)", file_types=[".zip"],
                               type="filepath", elem_id="ft-zip")
            few_shot = gr.Slider(0, 200, value=0, step=1, label="Few-shot: training images per class (0 = all)")
            with gr.Row():
                s1_epochs = gr.Slider(0, 20, value=2, step=1, label="Stage 1 epochs (head)")
                s1_lr = gr.Number(3e-3, label="Stage 1 lr")
            with gr.Row():
                s2_epochs = gr.Slider(0, 20, value=2, step=1, label="Stage 2 epochs")
                s2_lr = gr.Number(5e-4, label="Stage 2 lr (lower)")
            unfreeze = gr.Radio(["all", "last1", "last2", "none"], value="all", label="Stage 2 unfreezes")
            with gr.Row():
                optimizer = gr.Dropdown(["adamw", "adam", "sgd"], value="adamw", label="Optimizer")
                batch_size = gr.Slider(8, 256, value=64, step=8, label="Batch size")
            with gr.Row():
                amp = gr.Radio(["off", "bf16", "fp16"], value="off", label="Mixed precision")
                augment = gr.Radio(["none", "affine", "data-tab"], value="affine", label="Augmentation",
                                   info="data-tab: the random steps you last applied on the Data tab")
            scratch = gr.Checkbox(True, label="Compare with training from scratch (same steps)")
            with gr.Row():
                max_steps = gr.Number(0, precision=0, label="Max steps per stage (0 = no cap)")  # checked: run_config
                seed = gr.Number(0, precision=0, label="Seed")  # checked: run_config
            with gr.Row():
                start = gr.Button("Start fine-tuning", variant="primary", elem_id="ft-start")
                stop_btn = gr.Button("Cancel", variant="stop", elem_id="ft-cancel")
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
                resume_msg = gr.Markdown(elem_id="ft-resume-message")
                if oauth_enabled():
                    gr.LoginButton()
                with gr.Row():
                    repo = gr.Textbox(label="Hub repo id (user/name)")
                    token = gr.Textbox(label="Your Hub token (write)", type="password",
                                       info="used for this upload only; the server's own token never is")
                    pub_btn = gr.Button("Publish")
                pub_msg = gr.Markdown()
            code = code_block()
    state = gr.State(None)
    outs = [status, loss_plot, acc_plot, metrics, per_class, confusion, files, code, state, true_c, pred_c, cancel_msg]
    inputs = [model, target, zip_file, few_shot, s1_epochs, s1_lr, s2_epochs, s2_lr, unfreeze, optimizer, batch_size,
              amp, augment, scratch, max_steps, seed]
    # The job's own queue (jobs/queue.py) gives the position in the status; the handlers only follow jobs.
    # The page's buttons show problems beside them; the API endpoints (hidden buttons) raise them as errors.
    start.click(finetune_ui, inputs, outs, api_visibility="private", show_progress="minimal", **gpu)
    resume_btn.click(resume_ui, [ckpt_in, zip_file], outs[:-1] + [resume_msg], api_visibility="private",
                     show_progress="minimal", **gpu)
    gr.Button(visible=False).click(finetune, inputs, outs, api_name="finetune", **gpu)
    gr.Button(visible=False).click(resume, [ckpt_in, zip_file], outs, api_name="resume", **gpu)
    stop_btn.click(cancel, None, cancel_msg, api_name="cancel", concurrency_limit=None)
    show_cell.click(misclassified, [state, true_c, pred_c], [cell_gallery, cell_note], api_visibility="private")
    per_class.select(pick_class, state, true_c, api_visibility="private")
    confusion.select(pick_cell, state, [true_c, pred_c, cell_gallery, cell_note], api_visibility="private")
    pub_btn.click(publish, [state, repo, token], pub_msg, api_visibility="private")
