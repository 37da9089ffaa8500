"""The server's side of whole programs: one warm template process (playground/zygote.py) that forks a fenced
child per run, and a slot object per concurrent run with the interface the pool (playground/pool.py) expects.

A run: the server makes a socket pair, hands one end to the template with {"t": "fork"}, sends the run's spec
(program, limits, the visitor's scratch folder) on its own end, then reads the child's frames (playground/
frames.py: printed output as it comes, then the result) until the result, the wall clock, a Cancel, or the
scratch folder passing its quota. A run that does not finish cleanly is killed through the template (which
reaps its children, so the pid is always its own live child). A killed run costs nothing else: the template
stays warm, so the next program starts in milliseconds (the restricted sandbox's worker had to restart, ~15 s).
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import term
from playground import fence, frames
from playground.worker import SandboxUnavailable
from zoo.hub import WEIGHTS_DIR
from zoo.standalone import data_folder, link, shipped_hub_cache

log = logging.getLogger("playground.sandbox")
ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 180.0
MAX_PICTURE_SIDE = 4096
MAX_PICTURE_PIXELS = 8_000_000


def read_paths() -> list[str]:
    """What a program may read: Python, the libraries, system folders; never the app's own folder, the temp
    root of other visitors, or the home folder where the server keeps its Hub login."""
    root = str(ROOT)
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/share",
             "/usr/local/lib", "/etc/ld.so.cache", "/etc/localtime", "/etc/ssl",   # CA certificates (public)
             "/sys/devices/system/cpu", "/sys/fs/cgroup",
             "/dev/urandom", "/dev/random", "/dev/zero", str(ROOT / "zoo" / "weights"),
             str(ROOT / "ui" / "example_images")}
    # Only library folders of sys.path: it also holds the current folder or PYTHONPATH entries, which may be
    # anything (the checkout, a home folder with a saved login). The site-packages of a venv inside the checkout
    # are fine; the checkout itself is not.
    for p in sys.path:
        if p and os.path.isdir(p) and Path(p).name in ("site-packages", "dist-packages"):
            paths.add(p)
    hub = hub_cache()
    if hub:
        paths.add(hub)
    return sorted(p for p in paths if os.path.exists(p) and os.path.realpath(p) != os.path.realpath(root))


def hub_cache() -> str | None:
    """The Hub's model cache (public weights the app downloaded, e.g. Classify's ImageNet models), readable to
    programs so a code panel that loads them runs offline; only its `hub` folder, never HF_HOME itself, where
    the server's saved login lives."""
    path = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub")
    return path if os.path.isdir(path) and os.path.basename(os.path.normpath(path)) == "hub" else None


def shipped_hub(folder: Path) -> Path:
    """The Hub cache programs see (offline): the weights the app ships under the repos the code panels download
    them from (plain-PyTorch panels call hf_hub_download), plus links to the server's own cached models."""
    folder.mkdir(parents=True, exist_ok=True)
    shipped_hub_cache(folder)
    real = hub_cache()
    if real:
        for entry in Path(real).glob("models--*"):
            dest = folder / entry.name
            if dest.is_symlink() or not dest.exists():   # a shipped repo is a real folder: it stays
                try:
                    link(dest, entry)
                except OSError:
                    pass
    return folder


def gpu_paths() -> list[str]:
    dev = Path("/dev")
    return [str(p) for p in sorted(dev.glob("nvidia*"))] if dev.is_dir() else []


