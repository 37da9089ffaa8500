"""The server's messages in the request's language (issue #25): an error, a refusal or a status line is written in
the page's language (the header ui.i18n.LANGUAGE_HEADER the page sends), else the request's Accept-Language, else
English; and the API itself (endpoint names, parameters, return shapes) is the same in every language."""
from __future__ import annotations

import re
from types import SimpleNamespace

import httpx
import pytest

CJK = re.compile(r"[\u4e00-\u9fff]")


def _fake_request(**headers):
    return SimpleNamespace(headers={k.lower(): v for k, v in headers.items()})


# ---- unit: where the language comes from ---------------------------------------------------------------------

def test_current_language_follows_the_event_request_and_speaking():
    from gradio.context import LocalContext

    from core.i18n import current_language, speaking
    from ui.i18n import LANGUAGE_HEADER, event_language

    assert current_language() == "en" and event_language() is None          # outside a request: English
    token = LocalContext.request.set(_fake_request(**{"Accept-Language": "zh-CN,zh;q=0.9"}))
    try:
        assert current_language() == "zh"
        LocalContext.request.set(_fake_request(**{"Accept-Language": "zh-CN", LANGUAGE_HEADER: "en"}))
        assert current_language() == "en"                                    # the page's choice first
        LocalContext.request.set(_fake_request(**{"Accept-Language": "en-US", LANGUAGE_HEADER: "zh-CN"}))
        assert current_language() == "zh"
        with speaking("en-GB"):                                              # a block that says otherwise
            assert current_language() == "en"
        assert current_language() == "zh"
    finally:
        LocalContext.request.reset(token)
    with speaking("fr"):                                                     # neither of ours: English
        assert current_language() == "en"


def test_errors_are_written_in_the_event_language_on_the_page_and_in_the_api():
    """ui.errors.page and ui.errors.api write describe()'s words in the request's language; str() of a visitor
    error stays English (logs); Gradio's own gr.Error keeps its words."""
    import gradio as gr
    from gradio.context import LocalContext

    from core.errors import InputError, describe
    from ui.errors import api, message, page

    def fails(x):
        raise InputError("input.whole_number", what="x", lo=0, hi=9, value=str(x))

    token = LocalContext.request.set(_fake_request(**{"Accept-Language": "zh-CN"}))
    try:
        *_, status = page((None,))(fails)("a")
        assert CJK.search(status.value), status.value
        with pytest.raises(gr.Error) as info:
            api(fails)("a")
        assert CJK.search(str(info.value.message)) and info.value.message == status.value
        exc = InputError("input.whole_number", what="x", lo=0, hi=9, value="a")
        assert not CJK.search(str(exc)) and CJK.search(describe(exc)[1])
        assert message(gr.Error("Gradio's own")) == "Gradio's own"
        assert not CJK.search(describe(exc, language="en")[1])            # an explicit language wins
    finally:
        LocalContext.request.reset(token)
    *_, status = page((None,))(fails)("a")
    assert not CJK.search(status.value), status.value


# ---- the app: through gradio_client and the page's header -------------------------------------------------------

def _client(app_url, **headers):
    from gradio_client import Client

    return Client(app_url, verbose=False, headers=headers or None)


def _error(call) -> str:
    with pytest.raises(Exception) as info:
        call()
    return str(info.value)


def test_a_blank_classify_is_refused_in_the_callers_language(app_url):
    from ui.i18n import LANGUAGE_HEADER

    zh = _error(lambda: _client(app_url, **{"Accept-Language": "zh-CN,zh;q=0.9"}).predict(None, api_name="/classify"))
    en = _error(lambda: _client(app_url).predict(None, api_name="/classify"))
    en_us = _error(lambda: _client(app_url, **{"Accept-Language": "en-US"}).predict(None, api_name="/classify"))
    chosen = _error(lambda: _client(app_url, **{"Accept-Language": "en-US", LANGUAGE_HEADER: "zh-CN"})
                    .predict(None, api_name="/classify"))
    assert CJK.search(zh), zh
    assert "No image given" in en and not CJK.search(en), en
    assert en_us == en
    assert chosen == zh                                    # the page's choice beats Accept-Language


def _info(app_url, language: str) -> dict:
    r = httpx.get(f"{app_url}/gradio_api/info", headers={"Accept-Language": language}, timeout=60)
    r.raise_for_status()
    return r.json()


def test_the_api_is_the_same_in_both_languages(app_url):
    """Endpoint names, parameter names, defaults and return shapes do not depend on the caller's language: the
    /info JSON and gradio_client's view_api are identical under zh-CN and en-US."""
    zh, en = _info(app_url, "zh-CN,zh;q=0.9"), _info(app_url, "en-US,en;q=0.9")
    assert zh == en
    assert "/classify" in en["named_endpoints"]
    params = [p["parameter_name"] for p in en["named_endpoints"]["/classify"]["parameters"]]
    assert params == ["image", "model_name", "topk"], params
    assert len(en["named_endpoints"]["/classify"]["returns"]) == 4
    views = [_client(app_url, **{"Accept-Language": lang}).view_api(print_info=False, return_format="dict")
             for lang in ("zh-CN", "en-US")]
    assert views[0] == views[1]
    assert not CJK.search(repr(views[0]["named_endpoints"]["/classify"]))


def test_the_queue_refuses_in_the_visitors_language(monkeypatch):
    """ui.admission's refusals (a visitor's share of the queue) are catalogue entries rendered in the request's
    language; English where none is given."""
    from ui import admission

    monkeypatch.setenv("PLAYGROUND_MAX_QUEUED_PER_SESSION", "4")

    waiting = SimpleNamespace(queue=[SimpleNamespace(session_hash="a", request=None)] * 4)
    queue = SimpleNamespace(event_queue_per_concurrency_id={"default": waiting}, active_jobs=[])
    assert "limit is 4 per visitor" in admission.refusal(queue, "a", None)
    zh = admission.refusal(queue, "a", None, "zh")
    assert CJK.search(zh) and "4" in zh, zh
    assert admission.refusal(queue, "b", None, "zh") is None
