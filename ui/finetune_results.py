"""How the Fine-tune tab shows a run: loss and accuracy curves (live and final), the metrics, the per-class and
confusion tables, and the test images of one confusion-matrix cell."""
from __future__ import annotations

import numpy as np
import pandas as pd
from safetensors import safe_open

import gradio as gr

from core.errors import InputError
from core.i18n import t
from ui.data import to_picture

# Every series the two charts can show, with its colour (the charts are built with this map: see ui/finetune.py).
SERIES_COLOURS = {"fine-tune stage 1": "#1f77b4", "fine-tune stage 2": "#ff7f0e", "fine-tune": "#1f77b4",
                  "from scratch": "#7f7f7f"}


def _reserve(rows: list[dict], y: str, names) -> list[dict]:
    """A value-less row for each expected series that has no data yet. Gradio's LinePlot fixes its colour scale
    on the first value a stream shows; a series that appears later (stage 2, from scratch) is then drawn without
    a colour, i.e. not at all. A NaN row puts it on the scale (and in the legend) from the start, drawing nothing."""
    have = {r["series"] for r in rows}
    return rows + [{"step": 0, y: float("nan"), "series": n} for n in names if n not in have]


def curves(history: list[dict], scratch: list[dict] | None = None, scratch_expected: bool = False,
           language: str | None = None):
    """Loss and accuracy plot updates: the fine-tune (by stage) and the from-scratch run as series, x = the run's
    own step numbers (a resumed run starts where its checkpoint stopped; stage 2 continues after stage 1). The
    axes are fixed to the data's range, so a run with a single evaluation still shows a labelled point.
    scratch_expected: a from-scratch run will follow (its series is reserved while the fine-tune streams). The
    axes' titles are in `language` (None: the request's)."""
    rows_l, rows_a = [], []
    end1 = max((h["step"] for h in history if h["stage"] == 1), default=0)
    for h in history:
        x = h["step"] + (end1 if h["stage"] == 2 else 0)
        if h["loss"] is not None:        # None: a resumed run's starting point (accuracy only)
            rows_l.append({"step": x, "loss": float(h["loss"]), "series": f"fine-tune stage {h['stage']}"})
        if h.get("test_acc") is not None:  # one line across both stages (a stage may hold a single evaluation)
            rows_a.append({"step": x, "test_acc": float(h["test_acc"]), "series": "fine-tune"})
    for h in scratch or []:
        rows_l.append({"step": h["step"], "loss": float(h["loss"]), "series": "from scratch"})
        if h.get("test_acc") is not None:
            rows_a.append({"step": h["step"], "test_acc": float(h["test_acc"]), "series": "from scratch"})
    with_scratch = scratch_expected or bool(scratch)
    rows_l = _reserve(rows_l, "loss", ["fine-tune stage 1", "fine-tune stage 2"] + ["from scratch"] * with_scratch)
    rows_a = _reserve(rows_a, "test_acc", ["fine-tune"] + ["from scratch"] * with_scratch)
    loss = pd.DataFrame(rows_l, columns=["step", "loss", "series"]).astype({"step": int, "loss": float})
    acc = pd.DataFrame(rows_a, columns=["step", "test_acc", "series"]).astype({"step": int, "test_acc": float})
    x_lim = [0, max(1, int(loss["step"].max()) if len(loss) else 1)]
    step = t("finetune.chart.step", language)
    return (gr.update(value=loss, x_lim=x_lim, x_title=step, y_title=t("finetune.chart.loss", language)),
            gr.update(value=acc, x_lim=x_lim, y_lim=[0, 100], x_title=step,
                      y_title=t("finetune.chart.test_acc", language)))


def live_curves(events: list[dict], scratch_expected: bool = False, language: str | None = None):
    """The curves so far, from a running job's step events."""
    ft = [{"stage": e["stage"], "step": e["done"], "loss": e["loss"], "test_acc": e.get("test_acc")} for e in events
          if e.get("phase") == "fine-tune"]
    sc = [{"step": e["done"], "loss": e["loss"], "test_acc": e.get("test_acc")} for e in events
          if e.get("phase") == "scratch"]
    return curves(ft, sc, scratch_expected, language)


