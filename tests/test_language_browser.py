"""The whole page in Simplified Chinese and in English (issue #25, "Numbers and checks"), in Chromium:

- every tab in a zh-CN browser: the visible interface strings (tab names, headings, labels, help text, buttons,
  choices, placeholders, accordion titles, the server's status lines; not data: code, tables, galleries, the
  predictions, numbers, names such as ResNet-18) contain Chinese, at least ZH_THRESHOLD of them per tab; the strings
  that do not are printed per tab, for the translators; screenshots at 1280 and 414 px go to test-artifacts/;
- the same in an en-US browser: no string is written in Chinese (an English sentence may name the tutorial's Chinese
  words: `# added 补充`, "亚军"; a string is Chinese when its Chinese characters outnumber its English words);
- Gradio's Settings -> Language switches the page without losing what the visitor typed, renames every tab, and the
  next event's message from the server follows the page's new language (the page sends it: ui.i18n.LANGUAGE_HEAD).

One page per language; the tabs are visited in turn (each tab's first screen computes once)."""
from __future__ import annotations

import json
import re
import time

import pytest

from tests.conftest import ARTIFACTS

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
TABS = ["start-here", "classify", "tensors", "autograd", "autoencoder", "gan", "data", "fine-tune",
        "ensembles-&-compression", "look-inside"]
# The share of a tab's strings that must contain Chinese in a zh-CN browser. Issue #25 asks for 0.95 in every tab;
# while the tabs are being translated each tab's floor is the share measured last (raise, never lower, it).
TARGET = 0.95
ZH_THRESHOLD = {                    # measured at the commit that last set it (strings with Chinese / all)
    "header": 1.0,                  # 12/12
    "start-here": 1.0,              # 102/102
    "classify": 0.96,               # 30/31: the model's name in the dropdown
    "tensors": 1.0,                 # 15/15
    "autograd": 1.0,                # 18/18
    "autoencoder": 1.0,             # 39/39
    "gan": 1.0,                     # 33/33
    "data": 1.0,                    # 55/55
    "fine-tune": 0.98,              # 50/51: the model's name in the dropdown
    "ensembles-&-compression": 1.0,   # 45/45
    "look-inside": 0.98,            # 65/66: the model's name in the dropdown
}

# The page's strings, per visible element (innermost of TEXT), without what is data rather than interface: code,
# tables, galleries and their captions, the prediction (gr.Label), plots, pictures, typed text (only placeholders),
# the sketchpad's layer menu (Gradio's own 'Layer 1', which its Chinese locale lacks).
COLLECT_JS = r"""
([root, skip]) => {
  const TEXT = 'p, li, h1, h2, h3, h4, h5, h6, button, summary, [data-testid="block-info"], ' +
               '[data-testid="block-label"], .block > .label, .label-wrap > span, label > span, blockquote, ' +
               '.prose > span, .input-status, [role=option]';
  const DATA = 'pre, code, .cm-editor, table, .table-wrap, [data-testid="dataframe"], .gallery-container, ' +
               '.grid-wrap, .thumbnails, .caption-label, [data-testid="label-output"], .output-class, ' +
               '.confidence-set, .js-plotly-plot, .plot-container, svg, canvas, img, .api-only, ' +
               '[aria-hidden="true"], .visually-hidden, .sr-only, .hide, .layer-wrap';   // .layer-wrap: the pad's own
  const seen = new Set(), out = [];
  const visible = (e) => e.checkVisibility({checkOpacity: true, checkVisibilityCSS: true}) &&
                         !(skip && e.closest(skip)) && !e.closest('footer');
  const add = (s) => {
    s = (s || '').replace(/\s+/g, ' ').trim();
    if (s && !seen.has(s)) { seen.add(s); out.push(s); }
  };
  for (const e of root.querySelectorAll(TEXT)) {
    if (!visible(e) || e.closest(DATA) || [...e.querySelectorAll(TEXT)].some((c) => c.innerText.trim())) continue;
    add(e.innerText);
  }
  for (const e of root.querySelectorAll('input[placeholder], textarea[placeholder]')) {
    if (visible(e) && !e.closest(DATA)) add(e.getAttribute('placeholder'));
  }
  for (const e of root.querySelectorAll('input[role=combobox]')) {      // a dropdown's chosen choice
    if (visible(e) && !e.closest(DATA)) add(e.value);
  }
  return out;
}
"""
NAMES = {"pytorch", "torch", "torchvision", "sklearn", "scikit-learn", "numpy", "gradio", "mnist", "imagenet",
         "cifar", "hub", "safetensors", "onnx", "torchrun", "python", "api", "gpu", "cpu", "cuda", "gan", "vae",
         "relu", "adam", "sgd", "adamw", "dropout", "softmax", "logits", "hugging", "face", "id", "ok", "png",
         "zip", "csv", "json", "url", "x", "y", "z", "w", "b", "a", "lr", "mse", "kl", "top-k", "top-5"}


