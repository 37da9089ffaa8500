"""Fine-tune tab: two-stage fine-tuning of a zoo model with live curves, cancel, errors per cell, checkpoints."""
from __future__ import annotations

import functools
import os
import tempfile
import threading
import time

import numpy as np

import gradio as gr

from ui.common import GPU_CONCURRENCY_ID, GPU_CONCURRENCY_LIMIT, code_block, friendly

try:  # on a ZeroGPU Space the training call must go through spaces.GPU; elsewhere it is a no-op
    import spaces  # type: ignore

    gpu_task = spaces.GPU(duration=300)
except ImportError:
    def gpu_task(fn):
        return fn

TARGET_CHOICES = [("sklearn digits (offline)", "digits"), ("mnist5k (offline)", "mnist5k"),
                  ("my ImageFolder zip", "zip"), ("MNIST (download)", "MNIST"),
                  ("FashionMNIST (download)", "FashionMNIST"), ("CIFAR-10 (download)", "CIFAR-10")]
_STOPS: dict[str, threading.Event] = {}   # session -> the cancel flag of its running job
_END = object()
POLL_S = 0.5


def friendly_stream(fn):
    """`friendly` for generator callbacks: each step runs inside the error boundary; closing the stream
    (a disconnect or Gradio's cancel) closes the inner generator, whose finally stops the training thread."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        it = fn(*args, **kwargs)
        step = friendly(lambda: next(it, _END))
        try:
            while (v := step()) is not _END:
                yield v
        finally:
            it.close()

    return wrapper


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "default"


@friendly
def cancel(request: gr.Request = None):
    """Ask the running job of this session to stop after its current step."""
    ev = _STOPS.get(_session(request))
    if ev is None:
        return "Nothing is running."
    ev.set()
    return "Cancelling: the run stops after the step in flight and keeps its best weights."


def _queued_note() -> str:
    return ("<div id='ft-progress'><b>Waiting for the accelerator.</b> One training run at a time: if someone else "
            "is training, this run is queued and the <code>queue: N/M</code> counter beside the panels shows your "
            "position. It starts by itself.</div>")


def _progress_html(text: str, done: int, total: int) -> str:
    pct = 100.0 * done / max(1, total)
    return (f"<div id='ft-progress'><progress value='{done}' max='{max(1, total)}' style='width:100%'></progress>"
            f"<div>{text} ({pct:.0f}%)</div></div>")


def _curves(history: list[dict], scratch: list[dict] | None = None):
    import pandas as pd

    rows_l, rows_a = [], []
    for i, h in enumerate(history, 1):
        series = f"stage {h['stage']}"
        rows_l.append({"step": i, "loss": h["loss"], "series": series})
        if h.get("test_acc") is not None:  # one line across both stages (a stage may hold a single evaluation)
            rows_a.append({"step": i, "test_acc": h["test_acc"], "series": "fine-tune"})
    for i, h in enumerate(scratch or [], 1):
        rows_l.append({"step": i, "loss": h["loss"], "series": "from scratch"})
        if h.get("test_acc") is not None:
            rows_a.append({"step": i, "test_acc": h["test_acc"], "series": "from scratch"})
    return (pd.DataFrame(rows_l, columns=["step", "loss", "series"]),
            pd.DataFrame(rows_a, columns=["step", "test_acc", "series"]))


def _confusion_figure(cm: list[list[int]], classes):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = np.array(cm)
    k = len(a)
    fig, ax = plt.subplots(figsize=(4.6, 4.2), dpi=90)
    ax.imshow(a, cmap="Blues")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, str(a[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if a[i, j] > a.max() / 2 else "black")
    labels = [str(c)[:10] for c in classes]
    ax.set_xticks(range(k), labels, rotation=90 if k > 10 else 0, fontsize=7)
    ax.set_yticks(range(k), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return fig


def _metrics_md(res, scratch: dict | None) -> str:
    lines = [f"**Test accuracy {res.test_acc:.2f}%** on {len(res.preds)} held-out images, "
             f"{res.seconds:.1f} s on `{res.device}`" + (" - **cancelled**, best weights kept" if res.stopped else "")]
    for s in res.stages:
        lines.append(f"- stage {s['stage']}: {s['trainable_params']:,} trainable parameters, {s['steps']} steps, "
                     f"{s['seconds']:.1f} s, {s['test_acc']:.2f}%" + (" (best weights restored)" if s["restored_best"] else ""))
    if scratch is not None:
        diff = res.test_acc - scratch["test_acc"]
        lines.append(f"- **from scratch**, same architecture and {scratch['steps']} steps: {scratch['test_acc']:.2f}% "
                     f"({'fine-tuning wins by' if diff >= 0 else 'scratch wins by'} {abs(diff):.2f} points)")
    return "\n".join(lines)


def _write_files(res) -> tuple[str, str]:
    from training.finetune import save_result_checkpoint
    from zoo.hub import save_safetensors_atomic

    folder = tempfile.mkdtemp(prefix="finetune-", dir=tempfile.gettempdir())
    name = f"{res.config.model}-{res.config.target}"
    weights = save_safetensors_atomic(res.model.state_dict(), os.path.join(folder, f"{name}.safetensors"),
                                      metadata={"model": res.config.model, "classes": ",".join(res.classes),
                                                "test_acc": f"{res.test_acc:.2f}"})
    ckpt = save_result_checkpoint(res, os.path.join(folder, f"{name}-checkpoint.safetensors"))
    return weights, ckpt


@gpu_task
def _stream(cfg, data, key: str, compare_scratch: bool, resume=None):
    """Run the job in a thread and yield live updates every POLL_S; the last yield carries the results."""
    import torch

    from training.finetune import finetune_code, run_finetune, run_scratch

    stop = threading.Event()
    _STOPS[key] = stop
    job = {"live": [], "result": None, "scratch": None, "error": None, "phase": "fine-tuning", "info": None}

    def on_step(stage, info):
        job["info"] = (stage, info)
        job["live"].append({"stage": stage, "loss": info.loss, "test_acc": info.test_acc})

    def work():
        try:
            res = run_finetune(cfg, data, on_step=on_step, stop=stop, resume=resume)
            job["result"] = res
            if compare_scratch and not res.stopped:
                job["phase"] = "training from scratch (same steps)"
                job["scratch"] = run_scratch(cfg, data, sum(s["steps"] for s in res.stages), stop=stop)
        except BaseException as exc:  # noqa: BLE001 - reported to the user below
            job["error"] = exc

    skip = gr.skip()
    worker = threading.Thread(target=work, name="finetune", daemon=True)
    worker.start()
    try:
        last = 0.0
        while worker.is_alive():
            worker.join(POLL_S)
            if time.perf_counter() - last < POLL_S or job["info"] is None:
                continue
            last = time.perf_counter()
            stage, info = job["info"]
            status = _progress_html(f"{job['phase']}: stage {stage}, step {info.step}/{info.total_steps}, "
                                    f"loss {info.loss:.3f}" + (f", test acc {info.test_acc:.1f}%"
                                                               if info.test_acc is not None else ""),
                                    info.step, info.total_steps)
            loss_df, acc_df = _curves(list(job["live"]))
            yield status, loss_df, acc_df, skip, skip, skip, skip, skip, skip, skip, skip
    finally:
        stop.set()              # a closed stream (cancel, disconnect) stops the thread within one step
        worker.join()
        _STOPS.pop(key, None)
    err = job["error"]
    if err is not None:
        if isinstance(err, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()
            raise gr.Error("The GPU ran out of memory for this run. Try a smaller batch size, bf16, or a smaller "
                           "model; the next run starts clean.", print_exception=False)
        raise err
    res, scratch = job["result"], job["scratch"]
    weights, ckpt = _write_files(res)
    loss_df, acc_df = _curves(res.history, scratch["history"] if scratch else None)
    per_class = [[c, round(a, 2), int(np.array(res.confusion)[i].sum())] for i, (c, a) in
                 enumerate(zip(res.classes, res.per_class))]
    status = _progress_html("done" if not res.stopped else "cancelled: best weights kept", 1, 1)
    state = {"result": res, "test_x": data.test_x, "test_y": data.test_y}
    t, p = _worst_cell(res.confusion)
    yield (status, loss_df, acc_df, _metrics_md(res, scratch), per_class, _confusion_figure(res.confusion, res.classes),
           [weights, ckpt], finetune_code(cfg), state,
           gr.update(choices=list(res.classes), value=res.classes[t]),
           gr.update(choices=list(res.classes), value=res.classes[p]))


def _worst_cell(cm: list[list[int]]) -> tuple[int, int]:
    """(true, predicted) of the largest off-diagonal count: the first cell worth a look."""
    a = np.array(cm)
    np.fill_diagonal(a, -1)
    t, p = np.unravel_index(int(a.argmax()), a.shape)
    return int(t), int(p)


def _config(model, target, few_shot, stage1_epochs, stage1_lr, stage2_epochs, stage2_lr, unfreeze, optimizer,
            batch_size, amp, augment, max_steps, seed, augment_settings=None):
    from training.finetune import FinetuneConfig, validate

    return validate(FinetuneConfig(
        model=model, target=target, few_shot=int(few_shot), stage1_epochs=int(stage1_epochs),
        stage1_lr=float(stage1_lr), stage2_epochs=int(stage2_epochs), stage2_lr=float(stage2_lr), unfreeze=unfreeze,
        optimizer=optimizer, batch_size=int(batch_size), amp=amp, augment=augment,
        augment_settings=augment_settings or {}, max_steps=int(max_steps) if max_steps else None, seed=int(seed)))


def data_tab_settings(request: gr.Request | None) -> dict:
    """The augmentation this session last applied on the Data tab (its random steps; sizes follow the model),
    or, before any, a digit-friendly default: padded crop, small rotation, brightness/contrast."""
    from training.transforms import AugmentSettings
    from ui.data_lab import last_settings

    mine = last_settings(getattr(request, "session_hash", None))
    if mine is not None:
        return dict(mine)
    return AugmentSettings(resize=0, crop_size=28, crop_padding=2, rotation=10, hflip_p=0.0, brightness=0.2,
                           contrast=0.2).to_dict()


def _check_weights(name: str) -> None:
    from zoo import get_spec
    from zoo.hub import weights_path

    weights_path(get_spec(name))  # local file, cache or Hub; raises WeightsUnavailable with a clear message


@friendly_stream
def finetune(model: str = "resnet_digits", target: str = "digits", zip_file: str | None = None, few_shot: int = 0,
             stage1_epochs: int = 2, stage1_lr: float = 3e-3, stage2_epochs: int = 2, stage2_lr: float = 5e-4,
             unfreeze: str = "all", optimizer: str = "adamw", batch_size: int = 64, amp: str = "off",
             augment: str = "affine", compare_scratch: bool = True, max_steps: int = 0, seed: int = 0,
             request: gr.Request = None):
    """Fine-tune a zoo model (the public API: /finetune). Defaults: resnet_digits -> sklearn digits, a short
    offline run. Streams progress; the last update holds the metrics, per-class accuracy and files."""
    from training.finetune import load_target

    cfg = _config(model, target, few_shot, stage1_epochs, stage1_lr, stage2_epochs, stage2_lr, unfreeze, optimizer,
                  batch_size, amp, augment, max_steps, seed)
    _check_weights(cfg.model)  # offline + Hub-only weights: say so before loading (and resizing) any data
    if cfg.augment == "data-tab":
        cfg.augment_settings = data_tab_settings(request)
    data = load_target(cfg, zip_file)
    yield from _stream(cfg, data, _session(request), bool(compare_scratch))


@friendly_stream
def resume(ckpt_file: str | None = None, zip_file: str | None = None, request: gr.Request = None):
    """Continue a run from an uploaded checkpoint (validated before use)."""
    from training.checkpoint import CheckpointError, load_checkpoint
    from training.finetune import config_from_checkpoint, load_target

    if not ckpt_file:
        raise ValueError("upload a checkpoint (.safetensors) first")
    try:
        ckpt = load_checkpoint(ckpt_file)
        cfg = config_from_checkpoint(ckpt)
    except CheckpointError as exc:
        raise gr.Error(str(exc), print_exception=False) from None
    _check_weights(cfg.model)
    data = load_target(cfg, zip_file)
    if list(data.classes) != list(ckpt.meta["classes"]):
        raise gr.Error(f"the checkpoint's classes {ckpt.meta['classes'][:10]} do not match this data's "
                       f"{list(data.classes)[:10]}", print_exception=False)
    try:
        yield from _stream(cfg, data, _session(request), False, resume=ckpt)
    except CheckpointError as exc:
        raise gr.Error(str(exc), print_exception=False) from None


@friendly
def misclassified(state, true_class: str, pred_class: str):
    """Test images of class `true_class` that the model called `pred_class` (a confusion-matrix cell)."""
    if not state:
        raise ValueError("run a fine-tuning job first")
    res = state["result"]
    classes = list(res.classes)
    if true_class not in classes or pred_class not in classes:
        raise ValueError("pick a true and a predicted class from the list")
    t, p = classes.index(true_class), classes.index(pred_class)
    from ui.data_lab import to_picture

    idx = ((state["test_y"] == t) & (res.preds == p)).nonzero().flatten()[:48]
    pics = [(to_picture(state["test_x"][i], min_side=112), f"#{int(i)}") for i in idx.tolist()]
    kind = "correct" if t == p else "misclassified"
    return pics, f"{len(idx)} {kind} test images: true **{true_class}**, predicted **{pred_class}**."


def _pick_cell(state, evt: gr.SelectData):
    """A click on the per-class table row picks that class as 'true'."""
    if not state:
        return gr.skip()
    return state["result"].classes[evt.index[0]]


def oauth_enabled() -> bool:
    """Sign in with Hugging Face is offered only on a Space with `hf_oauth: true` (Spaces set OAUTH_CLIENT_ID).
    Elsewhere Gradio would mock the login with the machine's own Hub account, which must never act for a visitor."""
    return bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))


