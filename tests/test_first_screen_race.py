"""A first screen that arrives late never overwrites what the visitor asked for meanwhile
(ui.first_screens.never_overwritten): in the app's config, every event a visitor starts that writes a first
screen's outputs cancels it; in a browser, with the Data tab's first screen made slow on purpose (as a busy server
makes it), Encode's table stays, and the other sections (first screens of their own) still get theirs."""
from __future__ import annotations

import time

import gradio as gr
import pytest

from tests.conftest import free_port
from tests.test_errors_ui import ENCODED, encode_1_2_0

SLOW_S = 6.0


# what a visitor's own action fires (a "change" fires on any event's output too)
VISITORS_OWN = {"click", "upload", "clear", "release", "input", "submit", "select"}


def _root(deps: dict, dep: dict) -> dict:
    while dep["trigger_after"] is not None:
        dep = deps[dep["trigger_after"]]
    return dep


def test_every_visitor_event_that_writes_a_first_screens_outputs_cancels_it(app_demo):
    """Read from the config the page gets (what its JavaScript acts on), not from our own bookkeeping."""
    config = app_demo.config
    deps = {d["id"]: d for d in config["dependencies"]}
    firsts = [deps[i] for i in app_demo._playground_first_screens if deps[i]["queue"] is not False]
    names = {f["api_name"] for f in firsts}
    assert {"first_screen", "first_visit", "data_first_screen_one_hot", "data_first_screen_dataloader"} <= names
    cancelled: dict[tuple, set] = {}
    for d in deps.values():
        for target in d["targets"]:
            cancelled.setdefault(tuple(target), set()).update(d.get("cancels") or [])
    comps = {c["id"]: c for c in config["components"]}
    switch = next(c["id"] for c in config["components"] if c["props"].get("elem_id") == "playground-language-switch")
    first_triggers = {tuple(t) for f in firsts for t in f["targets"]}
    checked, missing = 0, []
    for first in firsts:
        for d in deps.values():
            if d["id"] == first["id"] or not set(first["outputs"]) & set(d["outputs"]):
                continue
            for block, event in (tuple(t) for t in _root(deps, d)["targets"]):
                if (block, event) in first_triggers or block == switch or event not in VISITORS_OWN \
                        or comps[block]["type"] == "tabitem" or comps[block]["props"].get("visible") is False:
                    continue
                checked += 1
                if first["id"] not in cancelled.get((block, event), ()):
                    missing.append((first["api_name"], d["api_name"], block, event))
    assert checked > 30 and not missing, missing


@pytest.fixture(scope="module")
def slow_data_tab():
    from ui import data
    from ui.common import Place

    shown = data.first_screen()   # computed now, so only the sleep below makes it late

    def slow_first_screen():
        time.sleep(SLOW_S)
        return shown

    saved, data.first_screen = data.first_screen, slow_first_screen
    try:
        with gr.Blocks() as demo:
            data.build_tab(Place(demo=demo))
        import app

        demo.launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs(host="127.0.0.1", port=free_port()))
        yield demo.local_url.rstrip("/")
    finally:
        data.first_screen = saved
        demo.close()


def test_a_late_first_screen_leaves_the_visitors_result_and_fills_the_rest(browser, slow_data_tab):
    ctx = browser.new_context(viewport={"width": 1300, "height": 1100})
    page = ctx.new_page()
    try:
        page.goto(slow_data_tab, wait_until="domcontentloaded")
        encode_1_2_0(page, 60_000)
        # the augmentation's first screen arrives (it was not cancelled), after the one-hot's would have
        page.wait_for_function("document.querySelectorAll('#aug-gallery img').length > 0", timeout=60_000)
        page.wait_for_timeout(1500)
        assert page.evaluate(ENCODED), "the first screen's 1, 2, 0, 3, 2 replaced the visitor's one-hot table"
    finally:
        ctx.close()
