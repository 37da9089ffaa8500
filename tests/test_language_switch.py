"""Settings -> Language without a reload (issue #25): what the server wrote into the page's widgets follows the new
language too (ui.i18n.install_language_switch): the tables' headers (their rows stay), the examples' names and the
models' '(needs download)' notes; and a zh-CN visitor sees the job tables' headers in Chinese from the first screen.
Chromium; a screenshot after the switch in test-artifacts/language_switch_*.png."""
from __future__ import annotations

import re

import pytest

from tests.conftest import ARTIFACTS
from tests.test_language_browser import _settle, _tab, page_recording_joins, switch_language

CJK = re.compile(r"[\u4e00-\u9fff]")
HEADERS_JS = """(id) => [...document.querySelectorAll(`#${id} thead th`)].map((e) => e.innerText.trim())
                                                                     .filter((s) => s)"""
ROWS_JS = """(id) => [...document.querySelectorAll(`#${id} [role=row]`)].filter((r) => !r.closest('thead'))
                                                                    .map((r) => r.innerText.trim())"""
EXAMPLES_JS = """(id) => [...document.querySelectorAll(`#${id} button`)].map((e) => e.innerText.trim())
                                                                   .filter((s) => s)"""


def _headers(pg, elem_id: str) -> list[str]:
    return pg.evaluate(HEADERS_JS, elem_id)


def _wait_headers(pg, elem_id: str, chinese: bool) -> list[str]:
    """The table's headers once all of its words are (chinese) or none is (not chinese) written in Chinese."""
    pg.wait_for_function(f"""(id) => {{
        const hs = ({HEADERS_JS})(id).filter((h) => /[A-Za-z\\u4e00-\\u9fff]/.test(h));
        return hs.length && hs.every((h) => {'' if chinese else '!'}/[\\u4e00-\\u9fff]/.test(h)); }}""",
                         arg=elem_id, timeout=30_000)
    return _headers(pg, elem_id)


def _model_notes(pg) -> list[str]:
    """The classifier list's entries as the open dropdown shows them."""
    pg.locator("#model-choice input").click()
    pg.get_by_role("option").first.wait_for(state="visible")
    options = pg.get_by_role("option").all_inner_texts()
    pg.keyboard.press("Escape")
    return options


@pytest.mark.slow
def test_a_switch_renames_the_servers_words_and_keeps_the_visitors_results(browser, app_url):
    from core.i18n import t
    from ui.i18n import SWITCH_ID

    ctx, pg, joins = page_recording_joins(browser, app_url, "zh-CN")
    try:
        # A zh-CN visitor: the job tables' headers in Chinese from the first screen (before any result)
        _tab(pg, "ensembles-&-compression").click()
        ensemble = _wait_headers(pg, "ensemble-table", chinese=True)
        assert ensemble == [t(k, "zh") for k in ("ensemble.table.name", "ensemble.table.kind",
                                                "ensemble.table.accuracy", "ensemble.table.weight",
                                                "ensemble.table.gain")], ensemble
        # Classify's first screen: a result in the comparison table (the rows the switch must keep)
        _tab(pg, "classify").click()
        _settle(pg)
        compare_zh = _wait_headers(pg, "classify-compare", chinese=True)
        pg.wait_for_function(f"({ROWS_JS})('classify-compare').length > 0", timeout=60_000)
        rows = pg.evaluate(ROWS_JS, "classify-compare")
        pg.get_by_role("tab", name=t("pad.upload_tab", "zh")).first.click()     # the examples, under Upload
        examples_zh = pg.evaluate(EXAMPLES_JS, "classify-examples")
        assert examples_zh and all(CJK.search(e) for e in examples_zh), examples_zh
        notes_zh = [o for o in _model_notes(pg) if t("classify.needs_download", "zh") in o]
        pg.evaluate("window.__not_reloaded = true")
        _settle(pg, 300)
        before = len(joins)

        switch_language(pg, "English")
        compare_en = _wait_headers(pg, "classify-compare", chinese=False)
        assert compare_en == [t(k, "en") for k in ("classify.col.model", "classify.col.prediction",
                                                   "classify.col.confidence", "classify.col.latency_ms",
                                                   "classify.col.status")], compare_en
        assert len(compare_en) == len(compare_zh)
        assert pg.evaluate(ROWS_JS, "classify-compare") == rows          # the visitor's result stays
        pg.wait_for_function(f"({EXAMPLES_JS})('classify-examples').every((e) => !/[\\u4e00-\\u9fff]/.test(e))")
        examples_en = pg.evaluate(EXAMPLES_JS, "classify-examples")
        assert examples_en == [t(k, "en") for k in _example_keys()], examples_en
        notes_en = [o for o in _model_notes(pg) if t("classify.needs_download", "en") in o]
        assert len(notes_en) == len(notes_zh) and not any(CJK.search(o) for o in notes_en), notes_en
        assert pg.evaluate("window.__not_reloaded") is True                # the same page: nothing reloaded
        for hidden in (SWITCH_ID, f"{SWITCH_ID}-headers"):                  # the switch's parts are not shown
            assert pg.evaluate("(id) => document.getElementById(id) !== null && "
                               "!document.getElementById(id).checkVisibility()", hidden), hidden
        switch = joins[before:]
        assert len(switch) == 1, [r.url for r in switch]                  # one event asks for the new words
        assert switch[0].headers.get("x-playground-language") == "en"
        _tab(pg, "ensembles-&-compression").click()
        assert _wait_headers(pg, "ensemble-table", chinese=False) == [
            t(k, "en") for k in ("ensemble.table.name", "ensemble.table.kind", "ensemble.table.accuracy",
                                 "ensemble.table.weight", "ensemble.table.gain")]
        inner = pg.locator("#main-tabs > .tabitem[role=tabpanel]:visible [role=tablist] > [role=tab]")
        assert inner.all_inner_texts() == [t("lab.ui.ensembles", "en"), t("lab.ui.compression", "en")]
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / "language_switch_ensembles_en.png"), full_page=False)
        _tab(pg, "classify").click()
        _settle(pg, 300)
        pg.screenshot(path=str(ARTIFACTS / "language_switch_classify_en.png"), full_page=False)

        switch_language(pg, "简体中文")
        assert _wait_headers(pg, "classify-compare", chinese=True) == compare_zh
        assert pg.evaluate(ROWS_JS, "classify-compare") == rows
        pg.wait_for_function(f"({EXAMPLES_JS})('classify-examples').every((e) => /[\\u4e00-\\u9fff]/.test(e))")
        assert pg.evaluate(EXAMPLES_JS, "classify-examples") == examples_zh
    finally:
        ctx.close()


def _example_keys() -> list[str]:
    from ui.examples import digit_examples, photo_examples

    return [key for key, _ in digit_examples() + photo_examples()]