def visitor_token(typed: str | None, oauth_token: gr.OAuthToken | None) -> str:
    """The visitor's own Hub credentials: the token they typed, else their Space sign-in. Never the server's
    HF_TOKEN or saved login (huggingface_hub's fallback for token=None): no credentials -> a clear error."""
    typed = (typed or "").strip()
    if typed:
        if len(typed) > 512 or any(c.isspace() for c in typed):
            raise ValueError("that does not look like a Hub token")
        return typed
    if oauth_token is not None and oauth_enabled() and getattr(oauth_token, "token", None):
        return oauth_token.token
    how = "sign in with Hugging Face above, or paste" if oauth_enabled() else "paste"
    raise ValueError(f"publishing uses your own Hub account: {how} a token with write access "
                     "(huggingface.co/settings/tokens)")


@friendly
def publish(state, repo_id: str, token: str, oauth_token: gr.OAuthToken | None = None):
    """Upload the fine-tuned weights (+ config.json, README.md) to a Hugging Face Hub model repo, with the
    visitor's own credentials only (see visitor_token)."""
    import json

    from zoo.hub import publish as hub_publish
    from zoo.hub import save_safetensors_atomic
    from zoo.tempfiles import run_dir

    if not state:
        raise ValueError("run a fine-tuning job first")
    repo_id = (repo_id or "").strip()
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise ValueError("repo id must look like 'user/name'")
    credentials = visitor_token(token, oauth_token)
    res = state["result"]
    folder = run_dir("publish")
    w = save_safetensors_atomic(res.model.state_dict(), os.path.join(folder, "model.safetensors"))
    cfg = os.path.join(folder, "config.json")
    with open(cfg, "w") as f:
        json.dump({"architecture": res.config.model, "classes": list(res.classes), "test_acc": res.test_acc,
                   "finetune_config": res.config.to_dict()}, f, indent=2)
    readme = os.path.join(folder, "README.md")
    with open(readme, "w") as f:
        f.write(f"# {res.config.model} fine-tuned on {res.config.target}\n\nTest accuracy {res.test_acc:.2f}% "
                f"({len(res.preds)} held-out images). Made with PyTorch Playground; weights are safetensors.\n")
    url = hub_publish({"model.safetensors": w, "config.json": cfg, "README.md": readme}, repo_id, token=credentials)
    return f"Published: {url}"


