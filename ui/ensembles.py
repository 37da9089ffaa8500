"""Ensembles sub-tab: combine digits models (averaging, voting, stacking, bagging, boosting) and see every
member's vote for one digit; the ensemble is built as a job (training/ensembles/ensemble.py)."""
from __future__ import annotations

from dataclasses import asdict

import gradio as gr
import numpy as np

from core.errors import InputError
from training.data.datasets import mnist5k
from training.ensembles.ensemble import EnsembleConfig
from training.ensembles.ensemble_results import built_ensemble, disagreements, import_result, remember, table, votes_for
from ui.common import INTERACTIVE, api_endpoint, code_block
from ui.errors import KEEP, api, page, status_box
from ui.jobstream import progress_html
from ui.labjobs import COMMON, cancel, digits_models, lab_job
from zoo import get_spec
from zoo.images import ImageInputError, mnist_preprocess

ENSEMBLE_HEADERS = ["member / combiner", "kind", "test accuracy %", "weight", "vs its best member (points)"]


def _digits_archs() -> list[str]:
    """One digits model per architecture (resnet_digits_hard is resnet_digits' architecture again)."""
    seen, out = set(), []
    for name in digits_models():
        builder = get_spec(name).builder
        if builder not in seen:
            seen.add(builder)
            out.append(name)
    return out


def _ens_cfg(members, n_bagged, n_boosted, member_arch, steps, holdout, seed):
    return EnsembleConfig(zoo_members=tuple(members or ()), n_bagged=int(n_bagged), n_boosted=int(n_boosted),
                          member_arch=member_arch, steps=int(steps), holdout=int(holdout), seed=int(seed))


def _ensemble_code(cfg) -> str:
    return f'''import torch
from sklearn.linear_model import LogisticRegression
from training.data.datasets import mnist5k
from training.ensembles.combiners import average, majority_vote, weighted_average
from training.ensembles.ensemble import EnsembleConfig, run_ensemble

res = run_ensemble(EnsembleConfig(zoo_members={cfg.zoo_members!r}, n_bagged={cfg.n_bagged},
                                  n_boosted={cfg.n_boosted}, member_arch={cfg.member_arch!r}, steps={cfg.steps},
                                  holdout={cfg.holdout}, seed={cfg.seed}))
P = res.test_probs                      # (members, 1000, 10) softmax outputs on the mnist5k test split
avg = P.mean(0).argmax(1)               # probability averaging
votes = majority_vote(P)                # majority vote; a tie goes to the tied class with the higher mean probability
w = res.weights                         # log-odds of held-out accuracy (last {cfg.holdout} TRAIN images)
wavg = (P * (w / w.sum()).view(-1, 1, 1)).sum(0).argmax(1)
# stacking: a meta-classifier fitted on held-out member outputs only, then applied to test outputs
H = res.holdout_probs.clamp_min(1e-6).log().permute(1, 0, 2).flatten(1)   # (holdout, members*10)
meta = LogisticRegression(max_iter=1000).fit(H.numpy(), mnist5k().train_y[-{cfg.holdout}:].numpy())
stacked = torch.from_numpy(meta.predict(P.clamp_min(1e-6).log().permute(1, 0, 2).flatten(1).numpy()))

for name, p in zip(res.names, P):       # test accuracy of each member and each combiner, as in the table
    print(f"{{name}}: {{100 * (p.argmax(1) == res.test_y).float().mean():.1f}}%")
for name, pred in [("average", avg), ("majority vote", votes), ("weighted average", wavg), ("stacking", stacked)]:
    print(f"{{name}}: {{100 * (pred == res.test_y).float().mean():.1f}}%")
'''


def _digit_tile(x, caption):
    arr = (x[0].numpy() * 255).astype(np.uint8)
    return np.repeat(arr.repeat(3, 0).repeat(3, 1)[:, :, None], 3, axis=2), caption


