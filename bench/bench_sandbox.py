"""Benchmark the tensor/autograd sandbox; prints JSON.

    python -m bench.bench_sandbox [--repeats 5]

Measures: the worker's cold start (torch + matplotlib import, warm-up), warm request latency (tiny program,
the tutorial 2.1 preset with its pictures, the Net preset with backward + graph, 50 training steps),
the evaluator alone in-process, how fast bombs are refused, the time to recover from a runaway program
(wall-clock kill + restart), and the worker's memory limits.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _ms(fn, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": round(statistics.median(times), 2), "min_ms": round(min(times), 2)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    from playground import presets
    from playground.evaluator import SandboxError
    from playground.interpreter import Interpreter
    from playground.worker import Sandbox, SandboxUnavailable

    out: dict = {}
    sb = Sandbox()
    t0 = time.perf_counter()
    sb.warm()
    out["worker_cold_start_s"] = round(time.perf_counter() - t0, 2)
    out["worker"] = {k: (round(v / 2**30, 2) if isinstance(v, int) else v) for k, v in sb.info.items()}
    out["worker"]["units"] = "GiB for vm_before_limit / rlimit_as"
    r = lambda kind, **kw: sb.request(kind, **kw)  # noqa: E731
    out["warm_tiny_program"] = _ms(lambda: r("tensors", code="a = torch.ones(2)\nb = a + 1"), args.repeats)
    out["warm_tutorial_2_1_with_6_pictures"] = _ms(lambda: r("tensors", code=presets.TUTORIAL_2_1), args.repeats)
    out["warm_net_backward_with_graph"] = _ms(lambda: r("autograd", code=presets.NET, lr=0.01, steps=0), args.repeats)
    out["warm_net_50_training_steps"] = _ms(lambda: r("autograd", code=presets.NET, lr=0.01, steps=50), args.repeats)

    def evaluate_only():
        Interpreter().run(presets.TUTORIAL_2_1)

    evaluate_only()
    out["in_process_eval_tutorial_2_1_no_pictures"] = _ms(evaluate_only, args.repeats * 4)

    bombs = {"2**2**100": "2 ** 2 ** 100", "ones(10**6,10**6)": "torch.ones(10 ** 6, 10 ** 6)",
             "repeat": "torch.ones(4000, 4000).repeat(100, 100)", "list*10**9": "[0] * 10 ** 9"}
    refusals = {}
    for name, code in bombs.items():
        t0 = time.perf_counter()
        try:
            Interpreter().run(code)
            refusals[name] = "NOT REFUSED"
        except SandboxError:
            refusals[name] = round((time.perf_counter() - t0) * 1000, 3)
    out["bomb_refusal_ms"] = refusals

    sb.wall_seconds = 2.0
    t0 = time.perf_counter()
    try:
        r("tensors", code="x = torch.rand(3000, 3000)\n" + "\n".join(["y = x @ x @ x @ x"] * 30))
        out["runaway"] = "finished?!"
    except SandboxUnavailable:
        out["runaway_stopped_after_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    r("tensors", code="torch.ones(2)")
    out["next_request_after_runaway_s"] = round(time.perf_counter() - t0, 2)
    out["restarts"] = sb.restarts
    sb.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
