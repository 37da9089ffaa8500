"""Classify tab in Chromium: draw a digit on the canvas and see the label; load an example. (The first visit, photos,
errors and narrow screens: tests/test_first_visit.py.)"""
import pytest

from tests.conftest import draw, open_tab

# A prediction after a stroke or a click: milliseconds of model time, but Chromium, the server and the tests share a
# busy 2-core CI machine; a bound it always meets (issue #26 item 12).
RESULT_WAIT_MS = 60_000


def _draw_stroke(page, points):
    draw(page, "digit-sketch", points, steps=4)


@pytest.mark.slow
def test_draw_a_one_and_a_seven(page):
    open_tab(page, "Classify")
    page.wait_for_selector("#digit-sketch canvas")
    page.wait_for_timeout(500)
    _draw_stroke(page, [(0.5, 0.0), (0.5, 1.0)])  # a vertical bar: "1" (replacing the first screen's example, a 3)
    page.wait_for_function(
        "document.querySelector('#prediction h2, #prediction .output-class')?.innerText.trim() === '1'",
        timeout=RESULT_WAIT_MS)
    page.get_by_label("Clear canvas").click()
    _draw_stroke(page, [(0.0, 0.0), (1.0, 0.0), (0.35, 1.0)])  # a "7"
    page.wait_for_function(
        "document.querySelector('#prediction h2, #prediction .output-class')?.innerText.trim() === '7'",
        timeout=RESULT_WAIT_MS)


def test_example_digit_is_classified(page):
    open_tab(page, "Classify")
    page.get_by_role("tab", name="Upload").click()
    page.locator("#classify-examples").get_by_text("MNIST test #2 (a 5)", exact=True).click()
    from training.data.datasets import mnist5k

    truth = str(int(mnist5k().test_y[2]))
    assert truth == "5"   # the example's label says what it is
    page.wait_for_function(
        f"document.querySelector('#prediction h2, #prediction .output-class')?.innerText.trim() === '{truth}'",
        timeout=RESULT_WAIT_MS)
    assert "load_model" in page.locator(".cm-content >> visible=true").first.inner_text()   # the tab's code panel


@pytest.mark.slow
def test_changing_the_model_reclassifies_the_drawing(page):
    open_tab(page, "Classify")
    page.wait_for_selector("#digit-sketch canvas")
    page.wait_for_timeout(500)
    _draw_stroke(page, [(0.5, 0.0), (0.5, 1.0)])
    page.wait_for_function("document.querySelector('#classify-summary')?.innerText.includes('resnet_digits says 1')",
                           timeout=RESULT_WAIT_MS)
    page.locator("#model-choice input").click()
    page.get_by_role("option", name="VGG (digits)  [vgg_digits]").click()
    page.wait_for_function("document.querySelector('#classify-summary')?.innerText.includes('vgg_digits says 1')",
                           timeout=RESULT_WAIT_MS)
