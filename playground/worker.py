"""One sandbox worker: a warm child process (a fresh interpreter, `python -m playground.sandbox_child`) that runs
user programs under limits, so a request costs milliseconds and a runaway one costs only a restart. This module
is the parent's side; the child's is playground/sandbox_child.py.

Transport, the same on Linux, macOS and Windows: core/spawn.py (the child connects back to a one-time listener
on 127.0.0.1 with a random key written to its stdin; the job worker starts the same way). The old way, an
inherited socket through `pass_fds`, does not exist on Windows.

WorkerLimits (see playground/limits.py for which OS uses which):
- wall clock: the parent's timeout per request;
- CPU time: RLIMIT_CPU soft limit = CPU used so far + the limit, set before each request (SIGXCPU ends the
  child); where there is no RLIMIT_CPU the parent's watchdog reads the child's CPU time with psutil;
- memory: RLIMIT_AS, set *after* torch (and CUDA, if present) are initialised, to the size mapped then + the
  limit (a CUDA build of torch maps ~3.3 GiB just to import, RSS 0.73 GB, so a fixed limit before import
  either breaks the import or bounds nothing); where RLIMIT_AS is not enforced (macOS, Windows) the watchdog
  kills the child when its resident memory exceeds the size after warm-up + the limit.
  GPU memory is bounded by torch.cuda.set_per_process_memory_fraction and the evaluator's per-tensor caps;
- files: RLIMIT_FSIZE = 0 with SIGXFSZ ignored, where it exists; everywhere the evaluator allows no file I/O.
A child that times out, dies, breaks the connection or trips the watchdog is killed; the pool
(playground/pool.py) starts a fresh one.
"""
from __future__ import annotations

import io
import logging
import os
import pickle
import signal
import subprocess
import threading
import time
from dataclasses import asdict
from pathlib import Path

from core.errors import VisitorError, term
from core.spawn import START_SECONDS, SpawnError, reap, spawn
from playground.limits import WATCH_INTERVAL_S, WorkerLimits, Watchdog

log = logging.getLogger("playground.sandbox")

ROOT = Path(__file__).resolve().parents[1]


class SandboxUnavailable(VisitorError):
    """The worker timed out, died, or could not start; the message is for the user (keys sandbox.*)."""

    key = "sandbox.unavailable"


# ---- the parent's side of the connection -----------------------------------------------------------------------
# What a worker's reply may contain besides builtin containers, strings and numbers: numpy arrays (pictures,
# values). The server never unpickles anything else from the worker, so even a worker taken over by a bug in
# the evaluator could not make the server construct arbitrary objects (pickle's classic code-execution path).
_REPLY_GLOBALS = {("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"), ("numpy", "dtype"),
                  ("numpy.core.multiarray", "_reconstruct")}


class _ReplyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _REPLY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"the sandbox worker sent a {module}.{name}, which the server refuses")


def _recv_reply(conn):
    """Connection.recv() with the allow-listed unpickler above."""
    return _ReplyUnpickler(io.BytesIO(conn.recv_bytes())).load()


def _start_failure(exc: SpawnError) -> SandboxUnavailable:
    """What a visitor reads when the worker did not connect."""
    if exc.reason == "exited":
        return SandboxUnavailable("sandbox.start_failed", code=exc.exit_code)
    if exc.reason == "refused":
        return SandboxUnavailable("sandbox.no_connection", detail=str(exc.error))
    return SandboxUnavailable("sandbox.start_timeout")


def _child_error(payload) -> SandboxUnavailable:
    """The error a child reported ({"key", "values"}: core.errors.wire in the child, which logged an unexpected
    one under the id it sends)."""
    if isinstance(payload, dict) and isinstance(payload.get("key"), str):
        values = payload.get("values") if isinstance(payload.get("values"), dict) else {}
        return SandboxUnavailable(payload["key"], **{str(k): v for k, v in values.items()})
    return SandboxUnavailable("sandbox.child_failed", detail=str(payload)[:300])


