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


# ---- the page's own widgets: tables' headers, examples' names, models' notes (ui.i18n.install_language_switch) --

def _queue_call(app_url, index: int, data: list, headers: dict) -> dict:
    """One event through the queue as the page sends it (a private one included), with the page's headers."""
    import json
    import uuid

    session = uuid.uuid4().hex[:12]
    body = {"data": data, "fn_index": index, "session_hash": session, "event_data": None, "trigger_id": None}
    httpx.post(f"{app_url}/gradio_api/queue/join", json=body, headers=headers, timeout=30).raise_for_status()
    with httpx.stream("GET", f"{app_url}/gradio_api/queue/data", params={"session_hash": session},
                      timeout=60) as r:
        for line in r.iter_lines():
            if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                return json.loads(line[5:])
    raise AssertionError("the stream closed without a result")


def _follow(app_url, app_demo, headers: dict) -> tuple[list, list]:
    """The page-load / language-switch event's answer: (its updates, the header maps), and its two triggers."""
    events = [i for i, fn in app_demo.fns.items() if fn.name == "follow_page_language"]
    assert len(events) == 2, events                                   # the page load and the hidden button
    assert all(app_demo.fns[i].queue and app_demo.fns[i].api_visibility == "private" for i in events)
    out = _queue_call(app_url, events[0], [], headers)
    assert out["success"], out
    *updates, maps = out["output"]["data"]
    return updates, maps


def test_every_table_shows_its_headers_in_the_visitors_language_from_the_first_screen(app_url, app_demo):
    """Fine-tune's, Ensembles' and Compression's tables (and every other table the page builds with English
    headers) get their headers in the page's language on page load: the header map the page applies
    (ui.i18n.APPLY_HEADERS_JS) turns each English header into Chinese for a zh-CN visitor; an English visitor's map
    keeps them. The rows are never sent: the page renames the headers of the value it holds."""
    import gradio as gr

    from ui.i18n import _following

    following = _following(app_demo)
    followed = [table for table, _ in following.tables]
    tables = [b for b in app_demo.blocks.values() if isinstance(b, gr.Dataframe)]
    ids = {getattr(b, "elem_id", None) for b in followed}
    for elem_id in ("ft-per-class", "ft-confusion", "ensemble-table", "votes-table", "compress-table",
                    "resample-table", "classify-compare", "tensor-table", "autograd-leaves", "autograd-steps"):
        assert elem_id in ids, elem_id
    _, zh_maps = _follow(app_url, app_demo, {"Accept-Language": "zh-CN,zh;q=0.9"})
    _, en_maps = _follow(app_url, app_demo, {"Accept-Language": "en-US"})
    assert len(zh_maps) == len(followed) == len(en_maps)
    for table, zh, en in zip(followed, zh_maps, en_maps):
        headers = table.value["headers"]
        # numbered columns (Gradio's, a one-hot table's) and formulas (Look inside's ||A||) stay as they are
        words = [h for h in headers if not re.fullmatch(r"[\d|AB]+", h)]
        assert all(CJK.search(zh.get(h, "")) for h in words), (table.elem_id, headers, zh)
        assert all(not CJK.search(en.get(h, h)) for h in headers), (table.elem_id, en)
        assert all(en[zh[h]] == en.get(h, h) for h in words)           # and back after a switch to English
    # every table the page builds follows (Tensors' and Autograd's are also written by their first screens)
    unfollowed = [b for b in tables if all(b is not f for f in followed)]
    assert not unfollowed, [b.elem_id for b in unfollowed]


def test_a_language_switch_sends_the_examples_names_and_the_models_notes(app_url, app_demo):
    """The same event answers the hidden button the page's head script clicks after Settings -> Language: every
    tab's examples (gr.Dataset) named in the request's language, and the classifier lists (their '(needs
    download)' notes) in it; the event takes no input, so nothing the visitor chose is sent or changed."""
    from core.i18n import t
    from ui.i18n import LANGUAGE_HEADER, _following

    following = _following(app_demo)
    kinds = [type(c).__name__ for c, _ in following.widgets]
    assert kinds.count("Dataset") == 4 and kinds.count("Dropdown") == 2, kinds   # Classify, AE, GAN, Look inside
    zh, _ = _follow(app_url, app_demo, {"Accept-Language": "en-US", LANGUAGE_HEADER: "zh-CN"})   # the page's choice
    en, _ = _follow(app_url, app_demo, {"Accept-Language": "zh-CN", LANGUAGE_HEADER: "en"})
    for kind, z, e in zip(kinds, zh, en):
        assert z["__type__"] == "update" and "value" not in z, z
        if kind == "Dataset":
            assert all(CJK.search(name) for name in z["sample_labels"]), z
            assert not any(CJK.search(name) for name in e["sample_labels"]), e
        else:
            labels = [label for label, _ in z["choices"]]
            assert [v for _, v in z["choices"]] == [v for _, v in e["choices"]]
            notes = [label for label in labels if t("classify.needs_download", "zh") in label]
            assert not any(t("classify.needs_download", "en") in label for label in labels), labels
            assert len(notes) == sum(t("classify.needs_download", "en") in label for label, _ in e["choices"])


def test_messages_written_while_an_events_inputs_are_prepared_follow_the_request(app_url, app_demo, tmp_path):
    """A component's preprocess runs before Gradio sets the event's request: ui.sessions runs the whole event in
    the request's language (core.i18n.speaking), so a sketch larger than the sketchpads make and a pasted item that
    is no picture are refused in Chinese for a zh-CN caller, in English otherwise."""
    from gradio_client import handle_file
    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("RGBA", (3000, 3000)).save(big)                    # 9 MP: more than ui.admission lets Pillow decode
    sketch = {"background": None, "layers": [handle_file(str(big))], "composite": handle_file(str(big))}
    zh = _error(lambda: _client(app_url, **{"Accept-Language": "zh-CN"}).predict(
        sketch, "resnet_digits", 5, api_name="/classify_sketch"))
    en = _error(lambda: _client(app_url, **{"Accept-Language": "en-US"}).predict(
        sketch, "resnet_digits", 5, api_name="/classify_sketch"))
    assert CJK.search(zh) and "3000" in zh, zh
    assert "larger than" in en and not CJK.search(en), en
    # A pasted clipboard item (a data: URL, as the page sends it) that is not a picture, to the Autoencoder's upload
    # box (/classify prepares its inputs inside its function: ui.common.api_endpoint's one_thread)
    pasted = {"path": None, "url": "data:text/plain;base64,aGVsbG8gd29ybGQ=", "meta": {"_type": "gradio.FileData"}}
    index = next(i for i, fn in app_demo.fns.items() if fn.api_name == "reconstruct")
    zh = _queue_call(app_url, index, [pasted, "ae_digits_16", 0.0], {"Accept-Language": "zh-CN"})
    en = _queue_call(app_url, index, [pasted, "ae_digits_16", 0.0], {"Accept-Language": "en-US"})
    assert not zh["success"] and CJK.search(zh["output"]["error"]), zh
    assert not en["success"] and not CJK.search(en["output"]["error"]), en
