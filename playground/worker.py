"""The sandbox worker: one warm child process (a fresh interpreter, like multiprocessing's 'spawn') that runs user programs under
rlimits, so a request costs milliseconds and a runaway one costs only a restart.

Limits, in the child:
- RLIMIT_CPU: soft limit = CPU used so far + CPU_SECONDS before each request (SIGXCPU ends the child).
- RLIMIT_AS: set *after* torch (and CUDA, if present) are initialised, to the size mapped then + MEMORY_MB.
  A CUDA build of torch maps ~3.3 GiB of address space just to import (measured on our CPU machine:
  VmSize 3.26 GB, RSS 0.73 GB), and CUDA initialisation reserves far more, so a fixed limit set before
  import either breaks the import or bounds nothing; "what is mapped after warm-up + headroom" does both.
  GPU memory is bounded by torch.cuda.set_per_process_memory_fraction and the evaluator's per-tensor caps.
- RLIMIT_FSIZE = 0 with SIGXFSZ ignored: no file can be written, even by a bug in the evaluator.
The child is `python -m playground.worker FD` talking over a multiprocessing Connection on an inherited
socket: unlike mp 'spawn' it does not re-import the parent's __main__ (app.py, hence gradio) in the child.
In the parent: a wall-clock timeout per request; a child that times out, dies or breaks the pipe is
killed and replaced (in the background), and the next request works.
"""
from __future__ import annotations

import atexit
import io
import logging
import multiprocessing as mp
import os
import pickle
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

log = logging.getLogger("playground.sandbox")

WALL_SECONDS = float(os.environ.get("PLAYGROUND_SANDBOX_WALL_S", "10"))
CPU_SECONDS = int(os.environ.get("PLAYGROUND_SANDBOX_CPU_S", "10"))
MEMORY_MB = int(os.environ.get("PLAYGROUND_SANDBOX_MEMORY_MB", "1536"))
START_SECONDS = 120.0   # a cold start imports torch + matplotlib: seconds on a busy machine
THREADS = 2
ROOT = Path(__file__).resolve().parents[1]


class SandboxUnavailable(Exception):
    """The worker timed out, died, or could not start; the message is for the user."""


def _vm_size_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _limit_child() -> dict:
    """Import and warm everything, then clamp the process (runs in the child)."""
    import resource
    import signal

    import torch

    from playground import graph, programs, tensor_view  # noqa: F401 - imported while imports are allowed
    from zoo.device import get_device

    torch.set_num_threads(THREADS)
    device = get_device()
    if device.type == "cuda":
        torch.zeros(1, device=device)  # initialise CUDA before the address-space limit
        torch.cuda.set_per_process_memory_fraction(0.25, device)
        torch.set_default_device(device)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: F401 - font cache is built now, while files may be written

    programs.run_autograd("x = torch.tensor(1.0, requires_grad=True)\ny = x * 2\ny.backward()", device=device)
    info = {"device": str(device), "vm_before_limit": _vm_size_bytes()}
    if hasattr(resource, "RLIMIT_AS") and MEMORY_MB > 0:  # PLAYGROUND_SANDBOX_MEMORY_MB=0 turns it off
        limit = info["vm_before_limit"] + MEMORY_MB * (1 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        info["rlimit_as"] = limit
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    return info


def _child_main(conn) -> None:
    """Worker loop: receive (kind, kwargs), run, send ("ok", result) or ("error", message)."""
    import resource

    try:
        info = _limit_child()
    except BaseException as exc:  # noqa: BLE001 - report and stop
        conn.send(("error", f"sandbox failed to start: {type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", info))
    from playground import programs
    from zoo.device import get_device

    handlers = {"tensors": programs.run_tensors, "autograd": programs.run_autograd}
    while True:
        try:
            kind, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        used = int(usage.ru_utime + usage.ru_stime) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (used + CPU_SECONDS, resource.RLIM_INFINITY))
        try:
            result = handlers[kind](device=get_device(), **kwargs)
            reply = ("ok", result)
        except MemoryError:
            reply = ("error", "out of memory: the sandbox's memory limit stopped this program")
        except BaseException as exc:  # noqa: BLE001 - the worker must survive anything the program does
            reply = ("error", f"{type(exc).__name__}: {str(exc)[:500]}")
        try:
            conn.send(reply)
        except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
            conn.send(("error", f"could not return the result ({type(exc).__name__})"))


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


