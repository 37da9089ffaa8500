"""Results nobody reads are bounded: per session and overall, the oldest unread results are dropped first.

Gradio puts every message for a session (queue estimates, progress, each streamed step, the result) in an
unbounded asyncio.Queue in Queue.pending_messages_per_session, until the session opens /queue/data and reads it.
A script that joins the queue and never reads left every result in memory (160 unread sandbox results held
~100 MB). install(demo) makes each session's queue a _Messages queue that keeps, unread:

- per session at most PLAYGROUND_UNREAD_RESULTS (default 8) full results and PLAYGROUND_UNREAD_MB_PER_SESSION
  (default 16) MB of results and streamed steps; and PLAYGROUND_UNREAD_MB (default 64) MB over all sessions;
- past a bound, the oldest unread result becomes a short "not collected in time" error (its event still
  completes, so a reader that comes back sees the stream end as Gradio's client expects), and a running event's
  unread streamed steps are dropped from the end with the rest of its steps (a reader has then seen a prefix
  of the stream, and the final message carries full values: Gradio sends diffs between steps, so dropping one
  in the middle would corrupt the ones after it);
- at most PLAYGROUND_UNREAD_MESSAGES (default 64) messages: queue estimates, progress and log lines go first,
  then the stubs of the oldest dropped results (with their event ids, so the stream still ends).

The newest message is never dropped on arrival, so a reader that is connected gets every result. Gradio
internals used are checked in install().
"""
from __future__ import annotations

import asyncio
import inspect
import threading
from collections import OrderedDict, deque

import orjson
from gradio import queueing
from gradio.server_messages import ProcessCompletedMessage, ProcessGeneratingMessage
from gradio.utils import LRUCache

from core.settings import settings

DROPPED = ("This result was not collected in time and was dropped to keep the server's memory bounded "
           "(results wait in memory only until the page or client reads them). Run it again.")
_INFO = {"estimation", "progress", "log", "heartbeat"}     # informational: dropped first, nothing depends on them


def limits() -> dict:
    s = settings()
    return {"results_per_session": max(1, s.unread_results),
            "bytes_per_session": int(s.unread_mb_per_session * (1 << 20)),
            "bytes": int(s.unread_mb * (1 << 20)),
            "messages_per_session": max(8, s.unread_messages)}


def _kind(msg) -> str:
    m = getattr(msg, "msg", "")
    return str(getattr(m, "value", m))


def _size(msg) -> int:
    """Bytes the message's payload takes when sent (what it costs to hold, within a small factor)."""
    try:
        return len(orjson.dumps(getattr(msg, "output", None), default=str,
                                option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_PASSTHROUGH_DATETIME))
    except (TypeError, orjson.JSONEncodeError):
        return len(repr(getattr(msg, "output", "")))


class _Ledger:
    """Every unread payload (result or streamed step) of one Gradio queue, oldest first, with its size."""

    def __init__(self, gradio_queue):
        self.queue = gradio_queue
        self.lock = threading.RLock()
        self.entries: OrderedDict[int, tuple[_Messages, object, int]] = OrderedDict()   # id(msg) -> (owner, msg, size)
        self.bytes = 0
        self.stubbed = 0
        self.dropped_steps = 0

    def add(self, owner: _Messages, msg, size: int) -> None:
        self.entries[id(msg)] = (owner, msg, size)
        self.bytes += size
        owner.bytes += size

    def release(self, msg) -> None:
        entry = self.entries.pop(id(msg), None)
        if entry is not None:
            owner, _, size = entry
            self.bytes -= size
            owner.bytes -= size

    def shed(self, owner: _Messages | None, newest) -> bool:
        """Drop the oldest unread payload (of owner, or of anyone when None) other than newest; False if none."""
        for _, (o, msg, _size) in self.entries.items():
            if msg is not newest and (owner is None or o is owner):
                o.shed(msg)
                return True
        return False


