"""The page's static text in the browser's language, through Gradio's own gr.I18n: labels, buttons, Markdown and
tab names name a catalogue key (label("tab.tensors")) and the browser picks the language (Gradio's Settings page
switches it without a reload). What gr.I18n cannot carry is rendered per request with core.i18n.t and the
request's language (request_language); docs/language.md says which is which.

The page tells the server its language: LANGUAGE_HEAD (launch(head=...)) adds the page's current language (`<html
lang>`, which Gradio's Settings -> Language switch sets) to every request the page sends to the server, as the
header LANGUAGE_HEADER; request_language prefers it to Accept-Language. Importing this module registers the Gradio
event's request as core.i18n.current_language()'s source, so any code running in an event (an error's message
through ui.errors, a status line) can write in the visitor's language without being handed the request."""
from __future__ import annotations

from functools import lru_cache

import gradio as gr
from gradio.context import LocalContext
from gradio.i18n import I18nData

from core.i18n import LANGUAGES, catalogue, language_of, page_translations, set_request_language, t
from ui import tutorial

LANGUAGE_HEADER = "x-playground-language"
SWITCH_ID = "playground-language-switch"   # the hidden button the head script clicks after a language switch
# In the page's <head>, before Gradio's app starts: every request to our own server (the queue's join, uploads,
# the config) carries the page's language as LANGUAGE_HEADER, read at the time of the request, so a language
# switched in Settings applies to the next event without a reload. Only same-origin requests (a custom header on
# another origin's request would need a CORS preflight); a value that is not a plain language tag is not sent.
# It also renames the tab buttons after a language switch (see retitle).
LANGUAGE_HEAD = """<script>
(() => {
  const real = window.fetch;
  if (!real || real.playgroundLanguage) return;
  const wrapped = function (input, init) {
    try {
      const url = new URL(input instanceof Request ? input.url : String(input), location.href);
      const lang = document.documentElement.lang || navigator.language || '';
      if (url.origin === location.origin && /^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$/.test(lang)) {
        const headers = new Headers((init && init.headers) || (input instanceof Request ? input.headers : {}));
        headers.set('%s', lang);
        init = {...(init || {}), headers};
      }
    } catch (e) { /* an unusual request goes out as it was */ }
    return real.call(window, input, init);
  };
  wrapped.playgroundLanguage = true;
  window.fetch = wrapped;
  // Gradio 6.31 translates a tab's name when the tab registers, i.e. when it is shown: after a switch in
  // Settings -> Language the names of tabs not visited since stay in the old language. Rename those buttons
  // (the bar, its hidden measuring copy, the overflow menu) from the page's own translations.
  const retitle = () => {
    const all = (window.gradio_config || {}).i18n_translations;
    if (!all) return;
    const tag = (document.documentElement.lang || '').toLowerCase();
    const lang = all[tag] ? tag : all[tag.split('-')[0]] ? tag.split('-')[0] : 'en';
    // only the tabs' own keys: two entries may share a text ('模型压缩': a tab's and a job phase's)
    const tabs = new Set(((window.gradio_config || {}).components || []).filter((c) => c.type === 'tabitem')
      .map((c) => (/"key":\\s*"([^"]+)"/.exec(String((c.props || {}).label || '')) || [])[1]).filter(Boolean));
    const keys = new Map();
    for (const dict of Object.values(all)) {
      for (const [k, v] of Object.entries(dict)) if ((!tabs.size || tabs.has(k)) && !keys.has(v)) keys.set(v, k);
    }
    document.querySelectorAll('.tab-container > button, .overflow-dropdown button').forEach((b) => {
      const node = [...b.childNodes].find((n) => n.nodeType === 3 && n.nodeValue.trim());
      const key = node && keys.get(node.nodeValue.trim());
      const text = key && ((all[lang] || {})[key] || (all.en || {})[key]);
      if (text && node.nodeValue.trim() !== text) node.nodeValue = text;
    });
  };
  // After a switch, the server's own words in the page's widgets (the examples' names, the models' notes, the
  // tables' headers: ui.i18n.follow_language) are asked for again in the new language: one click of the hidden
  // button SWITCH_ID per change of <html lang> (none before the app is up: its page-load event asks then).
  let asked = document.documentElement.lang || '';
  const relabel = () => {
    const tag = document.documentElement.lang || '';
    if (tag === asked) return;
    asked = tag;
    document.getElementById('%s')?.click();
  };
  new MutationObserver(() => { retitle(); relabel(); })
    .observe(document.documentElement, {attributes: true, attributeFilter: ['lang']});
})();
</script>""" % (LANGUAGE_HEADER, SWITCH_ID)

