"""Who may join the queue: each visitor holds only a few waiting or running requests, so no one fills it for all.

Gradio's queue has one global size cap (app.QUEUE_MAX_SIZE): a single script posting to /queue/join fills it
and every other visitor gets "Queue is full". install() wraps the queue's push so that a request is refused,
with a message that says why, when its session already has PLAYGROUND_MAX_QUEUED_PER_SESSION requests
waiting or running (default 8: a visitor clicking through tabs never meets it). The page's own load events
(the first screens, the language: page_load_fns) are not the visitor's requests and do not use that share, or a
visitor who clicks while their page is still loading on a busy server would be refused; each of them may be in
flight only once per session instead, which bounds them as tightly. Behind a Space's proxy, where
each visitor arrives from their own address, PLAYGROUND_MAX_QUEUED_PER_IP (default 16 there, off elsewhere:
locally every visitor is 127.0.0.1) also bounds a script that makes up a new session hash per request.
"""
from __future__ import annotations

import ipaddress

from core.settings import settings
from zoo.space import on_space

DEFAULT_PER_IP_ON_SPACE = 16


def limits() -> dict:
    s = settings()
    per_ip = s.max_queued_per_ip
    return {"per_session": s.max_queued_per_session,
            "per_ip": (DEFAULT_PER_IP_ON_SPACE if on_space() else 0) if per_ip is None else per_ip}


# Addresses of the hosting network's own machines (RFC 1918, shared address space RFC 6598, loopback, link-local,
# IPv6 unique-local): where a proxy inside the Space's infrastructure sits, never a visitor from the internet.
INTERNAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "::1/128", "fc00::/7", "fe80::/10"))


def _internal(host: str) -> bool:
    """A hop inside the hosting network. Anything that is not an IP address is not internal."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(addr.version == net.version and addr in net for net in INTERNAL_NETWORKS)


def _forwarded_client(header: str) -> str | None:
    """The visitor's address in an X-Forwarded-For header written by a trusted proxy chain.

    Each proxy APPENDS the address it received the request from; everything to the left of that comes from the
    visitor, who can send their own X-Forwarded-For with any addresses in it (the Spaces proxy keeps it and
    appends). So the entry to trust is the rightmost one the proxies wrote: walk from the right past the hosting
    network's own hops (internal addresses, should the Space sit behind more than one proxy) to the first outside
    address, which the outermost proxy appended. This is uvicorn's rule for a trusted proxy
    (ProxyHeadersMiddleware: "the first untrusted host", read right to left) and MDN's for X-Forwarded-For.
    Taking the FIRST entry instead lets a visitor pick any address: escape the per-address cap with a new one per
    request, or fill someone else's."""
    hops = [h.strip() for h in header.split(",")]
    hops = [h for h in hops if h]
    for host in reversed(hops):
        if not _internal(host):
            return host
    return hops[-1] if hops else None      # only internal hops: the nearest one is what the proxy saw


def client_ip(request) -> str | None:
    """The visitor's address (THE one function for it: admission and the sandbox's per-address caps).

    On a Space (zoo.space.on_space) the container's peer is the Space's proxy, an internal address shared by every
    visitor, and the visitor is the address that proxy appended to X-Forwarded-For (see _forwarded_client).
    Elsewhere the socket peer as uvicorn reports it: uvicorn already replaces a loopback peer (a --share tunnel, a
    local reverse proxy) by the rightmost outside X-Forwarded-For entry (FORWARDED_ALLOW_IPS, default 127.0.0.1),
    and takes no header from any other peer, so a visitor on the LAN cannot name themselves either."""
    if request is None:
        return None
    if on_space():
        headers = getattr(request, "headers", None) or {}
        # Several X-Forwarded-For lines are one list (RFC 9110 5.3); Starlette's get() would return only the first.
        lines = headers.getlist("x-forwarded-for") if hasattr(headers, "getlist") else [headers.get("x-forwarded-for")]
        visitor = _forwarded_client(",".join(v for v in lines if v))
        if visitor:
            return visitor
    client = getattr(request, "client", None)
    return getattr(client, "host", None)


def _in_flight(queue) -> list:
    """Every event now waiting in a concurrency group's queue or running on a worker."""
    events = [e for q in queue.event_queue_per_concurrency_id.values() for e in q.queue]
    events += [e for job in queue.active_jobs if job for e in job]
    return events


def page_load_fns(demo) -> frozenset[int]:
    """The events a page load fires by itself (demo.load, and what follows one with .then): the fn ids."""
    from ui.first_screens import chain_root

    fns = demo.fns
    return frozenset(i for i, fn in fns.items() if any(event == "load" for _, event in chain_root(fns, fn).targets))


