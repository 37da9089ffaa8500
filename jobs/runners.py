"""Who runs a job: WorkerRunner (one warm `python -m jobs.worker` process, spoken to over the wire
format of jobs/wire.py) or InlineRunner (this process: ZeroGPU and tests). jobs/queue.py queues jobs
onto them.
"""
from __future__ import annotations

import logging
import os
import subprocess
import threading
from pathlib import Path
from typing import Callable

import psutil

from core.settings import settings
from core.spawn import START_SECONDS, SpawnError, reap, spawn
from jobs.run import Context, job_error, run_kind
from jobs.wire import (JobCancelled, JobError, WorkerDied, decode, encode, error_from, job_threads, recv_msg,
                       send_msg)
from core.tempfiles import temp_root

log = logging.getLogger("playground.jobs")
ROOT = Path(__file__).resolve().parents[1]


# What a job worker inherits from the server's environment: an allow-list, because the server's environment holds
# the owner's credentials (HF_TOKEN, OAuth secrets of a Space, GRADIO_* settings) and a job runs on a visitor's
# files and settings. Python and the OS (Windows needs SYSTEMROOT to start Python at all), the locale, temp
# folders, torch and its BLAS/OpenMP/CUDA settings, the Hub's cache, endpoint and offline switch, network proxies
# and certificates for downloads, and the app's own PLAYGROUND_* settings.
WORKER_ENV_NAMES = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "SHELL",
    "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "USERPROFILE", "APPDATA", "LOCALAPPDATA",
    "PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",
    "PYTHONHASHSEED", "PYTHONWARNINGS", "PYTHONUTF8", "PYTHONIOENCODING",
    "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "XDG_CACHE_HOME", "SPACES_ZERO_GPU",
    "HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_HUB_ETAG_TIMEOUT",
    "HF_HUB_DOWNLOAD_TIMEOUT", "HF_HUB_DISABLE_TELEMETRY", "HF_HUB_DISABLE_PROGRESS_BARS",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
})
WORKER_ENV_PREFIXES = ("PLAYGROUND_", "LC_", "OMP_", "MKL_", "OPENBLAS_", "KMP_", "TORCH_", "PYTORCH_", "CUDA_",
                       "CUDNN_", "CUBLAS_", "NVIDIA_")
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "API_KEY", "AUTH")


