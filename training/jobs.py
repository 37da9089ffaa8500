"""Jobs off the interactive path: a FIFO queue of training jobs run one at a time in a warm worker process.

Why a process: a fine-tune holds the GIL and every core it is given; in the server process it made a 0.1 s
`/classify` wait 9-27 s. The worker (`python -m training.jobworker`, a fresh interpreter like the sandbox's,
so the server's __main__ and gradio are not re-imported) runs at a lower CPU priority (nice) with its own
thread budget, so interactive requests keep the CPU when they need it and the job gets the rest.

Protocol (one multiprocessing Connection, JSON only in both directions; the server never unpickles anything
the worker sends):
  server -> worker  {"type": "job", "id", "kind", "params", "dir"} | {"type": "cancel", "id"}
  worker -> server  {"type": "ready", ...} | {"type": "event", "id", "event": {...}}
                    | {"type": "done", "id", "result": <plain JSON with tensor references>} + one safetensors blob
                    | {"type": "error", "id", "kind": "user"|"oom"|"internal", "message"}
Tensors in a result travel as one safetensors blob (`encode`/`decode`); files the visitor downloads are written
by the job into its own folder. A worker that dies mid-job (killed, out of memory) fails that job with a clear
message, its folder is deleted (nothing partial is kept), and the next job starts a fresh worker.

Queue: one session holds at most one queued-or-running job (a second one is refused at once); the queue
position is visible to the caller; Cancel removes a queued job or stops a running one after its current step.
Nothing here runs at import; the worker starts on the first job.
"""
from __future__ import annotations

import atexit
import itertools
import json
import logging
import secrets
import os
import shutil
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Client, Listener
from pathlib import Path
from typing import Callable

log = logging.getLogger("playground.jobs")
ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 120.0          # a cold start imports torch on a busy machine
WORKERS = max(1, int(os.environ.get("PLAYGROUND_JOB_WORKERS", "1")))          # jobs that run at once
WORKER_RSS_CAP_MB = int(os.environ.get("PLAYGROUND_JOB_WORKER_RSS_MB", "3072"))   # restart a worker above this
WORKER_NICE = int(os.environ.get("PLAYGROUND_JOB_NICE", "10"))


def job_threads() -> int:
    """The worker's torch thread budget: PLAYGROUND_JOB_THREADS, else all cores but one, so interactive requests
    keep a core (and, measured on 2 busy cores, one thread trained as fast as two: two threads spent twice the CPU
    time spin-waiting for each other when other processes held the cores; README: Numbers)."""
    v = os.environ.get("PLAYGROUND_JOB_THREADS", "").strip()
    return max(1, int(v)) if v else max(1, (os.cpu_count() or 1) - 1)


class JobError(Exception):
    """A job failed; the message is written for the visitor."""


class JobRefused(JobError):
    """A job was not accepted (e.g. this session already has one); nothing was queued."""


class JobCancelled(JobError):
    """The job stopped on Cancel before it had a result (e.g. while decoding a zip)."""


class WorkerDied(JobError):
    """The worker process stopped in the middle of a job."""


# ---------------------------------------------------------------- wire format: JSON + one safetensors blob

def encode(obj) -> tuple[dict | list, bytes | None]:
    """(plain JSON value, safetensors bytes or None). Tensors become {"__tensor__": key}; tuples become lists."""
    import torch

    tensors: dict = {}

    def walk(v):
        if isinstance(v, torch.Tensor):
            key = f"t{len(tensors)}"
            tensors[key] = v.detach().cpu().contiguous().clone()
            return {"__tensor__": key}
        if isinstance(v, dict):
            if not all(isinstance(k, str) for k in v):
                raise TypeError("job results need string keys")
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        raise TypeError(f"a job result cannot carry a {type(v).__name__}")

    plain = walk(obj)
    if not tensors:
        return plain, None
    from safetensors.torch import save

    return plain, save(tensors)


def decode(plain, blob: bytes | None):
    tensors = {}
    if blob:
        from safetensors.torch import load

        tensors = load(blob)

    def walk(v):
        if isinstance(v, dict):
            if set(v) == {"__tensor__"}:
                return tensors[v["__tensor__"]]
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return walk(plain)


def send_msg(conn, msg: dict, blob: bytes | None = None) -> None:
    conn.send_bytes(json.dumps(dict(msg, blob=blob is not None)).encode())
    if blob is not None:
        conn.send_bytes(blob)


def recv_msg(conn) -> tuple[dict, bytes | None]:
    msg = json.loads(conn.recv_bytes().decode())
    if not isinstance(msg, dict):
        raise ValueError("bad message from the job worker")
    return msg, (conn.recv_bytes() if msg.get("blob") else None)


# ---------------------------------------------------------------- runners

