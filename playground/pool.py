"""The sandbox pool: a few warm workers (PLAYGROUND_SANDBOX_WORKERS, default 2) shared fairly by visitors.

Rules, so that one visitor's long programs never starve another's:
- one session holds at most one program in the sandbox (running or waiting); a second one from the same session
  is refused at once ("your previous program is still running");
- one client address holds at most PER_ADDRESS programs (sessions are chosen by the client, addresses are not);
- a free worker goes to the waiting program whose address has the fewest programs in the sandbox (running or
  waiting), then whose address was served longest ago, then the oldest; nobody waits
  longer than QUEUE_SECONDS for a worker;
- workers start lazily (nothing at import; the first request or a prewarm starts one, and a request that takes
  the last warm worker starts an idle one in the background, so the next visitor finds a warm one); one that
  dies or is killed is restarted in the background before it takes the next program.
"""
from __future__ import annotations

import atexit
import hashlib
import itertools
import logging
import secrets
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from core.i18n import t
from playground import fence
from playground.codegen import marker_line
from playground.fork_server import ForkServer
from playground.limits import (MAX_TRAIN_STEPS, PER_ADDRESS, PROGRAMS_AT_ONCE, PROGRAMS_PER_ADDRESS, QUEUE_SECONDS,
                               THREADS, WORKERS, WorkerLimits)
from playground.whole import ForkSlot, ProgramLimits, list_files, shape, trim_to_quota
from playground.worker import SandboxUnavailable, Worker
from core import tempfiles
from core.settings import settings
from zoo.space import on_space

log = logging.getLogger("playground.sandbox")

__all__ = ["SandboxBusy", "SandboxPool", "SandboxUnavailable", "get_sandbox", "prewarm", "run_autograd",
           "run_tensors"]


class SandboxBusy(SandboxUnavailable):
    """The program was not started (the same session or address already has programs in the sandbox)."""


