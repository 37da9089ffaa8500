"""Every setting the app takes from the environment (the PLAYGROUND_* variables), in one place.

One frozen dataclass: each field names its variable, its type, its default and what it sets. `settings()` reads
the environment once and keeps the result; a value that its type cannot take (`PLAYGROUND_JOB_NICE=high`, a
sandbox limit outside its range) stops the app with a SettingsError that names the variable, the value and what
it should be. Read it where the value is used (`settings().job_nice`), not into a module constant, so that a test
that changes the environment and calls `reload()` is seen everywhere.

    python -m core.settings              the settings in force here, one `VARIABLE=value` a line
    python -m core.settings --markdown   the table of docs/configuration.md (a test holds the page to it)

Variables that belong to others are read where they are used, not here: Gradio's (GRADIO_*), Hugging Face's
(HF_*, SPACE_ID, SPACES_ZERO_GPU, OAUTH_*) and the test suite's (PLAYGROUND_CHROMIUM, PLAYGROUND_REQUIRE_BROWSER).
training/data/datasets.py reads PLAYGROUND_DATA and PLAYGROUND_OFFLINE itself, because it ships alone in an
exported run (training/finetuning/export.py), where this package does not exist; they are listed here all the same.
"""
from __future__ import annotations

import math
import os
import sys
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from functools import cache
from typing import Any, Mapping

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A PLAYGROUND_* variable holds a value its setting cannot take."""


def _setting(env: str, default: Any, doc: str, *, section: str, lo: float | None = None, hi: float | None = None,
             choices: tuple[str, ...] | None = None, default_doc: str | None = None):
    """A field of Settings: its variable, default, one-line description, the docs' section, and the values it
    may take (lo..hi for numbers, choices for words). default_doc: the default in words, where it is computed."""
    return field(default=default, metadata={"env": env, "doc": doc, "section": section, "lo": lo, "hi": hi,
                                            "choices": choices, "default_doc": default_doc})


SERVER, VISITORS, TEMP, JOBS, SANDBOX, MODELS = ("The server", "Visitors, sessions and results",
                                                 "Temporary files", "Jobs", "The sandbox", "Models and data")


@dataclass(frozen=True)
class Settings:
    # ---------------------------------------------------------------- the server
    interactive_concurrency: int = _setting(
        "PLAYGROUND_INTERACTIVE_CONCURRENCY", 4, "interactive events (classify, sketches, AE/GAN, look inside, "
        "previews) served at once", section=SERVER)
    job_handlers: int = _setting(
        "PLAYGROUND_JOB_HANDLERS", 8, "Gradio handlers that follow jobs at once (the jobs themselves queue in the "
        "job worker); more wait in Gradio's queue", section=SERVER)
    server_threads: int = _setting(
        "PLAYGROUND_SERVER_THREADS", 1, "torch threads per forward pass in the server: interactive requests run "
        "side by side, one core each", section=SERVER)
    device: str = _setting(
        "PLAYGROUND_DEVICE", "", "the torch device every model runs on (`cpu`, `cuda`, `cuda:1`...); empty: CUDA "
        "when present (on ZeroGPU only inside a job)", section=SERVER, default_doc="empty")
    # ---------------------------------------------------------------- visitors
    max_queued_per_session: int = _setting(
        "PLAYGROUND_MAX_QUEUED_PER_SESSION", 8, "waiting + running requests of one visitor (0: no limit); the "
        "page's own load events are apart, each at most once per page",
        section=VISITORS)
    max_queued_per_ip: int | None = _setting(
        "PLAYGROUND_MAX_QUEUED_PER_IP", None, "the same per address (locally every visitor is 127.0.0.1)",
        section=VISITORS, default_doc="16 on a Space, else 0 (off)")
    max_sessions: int = _setting(
        "PLAYGROUND_MAX_SESSIONS", 1000, "sessions the server keeps (the least recently used go first)",
        section=VISITORS)
    session_idle_s: float = _setting(
        "PLAYGROUND_SESSION_IDLE_S", 900.0, "idle seconds after which a session is among the first dropped past "
        "PLAYGROUND_MAX_SESSIONS", section=VISITORS)
    new_sessions_per_ip_per_min: float | None = _setting(
        "PLAYGROUND_NEW_SESSIONS_PER_IP_PER_MIN", None, "new sessions one address may open a minute (0: no limit)",
        section=VISITORS, default_doc="30 on a Space, else 0 (off)")
    unread_results: int = _setting(
        "PLAYGROUND_UNREAD_RESULTS", 8, "results of one session held until its page reads them (at least 1)",
        section=VISITORS)
    unread_mb_per_session: float = _setting(
        "PLAYGROUND_UNREAD_MB_PER_SESSION", 16.0, "MB of unread results and streamed steps one session may hold",
        section=VISITORS)
    unread_mb: float = _setting(
        "PLAYGROUND_UNREAD_MB", 64.0, "MB of unread results all sessions together may hold", section=VISITORS)
    unread_messages: int = _setting(
        "PLAYGROUND_UNREAD_MESSAGES", 64, "unread messages (progress, status) one session may hold (at least 8)",
        section=VISITORS)
    # ---------------------------------------------------------------- temporary files
    temp_dir: str | None = _setting(
        "PLAYGROUND_TEMP_DIR", None, "where every temporary file lives (runs, uploads, Gradio's files)",
        section=TEMP, default_doc="the operator's GRADIO_TEMP_DIR, else `<system temp>/pytorch-playground`")
    temp_max_mb: float = _setting(
        "PLAYGROUND_TEMP_MAX_MB", 2048.0, "the temporary folders' size (disk blocks plus 4 KB an entry); over it "
        "the largest spender's files go first, never a queued or running job's", section=TEMP)
    temp_max_age_s: float = _setting(
        "PLAYGROUND_TEMP_MAX_AGE_S", 21600.0, "seconds a temporary file is kept (Gradio's example files excepted)",
        section=TEMP)
    # ---------------------------------------------------------------- jobs
    jobs: str = _setting(
        "PLAYGROUND_JOBS", "", "where jobs run: `worker` (a process of their own) or `inline` (in the server); "
        "empty: inline on ZeroGPU, else worker", section=JOBS, choices=("", "worker", "inline"),
        default_doc="empty")
    job_workers: int = _setting(
        "PLAYGROUND_JOB_WORKERS", 1, "jobs that run at once, each in its own worker process (at least 1)",
        section=JOBS)
    jobs_per_ip: int | None = _setting(
        "PLAYGROUND_JOBS_PER_IP", None, "queued or running jobs one address may hold (0: no limit); a session "
        "holds one", section=JOBS, default_doc="4 on a Space (half the job handlers), else 0 (off)")
    job_threads: int | None = _setting(
        "PLAYGROUND_JOB_THREADS", None, "torch threads of the job worker", section=JOBS,
        default_doc="all cores but one")
    job_nice: int = _setting(
        "PLAYGROUND_JOB_NICE", 10, "how much the job worker lowers its CPU priority (POSIX nice)", section=JOBS)
    job_worker_rss_mb: int = _setting(
        "PLAYGROUND_JOB_WORKER_RSS_MB", 3072, "the job worker restarts after a job that leaves it above this many "
        "MB", section=JOBS)
    # ---------------------------------------------------------------- the sandbox
    sandbox_mode: str = _setting(
        "PLAYGROUND_SANDBOX_MODE", "auto", "`fenced` or `unfenced` whole programs, or the `restricted` language; "
        "`auto`: the best this machine and exposure allow", section=SANDBOX,
        choices=("auto", "fenced", "unfenced", "restricted"))
    sandbox_fence: bool = _setting(
        "PLAYGROUND_SANDBOX_FENCE", True, "`off`: behave as if the kernel had no Landlock or seccomp (for the "
        "tests)", section=SANDBOX, default_doc="on")
    sandbox_platform: str = _setting(
        "PLAYGROUND_SANDBOX_PLATFORM", "", "enforce the restricted sandbox's limits as on this OS (`darwin`, "
        "`win32`; for the tests)", section=SANDBOX, default_doc="this machine's")
    sandbox_wall_s: float | None = _setting(
        "PLAYGROUND_SANDBOX_WALL_S", None, "wall-clock seconds of one program", section=SANDBOX, lo=0.5, hi=600,
        default_doc="30 (whole programs), 10 (restricted)")
    sandbox_cpu_s: float | None = _setting(
        "PLAYGROUND_SANDBOX_CPU_S", None, "CPU seconds of one program (restricted: 0 is no limit; whole programs "
        "take their default below 1)", section=SANDBOX, lo=0, hi=3600,
        default_doc="30 (whole programs), 10 (restricted)")
    sandbox_memory_mb: int | None = _setting(
        "PLAYGROUND_SANDBOX_MEMORY_MB", None, "MiB of address space one program may add (whole programs: beyond the "
        "template's, their default below 64; restricted: 0 is no limit)", section=SANDBOX, lo=0, hi=1 << 20,
        default_doc="2048 (whole programs), 1536 (restricted)")
    sandbox_threads: int | None = _setting(
        "PLAYGROUND_SANDBOX_THREADS", None, "torch threads of one program", section=SANDBOX, lo=1, hi=64,
        default_doc="2 (1 on one core)")
    programs_at_once: int = _setting(
        "PLAYGROUND_PROGRAMS_AT_ONCE", 6, "whole programs that run at once, and spare forks kept ready (forks of "
        "one warm template share its memory)",
        section=SANDBOX, lo=1, hi=64)
    programs_per_address: int | None = _setting(
        "PLAYGROUND_PROGRAMS_PER_ADDRESS", None, "whole programs one address may have running or waiting (0: no "
        "limit)", section=SANDBOX, lo=0, hi=1000, default_doc="half of PROGRAMS_AT_ONCE on a Space, else 0 (off)")
    scratch_mb: int = _setting(
        "PLAYGROUND_SCRATCH_MB", 64, "MB of files a visitor's programs may keep in their own folder (a program "
        "passing it is stopped; the newest files go)",
        section=SANDBOX, lo=1, hi=1 << 16)
    scratch_files: int = _setting(
        "PLAYGROUND_SCRATCH_FILES", 200, "files a visitor's programs may keep in their own folder", section=SANDBOX,
        lo=1, hi=100_000)
    sandbox_workers: int = _setting(
        "PLAYGROUND_SANDBOX_WORKERS", 2, "restricted sandbox: warm worker processes (~0.7 GB each)",
        section=SANDBOX, lo=1, hi=16)
    sandbox_queue_s: float = _setting(
        "PLAYGROUND_SANDBOX_QUEUE_S", 30.0, "restricted sandbox: the longest wait for a free worker",
        section=SANDBOX, lo=1, hi=600)
    sandbox_per_address: int | None = _setting(
        "PLAYGROUND_SANDBOX_PER_ADDRESS", None, "restricted sandbox: programs one address may have running or "
        "waiting (0: no limit)", section=SANDBOX, lo=0, hi=1000, default_doc="SANDBOX_WORKERS + 1 on a Space, "
        "else 0 (off)")
    # ---------------------------------------------------------------- models and data
    model_cache: int = _setting(
        "PLAYGROUND_MODEL_CACHE", 6, "models kept loaded in the server (at least 1)", section=MODELS)
    hub_repo: str = _setting(
        "PLAYGROUND_HUB_REPO", "pytorch-playground/digits-zoo", "the Hub repo of the digits and generative "
        "weights", section=MODELS)
    alexnet_repo: str = _setting(
        "PLAYGROUND_ALEXNET_REPO", "pytorch-playground/alexnet.tv_in1k", "the Hub repo of AlexNet's weights "
        "(zoo/convert_alexnet.py makes them)", section=MODELS)
    data_dir: str | None = _setting(
        "PLAYGROUND_DATA", None, "where torchvision's data sets are downloaded (read by training/data/datasets.py, "
        "in an exported run too)", section=MODELS, default_doc="`~/.cache/pytorch-playground`")
    offline: str = _setting(
        "PLAYGROUND_OFFLINE", "", "`1`: never download a data set (as HF_HUB_OFFLINE=1 does; read by "
        "training/data/datasets.py)", section=MODELS, choices=("", "0", "1"), default_doc="empty")
    cjk_font: str | None = _setting(
        "PLAYGROUND_CJK_FONT", None, "the font file for Chinese text in pictures; empty: none", section=MODELS,
        default_doc="an installed CJK font, if any")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """The settings a process with this environment has; SettingsError for a value a setting cannot take."""
        hints = typing.get_type_hints(cls)
        values = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is not None:
                values[f.name] = parse(f, hints[f.name], raw)
        return cls(**values)


def _base(hint) -> type:
    """int for `int | None`, and so on."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    return hint


