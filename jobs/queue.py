"""Jobs off the interactive path: a FIFO queue of training jobs run one at a time in a warm worker process.

Why a process: a fine-tune holds the GIL and every core it is given; in the server process it made a `/classify`
of a tenth of a second wait many seconds (docs/numbers.md). The worker (`python -m jobs.worker`, a fresh
interpreter like the sandbox's, so the server's __main__ and gradio are not re-imported) runs at a lower CPU
priority (nice) with its own thread budget, so interactive requests keep the CPU when they need it and the job gets
the rest.

The worker (jobs/worker.py) and the runners (jobs/runners.py) speak the protocol of
jobs/wire.py: JSON only in both directions, tensors in one safetensors blob; the server never unpickles
anything the worker sends. A worker that dies mid-job (killed, out of memory) fails that job with a clear
message, its folder is deleted (nothing partial is kept), and the next job starts a fresh worker.

Queue: one session holds at most one queued-or-running job (a second one is refused at once), and one address
at most PLAYGROUND_JOBS_PER_IP (default 4 on a Space, half of the app's 8 job handlers, so one address cannot hold
every handler and starve the rest; off elsewhere, where every visitor is 127.0.0.1). The next job to start is the
one of the address that started a job longest ago (then the oldest): addresses, and sessions within one, take
turns, so a visitor's job waits for at most the one running now however many another address has queued. The
queue position is visible to the caller; Cancel removes a queued job or stops a running one after its current
step. A queued or running job's folder and input files are protected from the temp pruner (core/tempfiles.py),
and nothing here prunes while holding the queue's lock. Nothing runs at import; the worker starts on the first job.
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

from core.errors import INTERNAL_KEY, log_unexpected
from core.i18n import N_, t
from jobs.runners import InlineRunner, WorkerRunner
from jobs.wire import JobCancelled, JobError, JobRefused
from jobs.wire import job_threads  # noqa: F401  (ui/finetune.py reads the budget here)
from zoo.space import on_space
from core.settings import settings
from core.tempfiles import protect, prune, release, run_dir

log = logging.getLogger("playground.jobs")
DEFAULT_PER_IP_ON_SPACE = 4
# What a Cancel did (Queue.request_cancel), as catalogue keys: the tab says it in the visitor's language.
CANCEL_NOTHING = N_("job.cancel.nothing")
CANCEL_LEFT_QUEUE = N_("job.cancel.left_queue")
CANCELLING = N_("job.cancel.stopping")
_MAX_ADDRESSES = 4096       # addresses whose last start is remembered (the oldest are forgotten: they go first)


def per_ip_limit() -> int:
    """Queued-or-running jobs one address may hold (0: no limit), read per call."""
    cap = settings().jobs_per_ip
    return (DEFAULT_PER_IP_ON_SPACE if on_space() else 0) if cap is None else cap


class Job:
    """One submitted job: its place in the queue, its streamed events, and how it ended."""

    _ids = itertools.count(1)

    def __init__(self, session: str, kind: str, params: dict, job_dir: str, address: str | None = None):
        self.seq = next(self._ids)
        self.id = f"{self.seq}-{os.getpid()}"
        self.session, self.kind, self.params, self.dir = session, kind, params, job_dir
        self.address = address or ""
        self.protected: list[str] = []   # core.tempfiles keys of its folder and inputs, released when it ends
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
    """Jobs over `workers` runners, taken in turn by address (see the module docstring); at most one
    queued-or-running job per session and PLAYGROUND_JOBS_PER_IP per address."""

    def __init__(self, runner_factory: Callable[[], object] | None = None, workers: int | None = None):
        """workers: jobs that run at once (default PLAYGROUND_JOB_WORKERS)."""
        self._factory = runner_factory or WorkerRunner
        self._runners: list = []
        self._free: list = []
        self._n = max(1, settings().job_workers) if workers is None else workers
        self._cond = threading.Condition()
        self._waiting: list[Job] = []
        self._active: dict[str, Job] = {}       # session -> its queued or running job
        self._last_start: dict[str, float] = {}  # address -> when its last job started (insertion order = age)

    # -- submitting and cancelling
    def _refusal(self, session: str, address: str) -> JobRefused | None:
        mine = self._active.get(session)
        if mine is not None and not mine.finished.is_set():
            key = "job.yours_running" if mine.state == "running" else "job.yours_waiting"
            return JobRefused(key, kind=mine.kind)
        cap = per_ip_limit()
        if cap > 0 and address:
            held = sum(1 for j in self._active.values() if j.address == address and not j.finished.is_set())
            if held >= cap:
                return JobRefused("job.address_limit", held=held, limit=cap)
        return None

    def submit(self, session: str, kind: str, params: dict, address: str | None = None) -> Job:
        address = address or ""
        with self._cond:        # a refusal costs nothing: no folder made, no prune
            why = self._refusal(session, address)
        if why is not None:
            raise why
        # The folder (run_dir prunes the temp root first) is made outside the queue's lock: a prune walks and
        # deletes files, and every job thread and position query waits on that lock.
        job_dir = run_dir(kind, owner=(address, session))
        inputs = [job_dir] + [v for k, v in params.items() if k in ("zip", "checkpoint") and isinstance(v, str)]
        keys = protect(inputs)
        with self._cond:
            why = self._refusal(session, address)      # again: another request of this visitor may have won
            if why is None:
                job = Job(session, kind, params, job_dir, address)
                job.protected = keys
                self._active[session] = job
                self._waiting.append(job)
        if why is not None:
            release(keys)
            shutil.rmtree(job_dir, ignore_errors=True)
            raise why
        threading.Thread(target=self._run, args=(job,), name=f"job-{job.id}", daemon=True).start()
        return job

    def cancel(self, session: str, language: str | None = None) -> str:
        """Cancel this session's job (request_cancel) and say what happened, in a language (None: the request's)."""
        return t(self.request_cancel(session), language)

    def request_cancel(self, session: str) -> str:
        """Take this session's queued job out of the queue, or ask its running job to stop after the step in
        flight. Returns the catalogue key of what happened: CANCEL_NOTHING, CANCEL_LEFT_QUEUE or CANCELLING."""
        with self._cond:
            job = self._active.get(session)
            if job is None or job.finished.is_set():
                return CANCEL_NOTHING
            job.cancel_requested.set()
            if job.state == "queued":
                self._cond.notify_all()
                return CANCEL_LEFT_QUEUE
        return CANCELLING

    def _order(self) -> list[Job]:
        """Waiting jobs in the order they will start (call with the lock held): the address with the fewest
        running jobs, then the one whose last job started longest ago (never: first), then the oldest job."""
        running: dict[str, int] = {}
        for j in self._active.values():
            if j.state == "running":
                running[j.address] = running.get(j.address, 0) + 1
        return sorted(self._waiting, key=lambda j: (running.get(j.address, 0), self._last_start.get(j.address, 0.0),
                                                    j.seq))

    def position(self, job: Job) -> int:
        """1 = next to start; 0 = running or finished."""
        with self._cond:
            order = self._order()
            return order.index(job) + 1 if job in order else 0

    def active(self, session: str) -> Job | None:
        job = self._active.get(session)
        return job if job is not None and not job.finished.is_set() else None

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
                if self._waiting and self._order()[0] is job:
                    runner = self._take_runner()
                    if runner is not None:
                        self._waiting.remove(job)
                        job.state, job.started = "running", time.time()
                        self._last_start.pop(job.address, None)
                        self._last_start[job.address] = time.monotonic()
                        while len(self._last_start) > _MAX_ADDRESSES:
                            del self._last_start[next(iter(self._last_start))]
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
            job.error, state = JobError(INTERNAL_KEY, id=log_unexpected(exc, f"job {job.id}")), "failed"
        release(job.protected)        # a finished job's files are the visitor's results: prunable like any
        if state != "done":
            shutil.rmtree(job.dir, ignore_errors=True)     # nothing partial is kept
        else:
            prune()     # this job's files now count against PLAYGROUND_TEMP_MAX_MB (outside the lock)
        with self._cond:
            self._free.append(runner)
            self._finish(job, state)
            self._cond.notify_all()

    def _finish(self, job: Job, state: str) -> None:
        job.state = state
        if state == "cancelled" and job.started is None:
            release(job.protected)
            shutil.rmtree(job.dir, ignore_errors=True)     # an empty folder: no prune, quick under the lock
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
    mode = settings().jobs
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