def _fn_id(event) -> int | None:
    return getattr(getattr(event, "fn", None), "_id", None)


def refusal(queue, session: str | None, ip: str | None, language: str | None = None, fn_id: int | None = None,
            page_load: frozenset[int] = frozenset()) -> str | None:
    """Why this request (of the event `fn_id`) may not join now (None: it may), in `language` (None: English, or the
    event's). Events in `page_load` count once per session each, not against the visitor's share."""
    from core.errors import render

    lim = limits()
    events = _in_flight(queue)
    if session and lim["per_session"] > 0:
        mine = [e for e in events if e.session_hash == session]
        if fn_id is not None and fn_id in page_load:
            if any(_fn_id(e) == fn_id for e in mine):
                return render("queue.page_load_twice", {}, language)
        else:
            held = sum(1 for e in mine if _fn_id(e) not in page_load)
            if held >= lim["per_session"]:
                return render("queue.per_visitor", {"held": held, "limit": lim["per_session"]}, language)
    if ip and lim["per_ip"] > 0:
        from_ip = sum(1 for e in events if client_ip(getattr(e, "request", None)) == ip)
        if from_ip >= lim["per_ip"]:
            return render("queue.per_address", {"held": from_ip, "limit": lim["per_ip"]}, language)
    return None


# ---------------------------------------------------------------- what a sketchpad may send
# Gradio's sketchpad (gr.ImageEditor) sends its pictures before the event, to /component_server's accept_blobs,
# which keeps every blob in memory under an id the client picks until an event names that id, grows a layer list
# to whatever index it is given ([None] * index), and decodes background, composite and every layer with Pillow
# before our code runs. The app's sketchpads are 300-400 px canvases with one layer; these bounds leave a browser
# at three times that (a high-density screen) far inside them.
MAX_SKETCH_LAYERS = 4
MAX_SKETCH_PIXELS = 4_000_000          # per picture: 2000 x 2000
MAX_SKETCH_BLOB_BYTES = 8 << 20
MAX_PENDING_SKETCH_BYTES = 64 << 20    # blobs waiting for their event, per sketchpad (oldest dropped first)


def _sketch_picture_ok(data_or_path) -> str | None:
    """Why a sketchpad picture is refused before Pillow decodes it (None: it may be decoded)."""
    from core.errors import render, text_of
    from zoo.images import ImageInputError, probe

    try:
        _, w, h = probe(data_or_path)
    except ImageInputError as exc:
        return text_of(exc)
    if w * h > MAX_SKETCH_PIXELS:
        return render("image.sketch_too_large", {"width": w, "height": h, "limit": MAX_SKETCH_PIXELS})
    return None


def bound_sketchpad(block) -> None:
    """Bound what one gr.ImageEditor/Sketchpad accepts and decodes (see MAX_SKETCH_*): its accept_blobs and its
    preprocess, wrapped on the instance (Gradio looks both up by attribute, for every session)."""
    import gradio as gr
    from fastapi import HTTPException

    from core.errors import render

    accept, preprocess = block.accept_blobs, block.preprocess
    pending = block.blob_storage             # {id: EditorDataBlobs}, insertion-ordered

    def accept_blobs(data):
        body = data.data
        raw = body.get("index")
        index = int(raw) if raw not in (None, "", "null") and str(raw).lstrip("-").isdigit() else None
        if body.get("type") not in ("layer", "background", "composite") or (
                body.get("type") == "layer" and (index is None or not 0 <= index < MAX_SKETCH_LAYERS)):
            raise HTTPException(status_code=400, detail=render("image.sketch_layers", {"limit": MAX_SKETCH_LAYERS}))
        blob = data.files[0][1] if data.files else b""
        if len(blob) > MAX_SKETCH_BLOB_BYTES:
            raise HTTPException(status_code=413, detail=render("image.sketch_blob_too_large"))
        why = _sketch_picture_ok(blob)
        if why:
            raise HTTPException(status_code=400, detail=why)
        result = accept(data)
        held = lambda b: sum(len(x or b"") for x in [b.background, b.composite, *b.layers])  # noqa: E731
        while len(pending) > 1 and sum(held(b) for b in pending.values()) > MAX_PENDING_SKETCH_BYTES:
            pending.pop(next(iter(pending)))        # the oldest sketch nobody sent an event for
        return result

    def bounded_preprocess(payload):
        if payload is not None and getattr(payload, "id", None) is None:
            layers = list(getattr(payload, "layers", None) or [])
            if len(layers) > MAX_SKETCH_LAYERS:
                raise gr.Error(render("image.sketch_layers", {"limit": MAX_SKETCH_LAYERS}), print_exception=False)
            for f in [payload.background, payload.composite, *layers]:
                path = getattr(f, "path", None)
                why = _sketch_picture_ok(path) if path else None
                if why:
                    raise gr.Error(why, print_exception=False)
        return preprocess(payload)

    accept_blobs._is_server_fn = True        # what gradio.components.base.server marks; /component_server checks it
    block.accept_blobs = accept_blobs
    block.preprocess = bounded_preprocess


