"""Ensembles & compression tab: combine digits models (averaging, voting, stacking, bagging, boosting), and
shrink one (int8, bf16, pruning, distillation), with size, latency and accuracy measured on this machine."""
from __future__ import annotations

import math

import gradio as gr
import numpy as np

from ui.common import INTERACTIVE, JOB, code_block, friendly
from ui.jobstream import (api_errors, cancel_session, follow, job_status, progress_html, stage_text, submit,
                          ui_twin)

ENSEMBLE_HEADERS = ["member / combiner", "kind", "test accuracy %", "weight", "vs its best member (points)"]
COMPRESS_HEADERS = ["technique", "params", "nonzero", "size_kb", "smaller_x", "latency_ms", "faster_x", "accuracy",
                    "acc_change", "path"]
COMMON = JOB


def _digits_models() -> list[str]:
    from zoo import list_models

    return list_models("digits")


def _digits_archs() -> list[str]:
    """One digits model per architecture (resnet_digits_hard is resnet_digits' architecture again)."""
    from zoo import get_spec

    seen, out = set(), []
    for name in _digits_models():
        builder = get_spec(name).builder
        if builder not in seen:
            seen.add(builder)
            out.append(name)
    return out


def _ens_cfg(members, n_bagged, n_boosted, member_arch, steps, holdout, seed):
    from training.ensemble import EnsembleConfig

    return EnsembleConfig(zoo_members=tuple(members or ()), n_bagged=int(n_bagged), n_boosted=int(n_boosted),
                          member_arch=member_arch, steps=int(steps), holdout=int(holdout), seed=int(seed))


def _ensemble_code(cfg) -> str:
    return f'''import torch
from sklearn.linear_model import LogisticRegression
from training.data import mnist5k
from training.ensemble import EnsembleConfig, run_ensemble, average, majority_vote, weighted_average

res = run_ensemble(EnsembleConfig(zoo_members={cfg.zoo_members!r}, n_bagged={cfg.n_bagged},
                                  n_boosted={cfg.n_boosted}, member_arch={cfg.member_arch!r}, steps={cfg.steps},
                                  holdout={cfg.holdout}, seed={cfg.seed}))
P = res.test_probs                      # (members, 1000, 10) softmax outputs on the mnist5k test split
avg = P.mean(0).argmax(1)               # probability averaging
votes = torch.nn.functional.one_hot(P.argmax(-1), 10).sum(0).argmax(1)   # majority vote (ties: see majority_vote)
w = res.weights                         # log-odds of held-out accuracy (last {cfg.holdout} TRAIN images)
wavg = (P * (w / w.sum()).view(-1, 1, 1)).sum(0).argmax(1)
# stacking: a meta-classifier fitted on held-out member outputs only, then applied to test outputs
H = res.holdout_probs.clamp_min(1e-6).log().permute(1, 0, 2).flatten(1)   # (holdout, members*10)
meta = LogisticRegression(max_iter=1000).fit(H.numpy(), mnist5k().train_y[-{cfg.holdout}:].numpy())
stacked = meta.predict(P.clamp_min(1e-6).log().permute(1, 0, 2).flatten(1).numpy())
'''


def _digit_tile(x, caption):
    arr = (x[0].numpy() * 255).astype(np.uint8)
    return np.repeat(arr.repeat(3, 0).repeat(3, 1)[:, :, None], 3, axis=2), caption


def _run_job(elem_id: str, kind: str, params: dict, n_outs: int, request):
    """Submit and follow a job: yields (skip..., status) while it waits or runs; returns the finished job, or
    None when it was cancelled. A refused or failed job raises (the API's error; the page's twin shows it)."""
    skip = gr.skip()
    job = submit(kind, params, request)
    for j in follow(job):
        if j.finished.is_set():
            break
        yield (skip,) * n_outs + (job_status(elem_id, j, stage_text),)
    if job.state == "failed":
        raise gr.Error(str(job.error), print_exception=False)
    if job.state != "done":
        yield (skip,) * n_outs + (job_status(elem_id, job, stage_text),)
        return None
    return job


def _twin(fn, elem_id: str, n_outs: int):
    """The page's version of a job endpoint: a problem shows in the status beside the button."""
    return ui_twin(fn, lambda text: (gr.skip(),) * n_outs + (progress_html(elem_id, text, 0, 1, error=True),))


@friendly
def cancel(request: gr.Request = None):
    """Take this visitor's job out of the queue, or stop it after its current step (/cancel does the same)."""
    return cancel_session(request)