class ForkServer:
    """The template process and the bookkeeping of its children."""

    def __init__(self, work_dir: Path, fenced: bool = True, threads: int = 2, nice: int = 10, spares: int = 4):
        self.work_dir = Path(work_dir)
        self.fenced, self.threads, self.nice, self.spares = fenced, threads, nice, spares
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._proc: subprocess.Popen | None = None
        self._ctl: socket.socket | None = None
        self._forked: dict[int, int] = {}
        self._exits: dict[int, int] = {}
        self._ids = iter(range(1, 1 << 62))
        self.info: dict = {}
        self.starts = 0

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None and self._ctl is not None

    def start(self) -> None:
        with self._lock:
            if self.alive():
                return
            self._stop_locked()
            self._start_locked()

    def _env(self, mpl: Path) -> dict:
        """The template's whole environment: nothing of the server's (no tokens, no GRADIO_*)."""
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(mpl), "MPLCONFIGDIR": str(mpl),
               "MPLBACKEND": "Agg", "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1",
               "PYTORCH_NVML_BASED_CUDA_CHECK": "1", "PYTHONNOUSERSITE": "1"}
        for key in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
            if key in os.environ:
                env[key] = os.environ[key]
        return env

    def _start_locked(self) -> None:
        mpl = self.work_dir / "mpl"
        mpl.mkdir(parents=True, exist_ok=True)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            proc = subprocess.Popen([sys.executable, "-m", "playground.zygote", str(child.fileno())],
                                    pass_fds=[child.fileno()], env=self._env(mpl), cwd=str(mpl),
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            child.close()
        # One Hub folder per checkout: a server from another checkout sharing this temp root keeps its own links.
        hub = shipped_hub(self.work_dir / f"hub-{hashlib.sha256(str(WEIGHTS_DIR.resolve()).encode()).hexdigest()[:12]}")
        # the Hub folder links the data files written from the packages (zoo.standalone.data_file): readable too
        cfg = {"read_paths": read_paths() + [str(mpl), str(hub), str(data_folder())],
               "gpu_paths": gpu_paths(), "mpl_dir": str(mpl),
               "hub_cache": str(hub),
               "threads": self.threads, "nice": self.nice, "spares": self.spares, "fenced": self.fenced}
        parent.send(json.dumps(cfg).encode())
        r, _, _ = select.select([parent], [], [], START_SECONDS)
        ready = json.loads(parent.recv(65536) or b"{}") if r else {}
        if ready.get("t") != "ready":
            proc.kill()
            parent.close()
            raise SandboxUnavailable("sandbox.template_not_started")
        self._proc, self._ctl, self.info = proc, parent, ready
        self.starts += 1
        threading.Thread(target=self._read_ctl, args=(parent,), daemon=True, name="sandbox-template").start()

    def _read_ctl(self, ctl: socket.socket) -> None:
        while True:
            try:
                msg, fds, _flags, _addr = socket.recv_fds(ctl, 65536, 2)
            except OSError:
                msg, fds = b"", []
            if not msg:
                for fd in fds:
                    os.close(fd)
                with self._cond:
                    if self._ctl is ctl:
                        self._ctl = None
                    self._cond.notify_all()
                return
            try:
                m = json.loads(msg)
            except ValueError:
                m = {}
            with self._cond:
                if m.get("t") == "forked" and len(fds) == 1:
                    self._forked[m["id"]] = (m["pid"], socket.socket(fileno=fds[0]))
                    fds = []
                elif m.get("t") == "exit":
                    self._exits[m["pid"]] = m["status"]
                    if len(self._exits) > 1000:   # statuses nobody asked for (runs that finished cleanly)
                        for pid in list(self._exits)[:500]:
                            del self._exits[pid]
                self._cond.notify_all()
            for fd in fds:
                os.close(fd)

    def fork(self) -> tuple[int, socket.socket]:
        """A child of the template for one run: (its pid, our end of its socket)."""
        if not self.alive():
            self.start()
        run_id = next(self._ids)
        with self._lock:
            ctl = self._ctl
            if ctl is None:
                raise SandboxUnavailable("sandbox.template_stopped")
            ctl.send(json.dumps({"t": "fork", "id": run_id}).encode())
        with self._cond:
            ok = self._cond.wait_for(lambda: run_id in self._forked or self._ctl is None, timeout=30)
            if not ok or run_id not in self._forked:
                raise SandboxUnavailable("sandbox.fork_failed")
            return self._forked.pop(run_id)

    def kill(self, pid: int) -> None:
        with self._lock:
            if self._ctl is not None:
                try:
                    self._ctl.send(json.dumps({"t": "kill", "pid": pid}).encode())
                except OSError:
                    pass

    def exit_status(self, pid: int, timeout: float) -> int | None:
        with self._cond:
            self._cond.wait_for(lambda: pid in self._exits, timeout=timeout)
            return self._exits.pop(pid, None)

    def _stop_locked(self) -> None:
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None
        if self._proc is not None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)  # the template and any child still running
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self._proc = None

    def close(self) -> None:
        with self._lock:
            self._stop_locked()


def scratch_usage(folder: Path, max_entries: int) -> tuple[int, int]:
    """(bytes on disk, entries) of a scratch folder, counting at most max_entries + 1 entries."""
    total, count, stack = 0, 0, [str(folder)]
    while stack and count <= max_entries:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    count += 1
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += getattr(st, "st_blocks", 0) * 512 or st.st_size
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    if count > max_entries:
                        break
        except OSError:
            continue
    return total, count


def decode_png(data: bytes) -> np.ndarray | None:
    """A picture the run sent, decoded under the same kind of bounds as an upload (PNG only, size first)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
            w, h = img.size
            if w * h > MAX_PICTURE_PIXELS or max(w, h) > MAX_PICTURE_SIDE:
                return None
            return np.asarray(img.convert("RGB"))
    except Exception:  # noqa: BLE001 - a broken picture from the program is dropped, not an error of ours
        return None


def decode_raw(data: bytes, shape) -> np.ndarray | None:
    """A picture of ours sent raw (RGB bytes, [height, width]): used only when its size matches its shape and it is
    within the same bounds as a PNG's."""
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) and 0 < v <= MAX_PICTURE_SIDE
                                                                 for v in shape)):
        return None
    h, w = shape
    if h * w > MAX_PICTURE_PIXELS or len(data) != h * w * 3:
        return None
    return np.frombuffer(data, dtype=np.uint8).reshape(h, w, 3)


def describe_exit(status: int | None, cpu_s: float) -> dict:
    """Why a program's process ended before its result: a catalogue term (core.errors.term), rendered in the
    visitor's language by the tab."""
    if status is None:
        return term("sandbox.why.process_stopped")
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == getattr(signal, "SIGXCPU", -1):
            return term("sandbox.why.cpu", cpu_s=cpu_s)
        if sig == signal.SIGKILL:
            return term("sandbox.why.killed")
        if sig == getattr(signal, "SIGXFSZ", -1):
            return term("sandbox.why.file_too_large")
        return term("sandbox.why.signal", signal=signal.Signals(sig).name)
    return term("sandbox.why.exit_code", code=os.WEXITSTATUS(status))


__all__ = ["ForkServer", "SandboxUnavailable", "decode_png", "decode_raw", "describe_exit", "fence", "frames",
           "read_paths", "scratch_usage"]
