"""The app's two languages, English and Simplified Chinese: which one a request gets (language_of) and the text of a
catalogue key in it (t). One catalogue per language, core/locales/<language>.json: key -> template with {name}
placeholders, a file a translator edits without reading code. docs/language.md says what Gradio's own gr.I18n
translates in the page and what the server translates per request with these functions.

current_language() is the language of the request being served, for code that has no request at hand (an error's
message, a status line written deep in a tab): the UI layer registers where it comes from (ui.i18n: the Gradio
event's request, the page's choice first, else Accept-Language); speaking(language) sets it for a block of code
(a thread that serves a request outside an event). Outside both it is English.
"""
from __future__ import annotations

import json
import re
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

LOCALES = Path(__file__).resolve().parent / "locales"
LANGUAGES = ("en", "zh")          # English; Simplified Chinese (the tutorial's language)
DEFAULT = "en"
NAMES = {"en": "English", "zh": "简体中文"}
# A language tag's primary subtag -> our language. Every Chinese tag (zh-CN, zh-Hans, zh-SG, and also zh-TW,
# zh-HK, zh-Hant) gets Simplified Chinese: the page's own gr.I18n strings fall back from "zh-TW" to "zh" as well
# (svelte-i18n tries zh-TW, then zh), so the server's messages and the page agree, and a reader of Traditional
# Chinese reads Simplified more easily than English.
_PRIMARY = {"en": "en", "zh": "zh", "cmn": "zh"}
_TAG = re.compile(r"^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$")


def normalize(tag: str | None) -> str | None:
    """Our language for one language tag ('zh-CN', 'zh_Hans', 'EN-us', 'zh'), or None for any other tag."""
    tag = (tag or "").strip()
    if not _TAG.match(tag):
        return None
    return _PRIMARY.get(re.split(r"[-_]", tag, maxsplit=1)[0].lower())


def accepted(header: str | None) -> list[str]:
    """The language tags of an Accept-Language header, best first (by q-value, then by order); q=0 means 'not
    this one' and is left out, as is a malformed entry or the wildcard."""
    ranked = []
    for i, part in enumerate((header or "").split(",")[:32]):   # a header is short; a flood of entries is cut
        tag, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = -1.0
        if tag and tag != "*" and 0 < q <= 1:
            ranked.append((-q, i, tag))
    return [tag for _, _, tag in sorted(ranked)]


def language_of(accept_language: str | None, chosen: str | None = None) -> str:
    """The language of one request: the page's choice when it names one of ours, else the first of ours in the
    Accept-Language header (q-values respected), else English."""
    for tag in [chosen, *accepted(accept_language)]:
        language = normalize(tag)
        if language:
            return language
    return DEFAULT


@lru_cache(maxsize=len(LANGUAGES) + 1)
def catalogue(language: str = DEFAULT) -> dict[str, str]:
    """key -> template for one language ({} if there is no such catalogue). Read once per process."""
    if language not in LANGUAGES:
        return {}
    try:
        return json.loads((LOCALES / f"{language}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


_SPOKEN: ContextVar[str | None] = ContextVar("playground_language", default=None)
_request_language: Callable[[], str | None] | None = None


def set_request_language(source: Callable[[], str | None] | None) -> None:
    """Register how current_language() finds the language of the request being served (ui.i18n does, with the
    Gradio event's request); source() returns one of LANGUAGES, or None outside a request."""
    global _request_language
    _request_language = source


def current_language() -> str:
    """The language of the request being served: speaking()'s, else the registered request's, else English."""
    language = _SPOKEN.get()
    if language is None and _request_language is not None:
        try:
            language = _request_language()
        except Exception:  # noqa: BLE001 - a message in English rather than none
            language = None
    return language if language in LANGUAGES else DEFAULT


@contextmanager
def speaking(language: str | None) -> Iterator[str]:
    """current_language() is `language` (any tag: 'zh-CN' -> 'zh'; not ours -> English) inside the block."""
    token = _SPOKEN.set(normalize(language) or DEFAULT)
    try:
        yield _SPOKEN.get()
    finally:
        _SPOKEN.reset(token)


def t(key: str, language: str | None = None, /, **values) -> str:
    """The text of a catalogue key in a language (None: current_language(); a tag such as 'zh-CN' is read as
    ours), its {name} placeholders filled from values. A key the language lacks falls back to English, then to the
    key itself (tests/test_i18n.py forbids both). A placeholder with no value stays visible as {name}; a value the
    template does not name is ignored."""
    language = current_language() if language is None else (normalize(language) or DEFAULT)
    template = catalogue(language).get(key) or catalogue(DEFAULT).get(key) or key
    try:
        return string.Formatter().vformat(template, (), _Missing(values))
    except (ValueError, IndexError, KeyError, AttributeError):   # a value that does not fit its format ({n:.1f})
        return template


def N_(key: str) -> str:
    """Marks a string literal as a catalogue key that code names but does not translate here (a gr.I18n key, a
    key kept in a table); returns it unchanged. The catalogue test finds keys through it, as through t()."""
    return key


def page_translations() -> dict[str, dict[str, str]]:
    """{language: {key: text}} for Gradio's gr.I18n: the catalogue entries the page can show as static component
    text (label("key") in any tab), i.e. every entry without a {placeholder} in either language. The server's
    messages with values stay out (they are rendered per request with t(); the page's front end would read their
    braces as ICU placeholders)."""
    static = [k for k in catalogue(DEFAULT)
              if not any(c in text for text in (catalogue(lang).get(k, "") for lang in LANGUAGES) for c in "{}")]
    return {language: {k: catalogue(language)[k] for k in static if k in catalogue(language)}
            for language in LANGUAGES}


class _Missing(dict):
    def __missing__(self, name):
        return "{" + name + "}"
