"""Every tab in both languages at a desktop's and a phone's width (issue #25, "Numbers and checks"): Chinese labels
are shorter, English ones longer, and neither may be cut, overflow the screen or be squeezed into a column.

One page per language x width (a browser context with that locale and viewport), reused across the tabs: each tab
is brought to the front, its accordions opened and its inner tabs visited; a screenshot per tab (and per inner tab)
goes to test-artifacts/layout_<tab>[-<n>]_<locale>_<width>px.png (n: the inner tab's place, 1 the first), the
list of problems to layout_<locale>_<width>px.txt, and the checks are:

- nothing is wider than the screen (the document's scrollWidth);
- no interface text is cut: buttons, labels, checkbox labels, radio choices, a dropdown's chosen and listed choices,
  tab names, accordion titles. Cut means the element's content is wider than its box (scrollWidth > clientWidth:
  text-overflow: ellipsis, or text spilling into its neighbour), or the text reaches outside an ancestor that hides
  its overflow (overflow: hidden / clip), or a button of its block lies over part of it (a picture's toolbar over
  a long label). Text inside a scroll container (overflow: auto / scroll, a code editor, a table, a gallery, a
  plot) is not cut: the visitor scrolls it; text wholly hidden by its box (an empty picture's label) is not shown;
- no label is squeezed into a narrow column: a label's text that wraps onto 3 lines or more in a box under 5 of its
  characters wide (on a phone a Chinese label beside a slider's number box, or a checkbox beside a wide slider,
  wrapped after every character or two).

The problems found are listed per tab and view, then the test fails on all of them at once. About 50 s per page
on a 2-core machine (3 min for the four). test_the_rule_itself shows the rule on a small page of known cases."""
from __future__ import annotations

import re
import time

import pytest

from tests.conftest import ARTIFACTS
from tests.test_language_browser import TABS, _open_everything, _settle, _tab, open_tab

VIEWS = [(locale, width) for locale in ("zh-CN", "en-US") for width in (1280, 414)]

