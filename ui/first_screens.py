"""The sandbox tabs' first screens: each tab's default preset, run once per server and language in the background
and shown to every visitor at once (not per visit), in the visitor's language (the table's headers, the status and
the notes are the server's words: one screen per language, both computed by warm()). While the sandbox is still
starting, the page says so and a timer fills the screen in when the result is ready; the page load never waits in
the queue (a waiting event would count against the visitor's share of it), and the visitor's own Run stops the
timer, so it never overwrites their result."""
from __future__ import annotations

import inspect
import threading

import gradio as gr

from core.i18n import LANGUAGES, t
from playground.pool import SandboxUnavailable
from ui.i18n import request_language

CHECK_EVERY_S = 2.0
_COMPUTE: dict[str, object] = {}            # kind -> (language) -> the tab's outputs
_FIRST: dict[tuple[str, str], tuple] = {}   # (kind, language) -> the outputs, once computed
_LOCK = threading.Lock()
_WARMING: list[threading.Thread] = []


_CACHED: list = []   # other tabs' cached first screens (functools.lru_cache'd; no arguments, or a language): warmed too


def cold_start(language: str = "en") -> str:
    """The status while the sandbox starts."""
    return t("sandbox.cold_start", language)


def register(cached) -> None:
    """A tab's own cached first-screen function, computed by warm() with the sandbox tabs'. One that takes a
    `language` is computed in every language."""
    if cached not in _CACHED:
        _CACHED.append(cached)


def _takes_language(fn) -> bool:
    try:
        return "language" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def warm() -> None:
    """Compute every registered first screen now, English first (app.main runs this in the background after
    launch)."""
    for cached in list(_CACHED):
        for language in LANGUAGES if _takes_language(cached) else (None,):
            try:
                cached() if language is None else cached(language=language)
            except Exception:  # noqa: BLE001 - the tab's own load event computes it again and shows any error
                pass
    for language in LANGUAGES:
        for kind, compute in list(_COMPUTE.items()):
            with _LOCK:
                if (kind, language) in _FIRST:
                    continue
                try:
                    _FIRST[(kind, language)] = compute(language)
                except SandboxUnavailable:
                    pass   # the tab keeps its empty screen; Run says why


def _warm_in_background() -> None:
    with _LOCK:
        if _WARMING and _WARMING[-1].is_alive():
            return
        thread = threading.Thread(target=warm, daemon=True, name="first-screens")
        _WARMING.append(thread)
        del _WARMING[:-1]
    thread.start()


def install(place, kind: str, compute, outputs: list, cold, stoppers: list, extra: list = ()) -> None:
    """Show `compute(language)`'s outputs on every page load (place: the tab's ui.common.Place; built alone, no
    page load is wired), in the visitor's language (`cold(language)`'s while the sandbox starts: a status line,
    gr.skip() for the rest). `stoppers`: the events whose own result must not be overwritten (Run, Train, a
    preset): each stops the timer. `extra`: (component, fn(language)) pairs written on every page load (text with
    values that gr.I18n cannot carry)."""
    _COMPUTE[kind] = compute
    timer = gr.Timer(CHECK_EVERY_S, active=False)
    n = len(outputs)
    fixed = [component for component, _ in extra]

    def on_load(request: gr.Request):
        language = request_language(request)
        written = [fn(language) for _, fn in extra]
        if (kind, language) in _FIRST:
            return (*_FIRST[(kind, language)], gr.Timer(active=False), *written)
        _warm_in_background()
        return (*cold(language), gr.Timer(active=True), *written)

    def on_tick(request: gr.Request):
        language = request_language(request)
        if (kind, language) in _FIRST:
            return (*_FIRST[(kind, language)], gr.Timer(active=False), *[gr.skip()] * len(fixed))
        return (*[gr.skip()] * n, gr.skip(), *[gr.skip()] * len(fixed))

    on_load.__name__ = f"{kind}_first_screen"
    on_tick.__name__ = f"{kind}_first_screen_check"
    place.on_load(on_load, None, [*outputs, timer, *fixed], api_visibility="private", queue=False,
                  show_progress="hidden")
    timer.tick(on_tick, None, [*outputs, timer, *fixed], api_visibility="private", queue=False,
               show_progress="hidden")
    for event in stoppers:
        event(lambda: gr.Timer(active=False), None, timer, api_visibility="private", queue=False,
              show_progress="hidden")


