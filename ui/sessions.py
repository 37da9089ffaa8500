"""Visitor sessions with a bounded cost: each costs little, few are kept, and no address opens them without limit.

Gradio keeps one SessionState per session hash in App.state_holder, up to 10,000 of them, and session hashes are
chosen by the client. Each SessionState copied the config of every component on the page when it was made
(config_values: ~800 KB and ~110 ms of CPU for this app's ~460 components), kept only for Gradio's deep links
(gr.DeepLinkButton, which this app does not use), and refreshed that copy with every input and output value the
session saw: 1,000 made-up session hashes each calling one cheap event kept ~800 MB. install(demo):

- makes each session a LeanSessionState: the same state (gr.State values, components updated by events), but the
  deep-link configs are derived when /deep_link asks instead of copied per session (~25 KB a session, not 800);
- keeps at most PLAYGROUND_MAX_SESSIONS sessions (default 1000). Past that the one to drop is, in this order: one
  that never ran an event through the queue (made by another route), one idle for PLAYGROUND_SESSION_IDLE_S
  (default 900 s), then the least recently used one of the address that holds the most sessions, so a flood from
  one address evicts its own sessions before anyone else's. A session with an event waiting or running is never
  dropped, so a live visitor's run and its gr.State survive;
- refuses a NEW session at /queue/join once its address has opened PLAYGROUND_NEW_SESSIONS_PER_IP_PER_MIN in the
  last minute (a token bucket: default 30 on a Space, where each visitor has their own address; off elsewhere,
  where every visitor is 127.0.0.1 and the cap would only turn away the next visitor). An existing session is
  never refused here, so a visitor who is already in keeps working while their address floods.

The address is ui.admission.client_ip's. Gradio internals used are checked when install() runs; a Gradio whose
internals differ fails at start, not at the first visitor.
"""
from __future__ import annotations

import contextlib
import copy
import datetime
import inspect
import os
import re
import threading
import time
from collections import Counter, OrderedDict

from gradio import routes, state_holder
from gradio.state_holder import SessionState, StateHolder

from ui import admission
from ui.i18n import request_language
from core import tempfiles
from core.errors import render
from core.i18n import speaking
from core.settings import settings
from zoo.space import on_space

DEFAULT_NEW_PER_MIN_ON_SPACE = 30
_MAX_ADDRESSES = 4096          # token buckets remembered; a full bucket carries no information and is dropped first

# What Gradio 6.31's SessionState.__init__ sets; LeanSessionState sets the same (checked in install()).
_SESSION_FIELDS = {"blocks_config", "config_values", "state_data", "_state_ttl", "is_closed", "STATE_TTL_WHEN_CLOSED"}


def limits() -> dict:
    """The session limits now in force (read per call, so a test that changes the settings is seen at once)."""
    s = settings()
    new_per_min = s.new_sessions_per_ip_per_min
    return {"max_sessions": max(1, s.max_sessions), "idle_s": s.session_idle_s,
            "new_per_ip_per_min": (DEFAULT_NEW_PER_MIN_ON_SPACE if on_space() else 0) if new_per_min is None
            else new_per_min}


# ---------------------------------------------------------------- a session without the per-session page copy

class _DerivedConfigs:
    """SessionState.config_values without the copies: a component's config is made from the session's own
    (possibly event-updated) component when /deep_link lists them, and nothing is stored per session. Writes are
    dropped: Gradio writes here only to serve deep links later. Reading one entry gives {} (no "props"), so
    Gradio's _update_value_in_config, which stores each input and output value for deep links, stores nothing."""

    def __init__(self, blocks_config, root_ids):
        self._bc, self._root = blocks_config, root_ids

    def __contains__(self, key) -> bool:
        return key in self._bc.blocks

    def __getitem__(self, key) -> dict:
        if key not in self._bc.blocks:
            raise KeyError(key)
        return {}

    def __setitem__(self, key, value) -> None:
        pass

    def get(self, key, default=None):
        return self[key] if key in self else default

    def items(self):
        """(id, config) of each of the page's components as this session sees it (what /deep_link serializes)."""
        for k in self._root:
            block = self._bc.blocks.get(k)
            if block is not None:
                yield k, self._bc.config_for_block(k, [], block)

    def __iter__(self):
        return (k for k, _ in self.items())

    def __len__(self) -> int:
        return sum(1 for k in self._root if k in self._bc.blocks)


class LeanSessionState(SessionState):
    """Gradio's SessionState (gr.State values, components updated by events) without a copy of the page's config."""

    def __init__(self, blocks):  # noqa: D107 - no super().__init__: that is the ~800 KB copy this class avoids
        self.blocks_config = copy.copy(blocks.default_config)     # shallow, as Gradio does (~20 KB)
        self.config_values = _DerivedConfigs(self.blocks_config, tuple(blocks.blocks))
        self.state_data = {}
        self._state_ttl = {}
        self.is_closed = False
        self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600