# What the checks read. SCROLLERS: containers whose content scrolls (or is data drawn at its own size), not cut.
CHECK_JS = r"""
(root) => {
  const TEXT = 'button, label, label > span, [data-testid="block-info"], [data-testid="block-label"], ' +
               '.label-wrap > span, [role=tab], [role=option], input[role=combobox], .tab-container button';
  const LABELS = 'label, label > span, [data-testid="block-info"], [data-testid="block-label"], ' +
                 '.label-wrap > span, [role=tab], button';
  const SCROLLERS = 'pre, code, .cm-editor, table, .table-wrap, [data-testid="dataframe"], .gallery-container, ' +
                    '.grid-wrap, .thumbnails, .js-plotly-plot, .plot-container, svg, canvas, img, ' +
                    '.image-container, .image-frame, .visually-hidden, .sr-only, .hide, [aria-hidden="true"]';
  const visible = (e) => e.checkVisibility({checkOpacity: true, checkVisibilityCSS: true}) && !e.closest('footer');
  const textOf = (e) => ((e.tagName === 'INPUT' ? e.value : e.innerText) || '').replace(/\s+/g, ' ').trim();
  const where = (e) => {
    const block = e.closest('[id]:not([id=""])');
    return block ? '#' + block.id : e.tagName.toLowerCase();
  };
  const cut = [], squeezed = [];
  const seen = new Set();
  for (const e of root.querySelectorAll(TEXT)) {
    if (seen.has(e) || !visible(e) || e.closest(SCROLLERS)) continue;
    seen.add(e);
    const text = textOf(e);
    if (!text) continue;
    const box = e.getBoundingClientRect();
    if (box.width < 1 || box.height < 1) continue;
    const describe = (why) => `${where(e)} <${e.tagName.toLowerCase()}> "${text.slice(0, 60)}": ${why}`;
    // 1. its content is wider than its own box
    if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1) {
      cut.push(describe(`content ${e.scrollWidth} px in a box of ${e.clientWidth} px`));
      continue;
    }
    // 2. its text reaches outside an ancestor that hides overflow (a scroll container ends the search)
    let shown = true;
    if (e.tagName !== 'INPUT') {
      const range = document.createRange();
      range.selectNodeContents(e);
      const t = range.getBoundingClientRect();
      if (t.width >= 1) {
        for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
          const s = getComputedStyle(a);
          const ox = s.overflowX, oy = s.overflowY;
          if (['auto', 'scroll'].includes(ox) || ['auto', 'scroll'].includes(oy)) break;
          if (ox === 'visible' && oy === 'visible') continue;
          const r = a.getBoundingClientRect();
          const left = r.left + a.clientLeft, top = r.top + a.clientTop;
          const outX = ox !== 'visible' && (t.left < left - 1 || t.right > left + a.clientWidth + 1);
          const outY = oy !== 'visible' && (t.top < top - 1 || t.bottom > top + a.clientHeight + 1);
          const hidden = t.right <= left || t.left >= left + a.clientWidth || t.bottom <= top ||
                         t.top >= top + a.clientHeight;                  // wholly hidden (an empty image's label)
          if (hidden) { shown = false; break; }
          if (outX || outY) {
            cut.push(describe(`text ${Math.round(t.left)}-${Math.round(t.right)} x ${Math.round(t.top)}-` +
                              `${Math.round(t.bottom)} clipped by ${a.tagName.toLowerCase()}.` +
                              `${[...a.classList].join('.')} (${Math.round(left)}-` +
                              `${Math.round(left + a.clientWidth)} x ${Math.round(top)}-` +
                              `${Math.round(top + a.clientHeight)})`));
            break;
          }
        }
      }
    }
    // 3. a label's text partly under a button of its block (a toolbar laid over a long label: the text runs behind
    //    it; a button under the whole label, such as a clickable picture, is its background)
    if (!shown) continue;
    if (e.matches(LABELS) && e.tagName !== 'INPUT' && e.tagName !== 'BUTTON') {
      const range = document.createRange();
      range.selectNodeContents(e);
      const t = range.getBoundingClientRect();
      const block = e.closest('.block') || e.parentElement;
      for (const b of block.querySelectorAll('button')) {
        if (b.contains(e) || e.contains(b) || b.closest(SCROLLERS) ||
            !b.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) continue;
        const r = b.getBoundingClientRect();
        const w = Math.min(t.right, r.right) - Math.max(t.left, r.left);
        const h = Math.min(t.bottom, r.bottom) - Math.max(t.top, r.top);
        const under = r.left <= t.left && r.right >= t.right && r.top <= t.top && r.bottom >= t.bottom;
        if (w > 2 && h > 2 && !under) {
          cut.push(describe(`text ${Math.round(t.left)}-${Math.round(t.right)} under a button at ` +
                            `${Math.round(r.left)}-${Math.round(r.right)} ("${(b.getAttribute('aria-label') ||
                            b.innerText || '').trim().slice(0, 30)}")`));
          break;
        }
      }
    }
    // 4. a label squeezed into a column: 3 lines or more, under 5 characters wide
    if (e.matches(LABELS) && e.tagName !== 'INPUT' && [...text].length >= 4) {
      const s = getComputedStyle(e);
      const font = parseFloat(s.fontSize);
      const line = parseFloat(s.lineHeight) || font * 1.4;
      const range = document.createRange();
      range.selectNodeContents(e);
      const t = range.getBoundingClientRect();
      const lines = Math.round(t.height / line);
      const latin = /[A-Za-z]/.test(text) && !/[\u3400-\u9fff]/.test(text);
      const chars = t.width / (latin ? font * 0.55 : font);      // a Latin letter is about half a Chinese one
      if (lines >= 3 && chars < 5 && !e.querySelector(TEXT)) {
        squeezed.push(describe(`${lines} lines in ${Math.round(t.width)} px (${chars.toFixed(1)} characters)`));
      }
    }
  }
  return {cut, squeezed};
}
"""


