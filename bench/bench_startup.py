"""Start-up: an offline `python app.py` until its first HTTP 200, side by side with a bare
`python -c "import torch, torchvision, gradio"` (issue #26 item 11: the app's start should stay under 0.8x of it).

    python bench/bench_startup.py                 # 7 rounds; prints JSON, writes bench/results/startup.json
    python bench/bench_startup.py --rounds 3 --no-write
    python bench/bench_startup.py --before /tmp/old-checkout   # also an older checkout's app.py, in the same rounds
    python bench/bench_startup.py --nice -10                   # as root on a machine others load

Each round runs the two one after the other, alternating which goes first, so a change in the machine's load
touches both alike; the ratio is of the medians. The app runs as a visitor's laptop would (HF_HUB_OFFLINE=1, its
own temp folder, a free port); its clock starts before the process is spawned and stops at the first 200 for
"/" (polled every 10 ms). `import torch, gradio` (no torchvision) is timed too, as the floor an app that imports
both can reach. The machine's load average is recorded with the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BARE = "import torch, torchvision, gradio"
FLOOR = "import torch, gradio"
TIMEOUT_S = 120.0
NICE = [0]   # --nice: the niceness each timed process starts with (the same for all)


def _niced() -> None:
    if NICE[0]:
        os.nice(NICE[0])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp: str) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", PLAYGROUND_TEMP_DIR=tmp)
    env.pop("GRADIO_TEMP_DIR", None)
    return env


def time_import(code: str, tmp: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) for `python -c code` to run and exit."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=str(ROOT), env=_env(tmp), preexec_fn=_niced,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{code!r} exited with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def _cpu_s(pid: int) -> float:
    """utime + stime of a running process (all its threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError):
        return None


def time_app(tmp: str, root: Path = ROOT) -> tuple[float, float]:
    """(wall seconds, the app process's CPU seconds) from spawning `python app.py` to its first HTTP 200 for "/";
    the app (and whatever it started in the background: the sandbox's template) is then stopped."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=str(root), env=_env(tmp),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=_niced)
    try:
        while True:
            if _status(url) == 200:
                return time.perf_counter() - t0, _cpu_s(proc.pid)
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode} before answering")
            if time.perf_counter() - t0 > TIMEOUT_S:
                raise RuntimeError(f"app.py did not answer within {TIMEOUT_S:.0f} s")
            time.sleep(0.01)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Stop the app's process group (the app and the children it started), SIGKILL if SIGTERM is not enough."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    time.sleep(0.5)   # the group's other processes (the sandbox template) leave too before the next round


def _commit(root: Path) -> str:
    """The checkout's commit, '+changes' when its tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=root).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def run(rounds: int, floor: bool = True, before: Path | None = None) -> dict:
    """`rounds` rounds of: the bare import and the app (in turn first), the older checkout's app if given, and
    the floor."""
    app, bare, flo, old = [], [], [], []   # (wall, cpu) pairs
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        time_import(BARE, tmp)   # one untimed run of each: the page cache holds the libraries for every round
        time_app(tmp)
        if before is not None:
            time_app(tmp, before)
        for i in range(rounds):
            order = [lambda: bare.append(time_import(BARE, tmp)), lambda: app.append(time_app(tmp))]
            if before is not None:   # the older app next to this one, in turn before and after it
                order.insert(1, lambda: old.append(time_app(tmp, before)))
            for fn in (reversed(order) if i % 2 else order):
                fn()
            if floor:
                flo.append(time_import(FLOOR, tmp))
            print(f"round {i + 1}: app {app[-1][0]:.2f} s, bare {bare[-1][0]:.2f} s"
                  + (f", before {old[-1][0]:.2f} s" if old else ""), file=sys.stderr)
    app_s, bare_s, floor_s = ([w for w, _ in xs] for xs in (app, bare, flo))
    app_cpu, bare_cpu, floor_cpu = ([c for _, c in xs] for xs in (app, bare, flo))
    out = {
        "command": "python bench/bench_startup.py" + (f" --rounds {rounds}" if rounds != 7 else ""),
        "app": "python app.py --port <free> with HF_HUB_OFFLINE=1, until the first HTTP 200 for /",
        "bare": f'python -c "{BARE}"',
        "commit": _commit(ROOT),
        "rounds": rounds,
        "app_s": [round(x, 3) for x in app_s],
        "bare_s": [round(x, 3) for x in bare_s],
        "app_median_s": _median(app_s),
        "bare_median_s": _median(bare_s),
        "ratio_app_to_bare": round(statistics.median(app_s) / statistics.median(bare_s), 3),
        "target_ratio": 0.8,
        # CPU seconds (the process's own, not its children's) depend less on the machine's load than wall time
        "app_cpu_median_s": _median(app_cpu),
        "bare_cpu_median_s": _median(bare_cpu),
        "cpu_ratio_app_to_bare": round(statistics.median(app_cpu) / statistics.median(bare_cpu), 3),
        "machine": {"cpus": os.cpu_count(), "nice": NICE[0], "load_avg_start": [round(x, 2) for x in load_start],
                    "load_avg_end": [round(x, 2) for x in os.getloadavg()]},
    }
    if before is not None:
        old_s, old_cpu = [w for w, _ in old], [c for _, c in old]
        out["before"] = f"python app.py at commit {_commit(before)} (an older checkout), in the same rounds"
        out["before_s"] = [round(x, 3) for x in old_s]
        out["before_median_s"] = _median(old_s)
        out["ratio_before_to_bare"] = round(statistics.median(old_s) / statistics.median(bare_s), 3)
        out["before_cpu_median_s"] = _median(old_cpu)
        out["cpu_ratio_before_to_bare"] = round(statistics.median(old_cpu) / statistics.median(bare_cpu), 3)
    if floor:
        out["floor"] = f'python -c "{FLOOR}"'
        out["floor_s"] = [round(x, 3) for x in floor_s]
        out["floor_median_s"] = _median(floor_s)
        out["ratio_floor_to_bare"] = round(statistics.median(floor_s) / statistics.median(bare_s), 3)
        out["floor_cpu_median_s"] = _median(floor_cpu)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--no-floor", action="store_true", help="skip the `import torch, gradio` reference")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write bench/results/startup.json")
    ap.add_argument("--note", default="", help="a note stored with the run")
    ap.add_argument("--before", type=Path, help="an older checkout whose app.py is timed in the same rounds")
    ap.add_argument("--nice", type=int, default=0, help="niceness of every timed process, e.g. -10 (root) on a "
                    "machine others load: they then disturb the timings less")
    args = ap.parse_args()
    NICE[0] = args.nice
    out = run(args.rounds, floor=not args.no_floor, before=args.before)
    if args.before is not None:
        out["command"] += " --before <older checkout>"
    if args.nice:
        out["command"] += f" --nice {args.nice}"
    if args.note:
        out["note"] = args.note
    print(json.dumps(out, indent=2))
    if not args.no_write:
        path = ROOT / "bench" / "results" / "startup.json"
        runs = json.loads(path.read_text())["runs"] if path.exists() else []
        path.write_text(json.dumps({"runs": runs + [out]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