# ---------------------------------------------------------------- the bounded holder

class _Policy:
    """What install() attaches to a demo: the per-address buckets and, once launched, the holder."""

    def __init__(self, demo):
        self.demo = demo
        self.holder: BoundedStateHolder | None = None
        self.lock = threading.Lock()
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()   # address -> (tokens, at)
        self.pending_owner: dict[str, str | None] = {}
        self.refused = 0

    def take_new_session(self, ip: str | None, now: float | None = None) -> bool:
        """Spend one of ip's new-session tokens; False when the address has used them all this minute."""
        rate = limits()["new_per_ip_per_min"]
        if rate <= 0 or not ip:
            return True
        now = time.monotonic() if now is None else now
        with self.lock:
            tokens, at = self.buckets.pop(ip, (rate, now))
            tokens = min(rate, tokens + (now - at) * rate / 60.0)
            ok = tokens >= 1.0
            self.buckets[ip] = (tokens - 1.0 if ok else tokens, now)
            while len(self.buckets) > _MAX_ADDRESSES:
                self.buckets.popitem(last=False)
            return ok


class BoundedStateHolder(StateHolder):
    """Gradio's StateHolder; for a demo that went through install(), with the limits above. Gradio makes one per
    App (routes.App.__init__), for every Blocks; one without install()'s policy keeps Gradio's behaviour."""

    _policy: _Policy | None = None

    def set_blocks(self, blocks) -> None:
        super().set_blocks(blocks)
        policy = getattr(blocks, "_playground_sessions", None)
        if policy is not None:
            self._policy = policy
            self.owner: dict[str, str | None] = {}     # session -> the address that opened it (None: another route)
            self.evicted = 0
            policy.holder = self
            self.capacity = limits()["max_sessions"]

    def __getitem__(self, session_id: str) -> SessionState:
        if self._policy is None:
            return super().__getitem__(session_id)
        with self.lock:
            state = self.session_data.get(session_id)
            if state is None:
                state = self.session_data[session_id] = LeanSessionState(self.blocks)
                self.owner[session_id] = self._policy.pending_owner.get(session_id)
            else:
                self.session_data.move_to_end(session_id)
            self.time_last_used[session_id] = datetime.datetime.now()
            if len(self.session_data) > limits()["max_sessions"]:
                self._evict(keep=session_id)
        return state

    def update(self, session_id: str) -> None:
        if self._policy is None:
            return super().update(session_id)
        with self.lock:
            if session_id in self.session_data:
                self.session_data.move_to_end(session_id)

    def _busy(self) -> set[str]:
        """Sessions with an event waiting or running: never evicted (their run would lose its state)."""
        queue = getattr(self.blocks, "_queue", None)
        if queue is None:
            return set()
        events = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
        events += [e for job in queue.active_jobs if job for e in job]
        return {getattr(e, "session_hash", None) for e in events}

    def _victim(self, keep: str) -> str | None:
        lim = limits()
        busy = self._busy() | {keep}
        now = datetime.datetime.now()
        spend: Counter = Counter()
        for sid in self.session_data:                       # least recently used first
            if sid in busy:
                continue
            used = self.time_last_used.get(sid)
            if self.owner.get(sid) is None or used is None or (now - used).total_seconds() > lim["idle_s"]:
                return sid
            spend[self.owner[sid]] += 1
        if not spend:
            return None
        biggest = max(spend.values())
        return next(sid for sid in self.session_data
                    if sid not in busy and spend.get(self.owner.get(sid)) == biggest)

    def _evict(self, keep: str) -> None:
        while len(self.session_data) > limits()["max_sessions"]:
            sid = self._victim(keep)
            if sid is None:       # everything else is running: go over the cap (bounded by the queue's own size)
                return
            self.delete_state(sid)
            self.session_data.pop(sid, None)
            self.time_last_used.pop(sid, None)
            self.owner.pop(sid, None)
            self.evicted += 1


# ---------------------------------------------------------------- install

def _assigned_fields(fn) -> set[str]:
    return set(re.findall(r"self\.(\w+)\s*(?::[^=\n]+)?=(?!=)", inspect.getsource(fn)))


