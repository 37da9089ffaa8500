"""Issue #26 items 1, 3 and 6: drawing on Classify's sketchpad. A big digit drawn on the pad is read as a digit, never
turned away as a photo (API and Chromium); a stroke is read at a bounded rate with one request per reading and the
final drawing always read (Chromium, requests counted); on a 414 px phone every tab can be found and the answer is
on screen while drawing. Screenshots: test-artifacts/classify_drawing_*.png. Timing: bench/bench_drawing.py."""
from __future__ import annotations

import base64
import io
import math
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.conftest import ARTIFACTS, open_tab

PAD = 400                                    # ui/classify.py: canvas_size=(400, 400), a white canvas
LIVE_MS = 400                                # app.JS: at most one reading per LIVE_MS while a stroke is drawn
LABEL_JS = "document.querySelector('#prediction h2, #prediction .output-class')?.innerText.trim() || ''"

# (box of the 0 on the 400 px pad, brush width): the tab's brush is 28 px
ZEROS = {
    "whole_pad_thick": ((8, 8, 392, 392), 70),     # its ink covers 50% of the pad: "covers too much" before
    "whole_pad_brush": ((14, 10, 386, 390), 28),   # the tab's own brush, across the whole pad
    "narrow_thick": ((70, 4, 330, 396), 56),
    "whole_pad_thin": ((6, 6, 394, 394), 12),
    "off_centre": ((150, 130, 398, 398), 40),      # big, in the lower right corner
    "corner_thin": ((0, 0, 260, 300), 14),
}


def pad_sketch(box, width: int) -> dict[str, np.ndarray]:
    """A 0 as the sketchpad sends it: an opaque white background, black ink on a transparent layer, and their
    composite (RGBA, 400x400)."""
    ink = Image.new("L", (PAD, PAD), 0)
    ImageDraw.Draw(ink).ellipse(box, outline=255, width=width)
    a = np.asarray(ink)
    layer = np.zeros((PAD, PAD, 4), np.uint8)
    layer[..., 3] = a
    composite = np.full((PAD, PAD, 4), 255, np.uint8)
    composite[..., :3] = 255 - a[..., None]
    return {"background": np.full((PAD, PAD, 4), 255, np.uint8), "layers": [layer], "composite": composite}


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


# ---- item 1: the photo check and a drawing --------------------------------------------------------------------

def test_photo_rules_never_refuse_a_drawing_but_still_see_colour():
    from skimage import data

    from zoo.images import photo_reasons

    big = pad_sketch(*ZEROS["whole_pad_thick"])
    assert "foreground" in " ".join(photo_reasons(big))           # what turned the big 0 away
    for box, width in ZEROS.values():
        assert photo_reasons(pad_sketch(box, width), drawn=True) == []
    # a photo an API client sends as a sketch is still a photo (it has colour; the pad's brush is black)
    assert photo_reasons(data.astronaut(), drawn=True) == ["it has many colours"]


@pytest.mark.parametrize("case", list(ZEROS))
def test_big_zeros_through_the_sketch_api_are_read_as_digits(client, tmp_path, case):
    from gradio_client import handle_file

    sketch = pad_sketch(*ZEROS[case])
    files = {}
    for key in ("background", "composite"):
        files[key] = tmp_path / f"{key}.png"
        files[key].write_bytes(_png(sketch[key]))
    (tmp_path / "layer.png").write_bytes(_png(sketch["layers"][0]))
    value = {"background": handle_file(str(files["background"])), "layers": [handle_file(str(tmp_path / "layer.png"))],
             "composite": handle_file(str(files["composite"]))}
    label, _seen, _table, _code, summary = client.predict(value, "resnet_digits", 3, api_name="/classify_sketch")
    assert label["label"] == "0", (case, label, summary)
    assert "photo" not in summary