def _check_ensemble_settings(members, n_bagged, n_boosted, steps, holdout) -> None:
    models = _digits_models()
    if not all(m in models for m in members or ()):
        raise ValueError(f"members must be digits models: {models}")
    if not (0 <= int(n_bagged) <= 6 and 0 <= int(n_boosted) <= 6 and 1 <= int(steps) <= 500
            and 100 <= int(holdout) <= 1000):
        raise ValueError("bagged and boosted members 0..6 each, 1..500 steps per member, 100..1000 held-out images")


@api_errors
def ensemble(members: list[str] | None = None, n_bagged: int = 2, n_boosted: int = 2, member_arch: str = "small_cnn",
             steps: int = 30, holdout: int = 500, seed: int = 0, request: gr.Request = None):
    """Build the ensemble as a job; streams its stage, then (accuracy table, summary, disagreement gallery, code,
    status). Public API: /ensemble."""
    from dataclasses import asdict

    from training.ensemble import import_result, remember

    if members is None:
        members = _digits_models()
    _check_ensemble_settings(members, n_bagged, n_boosted, steps, holdout)
    cfg = _ens_cfg(members, n_bagged, n_boosted, member_arch, steps, holdout, seed)
    cfg.archs()
    job = yield from _run_job("ens-progress", "ensemble", {"config": asdict(cfg)}, 4, request)
    if job is None:
        return
    res = import_result(job.result)
    remember(cfg, res)
    yield _ensemble_outputs(res, cfg, members) + (progress_html("ens-progress", "done", 1, 1),)


def _ensemble_outputs(res, cfg, members):
    from training.data import mnist5k
    from training.ensemble import disagreements, table

    rows = table(res)
    best_member = max(res.member_acc())
    combos = res.combo_acc()
    best = max(combos, key=combos.get)
    data = mnist5k()
    idx = disagreements(res)
    preds = res.test_probs.argmax(-1)
    gallery = [_digit_tile(data.test_x[i], f"#{i} true {int(data.test_y[i])}; votes "
                           + " ".join(str(int(p)) for p in preds[:, i])
                           + f"; average says {int(res.combos['average (all members)'][i].argmax())}") for i in idx]
    missing = [m for m in members if m not in res.names]
    own = res.combo_best_member()
    gain = max(combos, key=lambda k: combos[k] - own[k])
    summary = (f"Best member **{best_member:.1f}%**; best combiner **{best}: {combos[best]:.1f}%** on the 1,000 "
               f"mnist5k test digits ({len(res.names)} members; {combos[best] - own[best]:+.1f} points vs the best "
               f"member it combines). Largest gain over its own members: **{gain}**, "
               f"{combos[gain] - own[gain]:+.1f} points. Members disagree on "
               f"{int((preds != preds[0]).any(0).sum())} test digits (shown below, most split first).  \n"
               f"Weights and the stacking meta-classifier were fitted on the last {cfg.holdout} *train* images, never "
               f"on test. Bagged/boosted members never saw those images; the zoo members did (they were trained on "
               f"the whole train split), so their held-out weights are optimistic."
               + (f"  \nLeft out (no weights here): {', '.join(missing)}." if missing else "")
               + (f"  \nSAMME weighted errors per boosting round: {', '.join(f'{e:.3f}' for e in res.boost_errors)}."
                  if res.boost_errors else ""))
    return rows, summary, gallery, _ensemble_code(cfg)


@friendly
def ensemble_votes(sketch=None, test_index: int = 0, members: list[str] | None = None, n_bagged: int = 2,
                   n_boosted: int = 2, member_arch: str = "small_cnn", steps: int = 30, holdout: int = 500,
                   seed: int = 0):
    """Each member's vote and each combiner's answer for a drawn digit (or test digit #test_index)."""
    from training.data import mnist5k
    from training.ensemble import built_ensemble, votes_for
    from zoo.images import ImageInputError, mnist_preprocess

    if members is None:
        members = _digits_models()
    res = built_ensemble(_ens_cfg(members, n_bagged, n_boosted, member_arch, steps, holdout, seed))
    if res is None:   # building one is a job (minutes with big members), not part of an interactive request
        raise ValueError("this ensemble is not built yet: press Build ensemble (or call /ensemble) with the same "
                         "settings first")
    x, where = None, ""
    if sketch is not None:
        try:
            x, where = mnist_preprocess(sketch), "your drawing"
        except ImageInputError:
            x = None                     # an empty sketchpad: fall back to the test digit
    if x is None:
        data = mnist5k()
        i = int(test_index)
        if not 0 <= i < len(data.test_x):
            raise ValueError(f"test_index must be in 0..{len(data.test_x) - 1}")
        x, where = data.test_x[i], f"test digit #{i} (true label {int(data.test_y[i])})"
    rows, combos = votes_for(res, x)
    rows += [[name, pred, round(conf, 4)] for name, (pred, conf) in combos.items()]
    return rows, f"Votes for {where}.", _digit_tile(x, where)[0]


