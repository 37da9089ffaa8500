"""Benchmark the tensor/autograd sandbox; prints JSON and writes bench/results/sandbox.json.

    python -m bench.bench_sandbox [--repeats 5] [--skip-abuse]

Measures: a worker's cold start (torch + matplotlib import, warm-up), warm request latency (tiny program,
the tutorial 2.1 preset with its pictures, the Net preset with backward + graph, 50 training steps),
the evaluator alone in-process, how fast bombs are refused, the time to recover from a runaway program
(kill + restart), the worker's limits, and the abuse case (issue #13): against the real app, one session sends
5 runaway programs at once and another session a one-line program; the victim's answer must arrive in under
12 s and every refused attacker request must be answered within 5 s. `abuse_case(url)` runs that scenario
against any running app (bench/bench_abuse.py imports it).
"""
from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "sandbox.json"
# Runs far past any limit: each line is 5 multiplications of 3000x3000 matrices (~54 GFLOP each).
RUNAWAY = "x = torch.rand(3000, 3000)\n" + "\n".join(["y = x @ x @ x @ x @ x @ x"] * 20)
VICTIM = "print(torch.ones(2) + 1)"   # what it prints is the first output in either sandbox mode


def abuse_case(url: str, n_attacks: int = 5, runaway: str = RUNAWAY, endpoint: str = "/tensor_eval") -> dict:
    """Issue #13's scenario against a running app: an attacker session submits `n_attacks` runaway programs at
    once, then (0.2 s later, so they are ahead in the queue) a victim session submits a one-line program.
    Returns seconds from each submit to its answer and what each answer said."""
    from gradio_client import Client

    attacker, victim = Client(url, verbose=False), Client(url, verbose=False)
    # warm the app's workers first (a Space is warm; a cold start is measured separately)
    warm = [c.submit(VICTIM, api_name=endpoint) for c in (attacker, victim)]
    for job in warm:
        job.result(timeout=300)

    done: dict = {}

    def wait(name, job, t0):
        try:
            text = job.result(timeout=300)[0]
        except Exception as exc:  # noqa: BLE001 - an error is an answer too; record it
            text = f"ERROR {type(exc).__name__}: {exc}"
        done[name] = (time.perf_counter() - t0, text)

    threads = []
    t_attack = time.perf_counter()
    for i in range(n_attacks):
        job = attacker.submit(runaway, api_name=endpoint)
        threads.append(threading.Thread(target=wait, args=(f"attack{i}", job, t_attack)))
        threads[-1].start()
    time.sleep(0.2)
    t_victim = time.perf_counter()
    threads.append(threading.Thread(target=wait, args=("victim", victim.submit(VICTIM, api_name=endpoint), t_victim)))
    threads[-1].start()
    for t in threads:
        t.join()

    def outcome(text: str) -> str:
        if text.startswith("Not run"):
            return "refused"  # by the sandbox pool: one program per session
        if text.startswith("ERROR") and "400" in text:
            return "refused"  # by the queue's admission (requests per session), before the event runs
        if text.startswith("Stopped"):
            return "stopped"
        return "error" if text.startswith("ERROR") else "ran"

    attacks = [{"answer_s": round(done[f"attack{i}"][0], 2), "outcome": outcome(done[f"attack{i}"][1]),
                "message": done[f"attack{i}"][1][:160]} for i in range(n_attacks)]
    refused = [a["answer_s"] for a in attacks if a["outcome"] == "refused"]
    stopped = [a["answer_s"] for a in attacks if a["outcome"] == "stopped"]
    victim_s, victim_text = done["victim"]
    return {
        "victim_answer_s": round(victim_s, 2),
        "victim_answer_ok": "tensor([2., 2.])" in victim_text,
        "victim_under_12_s": victim_s < 12 and "tensor([2., 2.])" in victim_text,
        "attacker_refused": len(refused), "attacker_stopped": len(stopped),
        "attacker_slowest_refusal_s": round(max(refused), 2) if refused else None,
        "attacker_refusals_within_5_s": bool(refused) and max(refused) < 5,
        "attacker_stopped_answer_s": [round(s, 2) for s in stopped],
        "attacks": attacks,
    }


def _abuse_against_local_app() -> dict:
    """abuse_case() against the real app (build_app + launch_kwargs) on a free local port, with its pool."""
    import socket

    import app as app_module
    from playground.pool import get_sandbox

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = app_module.build_app()
    demo.launch(prevent_thread_lock=True, quiet=True, **app_module.launch_kwargs(host="127.0.0.1", port=port))
    try:
        pool = get_sandbox()
        pool.warm()  # every worker up, as on a Space that has been serving (cold start: measured above)
        out = {"pool_size": pool.size, "limits": pool.describe()}
        out.update(abuse_case(demo.local_url.rstrip("/")))
        out["restarts"] = pool.restarts
        return out
    finally:
        demo.close()
        get_sandbox().close()


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
    ap.add_argument("--skip-abuse", action="store_true", help="leave out the abuse case (it starts the app)")
    args = ap.parse_args(argv)

    from playground import presets
    from playground.evaluator import SandboxError
    from playground.interpreter import Interpreter
    from playground.worker import SandboxUnavailable, Worker

    out: dict = {}
    sb = Worker()
    t0 = time.perf_counter()
    sb.start()
    out["worker_cold_start_s"] = round(time.perf_counter() - t0, 2)
    out["worker"] = {k: (round(v / 2**30, 2) if isinstance(v, int) and not isinstance(v, bool) else v)
                     for k, v in sb.info.items()}
    out["worker"]["units"] = "GiB for vm_before_limit / rlimit_as / rss_baseline"
    out["worker"]["limits"] = sb.limits.describe()
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

    sb.limits.wall_s = 2.0
    t0 = time.perf_counter()
    try:
        r("tensors", code=RUNAWAY)
        out["runaway"] = "finished?!"
    except SandboxUnavailable:
        out["runaway_stopped_after_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    r("tensors", code="torch.ones(2)")  # this worker restarts inline (the pool restarts in the background)
    out["next_request_after_runaway_s"] = round(time.perf_counter() - t0, 2)
    out["restarts"] = sb.restarts
    sb.close()
    if not args.skip_abuse:
        out["abuse_case"] = _abuse_against_local_app()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
