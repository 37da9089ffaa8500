"""The sandbox tabs' first screens: each tab's default preset, run once per server in the background and shown
to every visitor at once (not per visit). While the sandbox is still starting, the page says so and a timer
fills the screen in when the result is ready; the page load never waits in the queue (a waiting event would
count against the visitor's share of it), and the visitor's own Run stops the timer, so it never overwrites
their result."""
from __future__ import annotations

import threading

import gradio as gr
from gradio.context import Context

from playground.pool import SandboxUnavailable

COLD_START = ("Starting the sandbox: a fresh Python process is importing torch, torchvision, numpy and matplotlib "
              "(a few seconds, once per server start)...")
CHECK_EVERY_S = 2.0
_COMPUTE: dict[str, object] = {}   # kind -> () -> the tab's outputs
_FIRST: dict[str, tuple] = {}      # kind -> the outputs, once computed
_LOCK = threading.Lock()
_WARMING: list[threading.Thread] = []


_CACHED: list = []   # other tabs' cached first screens (functools.lru_cache'd, no arguments): warmed too


def register(cached) -> None:
    """A tab's own cached first-screen function, computed by warm() with the sandbox tabs'."""
    if cached not in _CACHED:
        _CACHED.append(cached)


def warm() -> None:
    """Compute every registered first screen now (app.main runs this in the background after launch)."""
    for cached in list(_CACHED):
        try:
            cached()
        except Exception:  # noqa: BLE001 - the tab's own load event computes it again and shows any error
            pass
    for kind, compute in list(_COMPUTE.items()):
        with _LOCK:
            if kind in _FIRST:
                continue
            try:
                _FIRST[kind] = compute()
            except SandboxUnavailable:
                pass   # the tab keeps its empty screen; Run says why


def _warm_in_background() -> None:
    with _LOCK:
        if _WARMING and _WARMING[-1].is_alive():
            return
        t = threading.Thread(target=warm, daemon=True, name="first-screens")
        _WARMING.append(t)
        del _WARMING[:-1]
    t.start()


def install(kind: str, compute, outputs: list, status: gr.components.Component, stoppers: list) -> None:
    """Show `compute()`'s outputs on every page load (and its status line while cold). `stoppers`: the events
    whose own result must not be overwritten (Run, Train, a preset): each stops the timer."""
    _COMPUTE[kind] = compute
    timer = gr.Timer(CHECK_EVERY_S, active=False)
    n = len(outputs)
    where = outputs.index(status)

    def on_load():
        if kind in _FIRST:
            return (*_FIRST[kind], gr.Timer(active=False))
        _warm_in_background()
        cold = [gr.skip()] * n
        cold[where] = COLD_START
        return (*cold, gr.Timer(active=True))

    def on_tick():
        if kind in _FIRST:
            return (*_FIRST[kind], gr.Timer(active=False))
        return (*[gr.skip()] * n, gr.skip())

    on_load.__name__ = f"{kind}_first_screen"
    on_tick.__name__ = f"{kind}_first_screen_check"
    Context.root_block.load(on_load, None, [*outputs, timer], api_visibility="private", queue=False,
                            show_progress="hidden")
    timer.tick(on_tick, None, [*outputs, timer], api_visibility="private", queue=False, show_progress="hidden")
    for event in stoppers:
        event(lambda: gr.Timer(active=False), None, timer, api_visibility="private", queue=False,
              show_progress="hidden")