# ---------------------------------------------------------------- a late first screen never overwrites a result

def remember(demo, dependency) -> None:
    """A tab's first screen (its page-load or first-visit event, through ui.common.Place), for never_overwritten."""
    if demo is not None and dependency is not None:
        demo.__dict__.setdefault("_playground_first_screens", []).append(dependency["id"])


# The events Gradio fires only when the visitor acts (not "change": any event's output, the language's relabel
# included, fires it; nor a gr.Tab's "select": a tab is selected when it is first shown).
VISITORS_OWN = frozenset({"click", "upload", "clear", "release", "input", "submit", "select"})


def chain_root(fns: dict, fn):
    """The event at the start of fn's chain (the click or load that a .then follows), among demo.fns."""
    while fn.trigger_after is not None:
        fn = fns[fn.trigger_after]
    return fn


def never_overwritten(demo, not_the_visitors=()) -> dict[tuple, set[int]]:
    """Call once every tab is built (app.build_app). A first screen (a queued page-load or first-visit event) can
    arrive late, on a busy server or a cold one; if the visitor has meanwhile asked for something that writes any of
    the same outputs (Encode, Sample, an upload, a slider they moved), the defaults would replace their result. So
    every such visitor event, at the start of its chain (the click, not the .then after it), cancels the first
    screen if it is still waiting or running; one that has finished is left alone. Gradio's own `cancels=` does
    this for one listener; here it is done for all of them, so no tab can forget one. A tab whose sections are
    independent gives each section a first screen of its own (ui/data.py), so that a section's button cancels only
    its own defaults. Counted as the visitor's: the VISITORS_OWN events of a component that is on the page
    (not an API-only endpoint's hidden button), except a tab's select and the blocks in `not_the_visitors` (the
    language switch's hidden button, which only relabels). A chain that starts with a "change" (a visitor's edit,
    or an output another event wrote) is not counted: where it matters, its listener names the first screen
    itself (cancels=..., as the Data tab's example picker does). Returns
    {(block id, event): the first screens it cancels} for what was added."""
    from gradio.events import EventListenerMethod

    fns = demo.fns
    spared = {block._id for block in not_the_visitors}
    firsts = [fns[i] for i in demo.__dict__.get("_playground_first_screens", ()) if fns[i].queue and fns[i].fn]
    first_triggers = {tuple(t) for f in firsts for t in f.targets}
    already: dict[tuple, set[int]] = {}
    for fn in fns.values():
        if fn.is_cancel_function:
            for target in fn.targets:
                already.setdefault(tuple(target), set()).update(fn.cancels or [])
    added: dict[tuple, set[int]] = {}
    for first in firsts:
        mine = {block._id for block in first.outputs}
        for fn in fns.values():
            if fn is first or fn.is_cancel_function or not mine & {block._id for block in fn.outputs}:
                continue
            for block_id, event in chain_root(fns, fn).targets:
                block = demo.blocks.get(block_id)
                if (block is None or event not in VISITORS_OWN or (block_id, event) in first_triggers
                        or isinstance(block, gr.Tab) or getattr(block, "visible", True) is False
                        or block_id in spared
                        or first._id in already.get((block_id, event), ())):
                    continue
                added.setdefault((block_id, event), set()).add(first._id)
                already.setdefault((block_id, event), set()).add(first._id)
    for (block_id, event), cancelled in added.items():   # what gradio.events.set_cancel_events registers
        demo.default_config.set_event_trigger(
            [EventListenerMethod(demo.blocks[block_id], event)], fn=None, inputs=None, outputs=None, queue=False,
            preprocess=False, api_visibility="private", cancels=sorted(cancelled), is_cancel_function=True)
    return added