def _check_gradio(demo) -> None:
    """Fail at start, loudly, where the Gradio internals this module relies on are not what it was written for
    (Gradio 6.31; pyproject pins gradio==6.31.*, and ui.sessions and ui.queue_bounds check theirs the same way):
    a silent mismatch would leave the queue, the REST routes or the sketchpads unbounded on a public server."""
    import inspect

    import gradio as gr
    from gradio import queueing, routes

    problems = []
    queue = getattr(demo, "_queue", None)
    if not isinstance(queue, queueing.Queue):
        problems.append("Blocks._queue is not a gradio.queueing.Queue")
    else:
        if not isinstance(getattr(queue, "event_queue_per_concurrency_id", None), dict):
            problems.append("Queue.event_queue_per_concurrency_id is gone")
        if not isinstance(getattr(queue, "active_jobs", None), list):
            problems.append("Queue.active_jobs is gone")
    if list(inspect.signature(queueing.Queue.push).parameters) != ["self", "body", "request", "username"]:
        problems.append("Queue.push no longer takes (body, request, username)")
    if not {"queue"} <= _assigned(queueing.EventQueue.__init__):
        problems.append("EventQueue no longer keeps its events in .queue")
    if not {"session_hash", "request"} <= _assigned(queueing.Event.__init__):
        problems.append("Event no longer keeps session_hash and request")
    source = inspect.getsource(routes)
    if "success, event_id, state = await blocks._queue.push(" not in source:
        problems.append("/queue/join no longer reads (success, message, status) from Queue.push")
    if "not app.get_blocks().api_open and fn.queue" not in source:
        problems.append("the REST routes no longer close on Blocks.api_open")
    if '"_is_server_fn"' not in source:
        problems.append("/component_server no longer checks a function's _is_server_fn")
    if not all(hasattr(gr.ImageEditor, a) for a in ("accept_blobs", "preprocess")) or \
            "blob_storage" not in _assigned(gr.ImageEditor.__init__):
        problems.append("gr.ImageEditor no longer has accept_blobs, preprocess and blob_storage")
    if problems:
        raise RuntimeError(f"ui.admission was written for Gradio 6.31's queue and sketchpad internals (installed: "
                           f"gradio {gr.__version__}): " + "; ".join(problems))


def _assigned(fn) -> set[str]:
    """The attributes a method assigns on self, read from its source."""
    import inspect
    import re

    return set(re.findall(r"self\.(\w+)\s*(?::[^=\n]+)?=(?!=)", inspect.getsource(fn)))


def install(demo) -> None:
    """Wrap demo's queue (after demo.queue()) with the per-visitor admission check, and bound what its sketchpads
    accept (bound_sketchpad)."""
    import gradio as gr

    from ui.i18n import request_language

    _check_gradio(demo)
    for block in demo.blocks.values():
        if isinstance(block, gr.ImageEditor) and not getattr(block, "_playground_bounded", False):
            bound_sketchpad(block)
            block._playground_bounded = True
    # The caps below only see the queue: a queued event run through Gradio's REST routes (api_open) would pass
    # them by. app.build_app closes those routes in demo.queue(); keep them closed whoever calls install().
    demo.api_open = False
    queue = demo._queue
    if getattr(queue, "_playground_admission", False):
        return
    push = queue.push
    page_load = page_load_fns(demo)

    async def admitted_push(body, request, username):
        why = refusal(queue, getattr(body, "session_hash", None), client_ip(request), request_language(request),
                      getattr(body, "fn_index", None), page_load)
        if why is not None:
            # "error" (HTTP 400 with the reason as detail): the browser shows the detail; for "queue_full" (503)
            # it would show only a generic "busy" line, and a visitor would not learn why or what to do.
            return False, why, "error"
        return await push(body, request, username)

    queue.push = admitted_push
    queue._playground_admission = True
