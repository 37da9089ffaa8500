"""Distillation without leaks, on held-out TRAIN images only (never the test split): prints one JSON object.

    python bench/bench_distill_clean.py        # about 7 minutes on 2 CPU cores

The zoo teacher `resnet_digits` was trained on all 4,000 mnist5k train images, so a held-out part of them is
not unseen by it. Here two ResNet-digits teachers are trained on the first 3,500 train images only (the zoo
recipe: 30 epochs, batch 128, lr 4e-3, bf16 autocast for speed), one with the zoo's label smoothing (0.1) and
one without; the 29k-parameter StudentCNN trains 2,000 steps on the same 3,500 images alone or distilled
(alpha 0.9), from the same initial weights. Everything is scored on the last 500 train images. One seed:
on 500 images one image is 0.2 points, so read the result as a direction, not a verdict.
"""
from __future__ import annotations

import copy
from dataclasses import replace
import json
import sys
import time


def main() -> int:
    import torch

    from training.compression.compress import short_cfg
    from training.compression.distill import train_student
    from zoo.digits import StudentCNN
    from training.data.datasets import Split, mnist5k
    from training.train_digits import RECIPES
    from training.trainer import train
    from zoo.registry import get_spec

    d = mnist5k()
    n = len(d.train_x) - 500
    fit = Split(d.train_x[:n], d.train_y[:n], d.train_x[n:], d.train_y[n:], d.classes)   # "test" = held out
    out: dict = {"fit_images": n, "holdout_images": len(d.train_x) - n}
    teachers = {}
    for ls in (0.1, 0.0):
        torch.manual_seed(0)
        t = get_spec("resnet_digits").builder()
        t0 = time.perf_counter()
        m = train(t, fit, replace(RECIPES["resnet_digits"], label_smoothing=ls, amp="bf16", channels_last=True))
        teachers[ls] = t.float().eval().to(memory_format=torch.contiguous_format)
        out[f"teacher_label_smoothing_{ls}"] = {"holdout_acc": m["test_acc"],
                                                "seconds": round(time.perf_counter() - t0)}
    tc = short_cfg(2000, n, seed=0)
    torch.manual_seed(0)
    init = StudentCNN()
    out["student_alone"] = train_student(copy.deepcopy(init), fit, tc, None)["test_acc"]
    for ls, T in ((0.1, 4.0), (0.0, 4.0), (0.0, 2.0)):
        r = train_student(copy.deepcopy(init), fit, tc, teachers[ls], T, 0.9)
        out[f"student_distilled_ls{ls}_T{T:g}"] = r["test_acc"]
        print(json.dumps({"progress": f"ls {ls} T {T}", "acc": r["test_acc"]}), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