def _compress_code(cfg) -> str:
    return f'''import copy, torch, torch.nn.utils.prune as prune
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import prepare_fx, convert_fx
from zoo import get_model
from training.data import mnist5k
from dataclasses import replace
from training.compress import (channel_prune, distill_loss_fn, train_student, teacher_model, StudentCNN,
                               save_compressed, load_compressed)
from training.trainer import TrainConfig, train

model = get_model("{cfg.base}").eval()
calib = (mnist5k().train_x[:{cfg.calib_images}] - 0.1307) / 0.3081
# int8 static, FX graph mode (torch.ao.quantization: deprecated in torch 2.14 but it runs int8 convs on CPU)
torch.backends.quantized.engine = "x86"
prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("x86"), (calib[:1],))
with torch.inference_mode():
    prepared(calib)                                   # calibrate activation ranges
int8 = convert_fx(prepared)
# dynamic int8 for Linear layers only
dyn = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {{torch.nn.Linear}}, dtype=torch.qint8)
# bf16 inference (fp16 on CUDA): weights and activations in 16 bits
bf16 = copy.deepcopy(model).to(torch.bfloat16)       # feed it x.to(torch.bfloat16)
# magnitude pruning: zero the {cfg.sparsity:.0%} smallest |w| over all conv/linear weights
pruned = copy.deepcopy(model)
params = [(m, "weight") for m in pruned.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount={cfg.sparsity})
for m, name in params:
    prune.remove(m, name)
# structured: keep {cfg.keep_ratio:.0%} of channels (largest L1 filters), rebuild smaller layers, fine-tune
small = channel_prune(model, keep_ratio={cfg.keep_ratio})
ft_cfg = TrainConfig(epochs=1000, batch_size=64, lr=1e-3, max_steps={cfg.finetune_steps}, seed={cfg.seed})
train(small, mnist5k(), ft_cfg, loss_fn={"distill_loss_fn(model, temperature=" + repr(cfg.temperature) + ", alpha=" + repr(cfg.alpha) + ", label_smoothing=ft_cfg.label_smoothing)" if cfg.finetune_distill else "None"})
# distillation: alpha*T^2*KL(teacher_T || student_T) + (1-alpha)*CE, vs the same student alone
torch.manual_seed({cfg.seed})
student = StudentCNN(widths={tuple(cfg.student_widths)!r})
alone = copy.deepcopy(student)                        # the same initial weights
cfg = TrainConfig(epochs=1000, batch_size=64, max_steps={cfg.distill_steps}, seed={cfg.seed})
train_student(student, mnist5k(), replace(cfg, mixup={cfg.mixup}), teacher=teacher_model("{cfg.teacher}"),
              temperature={cfg.temperature}, alpha={cfg.alpha})   # mixup: the teacher labels the mixed images
train_student(alone, mnist5k(), replace(cfg, mixup={cfg.alone_mixup}))   # no teacher: cross-entropy only
save_compressed(int8, "int8.safetensors", base="{cfg.base}", technique="int8-static-fx")
model2, info = load_compressed("int8.safetensors")   # int8 tensors + scales -> the same quantized model
'''


def _plot(rows):
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    markers = "osD^vP*Xph<>"
    for i, r in enumerate(rows):      # one colour and marker per technique, named once in the legend below:
        style = dict(s=45, marker=markers[i % len(markers)], color=f"C{i % 10}")   # labels on the points overlap
        axes[0].scatter(r["size_kb"], r["accuracy"], label=r["technique"], **style)
        axes[1].scatter(r["latency_ms"], r["accuracy"], **style)
    axes[0].set_xscale("log")
    axes[0].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())   # no overlapping minor labels
    axes[0].set_xlabel("size on disk, KB (safetensors, log scale)")
    axes[1].set_xlabel("CPU latency, ms (median)")
    for ax in axes:
        ax.set_ylabel("mnist5k test accuracy %")
        ax.set_ylim(max(0, min(r["accuracy"] for r in rows) - 1), 100)
        ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.02 + 0.045 * math.ceil(len(rows) / 3), 1, 1))
    return fig


