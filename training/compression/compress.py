"""The compression lab: one digits model int8-quantized (static and dynamic), bf16, magnitude- and
channel-pruned (then fine-tuned), and a student distilled from a teacher next to the same student trained
alone; each measured alike (size, CPU latency, accuracy) and written as safetensors. Also autocast (mixed
precision) training step times.

The techniques themselves (in training/compression/): quantize.py, prune.py, distill.py; the file format:
compressed_io.py; the measurements: measure.py.
"""
from __future__ import annotations

import copy
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from training.compression.compressed_io import PATHS, layer_shapes, save_compressed
from training.data.datasets import Split, mnist5k
from training.compression.distill import (ZOO_AVERAGE, ZOO_AVERAGE_MEMBERS, distill_loss_fn, soft_target_top_prob,
                                          teacher_model, train_student)
from training.compression.measure import (accuracy, compare_latency, count_params, model_bytes, predict_logits,
                                          prepare_input)
from training.compression.prune import channel_prune, magnitude_prune
from training.compression.quantize import quantize_dynamic_linear, quantize_static_fx
from training.trainer import TrainConfig, autocast_context, train
from core.cache import LRUCache
from core.errors import term
from core.device import get_device
from zoo.digits import StudentCNN
from zoo.hub import read_manifest
from zoo.registry import get_model, list_models


@dataclass
class LabConfig:
    """One compression comparison. Defaults: a fast offline run (short fine-tuning and distillation)."""

    base: str = "vgg_digits"
    sparsity: float = 0.5                 # magnitude pruning: fraction of conv/linear weights zeroed
    keep_ratio: float = 0.5               # channel pruning: fraction of channels kept per conv
    finetune_steps: int = 20              # after channel pruning (0 = none)
    finetune_distill: bool = True         # fine-tune the pruned model against the unpruned one's soft targets
    teacher: str = "resnet_digits"
    distill_steps: int = 40               # for the distilled student and the same student alone (0 = skip)
    temperature: float = 1.0              # chosen on held-out train images for the default student (bench:
                                          # --select-temperature 1,2,4); at T=4 the zoo teacher's targets are
                                          # nearly uniform (its training used label smoothing)
    alpha: float = 0.9
    mixup: float = 0.0                    # mixup of the distilled student's batches (the teacher sees them too)
    alone_mixup: float = 0.0              # mixup of the student alone's batches (mixed hard labels)
    student_widths: tuple[int, int, int] = (16, 32, 64)   # StudentCNN's three conv widths
    calib_images: int = 256               # train images that calibrate int8 activation ranges
    latency_batch: int = 1
    repeats: int = 20
    seed: int = 0


_lab_cache: LRUCache = LRUCache(8)   # trained students and pruned models per setting, in the job worker


def _cached(key: tuple, make):
    return _lab_cache.get_or_build(key, make)