class SandboxPool:
    """`size` workers; request() runs a program on a free one under the rules above."""

    def __init__(self, size: int = WORKERS, limits: WorkerLimits | None = None, queue_seconds: float = QUEUE_SECONDS,
                 per_address: int = PER_ADDRESS, workers: list | None = None, describe=None):
        self.limits = limits or WorkerLimits()
        self.size = max(1, int(size)) if workers is None else len(workers)
        self.queue_seconds = queue_seconds
        self.per_address = per_address
        # restricted-language workers by default; whole programs pass ForkSlots (playground/whole.py)
        self.workers = workers or [Worker(self.limits, name=f"sandbox-{i}") for i in range(self.size)]
        self._describe = describe
        self._free: list[Worker] = list(self.workers)   # idle and not restarting
        self._cond = threading.Condition()
        self._sessions: set[str] = set()
        self._held = Counter()      # programs in the sandbox (running or waiting) per address
        self._served: dict[str | None, float] = {}  # when each address last got a worker
        self._waiting: list[tuple[int, str | None]] = []  # (ticket, address), oldest first
        self._tickets = itertools.count()
        self.closed = False

    # settings the tests and the benchmark change on a live pool
    @property
    def wall_seconds(self) -> float:
        return self.limits.wall_s

    @wall_seconds.setter
    def wall_seconds(self, value: float) -> None:
        self.limits.wall_s = value
        for w in self.workers:
            w.limits.wall_s = value

    @property
    def restarts(self) -> int:
        return sum(w.restarts for w in self.workers)

    @property
    def info(self) -> dict:
        """The first started worker's facts (device, plan, limits as set)."""
        return next((w.info for w in self.workers if w.info), {})

    def describe(self, language: str = "en") -> str:
        """The limits line the sandbox tabs show, in `language`."""
        return self._describe(language) if self._describe else self.limits.describe(self.size, language)

    # ---- the rules ----------------------------------------------------------------------------------------------
    def request(self, kind: str, session: str | None = None, address: str | None = None, **kwargs) -> dict:
        with self._cond:
            if session is not None and session in self._sessions:
                raise SandboxBusy("sandbox.yours_running", limit_s=self.limits.wall_s)
            if address is not None and self.per_address and self._held[address] >= self.per_address:
                raise SandboxBusy("sandbox.address_busy", held=self._held[address])
            if session is not None:
                self._sessions.add(session)
            self._held[address] += 1
        try:
            worker = self._acquire(address)
        except BaseException:
            self._leave(session, address)
            raise
        try:
            return worker.request(kind, **kwargs)
        finally:
            self._leave(session, address)
            self._release(worker)

    def _leave(self, session: str | None, address: str | None) -> None:
        with self._cond:
            self._sessions.discard(session)
            self._held[address] -= 1
            if self._held[address] <= 0:
                del self._held[address]

    def _next_ticket(self) -> int:
        """Fair share: the waiter whose address has the fewest programs in the sandbox, then the address served
        longest ago (round robin), then the oldest."""
        return min(self._waiting, key=lambda w: (self._held[w[1]], self._served.get(w[1], -1.0), w[0]))[0]

    def _acquire(self, address: str | None) -> Worker:
        with self._cond:
            if self.closed:
                raise SandboxUnavailable("sandbox.shutting_down")
            ticket = next(self._tickets)
            self._waiting.append((ticket, address))
            deadline = time.monotonic() + self.queue_seconds
            try:
                while not (self._free and self._next_ticket() == ticket):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self.closed:
                        raise SandboxUnavailable("sandbox.busy", waited_s=self.queue_seconds)
                    self._cond.wait(remaining)
            finally:
                self._waiting.remove((ticket, address))
                self._cond.notify_all()  # the next in line may be someone else now
            # a warm worker before one that still has to start
            worker = next((w for w in self._free if w.alive()), self._free[0])
            self._free.remove(worker)
            self._served[address] = time.monotonic()
            if len(self._served) > 10_000:  # forget the oldest addresses
                for old in sorted(self._served, key=self._served.get)[:5_000]:
                    del self._served[old]
        self.prewarm()  # keep a spare warm worker for the next visitor, if the pool has one idle
        return worker

    def _release(self, worker: Worker) -> None:
        if worker.alive() or self.closed or worker.closed:
            self._give_back(worker)
        else:  # killed or dead: restart it before it takes another program (others keep the warm workers)
            threading.Thread(target=self._restart, args=(worker,), daemon=True,
                             name=f"{worker.name}-restart").start()

    def _give_back(self, worker: Worker) -> None:
        with self._cond:
            self._free.append(worker)
            self._cond.notify_all()

    def _restart(self, worker: Worker) -> None:
        try:
            if not self.closed:
                worker.start(reopen=False)
        except Exception as exc:  # noqa: BLE001 - the next request on it tries again and reports
            log.warning("%s restart failed: %s", worker.name, exc)
        finally:
            self._give_back(worker)

    # ---- lifecycle ------------------------------------------------------------------------------------------------
    def prewarm(self) -> None:
        """Start one worker in the background if no idle worker is warm (e.g. a visitor focused the editor)."""
        with self._cond:
            if self.closed or any(w.alive() for w in self._free) or not self._free:
                return
            worker = self._free.pop()
        threading.Thread(target=self._restart, args=(worker,), daemon=True, name=f"{worker.name}-prewarm").start()

    def warm(self) -> None:
        """Start every worker now (in this thread)."""
        for w in self.workers:
            w.start()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        for w in self.workers:
            w.close()


_POOL: SandboxPool | None = None
_POOL_LOCK = threading.Lock()
_PUBLIC = [on_space()]


def set_public(public: bool) -> None:
    """The server is reachable by others (a Space, a --share link, a non-loopback address): where the OS fence
    cannot be built, whole programs are then refused and the restricted language runs instead."""
    _PUBLIC[0] = bool(public)


def sandbox_mode() -> str:
    """'fenced' (whole programs behind Landlock + seccomp), 'unfenced' (whole programs, local instance without
    the fence) or 'restricted' (the restricted language). PLAYGROUND_SANDBOX_MODE may force one; 'fenced' and
    'unfenced' fall back when this machine or this exposure cannot have them."""
    forced = settings().sandbox_mode
    p = machine()
    if forced == "restricted":
        return "restricted"
    if not sys.platform.startswith("linux"):  # the template needs fork and SOCK_SEQPACKET: Linux only, for now
        return "restricted"
    if p["fence"] and p["fork"] and forced in ("auto", "fenced"):
        return "fenced"
    if p["fork"] and not _PUBLIC[0] and forced in ("auto", "unfenced", "fenced"):
        return "unfenced"
    return "restricted"