class _Messages(asyncio.Queue):
    """One session's unread messages (asyncio.Queue's own _init/_put/_get hooks, as its Priority and Lifo
    queues use), with the bounds of the module docstring."""

    def __init__(self, ledger: _Ledger, session: str):
        self.ledger, self.session = ledger, session
        self.bytes = 0
        self.muted: set[str] = set()     # events whose later streamed steps are dropped (their final message is not)
        super().__init__()

    def _init(self, maxsize):
        self._queue = deque()

    def _get(self):
        msg = self._queue.popleft()
        with self.ledger.lock:
            self.ledger.release(msg)
        return msg

    def _put(self, msg) -> None:
        kind, lim = _kind(msg), limits()
        with self.ledger.lock:
            eid = getattr(msg, "event_id", None)
            if isinstance(msg, ProcessGeneratingMessage):
                size = _size(msg)
                steps = sum(1 for m in self._queue if m.__class__ is msg.__class__ and m.event_id == eid)
                if eid in self.muted or self.bytes + size > lim["bytes_per_session"] or \
                        steps >= lim["results_per_session"] * 4:
                    self.muted.add(eid)      # from here on only its final message: the prefix read stays valid
                    self.ledger.dropped_steps += 1
                    return
                self._queue.append(msg)
                self.ledger.add(self, msg, size)
            elif isinstance(msg, ProcessCompletedMessage):
                self.muted.discard(eid)
                self._queue.append(msg)
                self.ledger.add(self, msg, _size(msg))
            else:
                self._queue.append(msg)
            self._bound(msg, kind, lim)

    def _bound(self, newest, kind: str, lim: dict) -> None:
        while self._results() > lim["results_per_session"] or self.bytes > lim["bytes_per_session"]:
            if not self.ledger.shed(self, newest):
                break
        while self.ledger.bytes > lim["bytes"]:
            if not self.ledger.shed(None, newest):
                break
        while len(self._queue) > lim["messages_per_session"]:
            if not self._drop_one(newest):
                break

    def _results(self) -> int:
        return sum(1 for m in self._queue if id(m) in self.ledger.entries and isinstance(m, ProcessCompletedMessage))

    def shed(self, msg) -> None:
        """Free msg's payload: a result becomes the short DROPPED error; a streamed step goes, with the event's
        other unread steps, and the event is muted until its final message."""
        self.ledger.release(msg)
        if isinstance(msg, ProcessCompletedMessage):
            msg.output, msg.success = {"error": DROPPED, "visible": True, "title": "Result dropped"}, False
            self.ledger.stubbed += 1
            return
        eid = msg.event_id
        if not any(isinstance(m, ProcessCompletedMessage) and m.event_id == eid for m in self._queue):
            self.muted.add(eid)
        for m in [m for m in self._queue if isinstance(m, ProcessGeneratingMessage) and m.event_id == eid]:
            self._queue.remove(m)
            self.ledger.release(m)
            self.ledger.dropped_steps += 1

    def _drop_one(self, newest) -> bool:
        """Remove one message to keep the count: an informational one, else the oldest dropped result with its
        event's other messages (and its id, so that Gradio's stream still ends when the others are read)."""
        for m in self._queue:
            if m is not newest and _kind(m) in _INFO:
                self._queue.remove(m)
                return True
        for m in self._queue:
            if m is not newest and isinstance(m, ProcessCompletedMessage) and id(m) not in self.ledger.entries:
                eid = m.event_id
                for other in [o for o in self._queue if getattr(o, "event_id", None) == eid]:
                    self._queue.remove(other)
                    self.ledger.release(other)
                ids = self.ledger.queue.pending_event_ids_session.get(self.session)
                if ids is not None:
                    ids.discard(eid)
                return True
        return False

    def forget(self) -> None:
        with self.ledger.lock:
            for m in self._queue:
                self.ledger.release(m)


class _Sessions(LRUCache):
    """Gradio's LRUCache of sessions' message queues, whose new queues are _Messages."""

    def __init__(self, ledger: _Ledger, max_size: int):
        super().__init__(max_size)
        self.ledger = ledger

    def __setitem__(self, key, value) -> None:
        if type(value) is asyncio.Queue and value.empty():
            value = _Messages(self.ledger, key)
        old = self.get(key)
        super().__setitem__(key, value)
        if old is not None and old is not value and isinstance(old, _Messages):
            old.forget()

    def __delitem__(self, key) -> None:
        old = self.get(key)
        super().__delitem__(key)
        if isinstance(old, _Messages):
            old.forget()

    def popitem(self, last: bool = True):
        key, old = super().popitem(last=last)
        if isinstance(old, _Messages):
            old.forget()
        return key, old


def _check_gradio(queue) -> None:
    problems = []
    if not isinstance(getattr(queue, "pending_messages_per_session", None), LRUCache):
        problems.append("Queue.pending_messages_per_session is no longer a gradio.utils.LRUCache")
    if "AsyncQueue()" not in inspect.getsource(queueing.Queue.push):
        problems.append("Queue.push no longer makes a session's messages with AsyncQueue()")
    if queueing.AsyncQueue is not asyncio.Queue:
        problems.append("gradio.queueing.AsyncQueue is not asyncio.Queue")
    if not isinstance(getattr(queue, "pending_event_ids_session", None), dict):
        problems.append("Queue.pending_event_ids_session is gone")
    if not all(hasattr(asyncio.Queue, h) for h in ("_init", "_put", "_get")):
        problems.append("asyncio.Queue has no _init/_put/_get hooks")
    if problems:
        raise RuntimeError("ui.queue_bounds was written for Gradio 6.31's queue: " + "; ".join(problems))


def install(demo) -> None:
    """Bound the unread messages of demo's queue (after demo.queue(), before launch)."""
    queue = demo._queue
    if isinstance(queue.pending_messages_per_session, _Sessions):
        return
    _check_gradio(queue)
    old = queue.pending_messages_per_session
    ledger = queue._playground_ledger = _Ledger(queue)
    new = _Sessions(ledger, old.max_size)
    for k, v in old.items():
        new[k] = v
    queue.pending_messages_per_session = new
