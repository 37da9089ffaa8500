"""Ensembles sub-tab: combine digits models (averaging, voting, stacking, bagging, boosting) and see every
member's vote for one digit; the ensemble is built as a job (training/ensembles/ensemble.py)."""
from __future__ import annotations

import re
from dataclasses import asdict

import gradio as gr
import numpy as np

from core.errors import InputError
from core.i18n import N_, t
from training.data.datasets import mnist5k
from training.ensembles.ensemble import EnsembleConfig
from training.ensembles.ensemble_code import ensemble_code
from training.ensembles.ensemble_results import built_ensemble, disagreements, import_result, remember, table, votes_for
from ui import code_comments
from ui.common import INTERACTIVE, api_endpoint, code_block
from ui.errors import KEEP, api, page, status_box
from ui.i18n import follow_headers, label, request_language
from ui.jobstream import cancel_button, progress_html
from ui.labjobs import COMMON, digits_models, lab_job
from zoo import get_spec
from zoo.images import ImageInputError, mnist_preprocess

ENSEMBLE_HEADERS = [N_("ensemble.table.name"), N_("ensemble.table.kind"), N_("ensemble.table.accuracy"),
                    N_("ensemble.table.weight"), N_("ensemble.table.gain")]
VOTES_HEADERS = [N_("ensemble.table.name"), N_("ensemble.table.prediction"), N_("ensemble.table.confidence")]
KINDS = {"zoo": N_("ensemble.kind.zoo"), "bagged": N_("ensemble.kind.bagged"), "boosted": N_("ensemble.kind.boosted"),
         "ensemble": N_("ensemble.kind.ensemble")}
# The combiners (training/ensembles/combiners.py) by their names in the catalogue
COMBINERS = {"average (all members)": N_("ensemble.combiner.average"),
             "majority vote (all members)": N_("ensemble.combiner.vote"),
             "weighted average (held-out log-odds)": N_("ensemble.combiner.weighted"),
             "stacking (LogisticRegression on held-out)": N_("ensemble.combiner.stacking"),
             "average (zoo members)": N_("ensemble.combiner.zoo_average"),
             "bagging (average of bagged)": N_("ensemble.combiner.bagging"),
             "boosting (SAMME vote of boosted)": N_("ensemble.combiner.boosting")}
_BAGGED = re.compile(r"bagged #(\d+) \((.+), (\d+) steps\)$")       # training/ensembles/ensemble.py's names
_BOOSTED = re.compile(r"boosted #(\d+) \((.+), alpha (-?[\d.]+)\)$")


def headers(keys: list[str], language: str | None = None) -> list[str]:
    """A table's column names in a language (None: the request's)."""
    return [t(k, language) for k in keys]


def display_name(name: str, language: str | None = None) -> str:
    """A member's or combiner's name in a language: a zoo model keeps its name, a bagged or boosted member and a
    combiner are said in words."""
    if name in COMBINERS:
        return t(COMBINERS[name], language)
    if m := _BAGGED.match(name):
        return t("ensemble.member.bagged", language, i=m[1], arch=m[2], steps=m[3])
    if m := _BOOSTED.match(name):
        return t("ensemble.member.boosted", language, i=m[1], arch=m[2], alpha=m[3])
    return name


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
    return ensemble_code(cfg)   # plain PyTorch, written out (training/ensembles/ensemble_code.py)


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
    language = request_language(request)
    yield _ensemble_outputs(res, cfg, members, language) + (
        progress_html("ens-progress", t("job.status.done", language), 1, 1),)


def _ensemble_outputs(res, cfg, members, language: str | None = None):
    rows = [[display_name(name, language), t(KINDS[kind], language) if kind in KINDS else kind, *rest]
            for name, kind, *rest in table(res)]
    best_member = max(res.member_acc())
    combos = res.combo_acc()
    best = max(combos, key=combos.get)
    data = mnist5k()
    idx = disagreements(res)
    preds = res.test_probs.argmax(-1)
    gallery = [_digit_tile(data.test_x[i], t("ensemble.caption", language, i=i, true=int(data.test_y[i]),
                                             votes=" ".join(str(int(p)) for p in preds[:, i]),
                                             average=int(res.combos["average (all members)"][i].argmax())))
               for i in idx]
    missing = [m for m in members if m not in res.names]
    own = res.combo_best_member()
    gain = max(combos, key=lambda k: combos[k] - own[k])
    summary = (t("ensemble.summary", language, best_member=best_member, best=display_name(best, language),
                 best_acc=combos[best], members=len(res.names), best_gain=combos[best] - own[best],
                 gain=display_name(gain, language), gain_points=combos[gain] - own[gain],
                 disagree=int((preds != preds[0]).any(0).sum()), holdout=cfg.holdout)
               + (t("ensemble.summary.left_out", language, names=", ".join(missing)) if missing else "")
               + (t("ensemble.summary.samme", language, errors=", ".join(f"{e:.3f}" for e in res.boost_errors))
                  if res.boost_errors else ""))
    return ({"headers": headers(ENSEMBLE_HEADERS, language), "data": rows}, summary, gallery,
            code_comments.translate(_ensemble_code(cfg), language))


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
            x, where = mnist_preprocess(sketch), t("ensemble.votes.drawing")
        except ImageInputError:
            x = None                     # an empty sketchpad: fall back to the test digit
    if x is None:
        data = mnist5k()
        i = int(test_index)
        if not 0 <= i < len(data.test_x):
            raise InputError("ensemble.test_index", last=len(data.test_x) - 1)
        x, where = data.test_x[i], t("ensemble.votes.test_digit", i=i, true=int(data.test_y[i]))
    rows, combos = votes_for(res, x)
    rows += [[name, pred, round(conf, 4)] for name, (pred, conf) in combos.items()]
    rows = [[display_name(name), *rest] for name, *rest in rows]
    return ({"headers": headers(VOTES_HEADERS), "data": rows}, t("ensemble.votes.note", where=where),
            _digit_tile(x, where)[0])


