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

from core.i18n import language_of, page_translations, set_request_language
from ui import tutorial

LANGUAGE_HEADER = "x-playground-language"
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
    const keys = new Map();
    for (const dict of Object.values(all)) for (const [k, v] of Object.entries(dict)) if (!keys.has(v)) keys.set(v, k);
    document.querySelectorAll('.tab-container > button, .overflow-dropdown button').forEach((b) => {
      const node = [...b.childNodes].find((n) => n.nodeType === 3 && n.nodeValue.trim());
      const key = node && keys.get(node.nodeValue.trim());
      const text = key && ((all[lang] || {})[key] || (all.en || {})[key]);
      if (text && node.nodeValue.trim() !== text) node.nodeValue = text;
    });
  };
  new MutationObserver(retitle).observe(document.documentElement, {attributes: true, attributeFilter: ['lang']});
})();
</script>""" % LANGUAGE_HEADER

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
