"""One error model: errors written for the visitor derive from VisitorError and carry a message key (an entry of
the catalogues in core/locales/, so they can be translated) and its values; describe() turns any exception into
(kind, text), the one place that decides "the visitor's mistake, or ours?".

- VisitorError: the visitor's input or a limit they reached. Shown as written (rendered from the catalogue).
- anything else: ours. Logged with its traceback under a short id, shown as "Something went wrong" plus the id,
  so a visitor's report finds the log line, and no server path or internal name reaches the page.
"""
from __future__ import annotations

import json
import logging
import secrets
import string
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("playground")
LOCALES = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "en"


@lru_cache(maxsize=8)
def catalogue(language: str = DEFAULT_LANGUAGE) -> dict[str, str]:
    """key -> message template ({name} placeholders) for one language; {} if there is no such catalogue."""
    path = LOCALES / f"{language}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def render(key: str, values: dict, language: str = DEFAULT_LANGUAGE) -> str:
    """The message for a key in a language (English when that language lacks it; the key itself if neither has
    it, which a test forbids). A value the template does not name is ignored; a name it lacks stays visible."""
    template = catalogue(language).get(key) or catalogue(DEFAULT_LANGUAGE).get(key) or key
    return string.Formatter().vformat(template, (), _Missing(values))


class _Missing(dict):
    def __missing__(self, name):
        return "{" + name + "}"


class VisitorError(Exception):
    """An error written for the visitor. Raise with a key and values (`ImageTooLarge(size_mb=30, limit_mb=25)`
    through a subclass whose `key` is set, or `VisitorError(key="...", **values)`), or, for messages not yet in
    the catalogue, with the text itself (`key` stays the class's)."""

    key = "error.visitor"

    def __init__(self, message: str | None = None, /, *, key: str | None = None, **values):
        self.key = key or type(self).key
        self.values = values
        super().__init__(message if message is not None else render(self.key, values))

    def text(self, language: str = DEFAULT_LANGUAGE) -> str:
        """The message in a language (the catalogue's, when the error was raised with a key)."""
        if self.args and self.args[0] != render(self.key, self.values):
            return str(self.args[0])   # raised with its own text
        return render(self.key, self.values, language)


class InputError(VisitorError, ValueError):
    """A value the visitor gave is outside what the app accepts (also a ValueError, for older callers)."""

    key = "error.input"


class LimitReached(VisitorError):
    """The visitor reached a limit that protects others (size, time, memory, quota)."""

    key = "error.limit"


def describe(exc: BaseException, where: str = "", language: str = DEFAULT_LANGUAGE) -> tuple[str, str]:
    """(kind, text) for any exception: ("visitor", its message) or ("internal", "Something went wrong ... id")
    after logging the traceback under that id."""
    if isinstance(exc, VisitorError):
        text = exc.text(language)
        return "visitor", text[:1].upper() + text[1:]
    if isinstance(exc, MemoryError):
        return "visitor", render("error.out_of_memory", {}, language)
    ident = secrets.token_hex(4)
    log.error("error %s in %s: %s", ident, where or "a request", type(exc).__name__, exc_info=exc)
    return "internal", render("error.internal", {"id": ident}, language)
