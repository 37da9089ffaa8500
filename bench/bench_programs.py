"""Whole programs in the sandbox (issue #22), measured side by side in one run against real servers
(`python app.py` on 127.0.0.1): one with whole programs (the fenced template) and one with the restricted
language (PLAYGROUND_SANDBOX_MODE=restricted, the sandbox as it was).

    python -m bench.bench_programs [--repeats 30]

- one_liner: a one-line program through /tensor_eval, p50 of each server, calls interleaved; target: whole
  programs at most 1.2x the restricted sandbox;
- eight_at_once: 8 visitors (8 sessions, 8 connections, 8 processes: browser-like clients, Visitor) each send a
  one-liner at the same moment; p50 of their answers vs the same one-liner alone; target at most 3x (the same
  measured with gradio_client threads in one process is reported beside it);
- under_attack: while attacker sessions loop a spinning program and an allocating one, another visitor's
  /classify and one-liner (targets: under 5 s and 12 s); with three sessions looping runaways (issue #23 item 8);
- mlp_15_epochs: a 15-epoch MLP on a small synthetic data set through /tensor_eval vs `python program.py` as a
  fresh process (the same program, the same threads); target at most 0.6x.
Prints JSON; writes bench/results/programs.json. Every request goes to 127.0.0.1; every loop is bounded.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from bench.bench_abuse import Server, _client, _digit_png

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "programs.json"
ONE_LINER = "x = torch.ones(2) + 1"
SPIN = "while True:\n    pass"
ALLOCATE = "chunks = []\nwhile True:\n    chunks.append(bytearray(64 << 20))"
RUNAWAY = "x = torch.rand(3000, 3000)\n" + "\n".join(["y = x @ x @ x @ x @ x @ x"] * 20)
MLP = """\
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
x = torch.randn(4096, 20)
y = (x[:, :10].sum(1) > x[:, 10:].sum(1)).long()
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for epoch in range(15):
    for i in range(0, len(x), 64):
        opt.zero_grad()
        loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        loss.backward()
        opt.step()
    print(f"epoch {epoch} loss {loss.item():.4f}")