# The page: a problem shows under the button, the progress is cleared (the last built ensemble's results stay)
ensemble_ui = page((KEEP, KEEP, KEEP, KEEP, ""))(ensemble)


# Sliders and checkboxes: several side by side on a wide screen, one per line on a phone (a Chinese label
# beside a slider's number box wrapped after every character)
WIDE = {"min_width": 200}


def build_tab() -> None:
    """The Ensembles sub-tab (inside the Ensembles & compression tab)."""
    models = digits_models()
    with gr.Row():
        members = gr.CheckboxGroup(models, value=models, label=label("ensemble.ui.members"), elem_id="ens-members")
        archs = _digits_archs()
        arch = gr.Dropdown(["small_cnn"] + archs + [(label("ensemble.ui.arch_all"), ",".join(archs))],
                           value="small_cnn", label=label("ensemble.ui.arch"))
    with gr.Row():
        n_bag = gr.Slider(0, 6, value=2, step=1, label=label("ensemble.ui.bagged"), **WIDE)
        n_boost = gr.Slider(0, 6, value=2, step=1, label=label("ensemble.ui.boosted"), **WIDE)
        steps = gr.Slider(1, 500, value=30, step=1, label=label("ensemble.ui.steps"), **WIDE)
        holdout = gr.Slider(100, 1000, value=500, step=50, label=label("ensemble.ui.holdout"), **WIDE)
        seed = gr.Number(0, precision=0, label=label("ensemble.ui.seed"))
    with gr.Row():
        ens_btn = gr.Button(label("ensemble.ui.build"), variant="primary", elem_id="ensemble-btn", scale=3)
        ens_cancel = gr.Button(label("ensemble.ui.cancel"), variant="stop", elem_id="ensemble-cancel", scale=1)
    ens_message = status_box("ens-message")   # a problem with these settings sits under the buttons
    ens_status = gr.HTML(elem_id="ens-status")
    ens_table = gr.Dataframe(headers=headers(ENSEMBLE_HEADERS, "en"), label=label("ensemble.ui.table"),
                             interactive=False, elem_id="ensemble-table")
    ens_summary = gr.Markdown()
    gallery = gr.Gallery(label=label("ensemble.ui.gallery"), columns=6, height=260,
                         elem_id="disagree-gallery")
    ens_code = code_block()
    gr.Markdown(label("ensemble.ui.votes_heading"))
    with gr.Row():
        with gr.Column():
            sketch = gr.Sketchpad(label=label("ensemble.ui.sketch"), type="numpy",
                                  image_mode="RGBA", canvas_size=(300, 300), elem_id="ens-sketch",
                                  elem_classes=["auto-brush"],
                                  brush=gr.Brush(default_size=24, colors=["#000000"], color_mode="fixed"))
            test_index = gr.Number(0, precision=0, label=label("ensemble.ui.test_index"), elem_id="ens-test-index")
            vote_btn = gr.Button(label("ensemble.ui.show_votes"), elem_id="votes-btn")
            vote_status = status_box("votes-status")   # a message about the input sits under it
        with gr.Column():
            seen = gr.Image(label=label("ensemble.ui.input"), interactive=False, height=120)
            vote_note = gr.Markdown()
            votes = gr.Dataframe(headers=headers(VOTES_HEADERS, "en"),
                                 label=label("ensemble.ui.votes"), interactive=False, elem_id="votes-table")
    # the tables' headers in the page's language from the first screen, and after a switch (ui.i18n)
    follow_headers(ens_table, ENSEMBLE_HEADERS)
    follow_headers(votes, VOTES_HEADERS)
    cfg_inputs = [members, n_bag, n_boost, arch, steps, holdout, seed]
    ens_outs = [ens_table, ens_summary, gallery, ens_code, ens_status]
    ens_btn.click(ensemble_ui, cfg_inputs, ens_outs + [ens_message], api_visibility="private", show_progress="hidden",
                  **COMMON)
    api_endpoint(ensemble, cfg_inputs, ens_outs, "ensemble", **COMMON)
    cancel_button(ens_cancel, ens_status)
    vote_outputs = [votes, vote_note, seen]
    vote_btn.click(page(([], "", None))(ensemble_votes), [sketch, test_index] + cfg_inputs,
                   vote_outputs + [vote_status], api_visibility="private", **INTERACTIVE)
    api_endpoint(ensemble_votes, [sketch, test_index] + cfg_inputs, vote_outputs, "ensemble_votes", **INTERACTIVE)