def parse(f, hint, raw: str):
    """The one parser: the value of field f (type hint) for the text raw. Empty text is the default, except for a
    free text (a path, a repo, a font), where it is the value."""
    kind, meta = _base(hint), f.metadata
    text = raw.strip()
    if kind is str and meta["choices"] is None:
        return raw
    if text == "":
        return f.default

    def bad(why: str):
        return SettingsError(f"{meta['env']}={raw!r}: {why} (default: {default_text(f)}; docs/configuration.md)")

    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise bad(f"expected one of {', '.join(_TRUE + _FALSE)}")
    if kind is str:
        if text.lower() not in meta["choices"]:
            raise bad(f"expected one of {', '.join(c for c in meta['choices'] if c)}")
        return text.lower()
    try:
        value = kind(text)
    except ValueError:
        raise bad("expected " + ("a whole number" if kind is int else "a number")) from None
    if kind is float and not math.isfinite(value):
        raise bad("expected a finite number")
    lo, hi = meta["lo"], meta["hi"]
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise bad(f"expected {_num(lo)} to {_num(hi)}")
    return value


@cache
def settings() -> Settings:
    """The settings of this process, read from the environment on the first call."""
    return Settings.from_env(os.environ)


def reload() -> Settings:
    """Read the environment again (tests that change it; conftest's monkeypatch does this for PLAYGROUND_*)."""
    settings.cache_clear()
    return settings()