TITLE_KEYS = {   # app.py TABS titles -> the key of the tab's name
    "Start here": tutorial.TAB_KEYS["start-here"],
    "Classify": tutorial.TAB_KEYS["classify"],
    "Tensors": tutorial.TAB_KEYS["tensors"],
    "Autograd": tutorial.TAB_KEYS["autograd"],
    "Autoencoder": tutorial.TAB_KEYS["autoencoder"],
    "GAN": tutorial.TAB_KEYS["gan"],
    "Data": tutorial.TAB_KEYS["data"],
    "Fine-tune": tutorial.TAB_KEYS["fine-tune"],
    "Ensembles & compression": tutorial.TAB_KEYS["ensembles-&-compression"],
    "Look inside": tutorial.TAB_KEYS["look-inside"],
}


def label(key: str) -> I18nData:
    """Static component text the browser shows in its language (a key of page_i18n's translations)."""
    return I18nData(key)


def tab_label(title: str) -> I18nData | str:
    """A tab's name in the browser's language (the English title where no key is known)."""
    key = TITLE_KEYS.get(title)
    return label(key) if key else title


@lru_cache(maxsize=1)
def page_i18n() -> gr.I18n:
    """Every static string the page translates, for launch(i18n=...): the catalogues' page entries (tab., start.)
    and the Start-here tab's sections."""
    translations = page_translations()
    for language, extra in tutorial.page_translations().items():
        translations[language] = {**translations[language], **extra}
    return gr.I18n(**translations)


def request_language(request: gr.Request | None, chosen: str | None = None) -> str:
    """The language of one request (a server message): the page's choice (`chosen`, else the LANGUAGE_HEADER the
    page sends), else the Accept-Language header, else English."""
    headers = getattr(request, "headers", None) or {}
    return language_of(headers.get("accept-language"), chosen or headers.get(LANGUAGE_HEADER))


def event_language() -> str | None:
    """The language of the Gradio event being served in this thread (Gradio sets its request around the event's
    function, also around each step of a stream), or None outside an event."""
    request = LocalContext.request.get(None)
    return None if request is None else request_language(request)


set_request_language(event_language)


# ---- the server's words in the page's widgets, after a switch of language (and on every page load) -------------
# What gr.I18n cannot carry but the server writes into a widget once (an example's name, a model's "(needs
# download)" note, a table's headers) follows the page's language: tabs register it here while they are built
# (follow_language, follow_headers), and install_language_switch(demo) sends it all in the request's language on
# every page load and whenever the head script clicks the hidden button SWITCH_ID (<html lang> changed). Nothing
# the visitor typed, drew, uploaded or trained is touched: a table keeps its rows (only its headers are renamed,
# in the page, from the table's own value at that moment), a list keeps its choice.

# Renames the headers of each followed table in the page, from the map the server sent ([{old: new}] per table, in
# install_language_switch's order): the rows stay the ones the table holds now, whatever ran meanwhile.
APPLY_HEADERS_JS = """(maps, ...tables) => tables.map((value, i) => {
  const map = (Array.isArray(maps) && maps[i]) || {};
  if (!value || !Array.isArray(value.headers)) return value;
  return {...value, headers: value.headers.map((h) => Object.prototype.hasOwnProperty.call(map, h) ? map[h] : h)};
})"""


class _Following:
    """What follows the page's language in one Blocks: (component, render(language) -> update) and (table, {shown
    text: key})."""

    def __init__(self):
        self.widgets: list[tuple[object, object]] = []
        self.tables: list[tuple[object, dict[str, str]]] = []


def _following(root=None) -> _Following | None:
    from gradio.context import Context

    root = root if root is not None else Context.root_block
    if root is None:
        return None
    following = getattr(root, "_playground_following", None)
    if following is None:
        following = root._playground_following = _Following()
    return following