def test_a_drawing_read_from_the_page_is_classified():
    """The tab's own path: the pad's composite as a PNG data URL (app.JS), as the read event receives it."""
    from ui.classify import read_drawing_ui

    def url(arr):
        return "data:image/png;base64," + base64.b64encode(_png(arr)).decode()

    *out, status, last = read_drawing_ui(url(pad_sketch(*ZEROS["whole_pad_brush"])["composite"]), "resnet_digits", 5)
    label, _seen, table, _code, summary = out
    assert max(label, key=label.get) == "0" and not status.visible and last == "sketch"
    assert {row[1] for row in table.value["data"]} == {"0"}, table        # every digits model reads a 0
    assert table.value["headers"][:2] == ["model", "prediction"]         # the page's table: headers in its language
    *out, status, last = read_drawing_ui(url(np.full((PAD, PAD, 4), 255, np.uint8)), "resnet_digits", 5)
    assert out[0] is None and not status.visible and not isinstance(last, str)   # a blank pad: quietly reset
    *out, status, _ = read_drawing_ui("data:image/png;base64,not-base64!", "resnet_digits", 5)
    assert out[0] is None and status.visible and "could not be read" in status.value


# ---- browser helpers ----------------------------------------------------------------------------------------------

def _pad(page):
    """(left, top, side) of the pad's white 400x400 canvas on the screen (it is shown zoomed to fit)."""
    canvas = page.locator("#digit-sketch canvas").last
    canvas.scroll_into_view_if_needed()
    page.wait_for_function("[...document.querySelectorAll('#digit-sketch *')]"
                           ".some(e => !e.childElementCount && /^\\d+%$/.test((e.textContent || '').trim()))")
    zoom = page.evaluate("[...document.querySelectorAll('#digit-sketch *')].map(e => e.childElementCount ? '' : "
                         "(e.textContent || '').trim()).find(t => /^\\d+%$/.test(t))")
    box = canvas.bounding_box()
    side = PAD * int(zoom[:-1]) / 100
    return box["x"] + (box["width"] - side) / 2, box["y"] + (box["height"] - side) / 2, side


def _stroke(page, points, steps: int = 2) -> float:
    """One stroke through points given in 0..1 of the pad; its duration in seconds."""
    left, top, side = _pad(page)
    xy = [(left + side * x, top + side * y) for x, y in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    t0 = time.perf_counter()
    for p in xy[1:]:
        page.mouse.move(*p, steps=steps)
    page.mouse.up()
    return time.perf_counter() - t0


def _ready(page):
    open_tab(page, "Classify")                   # the page opens on Start here
    page.wait_for_function("document.querySelector('#prediction')?.innerText.includes('%')", timeout=60_000)
    page.wait_for_timeout(500)


def _label_is(page, digit: str, timeout: int = 30_000):
    page.wait_for_function(f"({LABEL_JS}) === '{digit}'", timeout=timeout)


def _shot(page, name: str, full_page: bool = True):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"classify_drawing_{name}.png"), full_page=full_page)


# ---- item 1 in the browser: a big 0 with the tab's brush ----------------------------------------------------------

def test_a_big_zero_drawn_with_the_brush_gets_a_prediction(page):
    _ready(page)
    circle = [(0.5 + 0.45 * math.sin(2 * math.pi * i / 48), 0.5 - 0.46 * math.cos(2 * math.pi * i / 48))
              for i in range(50)]
    _stroke(page, circle)
    _label_is(page, "0")
    assert not page.locator("#classify-status").is_visible()
    assert "photo" not in page.locator("#classify-summary").inner_text()
    _shot(page, "big_zero")


# ---- item 3: requests per stroke, the final result --------------------------------------------------------------

def test_a_stroke_is_read_at_a_bounded_rate_with_one_request_per_reading(page):
    _ready(page)
    posts = []
    page.on("request", lambda r: r.method == "POST" and "/gradio_api/" in r.url and posts.append((time.perf_counter(),
                                                                                                    r.url)))
    t0 = time.perf_counter()
    took = _stroke(page, [(0.5, 0.08 + 0.84 * i / 40) for i in range(41)], steps=1)   # a "1", 40 mouse moves
    _label_is(page, "1")
    page.wait_for_timeout(2000)                                   # anything the stroke still had in flight
    joins = [t for t, u in posts if "/queue/join" in u]
    # no uploads (/upload), no sketchpad blobs (/component_server): one POST a reading (a glance still running when
    # the stroke ends is cancelled by the final reading: /cancel and /reset, on a loaded machine)
    others = [u for _, u in posts if "/upload" in u or "/component_server" in u]
    assert not others, others
    assert 1 <= len(joins) <= took / (LIVE_MS / 1000) + 2, (len(joins), took)   # bounded by the stroke's duration
    during = [t for t in joins if t <= t0 + took]
    assert len(during) <= took / (LIVE_MS / 1000) + 1, (len(during), took)     # at most ~2.5 readings a second