def default_text(f) -> str:
    meta = f.metadata
    if meta["default_doc"]:
        return meta["default_doc"]
    if f.default is MISSING or f.default is None:
        return "unset"
    if isinstance(f.default, bool):
        return "on" if f.default else "off"
    return _num(f.default) if isinstance(f.default, float) else str(f.default)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def markdown() -> str:
    """docs/configuration.md's tables: one per section, in the dataclass's order."""
    hints = typing.get_type_hints(Settings)
    sections: dict[str, list[str]] = {}
    for f in fields(Settings):
        meta = f.metadata
        kind = _base(hints[f.name])
        if meta["choices"]:
            what = " \\| ".join(f"`{c}`" for c in meta["choices"] if c)
        elif kind is bool:
            what = "on/off"
        else:
            what = {int: "whole number", float: "number", str: "text"}[kind]
            if meta["lo"] is not None:
                what += f", {_num(meta['lo'])} to {_num(meta['hi'])}"
        sections.setdefault(meta["section"], []).append(
            f"| `{meta['env']}` | {what} | {default_text(f)} | {meta['doc']} |")
    return "\n".join(f"### {name}\n\n| variable | type | default | what it sets |\n|---|---|---|---|\n"
                     + "\n".join(rows) + "\n" for name, rows in sections.items())


def _main(argv: list[str]) -> int:
    if argv == ["--markdown"]:
        sys.stdout.write(markdown())
        return 0
    if argv:
        sys.stderr.write("usage: python -m core.settings [--markdown]\n")
        return 2
    try:
        s = settings()
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    for f in fields(s):
        sys.stdout.write(f"{f.metadata['env']}={getattr(s, f.name)!r}\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