class Sandbox:
    """One warm worker process behind a lock; request() runs a program in it with a wall-clock timeout."""

    def __init__(self, wall_seconds: float = WALL_SECONDS):
        self.wall_seconds = wall_seconds
        self._lock = threading.Lock()
        self._proc = None
        self._conn = None
        self.info: dict = {}
        self.restarts = 0
        self.closed = False

    def _start(self) -> None:
        parent, child = mp.Pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.Popen([sys.executable, "-m", "playground.worker", str(child.fileno())], cwd=str(ROOT),
                                env=env, pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL)
        child.close()
        try:
            if not parent.poll(START_SECONDS):
                raise SandboxUnavailable("the sandbox worker did not start in time; try again")
            status, info = _recv_reply(parent)
        except (EOFError, OSError):
            status, info = "error", f"the sandbox worker failed to start (exit code {proc.poll()})"
        except SandboxUnavailable:
            status, info = "error", "the sandbox worker did not start in time; try again"
        if status != "ready":
            proc.kill()
            proc.wait(timeout=5)
            parent.close()
            raise SandboxUnavailable(str(info))
        self._proc, self._conn, self.info = proc, parent, info

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.warning("sandbox worker %s did not exit after SIGKILL", proc.pid)
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def warm(self) -> None:
        """Start the worker now (e.g. in a background thread) so the next request does not wait for it."""
        with self._lock:
            if not self._alive() and not self.closed:
                self._kill()
                self._start()

    def request(self, kind: str, **kwargs) -> dict:
        with self._lock:
            self.closed = False
            if not self._alive():
                self._kill()
                self._start()
            t0 = time.perf_counter()
            try:
                self._conn.send((kind, kwargs))
                ready = self._conn.poll(self.wall_seconds)
                reply = _recv_reply(self._conn) if ready else None
            except (EOFError, OSError, BrokenPipeError, pickle.UnpicklingError):
                reply = ("died", None)
            if reply is None or reply[0] == "died":
                code = None
                if reply is not None:  # the pipe broke: the child is exiting; learn why
                    try:
                        code = self._proc.wait(timeout=3)
                    except subprocess.TimeoutExpired:
                        pass
                self._kill()
                self.restarts += 1
                threading.Thread(target=self._safe_warm, daemon=True).start()
                if reply is None:
                    raise SandboxUnavailable(f"stopped after {self.wall_seconds:g} s wall-clock time (the limit); "
                                             "a fresh sandbox is starting, so the next run works")
                why = {-24: f"its CPU-time limit ({CPU_SECONDS} s)", -9: "being killed (out of memory?)"}.get(
                    code, f"exit code {code}")
                raise SandboxUnavailable(f"the sandbox process stopped ({why}); a fresh one is starting")
            status, payload = reply
            if status != "ok":
                raise SandboxUnavailable(payload)
            payload["elapsed_ms"] = (time.perf_counter() - t0) * 1000
            return payload

    def _safe_warm(self) -> None:
        try:
            self.warm()
        except Exception as exc:  # noqa: BLE001 - the next request will try again and report
            log.warning("sandbox restart failed: %s", exc)

    def close(self) -> None:
        """Stop the worker (a pending background restart will not start another)."""
        with self._lock:
            self.closed = True
            self._kill()


_SANDBOX: Sandbox | None = None
_SANDBOX_LOCK = threading.Lock()


def get_sandbox() -> Sandbox:
    """The process-wide sandbox (created on first use; nothing starts at import)."""
    global _SANDBOX
    with _SANDBOX_LOCK:
        if _SANDBOX is None:
            _SANDBOX = Sandbox()
            atexit.register(_SANDBOX.close)
        return _SANDBOX


def prewarm() -> None:
    """Start the worker in the background if it is not running (e.g. when a visitor focuses the editor)."""
    sandbox = get_sandbox()
    if not sandbox._alive() and not sandbox._lock.locked():
        threading.Thread(target=sandbox._safe_warm, daemon=True).start()


def run_tensors(code: str) -> dict:
    return get_sandbox().request("tensors", code=code)


def run_autograd(code: str, lr: float = 0.01, steps: int = 0) -> dict:
    return get_sandbox().request("autograd", code=code, lr=float(lr), steps=int(steps))


if __name__ == "__main__":  # the child: python -m playground.worker FD
    _child_main(Connection(int(sys.argv[1])))