@api_errors
def compress(base: str = "vgg_digits", sparsity: float = 0.5, keep_ratio: float = 0.5, finetune_steps: int = 20,
             distill_steps: int = 40, temperature: float = 1.0, alpha: float = 0.9, latency_batch: int = 1,
             repeats: int = 20, finetune_distill: bool = True, student_widths: str = "16,32,64",
             teacher: str = "resnet_digits", mixup: float = 0.0, alone_mixup: float = 0.0, request: gr.Request = None):
    """Compress a digits model every way, as a job; streams its stage, then (table, plot, safetensors files,
    notes, code, status). API: /compress."""
    from dataclasses import asdict

    cfg = _lab_config(base, sparsity, keep_ratio, finetune_steps, distill_steps, temperature, alpha,
                      latency_batch, repeats, finetune_distill, student_widths, teacher, mixup, alone_mixup)
    job = yield from _run_job("compress-progress", "compress", {"config": asdict(cfg)}, 5, request)
    if job is None:
        return
    yield _compress_outputs(job.result, cfg) + (progress_html("compress-progress", "done", 1, 1),)


def _lab_config(base, sparsity, keep_ratio, finetune_steps, distill_steps, temperature, alpha, latency_batch, repeats,
                finetune_distill, student_widths, teacher, mixup, alone_mixup):
    from training.compress import LabConfig, check_teacher

    if base not in _digits_models():
        raise ValueError(f"base must be one of {_digits_models()}")
    if not 0 <= float(sparsity) < 1 or not 0 < float(keep_ratio) <= 1:
        raise ValueError("sparsity must be in [0, 1) and keep_ratio in (0, 1]")
    if not 1 <= int(latency_batch) <= 256 or not 3 <= int(repeats) <= 200:
        raise ValueError("latency_batch must be 1..256 and repeats 3..200")
    if not (0 <= int(finetune_steps) <= 1000 and 0 <= int(distill_steps) <= 2000):
        raise ValueError("finetune_steps must be 0..1000 and distill_steps 0..2000")
    if not (0.5 <= float(temperature) <= 20 and 0 <= float(alpha) <= 1):
        raise ValueError("temperature must be 0.5..20 and alpha 0..1")
    try:
        widths = tuple(int(w) for w in str(student_widths).split(","))
    except ValueError:
        widths = ()
    if len(widths) != 3 or not all(1 <= w <= 128 for w in widths):
        raise ValueError("student_widths must be three channel counts from 1 to 128, like 16,32,64")
    check_teacher(teacher)               # before run_lab's quantizing and pruning, not after
    if not (0 <= float(mixup) <= 2 and 0 <= float(alone_mixup) <= 2):
        raise ValueError("mixup must be 0 (off) to 2")
    cfg = LabConfig(base=base, teacher=teacher, sparsity=float(sparsity), keep_ratio=float(keep_ratio),
                    finetune_steps=int(finetune_steps), finetune_distill=bool(finetune_distill),
                    distill_steps=int(distill_steps), temperature=float(temperature), alpha=float(alpha),
                    student_widths=widths, latency_batch=int(latency_batch), repeats=int(repeats),
                    mixup=float(mixup), alone_mixup=float(alone_mixup))
    return cfg


def _compress_outputs(lab: dict, cfg):
    rows = lab["rows"]
    table = [[r[h] for h in COMPRESS_HEADERS] for r in rows]
    notes = "  \n".join(["**Which paths ran:** " + "; ".join(f"{r['technique']}: `{r['path']}`" for r in rows[1:4])]
                        + lab["notes"]
                        + ["Magnitude pruning zeroes weights but a dense safetensors file stores zeros too: its size "
                           "and latency do not change (see `nonzero`). Channel pruning removes them for real."])
    if lab["extra"]:
        d, a = lab["extra"]["distilled"], lab["extra"]["alone"]
        notes += (f"  \nDistillation: {d['steps']} steps each, same seed and loop; distilled {d['test_acc']:.1f}% vs "
                  f"alone {a['test_acc']:.1f}% ({d['seconds']:.0f} s / {a['seconds']:.0f} s of training). One test "
                  "digit is 0.1 point, so a few tenths from one run can be chance: the README measures the default "
                  "recipe on all 5,000 digits (distillation, experiment 7).")
    return table, _plot(rows), list(lab["files"].values()), notes, _compress_code(cfg)


