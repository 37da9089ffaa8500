"""Jobs off the interactive path: a FIFO queue of training jobs run one at a time in a warm worker process.

Why a process: a fine-tune holds the GIL and every core it is given; in the server process it made a 0.1 s
`/classify` wait 9-27 s. The worker (`python -m training.jobworker`, a fresh interpreter like the sandbox's,
so the server's __main__ and gradio are not re-imported) runs at a lower CPU priority (nice) with its own
thread budget, so interactive requests keep the CPU when they need it and the job gets the rest.

The worker (training/jobworker.py) and the runners (training/jobrunners.py) speak the protocol of
training/jobwire.py: JSON only in both directions, tensors in one safetensors blob; the server never unpickles
anything the worker sends. A worker that dies mid-job (killed, out of memory) fails that job with a clear
message, its folder is deleted (nothing partial is kept), and the next job starts a fresh worker.

Queue: one session holds at most one queued-or-running job (a second one is refused at once); the queue
position is visible to the caller; Cancel removes a queued job or stops a running one after its current step.
Nothing here runs at import; the worker starts on the first job.
"""
from __future__ import annotations

import atexit
import itertools
import logging
import os
import shutil
import threading
import time
from typing import Callable

from training.jobrunners import InlineRunner, WorkerRunner
from training.jobwire import JobCancelled, JobError, JobRefused
from training.jobwire import job_threads  # noqa: F401  (ui/finetune.py reads the budget here)
from zoo.tempfiles import prune, run_dir

log = logging.getLogger("playground.jobs")
WORKERS = max(1, int(os.environ.get("PLAYGROUND_JOB_WORKERS", "1")))          # jobs that run at once


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
        with self._cond:
            mine = self._active.get(session)
            if mine is not None and not mine.finished.is_set():
                where = "running" if mine.state == "running" else "waiting in the queue"
                raise JobRefused(f"You already have a {mine.kind} job {where}: one job per visitor at a time. "
                                 "Cancel it or wait for it to finish.")
            job = Job(session, kind, params, run_dir(kind))   # in the app's one bounded temp root
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
