"""Issue #23 items 3-7 and 9 against a real server: `python app.py` in a subprocess on 127.0.0.1, run as a Space
(SYSTEM=spaces, so each client's X-Forwarded-For is its address), an attacker and a victim from two addresses.

    python -m bench.bench_abuse_state [--only sessions unread temp jobs summary]

The server is started with the operator's GRADIO_TEMP_DIR (no PLAYGROUND_TEMP_DIR) and a 50 MB temp cap, so the
temp row also measures item 6. Each row: what the attacker got, the server's memory or disk, and, while the
attack runs, the victim's /classify and a cheap event (the Classify tab's model card, through the raw queue).
Prints JSON; writes bench/results/abuse_state.json. Every request goes to 127.0.0.1 and every loop is bounded.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.bench_abuse import Server, _digit_png, _error_text
from tests import queue_api

ROOT = Path(__file__).resolve().parents[1]
VICTIM_IP = "203.0.113.5"
ATTACKER_IP = {c: f"198.51.100.{7 + i}" for i, c in enumerate(("sessions", "unread", "temp", "jobs", "summary"))}
CASES = ("sessions", "unread", "temp", "jobs", "summary")
SPACE = {"SYSTEM": "spaces", "SPACE_ID": "bench/pytorch-playground"}
PRINTS = "for i in range(2000):\n    print(i, 'x' * 100)"       # a sandbox result of ~200 kB


def _client(url, ip):
    from gradio_client import Client

    return Client(url, verbose=False, headers={"x-forwarded-for": ip})


def _join(url, index, data, session, ip) -> httpx.Response:
    body = {"data": data, "fn_index": index, "session_hash": session, "event_data": None, "trigger_id": None}
    return httpx.post(f"{url}/gradio_api/queue/join", json=body, headers={"x-forwarded-for": ip}, timeout=60)


def server_rss_mb(server) -> float:
    """Resident memory of the server process alone (its sandbox and job workers start and grow on their own)."""
    import psutil

    return round(psutil.Process(server.proc.pid).memory_info().rss / 2**20, 1)


def victim(url: str, digit: str, card: int, runs: int = 3) -> dict:
    """The victim's /classify and model card (cheap), `runs` times each; the slowest of each."""
    from gradio_client import handle_file

    c = _client(url, VICTIM_IP)
    cls, cheap, ok = [], [], True
    for i in range(runs):
        t0 = time.perf_counter()
        label, *_ = c.predict(handle_file(digit), api_name="/classify")
        cls.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        r = _join(url, card, ["resnet_digits"], f"{c.session_hash}-card", VICTIM_IP)
        msgs = queue_api.results(url, f"{c.session_hash}-card", timeout=60) if r.status_code == 200 else []
        cheap.append(time.perf_counter() - t0)
        ok = ok and bool(label.get("label")) and bool(msgs) and msgs[-1]["success"]
    return {"classify_max_s": round(max(cls), 2), "model_card_max_s": round(max(cheap), 2), "ok": ok}


def during(url, digit, card, attack, lead_s: float = 1.0) -> dict:
    out: dict = {}

    def run():
        t0 = time.perf_counter()
        try:
            out.update(attack())
        except Exception as exc:  # noqa: BLE001 - the attack's outcome is data here
            out["attacker_error"] = _error_text(exc)
        out["attack_s"] = round(time.perf_counter() - t0, 2)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    time.sleep(lead_s)
    out["victim_during"] = victim(url, digit, card)
    t.join(300)
    return out


# ------------------------------------------------------------------------------------------------ the cases