def follow_language(component, render) -> None:
    """`render(language)` (an update of `component`: gr.Dropdown(choices=...), gr.Dataset(sample_labels=...)) is
    sent on every page load and after every switch of language, in the page's language. Only text the server
    writes; never a value the visitor chose."""
    following = _following()
    if following is not None and all(c is not component for c, _ in following.widgets):
        following.widgets.append((component, render))


def follow_headers(table, keys) -> None:
    """The headers of a gr.Dataframe follow the page's language (gr.I18n does not carry a Dataframe's headers):
    keys: the catalogue keys of its columns, or {a header as the table may show it (the API's column name): key}.
    A header shown in any language is renamed to the key's text in the page's; other headers (a class's name) stay,
    as does a text two of the table's keys share in one language (which one it is, is not known)."""
    following = _following()
    if following is None:
        return
    named = dict(keys) if isinstance(keys, dict) else {}
    keys = list(keys.values()) if isinstance(keys, dict) else list(keys)
    shown: dict[str, set[str]] = {text: {key} for text, key in named.items()}
    for key in keys:
        for language in LANGUAGES:
            shown.setdefault(t(key, language), set()).add(key)
    shown = {text: min(found) for text, found in shown.items()
             if len({tuple(t(k, language) for language in LANGUAGES) for k in found}) == 1}
    following.tables = [(c, m) for c, m in following.tables if c is not table] + [(table, shown)]


def _example_keys(names: list[str]) -> list[str] | None:
    """The catalogue keys of examples' names laid out in English (gr.Examples(example_labels=[t(key, "en")...])),
    or None where a name is no English entry, or one that two entries with different translations share."""
    by_english: dict[str, set[str]] = {}
    for key, text in catalogue("en").items():
        by_english.setdefault(text, set()).add(key)
    keys = []
    for name in names:
        found = by_english.get(name, set())
        if not found or len({t(k, "zh") for k in found}) != 1:
            return None
        keys.append(min(found))
    return keys


def _follow_examples(demo, following: _Following) -> None:
    """Every gr.Dataset of examples named by catalogue entries follows the page's language."""
    for block in list(demo.blocks.values()):
        names = getattr(block, "sample_labels", None)
        if isinstance(block, gr.Dataset) and names and all(block is not c for c, _ in following.widgets):
            keys = _example_keys([str(n) for n in names])
            if keys:
                following.widgets.append((block, lambda language, keys=keys: gr.Dataset(
                    sample_labels=[t(k, language) for k in keys])))


@lru_cache(maxsize=len(LANGUAGES) + 1)
def _header_maps(tables: tuple[tuple[tuple[str, str], ...], ...], language: str) -> list[dict[str, str]]:
    return [{text: t(key, language) for text, key in shown} for shown in tables]


def install_language_switch(demo) -> gr.Button:
    """Call inside `with demo:` once every tab is built: on every page load, and when the page's head script
    clicks the hidden button SWITCH_ID (a switch in Settings -> Language), one event sends what follow_language
    and follow_headers registered, and the examples' names, in the request's language. The event is private, takes
    no input and answers from the catalogues (cheap and bounded); it runs in the queue, in a group of its own, so
    no visitor's work delays it; the headers are then renamed in the page (APPLY_HEADERS_JS). Returns the hidden
    button."""
    following = _following(demo)
    _follow_examples(demo, following)
    widgets = [c for c, _ in following.widgets]
    tables = [c for c, _ in following.tables]
    shown = tuple(tuple(sorted(m.items())) for _, m in following.tables)
    renders = [render for _, render in following.widgets]
    button = gr.Button(label("common.language_switch"), visible="hidden", elem_id=SWITCH_ID)
    maps = gr.JSON(visible="hidden", elem_id=f"{SWITCH_ID}-headers")

    def follow_page_language(request: gr.Request):
        language = request_language(request)
        return (*[render(language) for render in renders], _header_maps(shown, language))

    queued = dict(api_visibility="private", show_progress="hidden", concurrency_id="language", concurrency_limit=4)
    apply = dict(fn=None, inputs=[maps, *tables], outputs=tables, js=APPLY_HEADERS_JS, api_visibility="private",
                 show_progress="hidden", queue=False)
    button.click(follow_page_language, None, [*widgets, maps], trigger_mode="always_last", **queued).then(**apply)
    demo.load(follow_page_language, None, [*widgets, maps], **queued).then(**apply)
    return button
