"""Errors look the same in every tab (issue #26 item 4): the message sits under the input that caused it, in
words about the visitor's input (no exception class names), the outputs are cleared instead of painted red, and
API callers get the same words as an exception."""
from __future__ import annotations

import re

import pytest

from tests.conftest import open_tab

INTERNAL = re.compile(r"\b(ValueError|TypeError|KeyError|test_index|Traceback)\b")


def _error(call) -> str:
    with pytest.raises(Exception) as info:
        call()
    return str(info.value)


def test_api_callers_get_the_words_not_the_internals(client):
    msg = _error(lambda: client.predict("1, x, 3", api_name="/one_hot"))
    assert "whole numbers separated by commas" in msg and not INTERNAL.search(msg), msg
    msg = _error(lambda: client.predict("500", api_name="/one_hot"))
    assert "from 0 to 99" in msg and not INTERNAL.search(msg), msg
    msg = _error(lambda: client.predict(stage1_lr=5.0, max_steps=1, compare_scratch=False, api_name="/finetune"))
    assert "learning rates must be between 1e-7 and 1" in msg and not INTERNAL.search(msg), msg


def test_an_unexpected_error_has_an_id_and_no_internals():
    from ui.common import error_message

    text = error_message(KeyError("/srv/secret"), "test")
    assert "error id" in text and "/srv/secret" not in text and "KeyError" not in text


def test_one_hot_error_sits_under_the_input_and_clears_the_old_result(page):
    open_tab(page, "Data")
    page.get_by_text("Labels: integer -> one-hot").click()
    page.locator("#labels-text textarea").fill("1, 2, 0")
    page.locator("#onehot-btn").click()
    page.wait_for_selector("#onehot-torch table", timeout=60_000)
    page.locator("#labels-text textarea").fill("1, two, 0")
    page.locator("#onehot-btn").click()
    page.wait_for_function("document.querySelector('#onehot-status')?.innerText.includes('whole numbers')",
                           timeout=60_000)
    assert page.locator(".toast-body").count() == 0                 # no red toast
    assert page.locator("#onehot-torch .error, #onehot-sklearn .error").count() == 0   # no red badges
    status = page.locator("#onehot-status").bounding_box()
    labels = page.locator("#labels-text").bounding_box()
    assert status["y"] >= labels["y"]                               # under the input it is about