def confusion_table(cm: list[list[int]], classes, language: str | None = None) -> dict:
    """The confusion matrix as a table (rows true, columns predicted); a click on a cell shows its images."""
    names = [str(c)[:12] for c in classes]
    return {"headers": [t("finetune.table.true_predicted", language)] + names,
            "data": [[names[i]] + [int(v) for v in row] for i, row in enumerate(cm)]}


def metrics_md(r: dict, language: str | None = None) -> str:
    """The run's results in words: test accuracy, each stage, and the from-scratch comparison."""
    scratch = r.get("scratch")
    lines = [t("finetune.metrics.head", language, acc=r["test_acc"], n=r["n_test"], seconds=r["seconds"],
               device=r["device"]) + (t("finetune.metrics.cancelled", language) if r["stopped"] else "")]
    for s in r["stages"]:
        lines.append(t("finetune.metrics.stage", language, stage=s["stage"], params=s["trainable_params"],
                       steps=s["steps"], seconds=s["seconds"], acc=s["test_acc"])
                     + (t("finetune.metrics.restored", language) if s["restored_best"] else ""))
    if scratch is not None:
        diff = r["test_acc"] - scratch["test_acc"]
        lines.append(t("finetune.metrics.finetune_wins" if diff >= 0 else "finetune.metrics.scratch_wins", language,
                       steps=scratch["steps"], acc=scratch["test_acc"], diff=abs(diff))
                     + (t("finetune.metrics.scratch_cancelled", language) if scratch.get("stopped") else ""))
    return "\n".join(lines)


def worst_cell(cm: list[list[int]]) -> tuple[int, int]:
    """(true, predicted) of the largest off-diagonal count: the first cell worth a look."""
    a = np.array(cm)
    np.fill_diagonal(a, -1)
    t, p = np.unravel_index(int(a.argmax()), a.shape)
    return int(t), int(p)


def _gallery_images(path: str, idx: list[int]):
    with safe_open(path, framework="pt") as f:
        thumbs = f.get_slice("thumbs")
        return [thumbs[i:i + 1][0] for i in idx]


def misclassified(state, true_class: str, pred_class: str):
    """Test images of class `true_class` that the model called `pred_class` (a confusion-matrix cell)."""
    if not state:
        raise InputError("finetune.no_run")
    res = state["result"]
    classes = list(res.classes)
    if true_class not in classes or pred_class not in classes:
        raise InputError("finetune.pick_classes")
    ti, pi = classes.index(true_class), classes.index(pred_class)
    try:
        with safe_open(state["gallery"], framework="pt") as f:
            y, pred = f.get_tensor("y"), f.get_tensor("pred")
    except (OSError, KeyError):
        raise InputError("finetune.gallery_gone") from None
    idx = ((y == ti) & (pred == pi)).nonzero().flatten()
    shown = idx[:48].tolist()
    pics = [(to_picture(x.float() / 255, min_side=112), f"#{i}")
            for i, x in zip(shown, _gallery_images(state["gallery"], shown))]
    key = "finetune.cell.correct" if ti == pi else "finetune.cell.misclassified"
    return pics, t(key, n=len(idx), true=true_class, pred=pred_class)


def pick_cell(state, evt: gr.SelectData):
    """A click on a confusion-matrix cell picks its true and predicted class and shows its test images."""
    if not state:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    classes = list(state["result"].classes)
    row, col = evt.index[0], evt.index[1]
    if not (0 <= row < len(classes) and 1 <= col <= len(classes)):
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    t, p = classes[row], classes[col - 1]
    pics, note = misclassified(state, t, p)
    return t, p, pics, note


def pick_class(state, evt: gr.SelectData):
    """A click on the per-class table row picks that class as 'true'."""
    if not state:
        return gr.skip()
    return state["result"].classes[evt.index[0]]