def case_sessions(url, digit, card, server, n: int = 300, addresses: int = 30) -> dict:
    """Item 3: n fresh sessions, each calling the model card once, from `addresses` addresses (under the
    per-address rate), then one address opening 40 at once (past it)."""
    before = server_rss_mb(server)

    def attack():
        ok = refused = 0
        for i in range(n):
            ip = f"198.51.{100 + i % addresses}.9"
            sid = f"flood-{i}"
            r = _join(url, card, ["resnet_digits"], sid, ip)
            if r.status_code == 200:
                queue_api.results(url, sid, timeout=60)
                ok += 1
            else:
                refused += 1
        ip = ATTACKER_IP["sessions"]
        burst = [_join(url, card, ["resnet_digits"], f"burst-{i}", ip).status_code for i in range(40)]
        for i, code in enumerate(burst):
            if code == 200:
                queue_api.results(url, f"burst-{i}", timeout=60)
        return {"fresh_sessions": ok, "fresh_refused": refused, "burst_40_from_one_address_refused":
                sum(c != 200 for c in burst)}

    out = during(url, digit, card, attack)
    out["server_rss_before_mb"], out["server_rss_after_mb"] = before, server_rss_mb(server)
    out["server_rss_growth_mb_per_1000_sessions"] = round((out["server_rss_after_mb"] - before) / n * 1000, 1)
    return out


def case_unread(url, digit, card, server, sessions: int = 4, per: int = 40) -> dict:
    """Item 4: sandbox programs printing ~200 kB each, joined and never read (4 sessions x 40)."""
    from gradio_client import Client

    index = queue_api.fn_index_by_api_name(url, "tensor_eval")
    api = Client(url, verbose=False).view_api(print_info=False, return_format="dict")
    n_inputs = len(api["named_endpoints"]["/tensor_eval"]["parameters"])
    before = server_rss_mb(server)

    def attack():
        joined = refused = 0
        deadline = time.monotonic() + 120
        for s in range(sessions):
            got = 0
            while got < per and time.monotonic() < deadline:
                r = _join(url, index, [PRINTS] + [None] * (n_inputs - 1), f"unread-{s}", ATTACKER_IP["unread"])
                if r.status_code == 200:
                    got += 1
                    joined += 1
                else:
                    refused += 1
                    time.sleep(0.2)       # its 4 requests in flight: wait for one to finish (never read)
        return {"joined_never_read": joined, "refused_while_4_in_flight": refused}

    out = during(url, digit, card, attack)
    time.sleep(5)
    out["server_rss_before_mb"], out["server_rss_after_mb"] = before, server_rss_mb(server)
    first = queue_api.results(url, "unread-0", timeout=60)
    full = [m for m in first if m["success"]]
    out["read_later"] = {"results": len(first), "full": len(full),
                         "full_result_kb": round(max((len(json.dumps(m["output"])) for m in full), default=0) / 1024)}
    return out


def _tree_mb(root: Path) -> float:
    total = 0
    for dirpath, dirs, files in os.walk(root):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
            except OSError:
                pass
    return round(total / 2**20, 1)


def case_temp(url, digit, card, server, op_dir: Path, n: int = 24, mb: int = 8) -> dict:
    """Items 5 and 6: the victim exports a run (a fresh download); the attacker uploads n files of mb MB into
    the operator's GRADIO_TEMP_DIR (50 MB cap). Then: is the victim's file there, how big is the folder."""
    v = _client(url, VICTIM_IP)
    before = set(op_dir.rglob("*.zip"))
    v.predict(api_name="/export_run")
    served = set(op_dir.rglob("*.zip")) - before     # on the server: the run's zip (and Gradio's copy, if any)

    def attack():
        for i in range(n):
            files = {"files": (f"flood-{i}.bin", os.urandom(mb << 20), "application/octet-stream")}
            httpx.post(f"{url}/gradio_api/upload", files=files, headers={"x-forwarded-for": ATTACKER_IP["temp"]},
                       timeout=120).raise_for_status()
        return {"uploaded_mb": n * mb}

    out = during(url, digit, card, attack)
    peak = _tree_mb(op_dir)
    time.sleep(20)                          # the janitor prunes every 15 s
    out["folder_peak_mb"], out["folder_after_prune_mb"] = peak, _tree_mb(op_dir)
    out["victim_download_files"] = len(served)
    out["victim_download_kept"] = bool(served) and all(p.exists() for p in served)
    return out