def worker_env(threads: int, nice: int, base: dict | None = None) -> dict[str, str]:
    """The environment a job worker starts with: the allow-listed part of `base` (default os.environ), never a
    variable whose name says it is a secret, plus what the worker is told: its thread budget and priority, where
    the app's code is, the capped temp folder (temp_root: the server's, whatever set it, GRADIO_TEMP_DIR included)
    and HF_HUB_DISABLE_IMPLICIT_TOKEN, so huggingface_hub in the worker never reaches for a saved login either."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items()
           if (k in WORKER_ENV_NAMES or k.startswith(WORKER_ENV_PREFIXES))
           and not any(w in k.upper() for w in _SECRET_WORDS)}
    env.update(PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), base.get("PYTHONPATH", "")) if p),
               PLAYGROUND_JOB_THREADS=str(threads), PLAYGROUND_JOB_NICE=str(nice),
               PLAYGROUND_TEMP_DIR=str(temp_root()), HF_HUB_DISABLE_IMPLICIT_TOKEN="1")
    return env


class WorkerRunner:
    """One warm worker process; run() sends it a job and relays its events until the result comes back."""

    def __init__(self, threads: int | None = None, nice: int | None = None, rss_cap_mb: int | None = None):
        """threads, nice: the worker's (default: job_threads(), PLAYGROUND_JOB_NICE); rss_cap_mb: restart it after
        a job that leaves it above this (default PLAYGROUND_JOB_WORKER_RSS_MB)."""
        self.threads = threads or job_threads()
        self.nice = settings().job_nice if nice is None else nice
        self.rss_cap_mb = settings().job_worker_rss_mb if rss_cap_mb is None else rss_cap_mb
        self._proc = None
        self._conn = None
        self.info: dict = {}
        self.restarts = 0

    def _start(self) -> None:
        """Spawn the worker (core/spawn.py: the same portable transport as the sandbox) and wait for its "ready"."""
        failed = "the job worker failed to start"
        try:
            proc, conn = spawn("jobs.worker", cwd=ROOT, env=worker_env(self.threads, self.nice),
                               timeout=START_SECONDS)
        except SpawnError as exc:
            log.warning("%s (exit code %s)", failed, exc.exit_code)
            raise JobError("job.worker_failed_to_start", code=exc.exit_code) from None
        msg = {"type": "error", "message": failed}
        try:
            if conn.poll(START_SECONDS):
                msg, _ = recv_msg(conn)
        except (EOFError, OSError, ValueError):
            pass
        if msg.get("type") != "ready":
            code = reap(proc, timeout=10)
            conn.close()
            log.warning("%s (exit code %s)", msg.get("message"), code)
            raise JobError("job.worker_failed_to_start", code=code)
        self._proc, self._conn, self.info = proc, conn, msg

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.alive() else None

    def rss_mb(self) -> float:
        try:
            return psutil.Process(self._proc.pid).memory_info().rss / 2**20
        except Exception:  # noqa: BLE001 - no psutil, or the process is gone
            return 0.0

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log.warning("job worker %s did not exit after SIGKILL", proc.pid)
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def run(self, job_id: str, kind: str, params: dict, job_dir: str, on_event: Callable[[dict], None],
            cancelled: Callable[[], bool]):
        if not self.alive():
            self.close()
            self._start()
        cancel_sent = False
        try:
            send_msg(self._conn, {"type": "job", "id": job_id, "kind": kind, "params": params, "dir": job_dir})
            while True:
                if not cancel_sent and cancelled():
                    send_msg(self._conn, {"type": "cancel", "id": job_id})
                    cancel_sent = True
                if not self._conn.poll(0.1):
                    if self._proc.poll() is not None:
                        raise EOFError
                    continue
                msg, blob = recv_msg(self._conn)
                if msg.get("id") != job_id:
                    continue
                if msg["type"] == "event":
                    on_event(msg["event"])
                elif msg["type"] == "done":
                    result = decode(msg["result"], blob)
                    break
                elif msg["type"] == "error":
                    raise error_from(msg)
        except (EOFError, OSError, ValueError) as exc:
            code = None
            if self._proc is not None:
                try:
                    code = self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            self.close()
            self.restarts += 1
            log.warning("job worker died during %s job %s: exit code %s (%s)", kind, job_id, code, exc)
            key = {-9: "job.worker_killed", -15: "job.worker_stopped"}.get(code, "job.worker_died")
            raise WorkerDied(key, code=code) from None
        if self.rss_mb() > self.rss_cap_mb:   # memory a long run left behind: start clean next time
            log.info("job worker uses %.0f MB (cap %d): restarting it", self.rss_mb(), self.rss_cap_mb)
            self.close()
        return result


class InlineRunner:
    """Runs jobs in this process (ZeroGPU, where the GPU exists only inside a spaces.GPU call, and tests). Same
    interface and the same JSON + safetensors round trip as the worker.

    stream: None runs the job in the calling thread; else stream(kind, params, job_dir) is a generator of
    ("event", {...}) and finally ("done", (plain, blob)) (ui/gpu.py's spaces.GPU path). Cancel closes that
    generator, which stops the job after its current step; what it had done is not kept."""

    threads = None

    def __init__(self, stream: Callable | None = None):
        self.stream = stream

    def alive(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def run(self, job_id, kind, params, job_dir, on_event, cancelled):
        try:
            if self.stream is not None:
                return self._run_stream(kind, params, job_dir, on_event, cancelled)
            return self._run_here(kind, params, job_dir, on_event, cancelled)
        except BaseException as exc:  # noqa: BLE001 - the same error as the worker's
            raise job_error(exc) from None

    def _run_stream(self, kind, params, job_dir, on_event, cancelled):
        it = self.stream(kind, params, job_dir)
        try:
            for tag, payload in it:
                if tag == "event":
                    on_event(payload)
                elif tag == "done":
                    return decode(*payload)
                if cancelled():
                    raise JobCancelled()
        finally:
            it.close()
        raise JobError("job.no_result")

    def _run_here(self, kind, params, job_dir, on_event, cancelled):
        stop = threading.Event()
        done = threading.Event()

        def watch():
            while not done.wait(0.1):
                if cancelled():
                    stop.set()
                    return

        threading.Thread(target=watch, daemon=True).start()
        try:
            result = run_kind(kind, params, Context(job_dir, on_event, stop))
        finally:
            done.set()
        return decode(*encode(result))