def _name(tab: str) -> str:
    return tab.replace("&", "and")


def _open_dropdowns(pg, panel) -> list[str]:
    """Each visible dropdown opened in turn: its listed choices checked, then closed again with nothing chosen."""
    found = []
    boxes = panel.locator("input[role=combobox]")
    for i in range(boxes.count()):
        box = boxes.nth(i)
        if not box.is_visible() or box.is_disabled():
            continue
        try:
            box.click(timeout=3_000)
            pg.locator("[role=listbox] [role=option]").first.wait_for(state="visible", timeout=3_000)
        except Exception:  # noqa: BLE001 - a dropdown without a list (or one that did not open) is skipped
            pg.keyboard.press("Escape")
            continue
        result = pg.evaluate(CHECK_JS, pg.locator("[role=listbox]").first.element_handle())
        found += [f"dropdown list: {p}" for p in result["cut"] + result["squeezed"]]
        pg.keyboard.press("Escape")
        box.blur()
        pg.wait_for_timeout(150)
    return found


def check_view(pg, panel, width: int) -> list[str]:
    problems = []
    scroll_width = pg.evaluate("document.documentElement.scrollWidth")
    if scroll_width > width:
        wide = pg.evaluate("""(width) => [...document.querySelectorAll('body *')]
            .filter(e => e.checkVisibility() && e.getBoundingClientRect().right > width + 1)
            .filter(e => !e.parentElement || e.parentElement.getBoundingClientRect().right <= width + 1)
            .slice(0, 5).map(e => (e.id ? '#' + e.id : e.tagName.toLowerCase() + '.' + [...e.classList].join('.'))
                                   + ' ' + Math.round(e.getBoundingClientRect().right) + ' px')""", width)
        problems.append(f"the page is {scroll_width} px wide on a {width} px screen: {wide}")
    result = pg.evaluate(CHECK_JS, pg.locator(".gradio-container").element_handle())
    problems += [f"cut: {p}" for p in result["cut"]] + [f"squeezed: {p}" for p in result["squeezed"]]
    return problems + _open_dropdowns(pg, panel)


def _exactly(name: str) -> re.Pattern:
    return re.compile(rf"^\s*{re.escape(name)}\s*$")


def _select_inner(pg, panel, name: str) -> bool:
    """Bring the inner tab `name` to the front: its button, or Gradio's overflow menu ("...") where it hides. False
    where it is already in front (or not to be found)."""
    button = panel.locator("[role=tablist] > [role=tab]", has_text=_exactly(name)).locator("visible=true")
    if button.count():
        if button.first.get_attribute("aria-selected") == "true":
            return False
        button.first.click()
        return True
    for menu in panel.locator(".tab-wrapper .overflow-menu:not(.hide)").locator("visible=true").all():
        item = menu.locator(".overflow-dropdown button", has_text=_exactly(name))
        if item.count():
            menu.locator("> button").click()
            item.first.click()
            return True
    return False


