"""The sandbox off Linux (issue #17) and its pool rules (issue #13), on real worker processes.

A Linux machine takes another OS's path with WorkerLimits(platform=...): "win32" has no `resource` module at all in
the child (so no rlimits: the parent's psutil watchdog limits CPU time and memory), "darwin" has rlimits but
no RLIMIT_AS (memory by the watchdog). Each runaway check would fail if the watchdog did nothing: the programs
stay inside the evaluator's caps and run far past the CPU/memory limits until the (long) wall clock.
"""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from playground.limits import WorkerLimits
from playground.pool import SandboxBusy, SandboxPool
from playground.worker import SandboxUnavailable

ROOT = Path(__file__).resolve().parents[1]
# ~54 GFLOP a line, 20 lines: minutes of CPU; stays under the evaluator's caps (3000x3000 floats = 36 MB)
SPINNER = "x = torch.rand(3000, 3000)\n" + "\n".join(["y = x @ x @ x @ x @ x @ x"] * 20)
# six 64 MiB tensors (384 MiB, inside the evaluator's 512 MiB per program), held while the spinner runs
HOG = "\n".join(f"{n} = torch.ones(4000, 4000)" for n in "abcdef") + "\n" + SPINNER


def test_each_os_gets_its_own_enforcement():
    linux, mac, win = (WorkerLimits(platform=p).plan() for p in ("linux", "darwin", "win32"))
    assert (linux.cpu, linux.memory, linux.files) == ("rlimit", "rlimit", "rlimit")
    assert (mac.cpu, mac.memory, mac.files) == ("rlimit", "watchdog", "rlimit")
    assert (win.cpu, win.memory, win.files) == ("watchdog", "watchdog", "evaluator")
    assert WorkerLimits(platform="win32", cpu_s=0, memory_mb=0).plan().watched is False
    line = WorkerLimits(wall_s=10, cpu_s=10, memory_mb=1536, platform="win32").describe(2)
    assert line == ("Limits here: 10 s wall clock, 10 s CPU (watchdog), 1.5 GiB memory (watchdog), "
                    "no file writes (evaluator only); 2 programs at a time, one per visitor")


def test_app_code_has_no_linux_only_calls():
    """No /proc reads, fcntl, pass_fds or fork in the sandbox, the zoo, the tabs and app.py: each fails on macOS
    or Windows. (training/ runs its own job processes and is checked by its own tests.)"""
    bad = re.compile(r"/proc/|^\s*import fcntl|\bfcntl\.|pass_fds\s*=|os\.fork\(", re.M)
    # The whole-program path (a forked template, the Landlock/seccomp fence) is Linux's; pool.sandbox_mode()
    # chooses it only there, so those modules may use Linux calls (the import itself works everywhere).
    linux_only = {"fence.py", "zygote.py", "fork_server.py", "program_run.py", "whole.py"}
    files = [ROOT / "app.py", *[f for d in ("playground", "zoo", "ui") for f in (ROOT / d).rglob("*.py")
                                if not (d == "playground" and f.name in linux_only)]]
    found = [f"{f.relative_to(ROOT)}: {m.group(0).strip()}" for f in files for m in bad.finditer(f.read_text())]
    assert not found, found


