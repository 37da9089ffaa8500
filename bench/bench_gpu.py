"""The GPU check of issue #14, one call on a machine with CUDA (prints JSON; bench/results/gpu.json):

    python -m bench.bench_gpu [--epochs 3+3] [--out bench/results/gpu.json]

1. Fine-tune resnet_digits on mnist5k on CUDA in fp32, bf16 and fp16 autocast: seconds to the end, seconds until
   the test accuracy first reached 99%, final accuracy.
2. The sandbox's programs (the tutorial's tensor section and the autograd Net) on CUDA, timed.
3. Memory freed after a job: CUDA memory allocated/reserved before, at peak and after (with empty_cache).
4. Two visitors' jobs through the app's job queue, one after the other: the second waits for the first, both
   finish, and their results match the same seeds run alone.
Without CUDA it says so and exits 0 (every other test and bench runs on the CPU).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from core.settings import reload as reload_settings

ROOT = Path(__file__).resolve().parents[1]


def _mem() -> dict:
    return {"allocated_mb": round(torch.cuda.memory_allocated() / 2**20, 1),
            "reserved_mb": round(torch.cuda.memory_reserved() / 2**20, 1),
            "peak_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)}


def finetune_run(amp: str, epochs: tuple[int, int]) -> dict:
    from training.finetuning.finetune import load_target, run_finetune
    from training.finetuning.finetune_config import FinetuneConfig

    cfg = FinetuneConfig(model="resnet_digits", target="mnist5k", stage1_epochs=epochs[0], stage2_epochs=epochs[1],
                         amp=amp, batch_size=128, seed=0)
    data = load_target(cfg)
    first_99 = {"s": None}
    t0 = time.perf_counter()

    def on_step(stage, info):
        if first_99["s"] is None and info.test_acc is not None and info.test_acc >= 99.0:
            first_99["s"] = round(time.perf_counter() - t0, 2)

    torch.cuda.synchronize()
    res = run_finetune(cfg, data, on_step=on_step, device="cuda")
    torch.cuda.synchronize()
    return {"amp": amp, "seconds": round(time.perf_counter() - t0, 2), "seconds_to_99": first_99["s"],
            "test_acc": round(res.test_acc, 2), "steps": sum(s["steps"] for s in res.stages)}


def sandbox_on_cuda() -> dict:
    """The tutorial's presets (tensor section 2.1, the autograd Net trained 10 steps) evaluated on CUDA."""
    from playground import presets, programs

    dev = torch.device("cuda")
    out = {}
    for name, run, code, kw in (
            ("tensors", programs.run_tensors, presets.TENSOR_PRESETS[presets.DEFAULT_TENSOR], {}),
            ("autograd", programs.run_autograd, presets.AUTOGRAD_PRESETS[presets.DEFAULT_AUTOGRAD], {"steps": 10})):
        t0 = time.perf_counter()
        r = run(code, device=dev, **kw)
        torch.cuda.synchronize()
        out[name] = {"ms": round((time.perf_counter() - t0) * 1000, 1), "keys": sorted(r)[:8]}
    return out


def two_visitors() -> dict:
    from jobs.queue import get_queue

    q = get_queue()
    params = {"config": {"model": "resnet_digits", "target": "digits", "stage1_epochs": 1, "stage2_epochs": 1,
                         "seed": 0}, "compare_scratch": False}
    t0 = time.perf_counter()
    a = q.submit("visitor-a", "finetune", params)
    b = q.submit("visitor-b", "finetune", params)
    waited = b.state == "queued"
    a.finished.wait(600)
    b.finished.wait(600)
    return {"second_waited_in_queue": waited, "states": [a.state, b.state],
            "seconds": round(time.perf_counter() - t0, 2)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", default="3+3", help="stage 1 + stage 2 epochs")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "gpu.json"))
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        out = {"cuda": False, "note": "no CUDA device here: nothing to measure (run this on a GPU machine)"}
        print(json.dumps(out))
        return out
    os.environ.setdefault("PLAYGROUND_DEVICE", "cuda")
    reload_settings()
    epochs = tuple(int(x) for x in args.epochs.split("+"))
    out: dict = {"cuda": True, "device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    torch.cuda.reset_peak_memory_stats()
    out["memory_before"] = _mem()
    out["finetune"] = [finetune_run(amp, epochs) for amp in ("off", "bf16", "fp16")]
    out["memory_peak_after_jobs"] = _mem()
    torch.cuda.empty_cache()
    out["memory_after_empty_cache"] = _mem()
    out["sandbox"] = sandbox_on_cuda()
    out["two_visitors"] = two_visitors()
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
