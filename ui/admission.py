"""Who may join the queue: each visitor holds only a few waiting or running requests, so no one fills it for all.

Gradio's queue has one global size cap (app.QUEUE_MAX_SIZE): a single script posting to /queue/join fills it
and every other visitor gets "Queue is full". install() wraps the queue's push so that a request is refused,
with a message that says why, when its session already has PLAYGROUND_MAX_QUEUED_PER_SESSION requests
waiting or running (default 4: a visitor clicking through tabs never meets it). Behind a Space's proxy, where
each visitor arrives from their own address, PLAYGROUND_MAX_QUEUED_PER_IP (default 16 there, off elsewhere:
locally every visitor is 127.0.0.1) also bounds a script that makes up a new session hash per request.
"""
from __future__ import annotations

import os

from zoo.space import on_space

DEFAULT_PER_SESSION = 4
DEFAULT_PER_IP_ON_SPACE = 16


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def limits() -> dict:
    return {"per_session": _env_int("PLAYGROUND_MAX_QUEUED_PER_SESSION", DEFAULT_PER_SESSION),
            "per_ip": _env_int("PLAYGROUND_MAX_QUEUED_PER_IP", DEFAULT_PER_IP_ON_SPACE if on_space() else 0)}


def client_ip(request) -> str | None:
    """The visitor's address: the proxy's X-Forwarded-For on a Space (its first hop is the visitor), else the
    socket peer. Off a Space the header is not trusted (anyone can send it)."""
    if request is None:
        return None
    if on_space():
        fwd = request.headers.get("x-forwarded-for", "")
        if fwd:
            return fwd.split(",")[0].strip()
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


def _in_flight(queue) -> list:
    """Every event now waiting in a concurrency group's queue or running on a worker."""
    events = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
    events += [e for job in queue.active_jobs if job for e in job]
    return events


def refusal(queue, session: str | None, ip: str | None) -> str | None:
    """Why this request may not join now (None: it may)."""
    lim = limits()
    events = _in_flight(queue)
    if session and lim["per_session"] > 0:
        mine = sum(1 for e in events if e.session_hash == session)
        if mine >= lim["per_session"]:
            return (f"You already have {mine} requests waiting or running (the limit is {lim['per_session']} per "
                    "visitor, so that everyone gets a turn). Wait for one to finish, then try again.")
    if ip and lim["per_ip"] > 0:
        from_ip = sum(1 for e in events if client_ip(getattr(e, "request", None)) == ip)
        if from_ip >= lim["per_ip"]:
            return (f"Your address already has {from_ip} requests waiting or running (the limit is {lim['per_ip']}). "
                    "Wait for one to finish, then try again.")
    return None


def install(demo) -> None:
    """Wrap demo's queue (after demo.queue()) with the per-visitor admission check."""
    # The caps below only see the queue: a queued event run through Gradio's REST routes (api_open) would pass
    # them by. app.build_app closes those routes in demo.queue(); keep them closed whoever calls install().
    demo.api_open = False
    queue = demo._queue
    if getattr(queue, "_playground_admission", False):
        return
    push = queue.push

    async def admitted_push(body, request, username):
        why = refusal(queue, getattr(body, "session_hash", None), client_ip(request))
        if why is not None:
            # "error" (HTTP 400 with the reason as detail): the browser shows the detail; for "queue_full" (503)
            # it would show only a generic "busy" line, and a visitor would not learn why or what to do.
            return False, why, "error"
        return await push(body, request, username)

    queue.push = admitted_push
    queue._playground_admission = True