class Worker:
    """One warm worker process; request() runs a program in it under the limits. The pool gives a worker to one
    request at a time; the lock only orders start, kill and close."""

    def __init__(self, limits: WorkerLimits | None = None, name: str = "sandbox"):
        self.limits = limits or WorkerLimits()
        self.name = name
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._conn = None
        self._watchdog: Watchdog | None = None
        self.info: dict = {}
        self.restarts = 0
        self.closed = False

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, reopen: bool = True) -> None:
        """Start the process now if it is not running (a cold start: seconds). reopen=False: not after close()."""
        with self._lock:
            if self.alive() or (self.closed and not reopen):
                return
            self._kill_locked()
            self.closed = False
            self._start_locked()

    def _start_locked(self) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        try:
            proc, conn = spawn("playground.sandbox_child", cwd=ROOT, env=env, timeout=START_SECONDS)
        except SpawnError as exc:
            raise _start_failure(exc) from None
        try:
            conn.send(asdict(self.limits))
            if not conn.poll(START_SECONDS):
                raise SandboxUnavailable("sandbox.start_timeout")
            status, info = _recv_reply(conn)
        except (EOFError, OSError, pickle.UnpicklingError):
            self._reap(proc)
            conn.close()
            raise SandboxUnavailable("sandbox.start_failed", code=proc.poll()) from None
        except BaseException:
            self._reap(proc)
            conn.close()
            raise
        if status != "ready":
            self._reap(proc)
            conn.close()
            raise _child_error(info)
        plan = self.limits.plan()
        try:
            self._watchdog = Watchdog(proc.pid, plan, self.limits) if plan.watched else None
        except Exception as exc:  # noqa: BLE001 - no psutil, or the child vanished: no unwatched worker
            self._reap(proc)
            conn.close()
            raise SandboxUnavailable("sandbox.no_limits", detail=str(exc)) from None
        if self._watchdog is not None:
            info["rss_baseline"] = self._watchdog.rss_baseline
        self._proc, self._conn, self.info = proc, conn, info

    @staticmethod
    def _reap(proc: subprocess.Popen) -> None:
        if reap(proc) is None:
            log.warning("sandbox worker %s did not exit after kill", proc.pid)

    def _kill_locked(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            self._reap(proc)
        if self._conn is not None:
            self._conn.close()
        self._conn, self._watchdog = None, None

    def kill(self) -> None:
        with self._lock:
            self._kill_locked()

    def close(self) -> None:
        """Stop the process; a pending restart in the pool will not start another."""
        with self._lock:
            self.closed = True
            self._kill_locked()

    def _wait_reply(self, proc, conn) -> tuple[bool, str | None]:
        """Wait for the reply up to the wall-clock limit, asking the watchdog (if any) every WATCH_INTERVAL_S.
        Returns (ready, why-stopped)."""
        deadline = time.monotonic() + self.limits.wall_s
        watchdog = self._watchdog
        if watchdog is None:
            return conn.poll(self.limits.wall_s), None
        watchdog.start_request()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, None
            if conn.poll(min(remaining, WATCH_INTERVAL_S)):
                return True, None
            why = watchdog.over_limit()
            if why:
                return False, why

    def request(self, kind: str, **kwargs) -> dict:
        """Run one program; raises SandboxUnavailable (with a message for the user) when it is stopped."""
        if not self.alive():
            self.start()
        proc, conn = self._proc, self._conn
        if proc is None or conn is None:
            raise SandboxUnavailable("sandbox.shutting_down")
        t0 = time.perf_counter()
        why = None
        try:
            conn.send((kind, kwargs))
            ready, why = self._wait_reply(proc, conn)
            reply = _recv_reply(conn) if ready else None
        except (EOFError, OSError, pickle.UnpicklingError):
            reply = ("died", None)
        if reply is None or reply[0] == "died":
            code = None
            if reply is not None:  # the connection broke: the child is exiting; learn why
                try:
                    code = proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    pass
            self.kill()
            self.restarts += 1
            if why:
                raise SandboxUnavailable("sandbox.over_limit", why=why)
            if reply is None:
                raise SandboxUnavailable("sandbox.wall_time", limit_s=self.limits.wall_s)
            raise SandboxUnavailable("sandbox.process_stopped", why=self._exit_reason(code))
        status, payload = reply
        if status != "ok":
            raise _child_error(payload)
        payload["elapsed_ms"] = (time.perf_counter() - t0) * 1000
        return payload

    def _exit_reason(self, code: int | None) -> dict:
        """Why the worker process ended (a catalogue term, rendered in the visitor's language)."""
        if code == -9:
            return term("sandbox.why.worker_killed")
        if hasattr(signal, "SIGXCPU") and code == -int(signal.SIGXCPU):
            return term("sandbox.why.worker_cpu", cpu_s=self.limits.cpu_s)
        return term("sandbox.why.worker_exit", code=code)