def test_manifest_lock_serialises_writers_without_fcntl(tmp_path, monkeypatch):
    """zoo.hub.update_manifest from many threads: every entry survives (the lock is filelock, not fcntl)."""
    import sys

    import filelock  # noqa: F401 - chooses its lock class now (it may use fcntl itself, as a library)

    from zoo import hub

    monkeypatch.setitem(sys.modules, "fcntl", None)  # as on Windows: importing fcntl fails
    monkeypatch.setattr(hub, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(hub, "MANIFEST", tmp_path / "manifest.json")
    threads = [threading.Thread(target=hub.update_manifest, args=(f"m{i}", {"i": i})) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hub.read_manifest() == {f"m{i}": {"i": i} for i in range(16)}


@pytest.fixture
def windows_like():
    """A one-worker pool that runs the child as on Windows: no `resource` module, limits by the watchdog."""
    pool = SandboxPool(size=1, limits=WorkerLimits(wall_s=60, cpu_s=2, memory_mb=200, platform="win32"))
    yield pool
    pool.close()


@pytest.mark.app   # sandbox worker processes
def test_without_resource_module_runs_and_stops_runaways(windows_like):
    pool = windows_like
    r = pool.request("tensors", code="a = torch.arange(4.0)\nb = a * 2")
    assert "tensor([0., 2., 4., 6.])" in r["text"]
    info = pool.info
    assert info["resource_module"] is False and "rlimit_as" not in info
    assert info["plan"] == {"cpu": "watchdog", "memory": "watchdog", "files": "evaluator"}

    t0 = time.perf_counter()
    with pytest.raises(SandboxUnavailable, match=r"2 s of CPU time \(the limit\)"):
        pool.request("tensors", code=SPINNER)
    assert time.perf_counter() - t0 < 50  # the wall clock (60 s) did not stop it: the watchdog did

    pool.limits.cpu_s = 600  # only memory can stop the next one
    t0 = time.perf_counter()
    with pytest.raises(SandboxUnavailable, match=r"more than 200 MiB of memory \(the limit\)"):
        pool.request("tensors", code=HOG)
    assert time.perf_counter() - t0 < 50
    r = pool.request("tensors", code="torch.ones(2) + 1")  # a fresh worker answers
    assert "tensor([2., 2.])" in r["text"] and pool.restarts == 2


@pytest.mark.app   # sandbox worker processes
def test_without_rlimit_as_memory_is_watched():
    """macOS: RLIMIT_AS is not enforced, so the watchdog stops a memory hog (RLIMIT_CPU still applies)."""
    pool = SandboxPool(size=1, limits=WorkerLimits(wall_s=60, cpu_s=600, memory_mb=200, platform="darwin"))
    try:
        assert "tensor([1., 1.])" in pool.request("tensors", code="torch.ones(2)")["text"]
        assert "rlimit_as" not in pool.info and pool.info["plan"]["memory"] == "watchdog"
        with pytest.raises(SandboxUnavailable, match="MiB of memory"):
            pool.request("tensors", code=HOG)
    finally:
        pool.close()


@pytest.mark.app   # sandbox worker processes
def test_one_program_per_session_and_address_cap_and_fair_order():
    """Pool of one worker, wall clock 12 s (room for the ordering waits on a loaded machine): a second program
    from a running session is refused at once; an
    address at its cap is refused at once; when the worker frees, a waiting visitor from another address goes
    before the busy address's next program even though that one waited longer."""
    pool = SandboxPool(size=1, limits=WorkerLimits(wall_s=12, cpu_s=600), per_address=2, queue_seconds=60)
    try:
        pool.request("tensors", code="torch.ones(1)")  # warm
        order: list[str] = []
        errors: dict = {}

        def run(name, code, **who):
            try:
                pool.request("tensors", code=code, **who)
                order.append(name)
            except SandboxUnavailable as exc:
                order.append(name)
                errors[name] = exc

        first = threading.Thread(target=run, args=("a1", SPINNER), kwargs=dict(session="a1", address="A"))
        first.start()
        time.sleep(2.0)   # the first program is running (an ordering wait, generous for a loaded machine)
        t0 = time.perf_counter()
        with pytest.raises(SandboxBusy, match="your previous program is still running"):
            pool.request("tensors", code="torch.ones(1)", session="a1", address="A")
        assert time.perf_counter() - t0 < 10   # refused at once, not after the running program
        second = threading.Thread(target=run, args=("a2", "torch.ones(1)"), kwargs=dict(session="a2", address="A"))
        second.start()
        time.sleep(1.5)
        with pytest.raises(SandboxBusy, match="from your address"):
            pool.request("tensors", code="torch.ones(1)", session="a3", address="A")
        third = threading.Thread(target=run, args=("b1", "torch.ones(1)"), kwargs=dict(session="b1", address="B"))
        third.start()
        for t in (first, second, third):
            t.join(90)
        assert order == ["a1", "b1", "a2"], order
        if "a1" in errors:   # the spinner may be stopped by the wall clock or finish first on a fast machine
            assert "wall-clock" in str(errors["a1"]) or "CPU" in str(errors["a1"])
        assert set(errors) <= {"a1"}
    finally:
        pool.close()


def test_whole_programs_are_chosen_only_on_linux(monkeypatch):
    """Elsewhere the restricted language runs (the template's fork and SOCK_SEQPACKET are Linux's), and the
    Linux-only modules import on any OS (nothing Linux-only runs at import)."""
    import importlib
    import sys

    from playground import pool

    for name in ("fence", "zygote", "fork_server", "program_run", "whole"):
        importlib.import_module(f"playground.{name}")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert pool.sandbox_mode() == "restricted"
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("PLAYGROUND_SANDBOX_FENCE", "off")
    monkeypatch.setattr(pool, "_PUBLIC", [True])
    assert pool.sandbox_mode() == "restricted"       # public and no fence: the restricted language
    monkeypatch.setattr(pool, "_PUBLIC", [False])
    assert pool.sandbox_mode() == "unfenced"         # local and no fence: whole programs, and the tab says so
    monkeypatch.delenv("PLAYGROUND_SANDBOX_FENCE")
    from playground import fence

    if fence.probe()["fence"]:
        monkeypatch.setattr(pool, "_PUBLIC", [True])
        assert pool.sandbox_mode() == "fenced"       # wherever the kernel offers the fence it is on