print("accuracy", (model(x).argmax(1) == y).float().mean().item())
"""


def _call(client, code: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    text = client.predict(code, api_name="/tensor_eval")[0]
    return time.perf_counter() - t0, text


def _p50(xs) -> float:
    return round(statistics.median(xs) * 1000, 1)


def one_liner(fenced_url: str, restricted_url: str, repeats: int) -> dict:
    cf, cr = _client(fenced_url), _client(restricted_url)
    for c in (cf, cr):
        for _ in range(3):
            _call(c, ONE_LINER)   # warm: the template / the workers, Gradio's caches
    tf, tr = [], []
    for i in range(repeats):
        pair = [(cf, tf), (cr, tr)] if i % 2 == 0 else [(cr, tr), (cf, tf)]
        for c, out in pair:
            out.append(_call(c, ONE_LINER)[0])
    return {"fenced_p50_ms": _p50(tf), "restricted_p50_ms": _p50(tr), "ratio": round(_p50(tf) / _p50(tr), 2),
            "target_ratio": 1.2}


class Visitor:
    """One visitor as a browser is one: a kept-alive HTTP/1.1 connection speaking Gradio's queue protocol (POST
    queue/join, then the event's server-sent events from queue/data), in a process of its own (_Visitors).
    Eight visitors are eight browsers on eight machines: run as eight threads of one process, their clients
    (~4 ms of CPU a call with httpx, all under one GIL) queued behind one another and added their queue to every
    answer; gradio_client spends ~70 ms of CPU a call (a new HTTP client per request, the result's files
    downloaded). Here a call costs the visitor's process ~1 ms (http.client), on the same two cores as the server."""

    def __init__(self, url: str, fn_index: int):
        host, port = url.split("//", 1)[1].split(":")
        self.host, self.port, self.fn, self.session = host, int(port), fn_index, uuid.uuid4().hex
        self._join = self._data = None

    def _connect(self) -> None:
        self._join = http.client.HTTPConnection(self.host, self.port, timeout=120)
        self._data = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def call(self, *data) -> tuple[float, list]:
        if self._join is None:
            self._connect()
        try:
            return self._call(data)
        except (ConnectionError, http.client.HTTPException):   # the server closed an idle connection: a browser
            self.close()                                         # opens a new one, and so do we
            self._connect()
            return self._call(data)

    def _call(self, data) -> tuple[float, list]:
        t0 = time.perf_counter()
        body = json.dumps({"data": list(data), "fn_index": self.fn, "event_data": None,
                           "session_hash": self.session, "trigger_id": None})
        self._join.request("POST", "/gradio_api/queue/join", body, {"Content-Type": "application/json"})
        r = self._join.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"queue/join answered {r.status}")
        self._data.request("GET", f"/gradio_api/queue/data?session_hash={self.session}")
        resp = self._data.getresponse()
        done = None
        for line in iter(resp.readline, b""):
            if line.startswith(b"data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    done = (time.perf_counter() - t0, msg)
                    break
        resp.read()   # the rest of the stream, so the connection is kept
        if done is None:
            raise RuntimeError("the event stream ended without a result")
        took, msg = done
        if not msg.get("success"):
            raise RuntimeError(f"the call failed: {msg.get('output')}")
        return took, msg["output"]["data"]

    def close(self) -> None:
        for conn in (self._join, self._data):
            if conn is not None:
                conn.close()
        self._join = self._data = None


def _visitor_process(url: str, fn: int, code: str, conn, barrier) -> None:
    v = Visitor(url, fn)
    try:
        v.call(code)   # warm: the session, Gradio's caches
        conn.send("ready")
        while (cmd := conn.recv()) is not None:
            if cmd == "together":
                barrier.wait()
            conn.send(v.call(code)[0])
    finally:
        v.close()


class _Visitors:
    """n visitors, each a process of its own (Visitor), driven from here over pipes."""

    def __init__(self, url: str, fn: int, code: str, n: int = 8):
        ctx = multiprocessing.get_context("spawn")
        self.barrier = ctx.Barrier(n)   # kept here: the processes open it when they start
        self.pipes = [ctx.Pipe() for _ in range(n)]
        self.procs = [ctx.Process(target=_visitor_process, args=(url, fn, code, child, self.barrier), daemon=True)
                      for _, child in self.pipes]

    def __enter__(self):
        for p in self.procs:
            p.start()
        for ours, _ in self.pipes:
            if not ours.poll(120) or ours.recv() != "ready":
                raise RuntimeError("a visitor process did not start")
        return self

    def alone(self) -> float:
        self.pipes[0][0].send("alone")
        return self.pipes[0][0].recv()

    def together(self) -> list[float]:
        for ours, _ in self.pipes:
            ours.send("together")
        return [ours.recv() for ours, _ in self.pipes]

    def __exit__(self, *exc):
        for ours, _ in self.pipes:
            try:
                ours.send(None)
            except OSError:
                pass
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()


PAUSE_S = 0.3   # between one visitor's calls, and between rounds of eight: each round starts on a machine at rest


def _at_once(calls: list, rounds: int) -> list[float]:
    together: list[float] = []
    for _ in range(rounds):
        time.sleep(PAUSE_S)
        times: list[float] = []
        barrier = threading.Barrier(len(calls))

        def one(call):
            barrier.wait()
            times.append(call())

        threads = [threading.Thread(target=one, args=(c,)) for c in calls]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        together += times
    return together


def eight_at_once(url: str, rounds: int = 10) -> dict:
    """8 visitors, each its own session on its own connection in its own process, send the one-liner at the
    same moment. The same with gradio_client threads in one process is reported beside it."""
    fn = _client(url)._infer_fn_index("/tensor_eval", None)
    with _Visitors(url, fn, ONE_LINER) as visitors:
        alone = []
        for _ in range(30):
            time.sleep(PAUSE_S)
            alone.append(visitors.alone())
        together = []
        for _ in range(rounds):
            time.sleep(PAUSE_S)
            together += visitors.together()
    clients = [_client(url) for _ in range(8)]
    for c in clients:
        _call(c, ONE_LINER)
    gc_alone = [_call(clients[0], ONE_LINER)[0] for _ in range(10)]
    gc_together = _at_once([lambda c=c: _call(c, ONE_LINER)[0] for c in clients], 3)
    return {"alone_p50_ms": _p50(alone), "eight_p50_ms": _p50(together),
            "ratio": round(_p50(together) / _p50(alone), 2),
            "eight_max_ms": round(max(together) * 1000, 1), "target_ratio": 3.0,
            "with_gradio_client": {"alone_p50_ms": _p50(gc_alone), "eight_p50_ms": _p50(gc_together),
                                   "ratio": round(_p50(gc_together) / _p50(gc_alone), 2)}}


def under_attack(url: str, digit: str, attacks: dict[str, list[str]], seconds: float = 25.0) -> dict:
    """Attacker sessions loop their programs for `seconds`; a victim classifies and runs one-liners meanwhile."""
    from gradio_client import handle_file

    stop = time.monotonic() + seconds
    attackers = []

    def loop(code):
        c = _client(url)
        while time.monotonic() < stop:
            try:
                _call(c, code)
            except Exception:  # noqa: BLE001 - a refusal is an answer; keep attacking
                time.sleep(0.2)

    for codes in attacks.values():
        for code in codes:
            attackers.append(threading.Thread(target=loop, args=(code,), daemon=True))
    for t in attackers:
        t.start()
    time.sleep(2.0)
    v = _client(url)
    classify, liner, ok = [], [], True
    while time.monotonic() < stop - 1:
        t0 = time.perf_counter()
        label, *_ = v.predict(handle_file(digit), api_name="/classify")
        classify.append(time.perf_counter() - t0)
        took, text = _call(v, "print(torch.ones(2) * 3)")
        liner.append(took)
        ok = ok and "tensor([3., 3.])" in text and bool(label.get("label"))
        time.sleep(0.5)
    for t in attackers:
        t.join(60)
    return {"victim_classify_max_s": round(max(classify), 2),
            "victim_classify_p50_s": round(statistics.median(classify), 2),
            "victim_one_liner_max_s": round(max(liner), 2),
            "victim_one_liner_p50_s": round(statistics.median(liner), 2),
            "victim_calls": len(liner), "victim_answers_ok": ok,
            "targets": {"classify_max_s": 5, "one_liner_max_s": 12}}


def mlp(url: str, repeats: int = 3) -> dict:
    c = _client(url)
    _call(c, ONE_LINER)
    sandboxed = []
    for _ in range(repeats):
        took, text = _call(c, MLP)
        assert "accuracy" in text, text
        sandboxed.append(took)
    folder = Path(tempfile.mkdtemp())
    (folder / "program.py").write_text(MLP)
    fresh = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "program.py"], cwd=folder, check=True, capture_output=True)
        fresh.append(time.perf_counter() - t0)
    s, f = statistics.median(sandboxed), statistics.median(fresh)
    return {"sandbox_s": round(s, 2), "fresh_python_s": round(f, 2), "ratio": round(s / f, 2), "target_ratio": 0.6}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out: dict = {"machine": f"{os.cpu_count()}-core CPU, no GPU", "commit": commit,
                 "load_avg_at_start": round(os.getloadavg()[0], 2)}
    digit = _digit_png(Path(tempfile.mkdtemp()))

    def fresh(env: dict) -> dict:   # each server its own empty temp folder, as a new Space starts: not one that
        return {"PLAYGROUND_TEMP_DIR": tempfile.mkdtemp(prefix="bench-programs-"), **env}   # earlier runs filled

    with Server(fresh({})) as fenced, Server(fresh({"PLAYGROUND_SANDBOX_MODE": "restricted"})) as restricted:
        out["one_liner"] = one_liner(fenced.url, restricted.url, args.repeats)
    with Server(fresh({})) as fenced:
        out["eight_at_once"] = eight_at_once(fenced.url)
        out["mlp_15_epochs"] = mlp(fenced.url)
        out["spin_and_allocate"] = under_attack(fenced.url, digit, {"spin": [SPIN], "allocate": [ALLOCATE]})
        out["three_runaway_sessions"] = under_attack(fenced.url, digit, {"runaway": [RUNAWAY] * 3})
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
