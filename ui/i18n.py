"""The page's static text in the browser's language, through Gradio's own gr.I18n: labels, buttons, Markdown and
tab names name a catalogue key (label("tab.tensors")) and the browser picks the language (Gradio's Settings page
switches it without a reload). What gr.I18n cannot carry is rendered per request with core.i18n.t and the
request's language (request_language); docs/language.md says which is which."""
from __future__ import annotations

from functools import lru_cache

import gradio as gr
from gradio.i18n import I18nData

from core.i18n import language_of, page_translations
from ui import tutorial

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
    """The language of one request (a server message): the page's choice, else the Accept-Language header."""
    headers = getattr(request, "headers", None) or {}
    return language_of(headers.get("accept-language"), chosen)
