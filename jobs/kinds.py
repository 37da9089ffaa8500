"""The job kinds the worker runs: fine-tune, resume, compress, ensemble, resample, autocast timing.

Each is `fn(params, ctx) -> result` (KINDS names them; jobs/run.run_kind calls them): params are plain JSON from
the server, ctx (jobs/run.Context) gives the job's folder, `emit(event)` for live progress and the cancel flag.
Results are plain data and tensors (sent back as one safetensors blob, jobs/wire.py); files a visitor downloads
are written into ctx.dir. A kind raises a visitor error (core.errors) for a problem with the visitor's settings or
files; jobs/run.job_error turns whatever it raised into the error the job ends with.
Events share one shape: {"phase", "text", "done", "total"} plus, for training steps, "stage", "loss", "test_acc";
a stage's text may also come as a catalogue "key" with its "values" (stage_event), for the visitor's language.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from core.errors import InputError, render, term
from training.checkpoint import load_checkpoint
from training.compression.compress import LabConfig, autocast_step_times, run_lab
from training.ensembles.ensemble import EnsembleConfig, run_ensemble
from training.ensembles.ensemble_results import export_result
from training.finetuning.finetune import (build_model, load_target, mean_std, run_finetune, run_scratch,
                                          save_result_checkpoint)
from training.finetuning.finetune_config import FinetuneConfig, check_resumable, config_from_checkpoint, validate_public
from training.resample import compare
from training.trainer import evaluate
from zoo import get_spec
from zoo.hub import load_state_strict, save_safetensors_atomic

GALLERY_SIDE = 64            # thumbnails kept for the misclassified-images gallery (longest side, pixels)


class Cancelled(Exception):
    """The job was cancelled before it produced anything worth returning."""


def stage_event(phase: str, text, done: int, total: int) -> dict:
    """A stage event. text: English words, or a catalogue entry as term(key, **values) (core.errors.term): then
    the event carries its "key" and "values" too, and the tab says it in the visitor's language
    (ui/jobstream.event_text); "text" is always the English."""
    ev = {"phase": phase, "text": text, "done": int(done), "total": int(total)}
    if isinstance(text, dict) and isinstance(text.get("key"), str):
        values = dict(text.get("values") or {})
        ev.update(text=render(text["key"], values), key=text["key"], values=values)
    return ev


def _phase_emitter(ctx, phase: str):
    def progress(done: int, total: int, text="") -> None:
        ctx.emit(stage_event(phase, text, done, total))
        if ctx.stopped():
            raise Cancelled(f"cancelled while {phase}")
    return progress


# ---------------------------------------------------------------- fine-tuning

def _thumbnails(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) float [0, 1] -> uint8 with the longest side at most GALLERY_SIDE."""
    h, w = x.shape[-2:]
    if max(h, w) > GALLERY_SIDE:
        s = GALLERY_SIDE / max(h, w)
        x = F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="bilinear", antialias=True)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def _finish_run(res, data, cfg, scratch, ctx) -> dict:
    """Files into the job folder (weights, checkpoint, gallery thumbnails) and the plain summary."""
    name = f"{cfg.model}-{cfg.target}"
    weights = save_safetensors_atomic(res.model.state_dict(), os.path.join(ctx.dir, f"{name}.safetensors"),
                                      metadata={"model": cfg.model, "classes": ",".join(res.classes),
                                                "test_acc": f"{res.test_acc:.2f}"})
    ckpt = save_result_checkpoint(res, os.path.join(ctx.dir, f"{name}-checkpoint.safetensors"))
    gallery = os.path.join(ctx.dir, "gallery.safetensors")
    save_file({"thumbs": _thumbnails(data.test_x), "y": data.test_y.to(torch.int64),
               "pred": res.preds.to(torch.int64)}, gallery)
    return {"config": cfg.to_dict(), "classes": list(res.classes), "test_acc": res.test_acc,
            "per_class": res.per_class, "confusion": res.confusion, "history": res.history, "stages": res.stages,
            "seconds": res.seconds, "device": res.device, "stopped": res.stopped, "stage": res.stage,
            "scratch": scratch, "n_test": len(res.preds), "weights": weights, "checkpoint": ckpt, "gallery": gallery}