def short_cfg(steps: int, n_train: int, batch: int = 64, lr: float = 2e-3, seed: int = 0) -> TrainConfig:
    """A TrainConfig that runs exactly `steps` optimizer steps over n_train images (enough epochs for them)."""
    return TrainConfig(epochs=max(1, math.ceil(steps / max(1, n_train // batch))), batch_size=batch, lr=lr,
                       max_steps=steps, seed=seed)


def _steps(progress, key: str):
    """An on_step for train() that reports the catalogue entry `key` ('what: step {step}/{total}') through
    progress (None: no reporting)."""
    if progress is None:
        return None
    return lambda info: progress(info.step, info.total_steps, term(key, step=info.step, total=info.total_steps))


def finetuned_channel_pruned(base_model: nn.Module, cfg: LabConfig, data, progress=None) -> nn.Module:
    """Channel-pruned copy of the base, fine-tuned for cfg.finetune_steps (cached per process).

    With cfg.finetune_distill the pruned model learns from the unpruned one's soft targets (T, alpha of the
    lab) as well as the labels: the usual way to recover what pruning cost (e.g. Hinton 2015; Polino 2018)."""

    def make():
        m = channel_prune(base_model, cfg.keep_ratio)
        if cfg.finetune_steps > 0:
            no_test = Split(data.train_x, data.train_y, data.test_x[:0], data.test_y[:0], data.classes)
            tcfg = short_cfg(cfg.finetune_steps, len(data.train_x), lr=1e-3, seed=cfg.seed)
            loss_fn = (distill_loss_fn(copy.deepcopy(base_model).cpu(), cfg.temperature, cfg.alpha,
                                       tcfg.label_smoothing) if cfg.finetune_distill else None)
            train(m, no_test, tcfg, device=torch.device("cpu"), loss_fn=loss_fn,
                  on_step=_steps(progress, "job.compress.finetune_step"))
        return m.cpu().eval()

    key = ("pruned", cfg.base, cfg.keep_ratio, cfg.finetune_steps, cfg.finetune_distill, cfg.seed)
    if cfg.finetune_distill:
        key += (cfg.temperature, cfg.alpha)
    return _cached(key, make)


def students(cfg: LabConfig, data, progress=None) -> tuple[nn.Module, nn.Module, dict, dict]:
    """(distilled student, same student alone, their metrics), trained once per process per setting."""

    def make():
        tc = short_cfg(cfg.distill_steps, len(data.train_x), seed=cfg.seed)
        torch.manual_seed(cfg.seed)
        distilled = StudentCNN(widths=tuple(cfg.student_widths))
        alone = copy.deepcopy(distilled)          # the same initial weights
        m1 = train_student(distilled, data, replace(tc, mixup=cfg.mixup), teacher_model(cfg.teacher),
                           cfg.temperature, cfg.alpha, on_step=_steps(progress, "job.compress.distill_step"))
        m2 = train_student(alone, data, replace(tc, mixup=cfg.alone_mixup), None,
                           on_step=_steps(progress, "job.compress.alone_step"))
        return distilled.cpu().eval(), alone.cpu().eval(), m1, m2

    return _cached(("students", cfg.teacher, cfg.distill_steps, cfg.temperature, cfg.alpha, cfg.mixup,
                    cfg.alone_mixup, cfg.seed, tuple(cfg.student_widths)), make)


def autocast_step_times(steps: int = 5, batch: int = 64, amp: str = "bf16") -> dict:
    """ms per training step of StudentCNN in fp32 vs under autocast (mixed precision training)."""
    dev = get_device()
    x = torch.randn(batch, 1, 28, 28, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    out = {}
    for mode in ("off", amp):
        torch.manual_seed(0)
        m = StudentCNN().to(dev).train()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        scaler = torch.amp.GradScaler(dev.type, enabled=(mode == "fp16"))
        times = []
        for i in range(steps + 2):                 # two warm-up steps
            t0 = time.perf_counter()
            with autocast_context(dev, mode):
                loss = F.cross_entropy(m(x).float(), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i >= 2:
                times.append((time.perf_counter() - t0) * 1000)
        out[mode] = {"ms_per_step": sorted(times)[len(times) // 2], "loss": float(loss.detach())}
    out["device"] = str(dev)
    return out


def run_lab(cfg: LabConfig | None = None, data=None, out_dir: str | None = None, progress=None) -> dict:
    """Baseline and every technique, measured alike; compressed models written as safetensors to out_dir.
    progress(done, total, text) reports each stage (and training steps); it may raise to cancel the lab.

    Returns {"rows": [dict per technique: technique, params, nonzero, size_kb, smaller_x, latency_ms, faster_x,
    accuracy, acc_change, path], "files": {technique: safetensors path}, "extra": {"distilled": {...}, "alone": {...}}
    (the distillation runs' steps, test accuracy and seconds; {} when distill_steps is 0), "notes": [lines for the
    tab, as core.errors.term(key, **values): the tab says them in the visitor's language], "config": the LabConfig
    as a dict}."""
    cfg = cfg or LabConfig()
    data = data or mnist5k()
    if cfg.base not in list_models("digits"):
        raise ValueError(f"base must be one of {list_models('digits')}")
    out_dir = out_dir or tempfile.mkdtemp(prefix="playground-compress-")
    stages = ["job.compress.quantizing", "job.compress.magnitude", "job.compress.channel", "job.compress.distilling",
              "job.compress.latency", "job.compress.accuracy"]          # catalogue keys: the tab translates them

    def stage(i: int) -> None:
        if progress is not None:
            progress(i, len(stages), term(stages[i]))

    stage(0)
    base = get_model(cfg.base).cpu().eval()
    calib = prepare_input(data.train_x[:cfg.calib_images])
    # name -> (model, dtype, technique, layer shapes, base name in the file)
    models: dict[str, tuple[nn.Module, torch.dtype, str, dict | None, str]] = {}
    models["baseline fp32"] = (base, torch.float32, "fp32", None, cfg.base)
    models["int8 static (FX)"] = (quantize_static_fx(base, calib), torch.float32, "int8-static-fx", None, cfg.base)
    models["int8 dynamic (Linear only)"] = (quantize_dynamic_linear(base), torch.float32, "int8-dynamic-linear",
                                            None, cfg.base)
    models["bf16 weights+activations"] = (copy.deepcopy(base).to(torch.bfloat16), torch.bfloat16, "bf16", None,
                                          cfg.base)
    stage(1)
    models[f"magnitude pruned {cfg.sparsity:.0%}"] = (magnitude_prune(base, cfg.sparsity), torch.float32,
                                                      "magnitude-pruned", None, cfg.base)
    stage(2)
    pruned = finetuned_channel_pruned(base, cfg, data, progress)
    shapes = layer_shapes(pruned)
    label = f"channel pruned keep {cfg.keep_ratio:.0%}" + (
        f" + {cfg.finetune_steps} ft steps{' (KD)' if cfg.finetune_distill else ''}" if cfg.finetune_steps else "")
    models[label] = (pruned, torch.float32, "channel-pruned", shapes, cfg.base)
    models[label + " + int8"] = (quantize_static_fx(pruned, calib), torch.float32, "channel-pruned+int8-static-fx",
                                 shapes, cfg.base)
    extra = {}
    teacher = teacher_model(cfg.teacher) if cfg.distill_steps > 0 else None
    stage(3)
    if cfg.distill_steps > 0:
        distilled, alone, m1, m2 = students(cfg, data, progress)
        if cfg.teacher != cfg.base:
            models[f"teacher {cfg.teacher}"] = (teacher, torch.float32, "fp32", None, cfg.teacher)
        mix = f", mixup {cfg.mixup:g}" if cfg.mixup else ""
        models[f"student distilled (T={cfg.temperature:g}, alpha={cfg.alpha:g}{mix})"] = (
            distilled, torch.float32, "student", layer_shapes(distilled), "student")
        models["same student alone" + (f" (mixup {cfg.alone_mixup:g})" if cfg.alone_mixup else "")] = (
            alone, torch.float32, "student", layer_shapes(alone), "student")
        extra = {"distilled": m1, "alone": m2}
    stage(4)
    lat = compare_latency({k: (m, dt) for k, (m, dt, *_) in models.items()}, batch=cfg.latency_batch,
                          repeats=cfg.repeats)
    stage(5)
    rows, files = [], {}
    b_size = model_bytes(base)
    b_acc = None
    for name, (m, dt, tech, shp, bname) in models.items():
        acc = accuracy(m, data.test_x, data.test_y, dt)
        if b_acc is None:
            b_acc = acc
        size = model_bytes(m)
        nz = sum(int((p != 0).sum()) for p in m.parameters()) if any(True for _ in m.parameters()) else None
        path = " -> ".join(PATHS.get(t, t) for t in tech.split("+"))
        if tech == "student":
            path = f"StudentCNN trained {cfg.distill_steps} steps with train_student (KD loss, Hinton et al. 2015)"
        rows.append({"technique": name, "path": path, "params": count_params(m),
                     "nonzero": nz, "size_kb": round(size / 1024, 1), "smaller_x": round(b_size / size, 2),
                     "latency_ms": round(lat[name], 3), "faster_x": round(lat["baseline fp32"] / lat[name], 2),
                     "accuracy": round(acc, 2), "acc_change": round(acc - b_acc, 2)})
        if tech != "fp32":
            fname = "".join(c if c.isalnum() else "_" for c in f"{bname}_{name}")[:80] + ".safetensors"
            files[name] = save_compressed(m, os.path.join(out_dir, fname), bname, tech, shp)
    notes = [term("compress.note.latency", batch=cfg.latency_batch)]   # catalogue entries: the tab translates
    if cfg.distill_steps > 0:
        with torch.no_grad():
            top = soft_target_top_prob(predict_logits(teacher, data.train_x[:256]), cfg.temperature)
        names = ZOO_AVERAGE_MEMBERS if cfg.teacher == ZOO_AVERAGE else (cfg.teacher,)
        smoothing = max(read_manifest().get(n, {}).get("config", {}).get("label_smoothing") or 0 for n in names)
        key = ("compress.note.soft_targets" if not smoothing else "compress.note.soft_targets_smoothed"
               if len(names) == 1 else "compress.note.soft_targets_smoothed_average")
        notes.append(term(key, temperature=f"{cfg.temperature:g}", top=float(top), teacher=cfg.teacher,
                          smoothing=f"{smoothing:g}"))
    return {"rows": rows, "files": files, "extra": extra, "notes": notes, "config": asdict(cfg)}
