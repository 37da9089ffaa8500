"""One place for settings (core/settings.py): the parser, the errors it gives, the docs' table generated from the
dataclass, and no PLAYGROUND_* variable read anywhere else."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import fields

import pytest

from core.settings import Settings, SettingsError, markdown, settings
from tests.conftest import ROOT
from training.data import datasets   # the module an exported run ships: it reads its two variables itself

PAGE = ROOT / "docs" / "configuration.md"
BEGIN = "<!-- The tables below are generated: python -m core.settings --markdown"
END = "<!-- end of the generated tables -->"
# Read in their own module, on purpose: it ships alone in an exported run, where core/ does not exist.
OWN_READERS = {"training/data/datasets.py": {"PLAYGROUND_DATA", "PLAYGROUND_OFFLINE"}}


def test_the_docs_table_is_what_the_dataclass_generates():
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("\n", text.index(BEGIN)) + 1
    table = text[start:text.index(END)].strip("\n") + "\n"
    assert table == markdown(), "docs/configuration.md is out of date: paste `python -m core.settings --markdown`"
    out = subprocess.run([sys.executable, "-m", "core.settings", "--markdown"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert out == markdown()


def test_the_readme_links_the_configuration_page():
    assert "docs/configuration.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_unset_and_empty_are_the_defaults():
    assert Settings.from_env({}) == Settings()
    names = [f.metadata["env"] for f in fields(Settings)]
    assert len(names) == len(set(names)) and all(n.startswith("PLAYGROUND_") for n in names)
    empty = Settings.from_env({n: "" for n in names})
    for f in fields(Settings):
        free_text = f.type in ("str", "str | None") and not f.metadata["choices"]
        assert getattr(empty, f.name) == ("" if free_text else f.default), f.name
        assert f.metadata["doc"] and f.metadata["section"], f.name


def test_values_are_parsed_by_their_type():
    s = Settings.from_env({"PLAYGROUND_JOB_NICE": " 5 ", "PLAYGROUND_TEMP_MAX_MB": "0.5", "PLAYGROUND_JOBS": "Inline",
                           "PLAYGROUND_SANDBOX_FENCE": "off", "PLAYGROUND_CJK_FONT": "", "PLAYGROUND_JOB_THREADS": "3",
                           "PLAYGROUND_TEMP_DIR": "/srv/tmp"})
    assert (s.job_nice, s.temp_max_mb, s.jobs, s.sandbox_fence) == (5, 0.5, "inline", False)
    assert (s.cjk_font, s.job_threads, s.temp_dir) == ("", 3, "/srv/tmp")
    assert Settings().job_threads is None and Settings().cjk_font is None     # unset: computed where it is used


@pytest.mark.parametrize("env, value, expected", [
    ("PLAYGROUND_JOB_NICE", "high", "expected a whole number"),
    ("PLAYGROUND_MODEL_CACHE", "2.5", "expected a whole number"),
    ("PLAYGROUND_TEMP_MAX_MB", "lots", "expected a number"),
    ("PLAYGROUND_TEMP_MAX_MB", "nan", "expected a finite number"),
    ("PLAYGROUND_SANDBOX_WALL_S", "1000", "expected 0.5 to 600"),
    ("PLAYGROUND_SANDBOX_MODE", "sometimes", "expected one of auto, fenced, unfenced, restricted"),
    ("PLAYGROUND_SANDBOX_FENCE", "maybe", "expected one of"),
])
def test_a_bad_value_is_a_clear_error(env, value, expected):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({env: value})
    message = str(info.value)
    assert message.startswith(f"{env}={value!r}: {expected}") and "default" in message
    r = subprocess.run([sys.executable, "-m", "core.settings"], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, env: value})
    assert r.returncode == 1 and r.stderr.startswith(f"{env}=") and "Traceback" not in r.stderr


def test_settings_are_read_once_and_again_after_a_change(monkeypatch):
    assert settings() is settings()
    monkeypatch.setenv("PLAYGROUND_JOB_NICE", "7")          # conftest's monkeypatch reloads them
    assert settings().job_nice == 7
    monkeypatch.delenv("PLAYGROUND_JOB_NICE")
    assert settings().job_nice == 10


def test_no_playground_variable_is_read_outside_the_settings():
    """Every PLAYGROUND_* read of the app goes through core.settings (the tests and benchmarks set them)."""
    read = re.compile(r"(?:environ\.get|getenv|environ\[)\(?\s*[\"'](PLAYGROUND_\w+)")
    found: dict[str, set[str]] = {}
    for path in ROOT.glob("**/*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.split("/")[0] in ("tests", "bench", ".venv", "build", "test-artifacts") or rel == "core/settings.py":
            continue
        names = set(read.findall(path.read_text(encoding="utf-8")))
        if names:
            found[rel] = names
    assert found == OWN_READERS


def test_the_exported_data_module_has_the_same_defaults(monkeypatch):
    monkeypatch.delenv("PLAYGROUND_DATA", raising=False)
    assert datasets.data_root() == os.path.join(os.path.expanduser("~"), ".cache", "pytorch-playground")
    assert "~/.cache/pytorch-playground" in next(f for f in fields(Settings) if f.name == "data_dir"
                                                 ).metadata["default_doc"]