def _step_emitter(ctx, phase: str):
    def on_step(stage, info) -> None:
        ctx.emit({"phase": phase, "stage": stage, "done": info.step, "total": info.total_steps, "loss": info.loss,
                  "test_acc": info.test_acc})
    return on_step


def _resume_point(cfg, data, ckpt) -> dict:
    """The checkpoint's own test accuracy where it stopped, measured now: the first point of a resumed curve."""
    model, _ = build_model(cfg, len(data.classes), pretrained=False)
    load_state_strict(model, ckpt.model_state)
    mean, std = mean_std(get_spec(cfg.model))
    return {"stage": int(ckpt.meta.get("stage", 1)), "step": int(ckpt.train_state["step"]), "loss": None,
            "test_acc": evaluate(model.eval(), data.test_x, data.test_y, mean, std)}


def _train_and_finish(cfg, data, ctx, compare_scratch: bool, resume=None) -> dict:
    start = None
    if resume is not None:
        start = _resume_point(cfg, data, resume)
        ctx.emit({"phase": "fine-tune", "stage": start["stage"], "done": start["step"], "total": start["step"],
                  "loss": None, "test_acc": start["test_acc"]})
    res = run_finetune(cfg, data, on_step=_step_emitter(ctx, "fine-tune"), stop=ctx.stop, resume=resume)
    if start is not None:
        res.history.insert(0, start)
    scratch = None
    if compare_scratch and not res.stopped:
        steps = sum(s["steps"] for s in res.stages)
        scratch = run_scratch(cfg, data, steps, stop=ctx.stop, on_step=_step_emitter(ctx, "scratch"))
    ctx.emit(stage_event("saving", term("job.text.saving"), 1, 1))
    return _finish_run(res, data, cfg, scratch, ctx)


def finetune(params: dict, ctx) -> dict:
    cfg = validate_public(FinetuneConfig.from_dict(params["config"]))
    data = load_target(cfg, params.get("zip"), progress=_phase_emitter(ctx, "decoding the zip"))
    return _train_and_finish(cfg, data, ctx, bool(params.get("compare_scratch")))


def resume(params: dict, ctx) -> dict:
    ckpt = load_checkpoint(params["checkpoint"])
    cfg = config_from_checkpoint(ckpt)
    check_resumable(ckpt.meta, ckpt.train_state)
    data = load_target(cfg, params.get("zip"), progress=_phase_emitter(ctx, "decoding the zip"))
    if list(data.classes) != list(ckpt.meta["classes"]):
        raise InputError("checkpoint.other_classes", theirs=", ".join(map(str, ckpt.meta["classes"][:10])),
                         ours=", ".join(map(str, list(data.classes)[:10])))
    return _train_and_finish(cfg, data, ctx, False, resume=ckpt)


# ---------------------------------------------------------------- the other labs

def compress(params: dict, ctx) -> dict:
    d = dict(params["config"])
    d["student_widths"] = tuple(d.get("student_widths", (16, 32, 64)))
    lab = run_lab(LabConfig(**d), out_dir=ctx.dir, progress=_phase_emitter(ctx, "compressing"))
    return lab


def ensemble(params: dict, ctx) -> dict:
    d = dict(params["config"])
    d["zoo_members"] = tuple(d.get("zoo_members", ()))
    res = run_ensemble(EnsembleConfig(**d), progress=_phase_emitter(ctx, "building the ensemble"))
    return export_result(res)


def resample(params: dict, ctx) -> dict:
    return compare(params["counts"], steps=int(params["steps"]), progress=_phase_emitter(ctx, "resampling"))


def autocast(params: dict, ctx) -> dict:
    ctx.emit(stage_event("timing", term("job.text.timing"), 0, 1))
    return autocast_step_times(steps=int(params["steps"]), amp=params["amp"])


KINDS = {"finetune": finetune, "resume": resume, "compress": compress, "ensemble": ensemble, "resample": resample,
         "autocast": autocast}
