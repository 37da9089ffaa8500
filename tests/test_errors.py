"""The one error model (core/errors.py): visitor errors carry a key and values rendered from the catalogue;
anything else is logged with an id and shown without internals; every key the code uses is in the catalogue,
every catalogue entry is used, and no visitor error is raised with text instead of a key."""
from __future__ import annotations

import ast
import json
import logging
import re
import string
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = re.compile(r"^[a-z_]+(?:\.[a-z0-9_]+)+$")
PACKAGES = ("core", "zoo", "playground", "training", "jobs", "ui", "look_inside")


def _catalogue(lang: str = "en") -> dict[str, str]:
    return json.loads((ROOT / "core" / "locales" / f"{lang}.json").read_text(encoding="utf-8"))


def _fields(template: str) -> set[str]:
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


def test_visitor_errors_render_their_key_and_values():
    from core.errors import InputError, LimitReached, VisitorError, describe, render

    e = InputError("image.file_too_large", size_mb=30.04, limit_mb=25)
    kind, text = describe(e)
    assert kind == "visitor" and text == str(e) and "30.0 MB" in text and "25 MB" in text
    assert isinstance(e, ValueError)   # older `except ValueError` callers still catch it
    assert describe(LimitReached())[1] == render("error.limit")
    e = VisitorError("error.internal", id="abc")
    assert "abc" in str(e) and e.key == "error.internal" and e.values == {"id": "abc"}
    assert describe(e)[0] == "internal"
    # a language without the key (or no such catalogue) falls back to English; a missing value stays visible
    assert e.text("xx") == str(e) == e.text("en-GB")
    assert "{id}" in render("error.internal", {})


def test_the_errors_of_modules_that_ship_alone_are_visitor_errors():
    from core.errors import VisitorError, describe, render
    from training.checkpoint import CheckpointError

    e = CheckpointError("checkpoint.refused", "refused checkpoint: {why}", why="bad")
    assert isinstance(e, VisitorError) and isinstance(e, ValueError)
    assert describe(e) == ("visitor", render("checkpoint.refused", {"why": "bad"})[:1].upper()
                           + render("checkpoint.refused", {"why": "bad"})[1:])


def test_unexpected_errors_are_logged_with_an_id_and_shown_without_internals(caplog):
    from core.errors import describe, wire

    with caplog.at_level(logging.ERROR, logger="playground"):
        kind, text = describe(KeyError("/srv/secret/path"), where="test")
        sent = wire(TypeError("/srv/other"), where="job")
    ident = re.search(r"error id ([0-9a-f]{8})", text).group(1)
    assert kind == "internal" and "/srv/secret/path" not in text and "KeyError" not in text
    assert any(ident in r.getMessage() and r.exc_info for r in caplog.records)
    assert sent["key"] == "error.internal" and any(sent["values"]["id"] in r.getMessage() for r in caplog.records)


def _sources() -> list[Path]:
    sources = [p for d in PACKAGES if (ROOT / d).is_dir() for p in (ROOT / d).rglob("*.py")]
    return sources + [ROOT / "app.py"]


def _visitor_classes(trees) -> tuple[set[str], set[str]]:
    """(every class that is a VisitorError by its bases, the marked classes of modules that ship alone)."""
    bases: dict[str, set[str]] = {}
    marked: set[str] = set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                for stmt in node.body:
                    names = [getattr(t, "id", "") for t in getattr(stmt, "targets", [])]
                    if "visitor_error" in names and getattr(stmt.value, "value", None) is True:
                        marked.add(node.name)
    found = {"VisitorError"} | marked
    while True:
        more = {name for name, bs in bases.items() if bs & found} - found
        if not more:
            return found, marked
        found |= more


def test_every_key_is_in_the_catalogue_every_entry_is_used_and_no_visitor_error_is_raised_with_text():
    catalogue = _catalogue()
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in _sources()}
    classes, marked = _visitor_classes(trees.values())
    used, problems = set(), []
    for path, tree in trees.items():
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            # a key written anywhere (handed to a helper: whole_number(seed, "field.seed"); in a table or a choice)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in catalogue:
                used.add(node.value)
            if isinstance(node, ast.ClassDef):      # an error class's own key: `key = "area.what"`
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and any(getattr(t, "id", "") == "key" for t in stmt.targets)
                            and isinstance(stmt.value, ast.Constant)):
                        used.add(stmt.value.value)
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            first = node.args[0] if node.args else None
            if name in ("render", "term") and isinstance(first, ast.Constant) and KEY.match(str(first.value)):
                used.add(first.value)
            if name not in classes or first is None:
                continue
            text = isinstance(first, ast.Constant) and not KEY.match(str(first.value))
            if isinstance(first, ast.JoinedStr) or text:
                problems.append(f"{where}:{node.lineno}: {name} raised with text, not a key")
                continue
            if not isinstance(first, ast.Constant):
                continue            # a key decided at run time (a job's error from the worker)
            key = first.value
            used.add(key)
            if key not in catalogue:
                continue
            given = {k.arg for k in node.keywords}
            if None not in given and not _fields(catalogue[key]) <= given:
                problems.append(f"{where}:{node.lineno}: {key} needs {sorted(_fields(catalogue[key]) - given)}")
            if name in marked:     # a module that ships alone says its English itself: the catalogue's
                text = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else None
                if text != catalogue[key]:
                    problems.append(f"{where}:{node.lineno}: {key}'s English differs from the catalogue's")
    assert problems == [], "\n".join(problems)
    assert sorted(used - set(catalogue)) == [], "keys missing from core/locales/en.json"
    assert sorted(set(catalogue) - used) == [], "catalogue entries no code uses"


def test_other_catalogues_translate_the_english_keys_with_the_same_values():
    english = _catalogue()
    for path in sorted((ROOT / "core" / "locales").glob("*.json")):
        other = _catalogue(path.stem)
        assert set(other) <= set(english), f"{path.name}: keys English does not have"
        for key, template in other.items():
            assert _fields(template) <= _fields(english[key]), f"{path.name}: {key} names other values"