@api_errors
def autocast_training(steps: int = 5, request: gr.Request = None):
    """Mixed-precision training: ms per step of a small CNN in fp32 vs autocast (bf16 on CPU, fp16 on CUDA),
    timed as a job (alone in the worker, so other visitors' requests do not disturb the timing)."""
    from zoo.device import get_device

    amp = "fp16" if get_device().type == "cuda" else "bf16"
    params = {"steps": max(1, min(int(steps), 50)), "amp": amp}
    job = yield from _run_job("amp-progress", "autocast", params, 1, request)
    if job is None:
        return
    r = job.result
    yield [["fp32", round(r["off"]["ms_per_step"], 2), round(r["off"]["loss"], 4)],
            [f"autocast {amp}", round(r[amp]["ms_per_step"], 2), round(r[amp]["loss"], 4)]], \
        progress_html("amp-progress", f"done on {r['device']}", 1, 1)


ensemble_ui = _twin(ensemble, "ens-progress", 4)
compress_ui = _twin(compress, "compress-progress", 5)
autocast_ui = _twin(autocast_training, "amp-progress", 1)


def build_tab() -> None:
    models = _digits_models()
    gr.Markdown("Combine several digit classifiers, or make one smaller and faster, and see what it costs: every "
                "number below is measured on this machine, on the 1,000 mnist5k test digits.")
    with gr.Tabs():
        with gr.Tab("Ensembles"):
            with gr.Row():
                members = gr.CheckboxGroup(models, value=models, label="Zoo members", elem_id="ens-members")
                archs = _digits_archs()
                arch = gr.Dropdown(["small_cnn"] + archs + [(f"all {len(archs)} zoo architectures, in turn",
                                                             ",".join(archs))],
                                   value="small_cnn", label="Bagged/boosted member architecture")
            with gr.Row():
                n_bag = gr.Slider(0, 6, value=2, step=1, label="Bagged members (bootstrap samples)")
                n_boost = gr.Slider(0, 6, value=2, step=1, label="Boosted members (SAMME rounds)")
                steps = gr.Slider(1, 500, value=30, step=1, label="Training steps per member")
                holdout = gr.Slider(100, 1000, value=500, step=50, label="Held-out train images (stacking, weights)")
                seed = gr.Number(0, precision=0, label="Seed")
            with gr.Row():
                ens_btn = gr.Button("Build ensemble", variant="primary", elem_id="ensemble-btn", scale=3)
                ens_cancel = gr.Button("Cancel", variant="stop", elem_id="ensemble-cancel", scale=1)
            ens_status = gr.HTML(elem_id="ens-status")
            ens_table = gr.Dataframe(headers=ENSEMBLE_HEADERS, label="Members vs ensembles (mnist5k test accuracy)",
                                     interactive=False, elem_id="ensemble-table")
            ens_summary = gr.Markdown()
            gallery = gr.Gallery(label="Test digits where members disagree", columns=6, height=260,
                                 elem_id="disagree-gallery")
            ens_code = code_block()
            gr.Markdown("### One input: every member's vote")
            with gr.Row():
                with gr.Column():
                    sketch = gr.Sketchpad(label="Draw a digit (or leave empty and pick a test digit)", type="numpy",
                                          image_mode="RGBA", canvas_size=(300, 300), elem_id="ens-sketch",
                                          elem_classes=["auto-brush"],
                                          brush=gr.Brush(default_size=24, colors=["#000000"], color_mode="fixed"))
                    test_index = gr.Number(0, precision=0, label="...or test digit #", elem_id="ens-test-index")
                    vote_btn = gr.Button("Show votes", elem_id="votes-btn")
                with gr.Column():
                    seen = gr.Image(label="Input", interactive=False, height=120)
                    vote_note = gr.Markdown()
                    votes = gr.Dataframe(headers=["member / combiner", "prediction", "confidence"],
                                         label="Votes", interactive=False, elem_id="votes-table")
            cfg_inputs = [members, n_bag, n_boost, arch, steps, holdout, seed]
            ens_outs = [ens_table, ens_summary, gallery, ens_code, ens_status]
            ens_btn.click(ensemble_ui, cfg_inputs, ens_outs, api_visibility="private", show_progress="hidden", **COMMON)
            gr.Button(visible=False).click(ensemble, cfg_inputs, ens_outs, api_name="ensemble", **COMMON)
            ens_cancel.click(cancel, None, ens_status, api_visibility="private", concurrency_limit=None)
            vote_btn.click(ensemble_votes, [sketch, test_index] + cfg_inputs, [votes, vote_note, seen],
                           api_name="ensemble_votes", **INTERACTIVE)
        with gr.Tab("Compression"):
            with gr.Row():
                base = gr.Dropdown(models, value="vgg_digits", label="Model to compress", elem_id="compress-base")
                sparsity = gr.Slider(0.0, 0.95, value=0.5, step=0.05, label="Magnitude pruning sparsity")
                keep = gr.Slider(0.1, 1.0, value=0.5, step=0.05, label="Channel pruning: fraction of channels kept")
                ft = gr.Slider(0, 1000, value=20, step=10, label="Fine-tuning steps after channel pruning")
                ft_kd = gr.Checkbox(True, label="Fine-tune against the unpruned model's soft targets (T, alpha)")
            with gr.Row():
                dsteps = gr.Slider(0, 2000, value=40, step=10, label="Distillation steps (student, and student alone)")
                teacher = gr.Dropdown(models + [("3 zoo models, averaged", "zoo_average")],
                                      value="resnet_digits", label="Teacher", elem_id="compress-teacher", min_width=220)
                widths = gr.Dropdown([("16-32-64 (29k params)", "16,32,64"),
                                      ("8-16-32 (8.8k params)", "8,16,32"), ("4-8-16 (3k params)", "4,8,16")],
                                     value="16,32,64",
                                     label="Student size", min_width=240)
                temp = gr.Slider(0.5, 20, value=1.0, step=0.5, label="Temperature T")
                alpha = gr.Slider(0.0, 1.0, value=0.9, step=0.05, label="alpha (weight of the teacher's soft targets)")
            with gr.Row():
                mix = gr.Slider(0.0, 2.0, value=0.0, step=0.1, label="mixup, distilled student (0 = off)")
                alone_mix = gr.Slider(0.0, 2.0, value=0.0, step=0.1, label="mixup, student alone (0 = off)")
                lbatch = gr.Slider(1, 256, value=1, step=1, label="Latency batch size")
                reps = gr.Slider(3, 200, value=20, step=1, label="Latency repeats (median)")
            with gr.Row():
                c_btn = gr.Button("Compress and measure", variant="primary", elem_id="compress-btn", scale=3)
                c_cancel = gr.Button("Cancel", variant="stop", elem_id="compress-cancel", scale=1)
            c_status = gr.HTML(elem_id="compress-status")
            c_table = gr.Dataframe(headers=COMPRESS_HEADERS, label="Baseline vs each technique (measured here)",
                                   interactive=False, elem_id="compress-table")
            c_plot = gr.Plot(label="Size and latency vs accuracy")
            c_files = gr.File(label="Download compressed models (safetensors)", file_count="multiple",
                              elem_id="compress-files")
            c_notes = gr.Markdown()
            c_code = code_block()
            c_inputs = [base, sparsity, keep, ft, dsteps, temp, alpha, lbatch, reps, ft_kd, widths, teacher, mix,
                        alone_mix]
            c_outs = [c_table, c_plot, c_files, c_notes, c_code, c_status]
            c_btn.click(compress_ui, c_inputs, c_outs, api_visibility="private", show_progress="hidden", **COMMON)
            gr.Button(visible=False).click(compress, c_inputs, c_outs, api_name="compress", **COMMON)
            c_cancel.click(cancel, None, c_status, api_visibility="private", concurrency_limit=None)
            gr.Markdown("### Mixed-precision (autocast) training step time")
            with gr.Row():
                amp_steps = gr.Slider(1, 50, value=5, step=1, label="Timed steps")
                amp_btn = gr.Button("Time fp32 vs autocast", elem_id="amp-btn")
            amp_status = gr.HTML(elem_id="amp-status")
            amp_table = gr.Dataframe(headers=["mode", "ms per step (median)", "last loss"], interactive=False,
                                     label="torch.autocast training step")
            amp_btn.click(autocast_ui, amp_steps, [amp_table, amp_status], api_visibility="private",
                          show_progress="hidden", **COMMON)
            gr.Button(visible=False).click(autocast_training, amp_steps, [amp_table, amp_status],
                                           api_name="autocast_training", **COMMON)