def machine() -> dict:
    """What the kernel offers (PLAYGROUND_SANDBOX_FENCE=off pretends it offers nothing, for the tests)."""
    p = fence.probe()
    if not settings().sandbox_fence:
        p = {**p, "fence": False, "landlock_abi": 0, "seccomp": False}
    return p


def _build_pool() -> SandboxPool:
    mode = sandbox_mode()
    if mode == "restricted":
        return SandboxPool()
    limits = ProgramLimits()
    server = ForkServer(tempfiles.temp_root() / "sandbox", fenced=mode == "fenced", threads=THREADS,
                        spares=PROGRAMS_AT_ONCE)   # a burst of as many runs as may run at once starts at once
    slots = [ForkSlot(server, limits, name=f"program-{i}") for i in range(PROGRAMS_AT_ONCE)]
    probe = machine()
    return SandboxPool(limits=WorkerLimits(wall_s=limits.wall_s, cpu_s=limits.cpu_s, memory_mb=limits.memory_mb),
                       workers=slots, per_address=PROGRAMS_PER_ADDRESS,
                       describe=lambda language="en": limits.describe(PROGRAMS_AT_ONCE, mode == "fenced", probe,
                                                                      language))


def get_sandbox() -> SandboxPool:
    """The process-wide pool (created on first use; nothing starts at import or until a request comes)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = _build_pool()
            atexit.register(_POOL.close)
        return _POOL


def whole_programs() -> bool:
    return isinstance(get_sandbox().workers[0], ForkSlot)


def prewarm() -> None:
    get_sandbox().prewarm()


def scratch_folder(session: str | None) -> Path:
    """The visitor's own folder for the visit (files a program saves; a later run loads them)."""
    key = hashlib.sha256((session or secrets.token_hex(8)).encode()).hexdigest()[:24]
    return tempfiles.temp_root() / "scratch" / key


def _fork_request(kind: str, session, address, code: str, lr: float = 0.01, steps: int = 0, on_output=None,
                  cancelled=None, language: str = "en") -> dict:
    if steps > MAX_TRAIN_STEPS:   # refused before a process starts, as the restricted language refuses them
        raise SandboxUnavailable("sandbox.train_steps", limit=MAX_TRAIN_STEPS, asked=steps)
    if steps and marker_line(code or "") is None:
        raise SandboxUnavailable("sandbox.no_step_marker")
    folder = scratch_folder(session)
    raw = get_sandbox().request(kind, session=session, address=address, code=code, lr=lr, steps=steps,
                                scratch=folder, on_output=on_output, cancelled=cancelled, language=language)
    out = shape(kind, raw, code, lr, steps, language)
    lim = get_sandbox().workers[0].limits
    trimmed = trim_to_quota(folder, lim.scratch_mb << 20, lim.scratch_files)
    if trimmed:
        out["notes"].append(t("sandbox.note.quota_trimmed", language, scratch_mb=lim.scratch_mb,
                              scratch_files=lim.scratch_files, n=len(trimmed), names=", ".join(trimmed[:5])))
    out["files"] = list_files(folder)
    out["fence"] = raw.get("fence")
    return out


def run_tensors(code: str, session: str | None = None, address: str | None = None, on_output=None,
                cancelled=None, language: str = "en") -> dict:
    """Run a Tensors-tab program; our own words in the result (notes, a stop's reason) are in `language`."""
    if whole_programs():
        return _fork_request("tensors", session, address, code, on_output=on_output, cancelled=cancelled,
                             language=language)
    return get_sandbox().request("tensors", session=session, address=address, code=code, language=language)


def run_autograd(code: str, lr: float = 0.01, steps: int = 0, session: str | None = None,
                 address: str | None = None, on_output=None, cancelled=None, language: str = "en") -> dict:
    """Run an Autograd-tab program (steps > 0: the `# step` block that many times); our words in `language`."""
    if whole_programs():
        return _fork_request("autograd", session, address, code, lr=float(lr), steps=int(steps),
                             on_output=on_output, cancelled=cancelled, language=language)
    return get_sandbox().request("autograd", session=session, address=address, code=code, lr=float(lr),
                                 steps=int(steps), language=language)