def _name_token(tok: str) -> bool:
    """A word that stays as it is in every language: an identifier, a product or model name, a number or unit."""
    tok = tok.strip("()[]{}<>,;:!?\"'`*“”‘’·-–—")
    return (not tok or tok.lower() in NAMES or any(c in tok for c in "_./=@#<>") or any(c.isdigit() for c in tok)
            or (len(tok) > 1 and tok.isupper()) or any(c.isupper() for c in tok[1:]))


def interface_strings(strings: list[str]) -> list[str]:
    """The strings a translation has to cover: not numbers or symbols alone, not names and identifiers alone."""
    kept = []
    for s in strings:
        if not re.search(r"[A-Za-z\u3400-\u9fff]", s):
            continue                                       # numbers, units, symbols
        if CJK.search(s) or not all(_name_token(t) for t in s.split()):
            kept.append(s)
    return kept


def chinese(s: str) -> bool:
    """Written in Chinese (not English that names a Chinese word)."""
    return len(CJK.findall(s)) > len(re.findall(r"[A-Za-z]+", s))


def _tab(pg, tab_id: str):
    return pg.locator(f'#main-tabs > .tab-wrapper [role=tablist] > [data-tab-id="{tab_id}"]').first


def _tab_names(pg) -> list[str]:
    return pg.locator("#main-tabs > .tab-wrapper [role=tablist] > [role=tab]").all_inner_texts()


def _settle(pg, ms: int = 800) -> None:
    """Wait for the page's work to finish (no progress indicator), then a moment for the last render."""
    try:
        pg.wait_for_function("!document.querySelector('.progress-text, .eta-bar, .pending')", timeout=60_000)
    except Exception:  # noqa: BLE001 - a tab still working is collected as it is
        pass
    pg.wait_for_timeout(ms)


def _open_everything(panel, pg) -> None:
    """Open the tab's closed accordions (their titles are collected in any case)."""
    for _ in range(2):
        closed = panel.locator(".label-wrap:not(.open)")
        n = closed.count()
        if not n:
            return
        for i in range(n):
            try:
                closed.nth(0).click(timeout=5_000)
            except Exception:  # noqa: BLE001 - a hidden one stays closed
                break
        pg.wait_for_timeout(300)


def open_tab(pg, tab_id: str):
    """The tab brought to the front, its work done, its accordions opened: its panel."""
    _tab(pg, tab_id).click()
    panel = pg.locator("#main-tabs > .tabitem[role=tabpanel]:visible").first
    panel.wait_for(state="visible")
    _settle(pg)
    _open_everything(panel, pg)
    _settle(pg, 300)
    return panel


def collect_tab(pg, tab_id: str) -> list[str]:
    """The tab brought to the front, its accordions opened, and every inner tab visited: its strings."""
    panel = open_tab(pg, tab_id)
    strings = pg.evaluate(COLLECT_JS, [panel.element_handle(), None])
    inner = panel.locator("[role=tablist] > [role=tab]")
    for i in range(inner.count()):                          # inner tabs: Draw / Upload, ...
        button = inner.nth(i)
        if button.is_visible() and button.get_attribute("aria-selected") != "true":
            button.click()
            _settle(pg, 300)
            strings += [s for s in pg.evaluate(COLLECT_JS, [panel.element_handle(), None]) if s not in strings]
    return strings


