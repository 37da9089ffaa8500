"""The sandbox's own words in the visitor's language (what a program printed, and PyTorch's messages, stay as they
were written): notes and reasons that cross from a program's process as catalogue terms ({"key", "values"},
core.errors.term), and the Autograd tab's result lines, shared by whole programs (playground/whole.py) and the
restricted language (playground/programs.py)."""
from __future__ import annotations

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
