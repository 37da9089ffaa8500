"""The sandbox's own words in the visitor's language (what a program printed, and PyTorch's messages, stay as they
were written): notes and reasons that cross from a program's process as catalogue terms ({"key", "values"},
core.errors.term), the Autograd tab's result lines, shared by whole programs (playground/whole.py) and the
restricted language (playground/programs.py), and the words a whole program's process writes itself (child_words:
that process reads no catalogue, so the server sends them with the program)."""
from __future__ import annotations

from functools import lru_cache

from core.errors import render
from core.i18n import t


def said(note, language: str = "en") -> str:
    """A note or a reason the program's process sent (a catalogue term: {"key", "values"}) in `language`; any
    other value as text."""
    if isinstance(note, dict) and isinstance(note.get("key"), str):
        return render(note["key"], note.get("values") if isinstance(note.get("values"), dict) else {}, language)
    return str(note)


def autograd_lines(leaves: list, step_rows: list, losses: list, language: str = "en") -> list[str]:
    """The Autograd tab's result lines: every leaf's data and .grad, the last optimizer step, the losses (the same
    for whole programs and the restricted language's, playground/programs.py)."""
    lines = []
    if leaves:
        lines.append(t("sandbox.autograd.leaves", language))
        lines += [f"  {n} {s}: data {d}  grad {g}" for n, s, d, g in leaves]
    if step_rows:
        lines.append(t("sandbox.autograd.step", language))
        lines += [f"  {n}: {b} -> {a}  (grad {g})" for n, b, g, a in step_rows]
    if losses:
        lines.append(t("sandbox.autograd.losses_one" if len(losses) == 1 else "sandbox.autograd.losses", language,
                       n=len(losses), first=f"{losses[0]:.6g}", last=f"{losses[-1]:.6g}"))
    return lines


def warning_lines(warnings: list, language: str = "en") -> list[str]:
    """The restricted language's warnings ((line, "Category: message") each, the message as Python wrote it)."""
    return [t("sandbox.at_line", language, line=line, why=text) for line, text in warnings]


@lru_cache(maxsize=4)
def child_words(language: str = "en") -> dict[str, str]:
    """The words a whole program's process writes (playground/program_run.py WORDS: the histogram's axis, the line
    where its output is cut, a sys.exit code, ...) in `language`; "{code}", "{asked}" and "{error}" are filled in
    there."""
    from playground.program_run import MAX_OUTPUT_CHARS, MAX_TRAIN_STEPS
    from playground.tensor_view import picture_words

    return {**picture_words(language), "mean": t("sandbox.graph.mean", language),
            "output_cut": t("sandbox.output_cut", language, limit=MAX_OUTPUT_CHARS),
            "exit_code": t("sandbox.exit_code", language, code="{code}"),
            "no_results": t("sandbox.no_results", language, error="{error}"),
            "train_steps": t("sandbox.train_steps", language, limit=MAX_TRAIN_STEPS, asked="{asked}"),
            "no_step_marker": t("sandbox.no_step_marker", language)}
