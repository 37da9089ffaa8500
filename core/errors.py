"""One error model: errors written for the visitor derive from VisitorError and carry a message key (an entry of
the catalogues in core/locales/, so they can be translated) and its values; describe() turns any exception into
(kind, text), the one place that decides "the visitor's mistake, or ours?".

- VisitorError: the visitor's input or a limit they reached, or a state of the app written for them (a job that
  stopped, a sandbox that is busy). Raised as `SomeError("area.what", name=value, ...)`; shown as the catalogue
  renders the key with the values, in the visitor's language (English where a catalogue lacks the key).
- anything else: ours. Logged with its traceback under a short id, shown as "Something went wrong" plus the id,
  so a visitor's report finds the log line, and no server path or internal name reaches the page.

Keys are `area.what` (lower case, dots and underscores); values are plain numbers and strings (a translation
formats them itself: `{size_mb:.1f}`), or `term(key)` for a word the catalogue translates too (the name of the
field a number was typed in), so an error can cross a process boundary as JSON (the job worker's).
A few modules ship alone in an exported run and import nothing of ours (training/data/datasets.py,
training/checkpoint.py, training/data/transforms.py): their error classes carry `visitor_error = True`, a `key` and
`values` instead, and VisitorError counts them as its own (isinstance is true); tests/test_errors.py holds their
English to the catalogue.
"""
from __future__ import annotations

import logging
import secrets
import string
from abc import ABCMeta

from core.i18n import DEFAULT as DEFAULT_LANGUAGE
from core.i18n import catalogue, current_language, normalize

log = logging.getLogger("playground")
INTERNAL_KEY = "error.internal"


def _template(key: str, language: str | None) -> str:
    language = current_language() if language is None else (normalize(language) or DEFAULT_LANGUAGE)
    return catalogue(language).get(key) or catalogue(DEFAULT_LANGUAGE).get(key) or key


def render(key: str, values: dict | None = None, language: str | None = None) -> str:
    """The message for a key in a language (`zh`, `zh-CN`; None: the request's, core.i18n.current_language();
    English when that language lacks it; the key itself if neither has it, which a test forbids). A value the
    template does not name is ignored; a name it lacks, or a value its format does not fit, stays visible as {name}
    instead of failing."""
    template = _template(key, language)
    values = {name: render(v["key"], v.get("values"), language) if _is_term(v) else v
              for name, v in (values or {}).items()}
    try:
        return string.Formatter().vformat(template, (), _Missing(values))
    except (ValueError, TypeError, IndexError, AttributeError):
        return template


def term(key: str, **values) -> dict:
    """A value that is itself a catalogue entry (rendered in the same language): `what=term("field.seed")`."""
    return {"key": key, "values": values}


def _is_term(v) -> bool:
    return isinstance(v, dict) and isinstance(v.get("key"), str)


class _Missing(dict):
    def __missing__(self, name):
        return "{" + name + "}"


class VisitorError(Exception, metaclass=ABCMeta):
    """An error written for the visitor: `VisitorError("area.what", name=value, ...)`, or a subclass whose `key`
    is its only message (`JobCancelled()`). str() is the English text; text(language) any catalogue's."""

    key = "error.visitor"

    def __init__(self, key: str | None = None, /, **values):
        self.key = key or type(self).key
        self.values = values
        super().__init__(render(self.key, values, DEFAULT_LANGUAGE))

    def text(self, language: str | None = None) -> str:
        """The message in a language (None: the request's)."""
        return render(self.key, self.values, language)

    @classmethod
    def __subclasshook__(cls, sub):
        # an error class of a module that ships alone (see the module docstring) is one of ours by its marker
        if cls is VisitorError and getattr(sub, "visitor_error", False) is True:
            return True
        return NotImplemented


class InputError(VisitorError, ValueError):
    """A value the visitor gave is outside what the app accepts (also a ValueError, for `except ValueError`)."""

    key = "error.input"


class LimitReached(VisitorError):
    """The visitor reached a limit that protects others (size, time, memory, quota)."""

    key = "error.limit"


def text_of(exc: BaseException, language: str | None = None) -> str:
    """A visitor error's message in a language (None: the request's), first letter capitalised."""
    key, values = getattr(exc, "key", None), getattr(exc, "values", None)
    text = render(key, values, language) if isinstance(key, str) and isinstance(values, dict) else str(exc)
    return text[:1].upper() + text[1:]


def log_unexpected(exc: BaseException, where: str = "") -> str:
    """Log an unexpected exception with its traceback under a new short id, and return the id."""
    ident = secrets.token_hex(4)
    log.error("error %s in %s: %s", ident, where or "a request", type(exc).__name__, exc_info=exc)
    return ident


def describe(exc: BaseException, where: str = "", language: str | None = None) -> tuple[str, str]:
    """(kind, text) for any exception: ("visitor", its message), or ("internal", "Something went wrong ... id")
    after logging the traceback under that id (also for a visitor error that only carries such an id, e.g. a job
    whose worker logged it)."""
    if isinstance(exc, VisitorError):
        return ("internal" if getattr(exc, "key", None) == INTERNAL_KEY else "visitor"), text_of(exc, language)
    if isinstance(exc, MemoryError):
        return "visitor", render("error.out_of_memory", {}, language)
    return "internal", render(INTERNAL_KEY, {"id": log_unexpected(exc, where)}, language)


def wire(exc: BaseException, where: str = "") -> dict:
    """A visitor error as JSON for another process ({"key", "values"}; values that are not plain JSON become
    text); anything else is logged here first and travels as the internal error with its id."""
    if not isinstance(exc, VisitorError):
        return {"key": INTERNAL_KEY, "values": {"id": log_unexpected(exc, where)}}
    plain = {k: v if v is None or isinstance(v, (bool, int, float, str)) or _is_term(v) else str(v)
             for k, v in (getattr(exc, "values", None) or {}).items()}
    return {"key": getattr(exc, "key", VisitorError.key), "values": plain}