def _accept(listener, proc, timeout: float):
    """listener.accept() (authkey challenge included) that gives up when the child dies or time runs out."""
    box: dict = {}

    def run():
        try:
            box["conn"] = listener.accept()
        except Exception as exc:  # noqa: BLE001 - a wrong key, a closed listener
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    while t.is_alive() and proc.poll() is None and time.monotonic() < deadline:
        t.join(0.1)
    if t.is_alive():          # wake the blocked accept(): a connection without the key fails it
        try:
            Client(listener.address).close()
        except Exception:  # noqa: BLE001
            pass
        t.join(5)
    return box.get("conn")


class WorkerRunner:
    """One warm worker process; run() sends it a job and relays its events until the result comes back."""

    def __init__(self, threads: int | None = None, nice: int = WORKER_NICE, rss_cap_mb: int = WORKER_RSS_CAP_MB):
        self.threads = threads or job_threads()
        self.nice = nice
        self.rss_cap_mb = rss_cap_mb
        self._proc = None
        self._conn = None
        self.info: dict = {}
        self.restarts = 0

    def _start(self) -> None:
        """Spawn the worker; it connects back to a one-time listener on 127.0.0.1 with a random authkey (the same
        portable transport as the sandbox: no inherited file descriptors, so it works on Windows too)."""
        key = secrets.token_bytes(32)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                   PLAYGROUND_JOB_THREADS=str(self.threads), PLAYGROUND_JOB_NICE=str(self.nice))
        with Listener(("127.0.0.1", 0), authkey=key) as listener:
            proc = subprocess.Popen([sys.executable, "-m", "training.jobworker"], cwd=str(ROOT), env=env,
                                    stdin=subprocess.PIPE)
            conn, msg = None, {"type": "error", "message": "the job worker failed to start"}
            try:
                host, port = listener.address
                proc.stdin.write(f"{host} {port} {key.hex()}\n".encode())
                proc.stdin.close()
                conn = _accept(listener, proc, START_SECONDS)
                if conn is not None and conn.poll(START_SECONDS):
                    msg, _ = recv_msg(conn)
            except (EOFError, OSError, ValueError):
                pass
        if msg.get("type") != "ready":
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            if conn is not None:
                conn.close()
            raise JobError(f"{msg.get('message')} (exit code {proc.poll()}); try again")
        self._proc, self._conn, self.info = proc, conn, msg

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.alive() else None

    def rss_mb(self) -> float:
        try:
            import psutil

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
                    if msg.get("kind") == "cancelled":
                        raise JobCancelled(msg.get("message") or "cancelled")
                    raise JobError(msg.get("message") or "the job failed")
        except (EOFError, OSError, ValueError) as exc:
            code = None
            if self._proc is not None:
                try:
                    code = self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            self.close()
            self.restarts += 1
            why = {-9: "it was killed (out of memory?)", -15: "it was stopped"}.get(code, f"exit code {code}")
            log.warning("job worker died during %s job %s: %s (%s)", kind, job_id, why, exc)
            raise WorkerDied(f"The training process stopped in the middle of this job ({why}). Nothing from it was "
                             "saved; the next job starts a fresh process.") from None
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
        from training.jobworker import classify_error

        try:
            if self.stream is not None:
                return self._run_stream(kind, params, job_dir, on_event, cancelled)
            return self._run_here(kind, params, job_dir, on_event, cancelled)
        except JobError:
            raise
        except BaseException as exc:  # noqa: BLE001 - same classification as the worker
            kind_, message = classify_error(exc)
            raise (JobCancelled if kind_ == "cancelled" else JobError)(message) from None

    def _run_stream(self, kind, params, job_dir, on_event, cancelled):
        it = self.stream(kind, params, job_dir)
        try:
            for tag, payload in it:
                if tag == "event":
                    on_event(payload)
                elif tag == "done":
                    return decode(*payload)
                if cancelled():
                    raise JobCancelled("Cancelled: the job stopped after its current step; nothing from it was kept.")
        finally:
            it.close()
        raise JobError("the job ended without a result")

    def _run_here(self, kind, params, job_dir, on_event, cancelled):
        from training.jobworker import Context, run_kind

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


# ---------------------------------------------------------------- the queue

class Job:
    """One submitted job: its place in the queue, its streamed events, and how it ended."""

    _ids = itertools.count(1)

    def __init__(self, session: str, kind: str, params: dict, job_dir: str):
        self.id = f"{next(self._ids)}-{os.getpid()}"
        self.session, self.kind, self.params, self.dir = session, kind, params, job_dir
        self.state = "queued"            # queued | running | done | failed | cancelled
        self.events: list[dict] = []
        self.result = None
        self.error: JobError | None = None
        self.cancel_requested = threading.Event()
        self.finished = threading.Event()
        self.submitted = time.time()
        self.started: float | None = None

    @property
    def last(self) -> dict | None:
        return self.events[-1] if self.events else None