def case_jobs(url, digit, card, server) -> dict:
    """Item 7: six sessions of one address ask for fine-tunes of ~2 epochs; the victim's tiny one: how long until
    it started and ended, against the length of one attacker job."""
    long = dict(model="resnet_digits", target="digits", stage1_epochs=2, stage2_epochs=1, max_steps=120,
                compare_scratch=False, api_name="/finetune")
    attackers = [_client(url, ATTACKER_IP["jobs"]) for _ in range(6)]
    jobs = [a.submit(**long) for a in attackers]
    t0 = time.perf_counter()
    done_at, refused = [], []

    def wait(j):
        try:
            j.result(timeout=280)
            done_at.append(time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001
            refused.append(_error_text(exc)[:80])

    waiters = [threading.Thread(target=wait, args=(j,), daemon=True) for j in jobs]
    for w in waiters:
        w.start()
    time.sleep(3)
    v = _client(url, VICTIM_IP)
    t_victim = time.perf_counter()
    vj = v.submit(model="resnet_digits", target="digits", stage1_epochs=1, stage2_epochs=0, max_steps=2,
                  compare_scratch=False, api_name="/finetune")
    out = {"victim_during": victim(url, digit, card, runs=2)}
    try:
        vj.result(timeout=280)
        out["victim_job_s"] = round(time.perf_counter() - t_victim, 1)
        out["victim_done_at_s"] = round(time.perf_counter() - t0, 1)     # against the attacker's done_at_s
    except Exception as exc:  # noqa: BLE001
        out["victim_job_error"] = _error_text(exc)
    for w in waiters:
        w.join(300)
    done_at.sort()
    gaps = [b - a for a, b in zip(done_at, done_at[1:])]
    out["attacker"] = {"accepted": len(done_at), "refused": refused, "done_at_s": [round(d, 1) for d in done_at],
                       "one_job_s": round(sorted(gaps)[len(gaps) // 2], 1) if gaps else None}
    return out


def case_summary(url, digit, card, server) -> dict:
    """Item 9: four 1024x1024 VGG-16 layer summaries at once."""
    def attack():
        cs = [_client(url, ATTACKER_IP["summary"]) for _ in range(4)]
        t0 = time.perf_counter()
        jobs = [c.submit("vgg16", 1024, 1024, 4, api_name="/model_summary") for c in cs]
        ok = [("138,357,544" in j.result(timeout=240)[1]) for j in jobs]
        return {"summaries_ok": sum(ok), "all_four_s": round(time.perf_counter() - t0, 2)}

    before = server_rss_mb(server)
    out = during(url, digit, card, attack, lead_s=0.3)
    out["server_rss_before_mb"], out["server_rss_after_mb"] = before, server_rss_mb(server)
    # The same summary with real tensors, as it ran before (in this process, not the server's): the cost the
    # meta device removed.
    import resource

    from look_inside import weights as W
    from zoo.registry import get_spec

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    W.model_summary(get_spec("vgg16").builder().eval(), (1, 3, 1024, 1024))
    out["real_tensor_reference"] = {"one_summary_s": round(time.perf_counter() - t0, 1),
                                    "peak_rss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                                 - rss0) / 1024)}
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=CASES, default=CASES)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "abuse_state.json"))
    args = ap.parse_args(argv)
    out: dict = {"cpus": os.cpu_count(), "space": True}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        op_dir = folder / "operator-gradio-temp"
        env = {**SPACE, "GRADIO_TEMP_DIR": str(op_dir), "PLAYGROUND_TEMP_MAX_MB": "50", "HF_HUB_OFFLINE": "1"}
        os.environ.pop("PLAYGROUND_TEMP_DIR", None)
        digit = _digit_png(folder)
        with Server(env) as server:
            card = queue_api.fn_index_by_api_name(server.url, "model_card")
            out["rss_idle_mb"], out["server_rss_idle_mb"] = server.rss_mb(), server_rss_mb(server)
            [victim(server.url, digit, card) for _ in range(2)]          # warm: models loaded, as on a live Space
            out["victim_quiet"] = victim(server.url, digit, card)
            for name in args.only:
                t0 = time.perf_counter()
                case = globals()[f"case_{name}"]
                out[name] = case(server.url, digit, card, server, op_dir) if name == "temp" else \
                    case(server.url, digit, card, server)
                out[name]["case_s"] = round(time.perf_counter() - t0, 1)
                print(name, json.dumps(out[name])[:400], file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
