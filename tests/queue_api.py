"""Gradio's queue API spoken by hand, as an attacker would: any event by its index, private ones included, under
any session hash (gradio_client only calls named, public endpoints)."""
from __future__ import annotations

import json
import time

import httpx


def fn_index(demo, name: str) -> int:
    """The index of the event whose Python function is called `name` (what the browser sends as fn_index)."""
    hits = [i for i, fn in demo.fns.items() if getattr(fn, "name", None) == name]
    if len(hits) != 1:
        raise LookupError(f"{len(hits)} events run a function named {name!r}")
    return hits[0]


def join(url: str, index: int, data: list, session: str, oauth_token: str | None = None,
         timeout: float = 10.0) -> httpx.Response:
    """POST /queue/join: put one event in the queue (returns the raw response: 200 with an event id, or refused)."""
    body = {"data": data, "fn_index": index, "session_hash": session, "event_data": None, "trigger_id": None}
    if oauth_token is not None:
        body["oauth_token"] = oauth_token
    return httpx.post(f"{url}/gradio_api/queue/join", json=body, timeout=timeout)


def results(url: str, session: str, timeout: float = 60.0) -> list[dict]:
    """Read the session's event stream until it closes; returns the process_completed messages."""
    done = []
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session},
                      timeout=timeout) as r:
        for line in r.iter_lines():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no end of stream within {timeout} s")
            if not line.startswith("data:"):
                continue
            msg = json.loads(line[5:])
            if msg.get("msg") == "process_completed":
                done.append(msg)
            if msg.get("msg") == "close_stream":
                break
    return done


def call(url: str, index: int, data: list, session: str, oauth_token: str | None = None,
         timeout: float = 60.0) -> dict:
    """Join and wait for the one result: {"success": bool, "output": {...}} as Gradio sends it."""
    r = join(url, index, data, session, oauth_token=oauth_token)
    r.raise_for_status()
    msgs = results(url, session, timeout=timeout)
    if not msgs:
        raise RuntimeError("the stream closed without a result")
    return msgs[-1]


def fn_index_by_api_name(url: str, api_name: str) -> int:
    """The fn_index of an event from the public /config, as an attacker finds it: private events are listed
    there too (api_visibility 'private' hides them from the API page, not from the queue)."""
    cfg = httpx.get(f"{url}/config", timeout=30).json()
    hits = [d["id"] for d in cfg["dependencies"] if d.get("api_name") == api_name]
    if len(hits) != 1:
        raise LookupError(f"{len(hits)} events named {api_name!r}")
    return hits[0]
