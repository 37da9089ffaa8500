"""The exported run vs the in-app run, printed as JSON (issue #16's numbers).

    python -m bench.bench_export                  # seed 0 (about 1-2 minutes on 2 CPU cores)
    python -m bench.bench_export --seeds 0 1 2    # three seeds
    python -m bench.bench_export --out bench/results/export.json

For each seed: (1) the Fine-tune tab's default run in this process
(training.finetuning.finetune.run_finetune: resnet_digits -> sklearn digits, 2 + 2 epochs, global batch 64, 88
steps); (2) its export (training/finetuning/export.py), unzipped in a temporary folder outside the checkout and run
as `python train.py` (one process); (3) the same folder under
`torchrun --standalone --nproc_per_node=2 train.py` (gloo on the CPU; 2 x 32 per process = the same global batch
of 64, the same 88 steps). (2) is also run with OMP_NUM_THREADS=1, the thread count each torchrun process gets.
Reported: test accuracy on the 359 held-out digits (target: the 2-process run within
0.5 points of the in-app run), the steps, and training images/s (optimizer steps x global batch / training
seconds, evaluation excluded; the in-app figure includes its evaluations, so it is a lower bound).

What to expect on 2 cores: one process already uses both (2 intra-op threads); two processes get one thread
each (torchrun sets OMP_NUM_THREADS=1) and add a gloo all-reduce of the gradients (1.2 MB in stage 2) every
step, so no speed-up is expected and DDP here checks correctness. (Measured, it is not that simple: see the
README, Export a run.)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _script(cmd: list[str], cwd: Path, **env) -> dict:
    p = subprocess.run(cmd, cwd=cwd, env=dict(_env(), **env), capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stderr[-3000:]}")
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1]
    res = json.loads(line)
    res.pop("stages", None)
    return res


def in_app(seed: int) -> dict:
    import torch

    from training.finetuning.finetune import load_target, run_finetune
    from training.finetuning.finetune_config import FinetuneConfig

    cfg = FinetuneConfig(seed=seed)
    t0 = time.perf_counter()
    res = run_finetune(cfg, load_target(cfg), device="cpu")
    seconds = time.perf_counter() - t0
    steps = sum(s["steps"] for s in res.stages)
    return {"test_accuracy": round(res.test_acc, 4), "steps": steps, "seconds": round(seconds, 3),
            "images_per_second": round(steps * cfg.batch_size / seconds, 1), "threads": torch.get_num_threads()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    from training.finetuning.export import build_export
    from training.finetuning.finetune_config import FinetuneConfig

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        for seed in args.seeds:
            zpath = build_export(FinetuneConfig(seed=seed), tmp)
            dest = Path(tmp) / f"seed{seed}"
            with zipfile.ZipFile(zpath) as zf:
                zf.extractall(dest)
            folder = next(dest.iterdir())
            app = in_app(seed)
            one = _script([sys.executable, "train.py", "--out", str(dest / "out1")], folder)
            one_t1 = _script([sys.executable, "train.py", "--out", str(dest / "out1t")], folder, OMP_NUM_THREADS="1")
            two = _script([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "train.py", "--out", str(dest / "out2")], folder)
            rows.append({"seed": seed, "in_app": app, "script_1_process": one,
                         "script_1_process_1_thread": one_t1, "torchrun_2_processes": two,
                         "accuracy_gap_points": round(two["test_accuracy"] - app["test_accuracy"], 4),
                         "speed_2_vs_1_process": round(two["images_per_second"] / one["images_per_second"], 3),
                         "speed_2_vs_1_process_1_thread": round(two["images_per_second"] / one_t1["images_per_second"],
                                                                3)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    gaps = [abs(r["accuracy_gap_points"]) for r in rows]
    import torch

    result = {"bench": "export", "torch": torch.__version__, "cpu_count": os.cpu_count(),
              "load_average_at_end": os.getloadavg()[0], "runs": rows,
              "max_abs_gap_points": max(gaps), "within_half_point": max(gaps) <= 0.5}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
