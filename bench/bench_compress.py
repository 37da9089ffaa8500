r"""Benchmark for the Ensembles & compression lab: prints one JSON object.

    python bench/bench_compress.py --quick         # a dry run (seconds of training)
    # the settings whose numbers are in the README (about 30 minutes on 2 CPU cores):
    python bench/bench_compress.py --member-arch resnet_digits,vgg_digits,alexnet_digits --members 6 \
        --boosted 3 --member-steps 810 --member-batch 128 --member-lr 3e-3 --member-amp bf16 \
        --finetune-steps 600 --distill-steps 2000 --distill-seeds 3 --student-widths 16,32,64 8,16,32 \
        --select-temperature 1,2,4 --repeats 60
    # the teacher without label smoothing (bench/results/distill_hard_teacher.json, about 10 minutes):
    python bench/bench_compress.py --skip-ensemble --skip-compression --teacher resnet_digits_hard \
        --temperature 2 --distill-steps 2000 --distill-seeds 3 --student-widths 16,32,64 8,16,32
    # experiment 4's test run, the recipes bench_distill_select.py chose (bench/results/distill_experiment4.json):
    python bench/bench_compress.py --skip-ensemble --skip-compression --teacher resnet_digits --temperature 1 \
        --alpha 0.9 --mixup 0 --alone-mixup 1 --distill-steps 2000 --distill-seeds 5 --student-widths 16,32,64 8,16,32
    # the same KD recipe against the plain student alone, 5 seeds (bench/results/distill_reference5.json):
    python bench/bench_compress.py --skip-ensemble --skip-compression --teacher resnet_digits --temperature 1 \
        --alpha 0.9 --distill-steps 2000 --distill-seeds 5 --student-widths 16,32,64 8,16,32
    # experiment 5's test run, a 3k-parameter student (bench/results/distill_experiment5.json):
    python bench/bench_compress.py --skip-ensemble --skip-compression --teacher resnet_digits --temperature 4 \
        --alpha 0.9 --distill-steps 2000 --distill-seeds 5 --student-widths 4,8,16
    # experiment 6's test run, the zoo's three architectures averaged as the teacher (distill_experiment6.json):
    python bench/bench_compress.py --skip-ensemble --skip-compression --teacher zoo_average --temperature 1 \
        --alpha 0.9 --distill-steps 2000 --distill-seeds 5 --student-widths 16,32,64 8,16,32

Targets (issue 6): best ensemble >= 99.2% on the mnist5k test split and above its best member; a
compressed digits model >= 3.5x smaller, >= 1.5x faster on this CPU, <= 0.5 point accuracy drop; a
distilled student with >= 5x fewer parameters than its teacher, within 1 point of it, and better than the
same student trained alone. Every number is measured here; `met` says whether each target was reached.

How the README settings were chosen (before they were run, not by trying settings against the test split):
bagged members get the zoo's own recipe (30 epochs of the 3,500-image fit part at batch 128, augmented; bf16
autocast only for speed), one architecture after another, because short runs were weaker than every zoo model
and only diluted the average; pruned models are fine-tuned for about 10 epochs against the unpruned model's
soft targets; students train for 2,000 steps, and each student size is run with 3 seeds because one seed's
difference of 0.1 point is a single test digit. An ensemble's "best member" is the best of the members that
combiner combines; `beats_every_member` also says whether it beats every member of the experiment.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
import os
import platform
import sys
import time


def select_temperature(cfg, widths, temps: list[float], holdout: int = 500) -> dict:
    """Pick T per student size on held-out TRAIN images (the last `holdout`), never on test: each candidate
    student trains on the rest of the train split (seed 0, cfg's steps and alpha) and is scored on the
    held-out part; accuracy decides, the held-out NLL breaks ties."""
    import torch

    from training.compression.compress import short_cfg
    from training.compression.distill import soft_target_top_prob, teacher_model, train_student
    from zoo.digits import StudentCNN
    from training.data.datasets import Split, mnist5k
    from training.compression.measure import predict_logits

    d = mnist5k()
    n = len(d.train_x) - holdout
    fit = Split(d.train_x[:n], d.train_y[:n], d.train_x[n:], d.train_y[n:], d.classes)   # "test" = held out
    teacher = teacher_model(cfg.teacher)
    with torch.no_grad():
        t_lg = predict_logits(teacher, d.train_x[:1000])
    soft = {str(t): {"teacher_top_prob": round(soft_target_top_prob(t_lg, t), 3)} for t in temps}
    out = {"holdout": holdout, "teacher_soft_targets_on_train": soft, "by_width": []}
    for w in widths:
        tc = short_cfg(cfg.distill_steps, n, seed=0)
        runs = {}
        for t in [None] + list(temps):
            torch.manual_seed(0)
            m = StudentCNN(widths=w)
            r = train_student(m, fit, tc, teacher if t is not None else None, t or 1.0, cfg.alpha)
            nll = float(torch.nn.functional.cross_entropy(predict_logits(m, fit.test_x), fit.test_y))
            runs["alone" if t is None else str(t)] = {"holdout_acc": round(r["test_acc"], 2),
                                                      "holdout_nll": round(nll, 4)}
            print(json.dumps({"progress": "select T", "widths": w, "T": t, **runs["alone" if t is None else str(t)]}),
                  file=sys.stderr, flush=True)
        best = max(temps, key=lambda t: (runs[str(t)]["holdout_acc"], -runs[str(t)]["holdout_nll"]))
        out["by_width"].append({"widths": list(w), "runs": runs, "chosen_T": best})
    return out


def distillation(cfg, widths, n_seeds: int, temps: dict | None = None) -> dict:
    """Each student width: distilled vs the same student alone (same initial weights, same loop and batches),
    over n_seeds seeds. The target is judged on the mean over seeds: one seed's 0.1 point is one test digit."""
    from dataclasses import replace
    from statistics import mean

    import torch

    from training.compression.compress import students
    from training.compression.distill import teacher_model
    from training.data.datasets import mnist5k
    from training.compression.measure import accuracy, count_params

    data = mnist5k()
    teacher = teacher_model(cfg.teacher)
    with torch.no_grad():
        t_acc, t_params = accuracy(teacher, data.test_x, data.test_y), count_params(teacher)
    res = {"teacher": cfg.teacher, "teacher_acc": round(t_acc, 2), "teacher_params": t_params,
           "steps": cfg.distill_steps, "alpha": cfg.alpha, "mixup": cfg.mixup, "alone_mixup": cfg.alone_mixup,
           "seeds": n_seeds, "students": []}
    for w in widths:
        rows = []
        T = (temps or {}).get(tuple(w), cfg.temperature)
        for seed in range(n_seeds):
            distilled, alone, m1, m2 = students(replace(cfg, student_widths=w, seed=seed, temperature=T), data)
            rows.append({"seed": seed, "distilled": round(m1["test_acc"], 2), "alone": round(m2["test_acc"], 2),
                         "train_seconds": round(m1["seconds"] + m2["seconds"], 1)})
            print(json.dumps({"progress": "student", "widths": w, **rows[-1]}), file=sys.stderr, flush=True)
        params = count_params(distilled)
        d, a = mean(r["distilled"] for r in rows), mean(r["alone"] for r in rows)
        diffs = [round(r["distilled"] - r["alone"], 2) for r in rows]
        res["students"].append({
            "widths": list(w), "T": T, "params": params, "param_ratio": round(t_params / params, 2), "runs": rows,
            "distilled_mean": round(d, 2), "alone_mean": round(a, 2),
            # per seed, distilled vs alone: a mean gain from one seed's lucky digit is not a better student
            "seeds_better_same_worse": [sum(x > 0 for x in diffs), sum(x == 0 for x in diffs),
                                        sum(x < 0 for x in diffs)],
            "met": t_params / params >= 5 and d >= t_acc - 1 and d > a})
    res["met"] = any(s["met"] for s in res["students"])
    return res


def main(argv=None) -> int:
    import torch

    from training.compression.compress import LabConfig, run_lab
    from training.ensembles.ensemble import EnsembleConfig, run_ensemble

    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-ensemble", action="store_true")
    ap.add_argument("--skip-compression", action="store_true", help="no compression tables (distillation only)")
    ap.add_argument("--teacher", default="resnet_digits",
                    help="the students' teacher: a digits zoo model, or zoo_average (three architectures averaged)")
    ap.add_argument("--alpha", type=float, default=0.9, help="weight of the teacher's soft targets")
    ap.add_argument("--mixup", type=float, default=0.0, help="mixup of the distilled student's batches (0 = off)")
    ap.add_argument("--alone-mixup", type=float, default=0.0, help="mixup of the student alone's batches (0 = off)")
    ap.add_argument("--member-steps", type=int, default=100)
    ap.add_argument("--members", type=int, default=3, help="bagged members")
    ap.add_argument("--boosted", type=int, default=None, help="boosted members (default: as many as --members)")
    ap.add_argument("--member-arch", default="small_cnn",
                    help="small_cnn, a digits zoo architecture, or a comma-separated list taken in turn")
    ap.add_argument("--member-batch", type=int, default=64)
    ap.add_argument("--member-lr", type=float, default=3e-3)
    ap.add_argument("--member-amp", default="off", help="off | bf16 (members train under autocast, channels_last)")
    ap.add_argument("--finetune-steps", type=int, default=150)
    ap.add_argument("--no-finetune-distill", action="store_true", help="fine-tune pruned models on labels only")
    ap.add_argument("--distill-steps", type=int, default=300)
    ap.add_argument("--distill-seeds", type=int, default=1, help="seeds per student (distilled and alone)")
    ap.add_argument("--student-widths", nargs="+", default=["16,32,64"], help="StudentCNN widths, e.g. 8,16,32")
    ap.add_argument("--temperature", type=float, default=4.0,
                    help="T of the lab's tables and of the pruned models' KD fine-tuning (the README run: 4)")
    ap.add_argument("--select-temperature", default="",
                    help="comma-separated candidates, e.g. 1,2,4: T is chosen per student on held-out train images")
    ap.add_argument("--repeats", type=int, default=60)
    args = ap.parse_args(argv)
    if args.quick:
        args.member_steps, args.members, args.finetune_steps, args.distill_steps, args.repeats = 5, 1, 5, 5, 10
    if args.boosted is None:
        args.boosted = args.members
    widths = [tuple(int(w) for w in ws.split(",")) for ws in args.student_widths]
    out = {"machine": {"cpu_threads": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
                       "load_avg_at_start": os.getloadavg()[0]}}
    if not args.skip_ensemble:
        t0 = time.perf_counter()
        ecfg = EnsembleConfig(n_bagged=args.members, n_boosted=args.boosted, steps=args.member_steps,
                              member_arch=args.member_arch, batch_size=args.member_batch, lr=args.member_lr,
                              amp=args.member_amp, channels_last=args.member_amp != "off")
        res = run_ensemble(ecfg)
        members = dict(zip(res.names, [round(a, 2) for a in res.member_acc()]))
        combos = {k: round(v, 2) for k, v in res.combo_acc().items()}
        best_m = max(members.values())
        best_c_name = max(combos, key=combos.get)
        own = {k: round(v, 2) for k, v in res.combo_best_member().items()}
        # The target: an ensemble >= 99.2% that beats the best of the members it combines.
        meeting = sorted((k for k in combos if combos[k] >= 99.2 and combos[k] > own[k]), key=combos.get, reverse=True)
        out["ensemble"] = {"config": ecfg.__dict__, "members": members, "combiners": combos,
                           "best_of_own_members": own, "best_member": best_m,
                           "best_ensemble": [best_c_name, combos[best_c_name]],
                           "beats_every_member": combos[best_c_name] > best_m,
                           "meeting_target": meeting,
                           "met": bool(meeting),
                           "boost_errors": res.boost_errors, "seconds": round(time.perf_counter() - t0, 1)}
        print(json.dumps({"progress": "ensemble done", **out["ensemble"]}), file=sys.stderr, flush=True)
    cfg = LabConfig(finetune_steps=args.finetune_steps, finetune_distill=not args.no_finetune_distill,
                    temperature=args.temperature, teacher=args.teacher, distill_steps=args.distill_steps,
                    alpha=args.alpha, mixup=args.mixup, alone_mixup=args.alone_mixup,
                    repeats=args.repeats, student_widths=widths[0])
    for bs in () if args.skip_compression else (1, 64):
        t0 = time.perf_counter()
        cfg = replace(cfg, latency_batch=bs)
        lab = run_lab(cfg)
        good = [r["technique"] for r in lab["rows"]
                if r["technique"] != "baseline fp32" and "student" not in r["technique"]
                and "teacher" not in r["technique"] and r["smaller_x"] >= 3.5 and r["faster_x"] >= 1.5
                and r["acc_change"] >= -0.5]
        out[f"compression_batch{bs}"] = {"rows": lab["rows"], "meets_size_speed_accuracy": good,
                                         "met": bool(good), "seconds": round(time.perf_counter() - t0, 1)}
        print(json.dumps({"progress": f"compression batch {bs} done"}), file=sys.stderr, flush=True)
    if args.distill_steps > 0:
        temps = None
        if args.select_temperature:
            sel = select_temperature(cfg, widths, [float(t) for t in args.select_temperature.split(",")])
            out["temperature_selection"] = sel
            temps = {tuple(b["widths"]): b["chosen_T"] for b in sel["by_width"]}
        out["distillation"] = distillation(replace(cfg, temperature=args.temperature), widths, args.distill_seeds,
                                           temps)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
