"""The temp janitor's cost (core/tempfiles.py): the CPU one prune takes with N units in the temp folder (Gradio's
<hash>/ folders, one file each, as every picture a result shows leaves one, and run folders). On a busy server
the janitor's incremental prune (full=False) runs every second something new arrived, in the server's process, so
its cost per unit is paid by every visitor's events; the full prune runs every JANITOR_S.

    python -m bench.bench_janitor            # N = 1000 and 5000; prints JSON, writes bench/results/janitor.json
    python -m bench.bench_janitor --units 2000 --no-write

CPU time is the process's (time.process_time), so the machine's other load moves it little; the load average is
recorded with the numbers. The units' file system is the one tempfile.mkdtemp picks (an overlay on this machine).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "janitor.json"


def _fill(root: Path, n: int) -> None:
    for _ in range(n):
        unit = root / secrets.token_hex(32)
        unit.mkdir()
        (unit / "image.png").write_bytes(b"x" * 2000)
    runs = root / "runs"
    runs.mkdir(exist_ok=True)
    for i in range(n // 10):
        (runs / f"run-{i}").mkdir()
        (runs / f"run-{i}" / "metrics.json").write_text("{}")


def measure(n: int, repeats: int = 20) -> dict:
    folder = tempfile.mkdtemp(prefix="bench-janitor-")
    os.environ["PLAYGROUND_TEMP_DIR"] = folder
    from core import tempfiles
    from core.settings import reload

    reload()
    try:
        root = tempfiles.temp_root()
        _fill(root, n)
        tempfiles.prune()
        out = {"units": n + n // 10}
        for full in (False, True):
            t = time.process_time()
            for _ in range(repeats):
                tempfiles.prune(full=full)
            out["full_prune_cpu_ms" if full else "incremental_prune_cpu_ms"] = round(
                (time.process_time() - t) / repeats * 1000, 2)
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, nargs="*", default=[1000, 5000])
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    result = {"machine": "2-core CPU, no GPU", "load_avg_at_start": round(os.getloadavg()[0], 2),
              "runs": [measure(n) for n in args.units]}
    print(json.dumps(result, indent=2))
    if not args.no_write:
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