def build_tab() -> None:
    from training.finetune import finetunable_models
    from zoo import get_spec
    from zoo.device import describe_device

    gr.Markdown("The tutorial's fine-tuning schedule (4.3): **stage 1** freezes the pretrained backbone and trains a "
                "new head; **stage 2** unfreezes all (or the last blocks) at a lower learning rate. Curves stream "
                "while it trains; Cancel stops after the current step and keeps the best weights. One run at a time "
                "on the accelerator: when someone else is training, your run waits and the status shows your "
                f"position in the queue. Device: **{describe_device()}**.")
    gpu = dict(concurrency_id=GPU_CONCURRENCY_ID, concurrency_limit=GPU_CONCURRENCY_LIMIT)
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown([(f"{get_spec(n).title} [{n}]", n) for n in finetunable_models()], value="resnet_digits",
                                label="Pretrained model", elem_id="ft-model")
            target = gr.Dropdown(TARGET_CHOICES, value="digits", label="Target data", elem_id="ft-target")
            zip_file = gr.File(label="ImageFolder zip (class folders of images)", file_types=[".zip"],
                               type="filepath", height=90)
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
                max_steps = gr.Number(0, precision=0, label="Max steps per stage (0 = no cap)", minimum=0)
                seed = gr.Number(0, precision=0, label="Seed", minimum=0)
            with gr.Row():
                start = gr.Button("Start fine-tuning", variant="primary", elem_id="ft-start")
                stop_btn = gr.Button("Cancel", variant="stop", elem_id="ft-cancel")
            cancel_msg = gr.Markdown()
        with gr.Column(scale=2):
            status = gr.HTML(_progress_html("idle", 0, 1), elem_id="ft-status")
            with gr.Row():
                loss_plot = gr.LinePlot(x="step", y="loss", color="series", label="Training loss", height=230,
                                        elem_id="ft-loss")
                acc_plot = gr.LinePlot(x="step", y="test_acc", color="series", label="Test accuracy (%)",
                                       height=230, elem_id="ft-acc")
            metrics = gr.Markdown(elem_id="ft-metrics")
            with gr.Row():
                per_class = gr.Dataframe(headers=["class", "accuracy %", "test images"], label="Per-class accuracy "
                                         "(click a row to pick it as the true class)", interactive=False,
                                         elem_id="ft-per-class")
                confusion = gr.Plot(label="Confusion matrix (rows true, columns predicted)", elem_id="ft-confusion")
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
                                      type="filepath", height=90, elem_id="ft-ckpt-in")
                    resume_btn = gr.Button("Resume", elem_id="ft-resume")
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
    outs = [status, loss_plot, acc_plot, metrics, per_class, confusion, files, code, state, true_c, pred_c]
    inputs = [model, target, zip_file, few_shot, s1_epochs, s1_lr, s2_epochs, s2_lr, unfreeze, optimizer, batch_size,
              amp, augment, scratch, max_steps, seed]
    # An immediate note (outside the queue), then the queued job: if another run holds the accelerator, the
    # note stays up and Gradio's "queue: N/M" counter on the panels gives this run's position.
    for btn in (start, resume_btn):
        btn.click(_queued_note, None, status, queue=False, api_visibility="private")
    start.click(finetune, inputs, outs, api_name="finetune", show_progress="minimal", **gpu)
    resume_btn.click(resume, [ckpt_in, zip_file], outs, api_name="resume", show_progress="minimal", **gpu)
    stop_btn.click(cancel, None, cancel_msg, api_name="cancel", concurrency_limit=None)
    show_cell.click(misclassified, [state, true_c, pred_c], [cell_gallery, cell_note], api_visibility="private")
    per_class.select(_pick_cell, state, true_c, api_visibility="private")
    pub_btn.click(publish, [state, repo, token], pub_msg, api_visibility="private")
