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
import itertools
import logging
import threading
import time
from collections import Counter

from playground.limits import PER_ADDRESS, QUEUE_SECONDS, WORKERS, Limits
from playground.worker import SandboxUnavailable, Worker

log = logging.getLogger("playground.sandbox")

__all__ = ["SandboxBusy", "SandboxPool", "SandboxUnavailable", "get_sandbox", "prewarm", "run_autograd",
           "run_tensors"]


class SandboxBusy(SandboxUnavailable):
    """The program was not started (the same session or address already has programs in the sandbox)."""


class SandboxPool:
    """`size` workers; request() runs a program on a free one under the rules above."""

    def __init__(self, size: int = WORKERS, limits: Limits | None = None, queue_seconds: float = QUEUE_SECONDS,
                 per_address: int = PER_ADDRESS):
        self.limits = limits or Limits()
        self.size = max(1, int(size))
        self.queue_seconds = queue_seconds
        self.per_address = per_address
        self.workers = [Worker(self.limits, name=f"sandbox-{i}") for i in range(self.size)]
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

    @property
    def restarts(self) -> int:
        return sum(w.restarts for w in self.workers)

    @property
    def info(self) -> dict:
        """The first started worker's facts (device, plan, limits as set)."""
        return next((w.info for w in self.workers if w.info), {})

    def describe(self) -> str:
        return self.limits.describe(self.size)

    # ---- the rules ----------------------------------------------------------------------------------------------
    def request(self, kind: str, session: str | None = None, address: str | None = None, **kwargs) -> dict:
        with self._cond:
            if session is not None and session in self._sessions:
                raise SandboxBusy("your previous program is still running; this one was not started. Wait for "
                                  f"its answer (at most {self.limits.wall_s:g} s) and run again")
            if address is not None and self.per_address and self._held[address] >= self.per_address:
                raise SandboxBusy(f"{self._held[address]} programs from your address are already in the "
                                  "sandbox; this one was not started. Try again in a few seconds")
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
                raise SandboxUnavailable("the sandbox is shutting down")
            ticket = next(self._tickets)
            self._waiting.append((ticket, address))
            deadline = time.monotonic() + self.queue_seconds
            try:
                while not (self._free and self._next_ticket() == ticket):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self.closed:
                        raise SandboxUnavailable(f"the sandbox is busy (waited {self.queue_seconds:g} s for a "
                                                 "free worker); try again")
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


def get_sandbox() -> SandboxPool:
    """The process-wide pool (created on first use; nothing starts at import or until a request comes)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = SandboxPool()
            atexit.register(_POOL.close)
        return _POOL


def prewarm() -> None:
    get_sandbox().prewarm()


def run_tensors(code: str, session: str | None = None, address: str | None = None) -> dict:
    return get_sandbox().request("tensors", session=session, address=address, code=code)


def run_autograd(code: str, lr: float = 0.01, steps: int = 0, session: str | None = None,
                 address: str | None = None) -> dict:
    return get_sandbox().request("autograd", session=session, address=address, code=code, lr=float(lr),
                                 steps=int(steps))
