"""Serving while a job runs: /classify latency with another visitor's fine-tune streaming, the fine-tune's speed
in the job worker vs in the server process (today's design before jobs moved out), and 20 clients' /classify
throughput vs a no-op endpoint with the same upload. Prints JSON (results: bench/results/serving.json).

    python bench/bench_serving.py                 # mnist5k, 5+5 epochs (about 5 minutes on 2 cores)
    python bench/bench_serving.py --epochs 1      # a quick look

Everything is measured in the same run on the same machine. "in-process" runs run_finetune in a thread of the
server process, exactly as the Fine-tune tab did before jobs (so it also gives that design's /classify latency).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def _cpu_s(pid: int | None = None) -> float:
    """utime + stime of a process (all its threads), seconds."""
    with open(f"/proc/{pid or os.getpid()}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def _stats(ms: list[float]) -> dict:
    return {"n": len(ms), "mean_ms": round(statistics.mean(ms), 1), "p50_ms": round(statistics.median(ms), 1),
            "max_ms": round(max(ms), 1)}


def _classify_while(client, path, busy) -> list[float]:
    """/classify latencies, one after another 0.2 s apart, while busy() is true."""
    from gradio_client import handle_file

    out = []
    while busy():
        out.append(_timed(lambda: client.predict(handle_file(path), api_name="/classify")))
        time.sleep(0.2)
    return out


def _load_client(url: str, api: str, path: str, n: int, calls: int) -> None:
    """A load-generating process (python -m bench.bench_serving --load-client ...): n clients in threads, each
    making `calls` calls once the parent writes a line to stdin; prints "ready" and then "done"."""
    from gradio_client import Client, handle_file

    clients = [Client(url, verbose=False) for _ in range(n)]
    print("ready", flush=True)
    sys.stdin.readline()

    def one(c):
        for _ in range(calls):
            c.predict(handle_file(path), api_name=api)

    with ThreadPoolExecutor(n) as ex:
        list(ex.map(one, clients))
    print("done", flush=True)


def _throughput(out: dict, demo, path: str, args) -> None:
    """20 clients x 25 calls each, /classify vs /noop (same upload), in interleaved rounds (5 by default).

    The clients run in 4 processes of their own, as real visitors do: in the server's own interpreter,
    gradio_client's per-request setup (an SSL context per call, ~35 ms of held GIL by py-spy) took the server's
    GIL and made the no-op floor a measure of the client. Ratio per round (classify / the no-op run beside it; the
    order alternates); the median over the rounds is the figure."""
    import subprocess

    procs_n = 4
    per = [args.clients // procs_n + (1 if i < args.clients % procs_n else 0) for i in range(procs_n)]

    def load(api):
        procs = [subprocess.Popen([sys.executable, "-m", "bench.bench_serving", "--load-client", demo.local_url, api,
                                   path, str(n), str(args.calls)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True) for n in per if n]
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        cpu0 = _cpu_s()
        t = time.perf_counter()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            assert p.stdout.readline().strip() == "done"
        dt = time.perf_counter() - t
        server_ms = (_cpu_s() - cpu0) * 1000 / (args.clients * args.calls)   # server process CPU per call
        for p in procs:
            p.wait()
        return args.clients * args.calls / dt, server_ms

    rounds = []
    for i in range(args.rounds):
        if i % 2:           # alternate which goes first, so a drift of the machine over the run favours neither
            (cls, cls_ms), (noop, noop_ms) = load("/classify"), load("/noop")
        else:
            (noop, noop_ms), (cls, cls_ms) = load("/noop"), load("/classify")
        rounds.append({"noop_per_s": round(noop, 1), "classify_per_s": round(cls, 1), "ratio": round(cls / noop, 3),
                       "server_cpu_ms_per_call": {"noop": round(noop_ms, 1), "classify": round(cls_ms, 1)}})
    out["throughput"] = {"rounds": rounds, "ratio_median": statistics.median(r["ratio"] for r in rounds),
                         "target_ratio": 0.85,
                         "clients": f"{args.clients} clients in {procs_n} processes x {args.calls} calls"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=5, help="epochs per stage of the mnist5k fine-tune")
    ap.add_argument("--idle", type=int, default=30)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--calls", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=5, help="throughput rounds (each: no-op and /classify)")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--only-throughput", action="store_true")
    ap.add_argument("--load-client", nargs=5, metavar=("URL", "API", "PATH", "N", "CALLS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load_client:
        url, api, path, n, calls = args.load_client
        _load_client(url, api, path, int(n), int(calls))
        return

    import gradio as gr
    import numpy as np
    import torch
    from gradio_client import Client, handle_file
    from PIL import Image

    import app as app_module
    from training.data.datasets import mnist5k
    from training.finetuning.finetune import load_target, run_finetune
    from training.finetuning.finetune_config import FinetuneConfig
    from jobs.queue import get_queue, job_threads
    from ui.common import INTERACTIVE
    from core.device import use_serving_threads

    s = mnist5k()
    path = os.path.join(tempfile.mkdtemp(), "digit.png")
    Image.fromarray((s.test_x[1, 0].numpy() * 255).astype(np.uint8)).save(path)
    demo = app_module.build_app()
    with demo:   # Gradio's floor: the same upload, nothing done with it, the same concurrency as /classify
        noop_in = gr.Image(type="filepath", visible=False)
        noop_out = gr.Textbox(visible=False)
        gr.Button(visible=False).click(lambda f: "ok", noop_in, noop_out, api_name="noop",
                                       **dict(INTERACTIVE, concurrency_id="noop"))
    demo.launch(prevent_thread_lock=True, quiet=True, **app_module.launch_kwargs(port=_free_port()))
    old_threads = torch.get_num_threads()   # the design before jobs: the server's default thread count
    use_serving_threads()                   # as app.main does before it serves
    out = {"machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "server_threads": torch.get_num_threads(),
                       "job_threads": job_threads(), "load_avg_start": os.getloadavg()}}
    try:
        a, b = Client(demo.local_url, verbose=False), Client(demo.local_url, verbose=False)
        for _ in range(3):
            b.predict(handle_file(path), api_name="/classify")
            b.predict(handle_file(path), api_name="/noop")
        if args.only_throughput:
            args.idle = 3
        idle = [_timed(lambda: b.predict(handle_file(path), api_name="/classify")) for _ in range(args.idle)]
        out["classify_idle"] = _stats(idle)

        q = get_queue()
        if args.only_throughput:
            _throughput(out, demo, path, args)
            print(json.dumps(out, indent=2))
            return
        # 1) the fine-tune as a job (worker process), /classify from another visitor meanwhile
        kw = dict(target="mnist5k", stage1_epochs=args.epochs, stage2_epochs=args.epochs, compare_scratch=False)
        t0 = time.perf_counter()
        job = a.submit(api_name="/finetune", **kw)
        while not any("step" in str(o[0]) for o in job.outputs()) and not job.done():
            time.sleep(0.2)
        worker_pid = q._runners[0].pid
        cpu0 = _cpu_s(worker_pid)
        during = _classify_while(b, path, lambda: not job.done())
        res = job.result(timeout=3600)
        wall_job = time.perf_counter() - t0
        job_cpu = _cpu_s(worker_pid) - cpu0
        secs = float(res[3].split(" s on ")[0].rsplit(", ", 1)[-1]) if " s on " in res[3] else None
        out["finetune_job"] = {"train_seconds": secs, "wall_seconds_incl_start": round(wall_job, 1),
                               "worker_cpu_seconds": round(job_cpu, 1), "worker_nice": q._runners[0].nice,
                               "metrics": res[3].splitlines()[0]}
        out["classify_during_job"] = _stats(during)
        out["classify_during_job"]["vs_idle_mean"] = round(out["classify_during_job"]["mean_ms"] /
                                                           out["classify_idle"]["mean_ms"], 2)

        # 2) the design before jobs: run_finetune in a thread of the server process (with the server's default
        #    thread count, as it was), /classify meanwhile
        torch.set_num_threads(old_threads)
        cfg = FinetuneConfig(target="mnist5k", stage1_epochs=args.epochs, stage2_epochs=args.epochs)
        data = load_target(cfg)
        box = {}
        th = threading.Thread(target=lambda: box.setdefault("res", run_finetune(cfg, data)))
        cpu0 = _cpu_s()
        th.start()
        time.sleep(1.0)
        during_old = _classify_while(b, path, th.is_alive)
        th.join()
        out["finetune_in_process"] = {"train_seconds": round(box["res"].seconds, 1),
                                      "server_process_cpu_seconds": round(_cpu_s() - cpu0, 1),
                                      "test_acc": round(box["res"].test_acc, 2)}
        out["classify_during_in_process"] = _stats(during_old)
        out["classify_during_in_process"]["vs_idle_mean"] = round(statistics.mean(during_old) /
                                                                  out["classify_idle"]["mean_ms"], 2)
        if secs:
            out["finetune_speed_job_vs_in_process"] = round(box["res"].seconds / secs, 3)
        use_serving_threads()

        if not args.skip_throughput:
            _throughput(out, demo, path, args)
        out["targets"] = {"classify_during_job_vs_idle_mean": 2.0, "finetune_speed_job_vs_in_process": 0.8,
                          "throughput_ratio": 0.85}
        out["machine"]["load_avg_end"] = os.getloadavg()
        q.close()
    finally:
        demo.close(verbose=False)   # its "Closing server" line would follow the JSON on stdout
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