def _check_ensemble_settings(members, n_bagged, n_boosted, steps, holdout) -> None:
    models = digits_models()
    if not all(m in models for m in members or ()):
        raise InputError("ensemble.members", models=", ".join(models))
    if not (0 <= int(n_bagged) <= 6 and 0 <= int(n_boosted) <= 6 and 1 <= int(steps) <= 500
            and 100 <= int(holdout) <= 1000):
        raise InputError("ensemble.settings")


@api
def ensemble(members: list[str] | None = None, n_bagged: int = 2, n_boosted: int = 2, member_arch: str = "small_cnn",
             steps: int = 30, holdout: int = 500, seed: int = 0, request: gr.Request = None):
    """Build the ensemble as a job; streams its stage, then (accuracy table, summary, disagreement gallery, code,
    status). Public API: /ensemble."""
    if members is None:
        members = digits_models()
    _check_ensemble_settings(members, n_bagged, n_boosted, steps, holdout)
    cfg = _ens_cfg(members, n_bagged, n_boosted, member_arch, steps, holdout, seed)
    cfg.archs()
    job = yield from lab_job("ens-progress", "ensemble", {"config": asdict(cfg)}, 4, request)
    if job is None:
        return
    res = import_result(job.result)
    remember(cfg, res)
    yield _ensemble_outputs(res, cfg, members) + (progress_html("ens-progress", "done", 1, 1),)


def _ensemble_outputs(res, cfg, members):
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


@api
def ensemble_votes(sketch=None, test_index: int = 0, members: list[str] | None = None, n_bagged: int = 2,
                   n_boosted: int = 2, member_arch: str = "small_cnn", steps: int = 30, holdout: int = 500,
                   seed: int = 0):
    """Each member's vote and each combiner's answer for a drawn digit (or test digit #test_index)."""
    if members is None:
        members = digits_models()
    res = built_ensemble(_ens_cfg(members, n_bagged, n_boosted, member_arch, steps, holdout, seed))
    if res is None:   # building one is a job (minutes with big members), not part of an interactive request
        raise InputError("ensemble.not_built")
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
            raise InputError("ensemble.test_index", last=len(data.test_x) - 1)
        x, where = data.test_x[i], f"test digit #{i} (true label {int(data.test_y[i])})"
    rows, combos = votes_for(res, x)
    rows += [[name, pred, round(conf, 4)] for name, (pred, conf) in combos.items()]
    return rows, f"Votes for {where}.", _digit_tile(x, where)[0]


# The page: a problem shows under the button, the progress is cleared (the last built ensemble's results stay)
ensemble_ui = page((KEEP, KEEP, KEEP, KEEP, ""))(ensemble)


def build_tab() -> None:
    """The Ensembles sub-tab (inside the Ensembles & compression tab)."""
    models = digits_models()
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
    ens_message = status_box("ens-message")   # a problem with these settings sits under the buttons
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
            vote_status = status_box("votes-status")   # a message about the input sits under it
        with gr.Column():
            seen = gr.Image(label="Input", interactive=False, height=120)
            vote_note = gr.Markdown()
            votes = gr.Dataframe(headers=["member / combiner", "prediction", "confidence"],
                                 label="Votes", interactive=False, elem_id="votes-table")
    cfg_inputs = [members, n_bag, n_boost, arch, steps, holdout, seed]
    ens_outs = [ens_table, ens_summary, gallery, ens_code, ens_status]
    ens_btn.click(ensemble_ui, cfg_inputs, ens_outs + [ens_message], api_visibility="private", show_progress="hidden",
                  **COMMON)
    api_endpoint(ensemble, cfg_inputs, ens_outs, "ensemble", **COMMON)
    ens_cancel.click(cancel, None, ens_status, api_visibility="private", concurrency_limit=None)
    vote_outputs = [votes, vote_note, seen]
    vote_btn.click(page(([], "", None))(ensemble_votes), [sketch, test_index] + cfg_inputs,
                   vote_outputs + [vote_status], api_visibility="private", **INTERACTIVE)
    api_endpoint(ensemble_votes, [sketch, test_index] + cfg_inputs, vote_outputs, "ensemble_votes", **INTERACTIVE)