def visit(pg, tab: str, locale: str, width: int) -> list[str]:
    """The tab in front, its accordions open, each inner tab in turn: a screenshot and the checks of each view."""
    panel = open_tab(pg, tab)
    problems = []
    shot = ARTIFACTS / f"layout_{_name(tab)}_{locale}_{width}px.png"
    pg.screenshot(path=str(shot), full_page=True)
    problems += check_view(pg, panel, width)
    # inner tabs (Draw / Upload, Ensembles / Compression, ...), also those behind Gradio's "..." menu on a phone
    names = panel.evaluate("""(p) => [...p.querySelectorAll('.tab-wrapper')].filter((w) => w.checkVisibility())
        .flatMap((w) => [...w.querySelectorAll('.tab-container.visually-hidden > button')]
                       .map((b) => b.textContent.trim()))""")
    for i, name in enumerate(names):
        if not _select_inner(pg, panel, name):
            continue
        _settle(pg, 300)
        _open_everything(panel, pg)
        _settle(pg, 300)
        pg.screenshot(path=str(ARTIFACTS / f"layout_{_name(tab)}-{i + 1}_{locale}_{width}px.png"), full_page=True)
        problems += [f"[{name}] {p}" for p in check_view(pg, panel, width)]
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("locale, width", VIEWS, ids=[f"{v[0]}-{v[1]}px" for v in VIEWS])
def test_every_tab_fits_in_both_languages(browser, app_url, locale, width):
    ARTIFACTS.mkdir(exist_ok=True)
    ctx = browser.new_context(locale=locale, viewport={"width": width, "height": 1000 if width > 700 else 900})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    found = {}
    try:
        pg.goto(app_url, wait_until="domcontentloaded")
        pg.wait_for_selector(".gradio-container", state="visible")
        _tab(pg, "start-here").wait_for(state="visible")
        for tab in TABS:
            began = time.monotonic()
            problems = visit(pg, tab, locale, width)
            print(f"{locale} {width}px {tab}: {len(problems)} problems, {time.monotonic() - began:.1f} s")
            if problems:
                found[tab] = problems
    finally:
        ctx.close()
    report = "".join(f"-- {tab}\n" + "\n".join(f"     {p}" for p in problems) + "\n"
                     for tab, problems in found.items())
    print(report)
    (ARTIFACTS / f"layout_{locale}_{width}px.txt").write_text(report or "no problems\n", encoding="utf-8")
    assert not found, f"{locale} at {width} px: cut, squeezed or too wide (screenshots: {ARTIFACTS}):\n{report}"


RULE_PAGE = """<html><body style="margin:0;width:400px;font:14px sans-serif">
<button style="width:60px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis">Compare checkpoints</button>
<div style="width:80px;height:20px;overflow:hidden"><label id="clipped" style="display:block;width:200px">
  <span>a label wider than its clipping box</span></label></div>
<div style="display:flex;width:120px"><div style="flex:1 1 0%;min-width:0"><label><span id="squeezed">
  以未剪枝模型的软目标来微调</span></label></div><div style="width:100px;flex:none">box</div></div>
<div class="block" style="position:relative;width:300px;height:30px">
  <label data-testid="block-label" style="position:absolute;white-space:nowrap">a label under a toolbar</label>
  <button aria-label="Pan" style="position:absolute;left:60px;top:0;width:20px;height:20px"></button></div>
<label><span id="fine">一个正常的标签</span></label>
<div class="cm-editor" style="width:50px"><button style="white-space:nowrap">a long code line</button></div>
<div style="width:50px;overflow:auto"><label style="white-space:nowrap">scrolls sideways, not cut</label></div>
</body></html>"""


def test_the_rule_itself(browser):
    """The checks on known cases: an ellipsis, a label clipped by a box that hides overflow, a label under a
    toolbar's button and a Chinese label squeezed beside a number box are found; a plain label, a code editor and
    a sideways scroller are not."""
    ctx = browser.new_context(viewport={"width": 414, "height": 600})
    try:
        pg = ctx.new_page()
        pg.set_content(RULE_PAGE)
        result = pg.evaluate(CHECK_JS, pg.locator("body").element_handle())
    finally:
        ctx.close()
    cut, squeezed = " | ".join(result["cut"]), " | ".join(result["squeezed"])
    assert "Compare checkpoints" in cut and "a label wider than its clipping box" in cut, result
    assert 'a label under a toolbar": text' in cut and 'under a button' in cut, result
    assert "以未剪枝模型的软目标来微调" in squeezed and len(result["squeezed"]) == 1, result
    assert "一个正常的标签" not in cut + squeezed and "code line" not in cut and "scrolls sideways" not in cut, result
