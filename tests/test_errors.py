"""The one error model (core/errors.py): visitor errors carry a key and values rendered from the catalogue;
anything else is logged with an id and shown without internals; every key the code uses is in the catalogue and
every catalogue entry is used."""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_visitor_errors_render_their_key_and_values():
    from core.errors import InputError, VisitorError, describe

    class TooBig(InputError):
        key = "error.limit"

    assert describe(TooBig())[0] == "visitor"
    e = VisitorError(key="error.internal", id="abc")
    assert "abc" in str(e) and e.key == "error.internal" and e.values == {"id": "abc"}
    own = InputError("the learning rate must be between 1e-7 and 1")
    assert describe(own) == ("visitor", "The learning rate must be between 1e-7 and 1")
    assert isinstance(own, ValueError)   # older `except ValueError` callers still catch it


def test_unexpected_errors_are_logged_with_an_id_and_shown_without_internals(caplog):
    from core.errors import describe

    with caplog.at_level(logging.ERROR, logger="playground"):
        kind, text = describe(KeyError("/srv/secret/path"), where="test")
    ident = re.search(r"error id ([0-9a-f]{8})", text).group(1)
    assert kind == "internal" and "/srv/secret/path" not in text and "KeyError" not in text
    assert any(ident in r.getMessage() and r.exc_info for r in caplog.records)


def test_every_key_is_in_the_catalogue_and_every_entry_is_used():
    catalogue = json.loads((ROOT / "core" / "locales" / "en.json").read_text())
    packages = ("core", "zoo", "playground", "training", "ui", "look_inside")
    sources = [p for d in packages for p in (ROOT / d).rglob("*.py")]
    sources.append(ROOT / "app.py")
    used = set()
    for p in sources:
        text = p.read_text()
        used |= set(re.findall(r"""\bkey\s*=\s*["']([a-z_]+(?:\.[a-z_]+)+)["']""", text))
        used |= set(re.findall(r"""render\(\s*["']([a-z_]+(?:\.[a-z_]+)+)["']""", text))
    assert used - set(catalogue) == set(), "keys missing from core/locales/en.json"
    assert set(catalogue) - used == set(), "catalogue entries no code uses"