def _page(browser, app_url, locale: str):
    ctx = browser.new_context(locale=locale, viewport={"width": 1280, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(app_url, wait_until="domcontentloaded")
    pg.wait_for_selector(".gradio-container", state="visible")
    _tab(pg, "start-here").wait_for(state="visible")
    return ctx, pg


def page_recording_joins(browser, app_url, locale: str):
    """_page, and the list of the page's queue joins (its events) as they are sent."""
    ctx, pg = _page(browser, app_url, locale)
    joins = []
    pg.on("request", lambda r: joins.append(r) if "/queue/join" in r.url else None)
    return ctx, pg, joins


def _report(locale: str, shares: dict, failing: dict) -> str:
    lines = [f"{locale}: strings with Chinese per tab"]
    for tab, (n_zh, n) in shares.items():
        lines.append(f"  {tab:<26} {n_zh:>4}/{n:<4} {n_zh / max(n, 1):6.1%}")
    for tab, strings in failing.items():
        if strings:
            lines.append(f"-- {tab}: {len(strings)} strings" + (" without Chinese" if locale.startswith("zh")
                                                                 else " with Chinese"))
            lines += [f"     {s[:160]}" for s in strings]
    return "\n".join(lines)


@pytest.mark.slow
@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_every_tab_speaks_the_browser_language(browser, app_url, locale):
    zh = locale.startswith("zh")
    ctx, pg = _page(browser, app_url, locale)
    ARTIFACTS.mkdir(exist_ok=True)
    shares, failing = {}, {}
    try:
        # the page's header (outside the tabs) and the tab names, as the page opens
        container = pg.locator(".gradio-container").element_handle()
        header = pg.evaluate(COLLECT_JS, [container, "#main-tabs"])
        header += [s.strip() for s in _tab_names(pg)]
        groups = {"header": interface_strings(header)}
        for tab in TABS:
            began = time.monotonic()
            strings = collect_tab(pg, tab)
            print(f"{tab}: collected in {time.monotonic() - began:.1f} s")
            if zh:                                          # how the Chinese page looks, wide and on a phone
                shot = str(ARTIFACTS / f"language_{tab.replace('&', 'and')}_{locale}")
                pg.screenshot(path=f"{shot}_1280px.png", full_page=True)
                pg.set_viewport_size({"width": 414, "height": 900})
                pg.wait_for_timeout(500)
                pg.screenshot(path=f"{shot}_414px.png", full_page=True)
                pg.set_viewport_size({"width": 1280, "height": 1000})
            groups[tab] = interface_strings(strings)
    finally:
        ctx.close()
    for tab, strings in groups.items():
        with_zh = [s for s in strings if CJK.search(s)]
        shares[tab] = (len(with_zh), len(strings))
        failing[tab] = [s for s in strings if not CJK.search(s)] if zh else [s for s in strings if chinese(s)]
    print(_report(locale, shares, failing))
    if zh:
        low = {tab: f"{n_zh}/{n}" for tab, (n_zh, n) in shares.items()
               if n and n_zh / n < min(ZH_THRESHOLD[tab], TARGET)}
        assert not low, f"tabs below their threshold of strings in Chinese: {low} (the list above says which)"
    else:
        assert not any(failing.values()), "Chinese in an en-US browser (the list above says where)"


# ---- Settings -> Language: nothing lost, every tab renamed, the server's next message follows ------------------

def open_settings(pg):
    """Gradio's footer Settings, open: its dialog. The footer button loads the panel's code and then flips a flag
    (Gradio 6.31, Blocks: `Ke`), so a click whose load is slow on a busy machine, or that lands while an earlier
    flip is pending, can leave it closed. It is clicked again then (at most twice more), and what the page showed
    each time is printed for the log."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    dialog = pg.get_by_role("dialog", name=re.compile("^(Settings|设置)$"))
    language = dialog.get_by_role("combobox", name="Language")
    failed = []                                             # a request for the panel's code that failed, if any
    pg.on("requestfailed", lambda r: failed.append(f"{r.url} {r.failure}"))
    pg.on("response", lambda r: failed.append(f"{r.url} {r.status}") if r.status >= 400 else None)
    for attempt in range(3):
        if not dialog.is_visible():                         # open but slow to fill: a click would close it
            pg.locator("footer").get_by_text(re.compile(r"^\s*(Settings|设置)\s*$")).first.click()
        try:
            language.wait_for(state="visible", timeout=20_000 * (attempt + 1))
            return dialog
        except PlaywrightTimeout:
            seen = pg.evaluate("""() => ({search: location.search, dialogs: [...document.querySelectorAll(
                '[role=dialog]')].map((d) => `${d.getAttribute('aria-label')}: ${d.innerText.slice(0, 80)}`)})""")
            print(f"Settings did not open after click {attempt + 1}: {seen}; failed requests: {failed[-10:]}")
    raise AssertionError("Gradio's Settings dialog did not open after three clicks (the log above says what was seen)")


def switch_language(pg, name: str) -> None:
    """Gradio's footer Settings -> Language -> `name` (as its menu writes it: 'English', '简体中文'), closed again."""
    dialog = open_settings(pg)
    dialog.get_by_role("combobox", name="Language").click()
    pg.get_by_role("option", name=name, exact=True).click()
    dialog.get_by_role("button").first.click()              # the dialog's close button
    dialog.wait_for(state="hidden")


def _gan_message(pg, seed: str) -> str:
    pg.locator("#gan-seed input").fill(seed)
    pg.locator("#gan-btn").click()
    pg.wait_for_function("""(seed) => { const e = document.querySelector('#gan-status [data-testid=markdown]');
                                       return e && e.checkVisibility() && e.innerText.includes(seed); }""", arg=seed)
    return pg.locator("#gan-status [data-testid=markdown]").inner_text()


@pytest.mark.slow
def test_switching_the_language_keeps_the_page_and_the_server_follows(browser, app_url):
    from core.i18n import t
    from ui.i18n import TITLE_KEYS

    ctx, pg, joins = page_recording_joins(browser, app_url, "zh-CN")
    try:
        _tab(pg, "tensors").click()
        code = pg.locator("#tensor-code .cm-content")
        code.wait_for(state="visible")
        code.click()
        pg.keyboard.press("Control+End")
        pg.keyboard.type("\nmy_own_tensor = torch.arange(6)  # 我的张量\n")
        _tab(pg, "gan").click()
        pg.locator("#gan-btn").wait_for(state="visible")
        _settle(pg)                                           # the tab's first screen, drawn once
        zh_message = _gan_message(pg, "-5")
        assert CJK.search(zh_message), zh_message           # a zh-CN browser: the server writes Chinese
        pg.evaluate("window.__not_reloaded = true")
        _settle(pg, 300)
        before = len(joins)

        switch_language(pg, "English")
        assert pg.evaluate("document.documentElement.lang") == "en"
        assert pg.evaluate("window.__not_reloaded") is True   # the same page: nothing reloaded
        pg.wait_for_timeout(500)
        # nothing asked of the server but the one cheap relabel event (ui.i18n.install_language_switch): no model
        # reloads, no tab's first screen again
        switch_id = pg.evaluate("""(window.gradio_config.components.find(
                                       c => c.props && c.props.elem_id === 'playground-language-switch') || {}).id""")
        sent = [json.loads(r.post_data or "{}") for r in joins[before:]]
        assert len(sent) == 1 and sent[0].get("trigger_id") == switch_id, sent
        names = [s.strip() for s in _tab_names(pg)]           # every tab renamed, visited or not
        assert names == [t(TITLE_KEYS[title], "en") for title in TITLE_KEYS], names
        en_message = _gan_message(pg, "-6")                   # the page's language, not the browser's (zh-CN)
        assert not CJK.search(en_message) and "-6" in en_message, en_message
        assert joins[-1].headers.get("x-playground-language") == "en"
        _tab(pg, "tensors").click()
        assert "my_own_tensor = torch.arange(6)  # 我的张量" in pg.locator("#tensor-code").inner_text()

        switch_language(pg, "简体中文")
        names = [s.strip() for s in _tab_names(pg)]
        assert names == [t(TITLE_KEYS[title], "zh") for title in TITLE_KEYS], names
        assert "my_own_tensor" in pg.locator("#tensor-code").inner_text()
        _tab(pg, "gan").click()
        assert CJK.search(_gan_message(pg, "-7"))
    finally:
        ctx.close()