def test_the_final_drawing_is_always_read_last(page):
    """A 7 in two quick strokes: readings of the first stroke may still run when the second ends; the answer shown
    in the end is the whole 7's (always_last: the newest reading runs last)."""
    _ready(page)
    _stroke(page, [(0.15 + 0.7 * i / 10, 0.12) for i in range(11)])
    _stroke(page, [(0.85 - 0.45 * i / 12, 0.12 + 0.8 * i / 12) for i in range(13)])
    _label_is(page, "7")
    page.wait_for_timeout(2500)                                   # no late reading of the first stroke overwrites it
    assert page.evaluate(LABEL_JS) == "7"
    assert "says 7" in page.locator("#classify-summary").inner_text()


# ---- item 6: a 414 px phone ---------------------------------------------------------------------------------------

@pytest.fixture
def phone(browser, app_url):
    ctx = browser.new_context(viewport={"width": 414, "height": 896}, device_scale_factor=1, has_touch=False)
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(app_url, wait_until="domcontentloaded")
    pg.wait_for_selector(".gradio-container", state="visible")
    yield pg
    ctx.close()


def test_on_a_phone_every_tab_can_be_found(phone):
    pg = phone
    _ready(pg)
    bar = pg.locator(".tab-container[role=tablist]").first
    tabs = bar.locator("[role=tab]")
    titles = [t.inner_text().strip() for t in tabs.all()]
    import app

    assert titles == [t for t, _ in app.TABS]                        # all nine in the bar itself
    assert not pg.locator(".overflow-menu > button").locator("visible=true").count()   # no "..." menu
    for t in tabs.all():
        box = t.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 414 and box["y"] + box["height"] <= 896, box
    _shot(pg, "414_tabs", full_page=False)
    tabs.last.click()
    pg.wait_for_function("document.querySelector('.tab-container[role=tablist] [role=tab]:last-child')"
                         "?.getAttribute('aria-selected') === 'true'")
    # Look inside's own tabs too: all five in their bar, none behind Gradio's "..." menu
    inner = pg.locator("#main-tabs > .tabitem[role=tabpanel]:visible .wrap-tabs > .tab-wrapper"
                       " > .tab-container[role=tablist]").last
    names = [t.inner_text().strip() for t in inner.locator("[role=tab]").all()]
    assert names == ["Activations", "Attribution", "Weights", "Compare checkpoints", "Summary"], names
    assert not pg.locator(".overflow-menu > button").locator("visible=true").count()
    for t in inner.locator("[role=tab]").all():
        box = t.bounding_box()
        assert box and box["width"] > 0 and box["x"] >= 0 and box["x"] + box["width"] <= 414, box


def test_on_a_phone_the_answer_is_on_screen_while_drawing(phone):
    pg = phone
    _ready(pg)
    _stroke(pg, [(0.5, 0.1 + 0.8 * i / 12) for i in range(13)])        # a "1"
    _label_is(pg, "1")
    pg.wait_for_function("document.querySelector('#classify-guess')?.innerText.includes('1')")
    guess = pg.locator("#classify-guess").bounding_box()
    pad = pg.locator("#digit-sketch").bounding_box()
    assert guess["y"] >= 0 and guess["y"] + guess["height"] <= 896, guess      # in the viewport with the pad
    assert pad["y"] < 896 and guess["y"] - (pad["y"] + pad["height"]) < 80, (pad, guess)  # right under the pad
    assert "Prediction: 1" in pg.locator("#classify-guess").inner_text()
    _shot(pg, "414_prediction", full_page=False)


def test_the_answer_line_is_only_for_narrow_screens(page):
    _ready(page)
    assert not page.locator("#classify-guess").is_visible()          # 1300 px: the Prediction box is beside the pad