def _check_gradio() -> None:
    """Fail at start, loudly, where the Gradio internals this module relies on are not what it was written for."""
    problems = []
    if _assigned_fields(state_holder.SessionState.__init__) != _SESSION_FIELDS:
        problems.append(f"SessionState.__init__ now sets {sorted(_assigned_fields(SessionState.__init__))}")
    probe = StateHolder()
    for name in ("session_data", "time_last_used", "lock", "capacity"):
        if not hasattr(probe, name):
            problems.append(f"StateHolder has no {name}")
    if routes.StateHolder not in (StateHolder, BoundedStateHolder) or \
            "StateHolder()" not in inspect.getsource(routes.App.__init__):
        problems.append("routes.App no longer makes its StateHolder from gradio.routes.StateHolder")
    if "config_for_block" not in inspect.getsource(SessionState._update_config):
        problems.append("SessionState._update_config no longer uses config_for_block")
    if problems:
        raise RuntimeError("ui.sessions was written for Gradio 6.31's session internals: " + "; ".join(problems))


def install(demo) -> None:
    """Bound demo's sessions (call after demo.queue() and admission.install(demo), before launch)."""
    if getattr(demo, "_playground_sessions", None) is not None:
        return
    _check_gradio()
    from ui import cache_files, queue_bounds, queue_cancel

    policy = demo._playground_sessions = _Policy(demo)
    demo.state_session_capacity = limits()["max_sessions"]
    routes.StateHolder = BoundedStateHolder      # the App that launch() makes; inert for a Blocks without a policy
    queue = demo._queue
    push = queue.push

    async def session_push(body, request, username):
        sid, ip = getattr(body, "session_hash", None), admission.client_ip(request)
        holder = policy.holder
        if sid and holder is not None and sid not in holder.session_data:
            if not policy.take_new_session(ip):
                policy.refused += 1
                return False, render("queue.new_sessions", {"limit": limits()["new_per_ip_per_min"]},
                                     request_language(request)), "error"
            policy.pending_owner[sid] = ip       # Gradio makes the session inside push (route_utils.get_fn)
        try:
            return await push(body, request, username)
        finally:
            if sid:
                policy.pending_owner.pop(sid, None)
                if holder is not None and sid in holder.session_data and holder.owner.get(sid) is None:
                    holder.owner[sid] = ip

    queue.push = session_push
    queue_bounds.install(demo)
    queue_cancel.install()  # an event cancelled before it starts gives its place back (ui/queue_cancel.py)
    cache_files.install()   # a picture two visitors get is written once, atomically (ui/cache_files.py)
    _attribute_files(demo)


# ---------------------------------------------------------------- whose temp files (core/tempfiles.py)

def _file_paths(value, out: list, depth: int = 0) -> list:
    """Every "path" of a FileData-like dict in a request's inputs (uploads the request uses)."""
    if depth > 6:
        return out
    if isinstance(value, dict):
        if isinstance(value.get("path"), str):
            out.append(value["path"])
        for v in value.values():
            if isinstance(v, (dict, list, tuple)):
                _file_paths(v, out, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _file_paths(v, out, depth + 1)
    return out


def _attribute_files(demo) -> None:
    """Temp files get an owner, (address, session): each event runs with tempfiles.set_owner (so its run_dir()
    folders are its visitor's) and claims the uploads it uses and the files it returns. And Gradio's example
    files (keep_in_cache, copied into the temp folder when the page was built) are never pruned. Each event also
    runs in its request's language (core.i18n.speaking), its inputs' preprocessing included."""
    tempfiles.keep(p for block in demo.blocks.values() for p in getattr(block, "keep_in_cache", ()))
    process_api = demo.process_api
    sig = inspect.signature(process_api)
    if not {"inputs", "request", "session_hash"} <= set(sig.parameters):
        raise RuntimeError("ui.sessions was written for Gradio 6.31's Blocks.process_api(inputs, request, "
                           f"session_hash, ...); this Gradio has {list(sig.parameters)}")

    async def owned_process_api(*args, **kwargs):
        bound = sig.bind_partial(*args, **kwargs).arguments
        request = bound.get("request")
        request = request[0] if isinstance(request, list) and request else request
        session = bound.get("session_hash") or getattr(request, "session_hash", None) or ""
        owner = (admission.client_ip(request) or "", session)
        token = tempfiles.set_owner(owner)
        try:
            tempfiles.claim(_file_paths(bound.get("inputs"), []), owner)
            # The whole event speaks the request's language, also while Gradio prepares its inputs (a component's
            # preprocess: a sketchpad's bounds, a pasted item that is no picture), before it sets the request
            # around the event's function (docs/language.md)
            with speaking(request_language(request)) if request is not None else contextlib.nullcontext():
                result = await process_api(*args, **kwargs)
            # Gradio copies a returned file into its cache (<sha256>/<name>) and serves that copy: the
            # visitor's download is the copy, so it is theirs too, a result just handed out (pruned last, and
            # touched: the same content returned again is a new result, not an old file)
            tempfiles.claim(_file_paths(result.get("data") if isinstance(result, dict) else None, []), owner,
                            result=True)
            return result
        finally:
            tempfiles.reset_owner(token)

    demo.process_api = owned_process_api