class JobQueue:
    """FIFO of jobs over `workers` runners; at most one queued-or-running job per session."""

    def __init__(self, runner_factory: Callable[[], object] | None = None, workers: int = WORKERS):
        self._factory = runner_factory or WorkerRunner
        self._runners: list = []
        self._free: list = []
        self._n = workers
        self._cond = threading.Condition()
        self._waiting: list[Job] = []
        self._active: dict[str, Job] = {}       # session -> its queued or running job

    # -- submitting and cancelling
    def submit(self, session: str, kind: str, params: dict) -> Job:
        from zoo.tempfiles import run_dir   # the app's one bounded temp root (pruned by size and age)

        with self._cond:
            mine = self._active.get(session)
            if mine is not None and not mine.finished.is_set():
                where = "running" if mine.state == "running" else "waiting in the queue"
                raise JobRefused(f"You already have a {mine.kind} job {where}: one job per visitor at a time. "
                                 "Cancel it or wait for it to finish.")
            job = Job(session, kind, params, run_dir(kind))
            self._active[session] = job
            self._waiting.append(job)
        threading.Thread(target=self._run, args=(job,), name=f"job-{job.id}", daemon=True).start()
        return job

    def cancel(self, session: str) -> str:
        with self._cond:
            job = self._active.get(session)
            if job is None or job.finished.is_set():
                return "Nothing is running."
            job.cancel_requested.set()
            if job.state == "queued":
                self._cond.notify_all()
                return "Cancelled: your job left the queue before it started."
        return "Cancelling: the job stops after the step in flight."

    def position(self, job: Job) -> int:
        """1 = next to start; 0 = running or finished."""
        with self._cond:
            return self._waiting.index(job) + 1 if job in self._waiting else 0

    def active(self, session: str) -> Job | None:
        job = self._active.get(session)
        return job if job is not None and not job.finished.is_set() else None

    def running_count(self) -> int:
        return self._n - len(self._free) if self._runners else 0

    # -- running
    def _take_runner(self):
        if self._free:
            return self._free.pop()
        if len(self._runners) < self._n:
            r = self._factory()
            self._runners.append(r)
            return r
        return None

    def _run(self, job: Job) -> None:
        runner = None
        with self._cond:
            while True:
                if job.cancel_requested.is_set():
                    self._waiting.remove(job)
                    self._finish(job, "cancelled")
                    self._cond.notify_all()
                    return
                if self._waiting and self._waiting[0] is job:
                    runner = self._take_runner()
                    if runner is not None:
                        self._waiting.pop(0)
                        job.state, job.started = "running", time.time()
                        self._cond.notify_all()
                        break
                self._cond.wait(0.5)
        try:
            job.result = runner.run(job.id, job.kind, job.params, job.dir, job.events.append,
                                    job.cancel_requested.is_set)
            state = "done"
        except JobCancelled as exc:
            job.error, state = exc, "cancelled"
        except JobError as exc:
            job.error, state = exc, "failed"
        except Exception as exc:  # noqa: BLE001 - a bug in the runner must still end the job
            log.exception("job %s failed", job.id)
            job.error, state = JobError(f"Something went wrong ({type(exc).__name__}: {str(exc)[:200]})."), "failed"
        if state != "done":
            shutil.rmtree(job.dir, ignore_errors=True)     # nothing partial is kept
        else:
            from zoo.tempfiles import prune

            prune()     # this job's files now count against PLAYGROUND_TEMP_MAX_MB (the oldest go first)
        with self._cond:
            self._free.append(runner)
            self._finish(job, state)
            self._cond.notify_all()

    def _finish(self, job: Job, state: str) -> None:
        job.state = state
        if state == "cancelled" and job.started is None:
            shutil.rmtree(job.dir, ignore_errors=True)
        if self._active.get(job.session) is job:
            del self._active[job.session]
        job.finished.set()

    def close(self) -> None:
        for r in self._runners:
            r.close()


_QUEUE: JobQueue | None = None
_QUEUE_LOCK = threading.Lock()
_FACTORY: Callable[[], object] | None = None


def set_runner_factory(factory: Callable[[], object] | None) -> None:
    """Run later jobs with runners from factory (None: the default). Used on ZeroGPU by ui/gpu.install; idle
    runners of the old kind are closed, a running job finishes where it is."""
    global _FACTORY
    with _QUEUE_LOCK:
        _FACTORY = factory
        q = _QUEUE
    if q is not None:
        with q._cond:
            q._factory = factory or default_runner
            idle, q._free = q._free, []
            q._runners = [r for r in q._runners if r not in idle]
        for r in idle:
            r.close()


def default_runner():
    """The worker process, or in-process jobs where PLAYGROUND_JOBS=inline or on a ZeroGPU Space."""
    mode = os.environ.get("PLAYGROUND_JOBS", "").strip().lower()
    if mode == "inline" or (not mode and os.environ.get("SPACES_ZERO_GPU")):
        return InlineRunner()
    return WorkerRunner()


def get_queue() -> JobQueue:
    """The process-wide job queue (created on first use; the worker starts on the first job)."""
    global _QUEUE
    with _QUEUE_LOCK:
        if _QUEUE is None:
            _QUEUE = JobQueue(_FACTORY or default_runner)
            atexit.register(_QUEUE.close)
        return _QUEUE
