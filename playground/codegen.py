"""The plain PyTorch script equivalent to a sandbox run: imports, the device, then the user's lines with
top-level expressions printed (as the sandbox shows them) and the training step in a loop."""
from __future__ import annotations

import ast
import re

from core.i18n import t
from core.pyast import parse

STEP_MARKER = re.compile(r"^\s*#\s*step\b", re.IGNORECASE)


def header(device: str, lr: float | None = None, language: str = "en") -> list[str]:
    lines = ["import torch", "import torch.nn as nn", "import torch.nn.functional as F", "import torch.optim as optim",
             "", f'device = torch.device("{device}")  # ' + t("codegen.device", language, device=device),
             "torch.set_default_device(device)       # " + t("codegen.default_device", language)]
    if lr is not None:
        lines.append(f"lr = {lr!r}")
    return lines + [""]


def marker_line(code: str) -> int | None:
    """1-based line number of the `# step` marker, if any."""
    for i, line in enumerate(code.splitlines(), 1):
        if STEP_MARKER.match(line):
            return i
    return None


def _print_expressions(code: str) -> list[str]:
    """The user's lines with each top-level expression statement wrapped in print(...)."""
    lines = code.splitlines()
    try:
        tree = parse(code)
    except (SyntaxError, RecursionError, MemoryError, ValueError):   # as the sandbox refused it: shown as typed
        return lines
    for stmt in reversed(tree.body):
        if not isinstance(stmt, ast.Expr):
            continue
        v = stmt.value
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "print":
            continue
        if isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr in {
                "backward", "step", "zero_grad", "manual_seed", "retain_grad", "requires_grad_"}:
            continue
        end = lines[stmt.end_lineno - 1]
        lines[stmt.end_lineno - 1] = end[:stmt.end_col_offset] + ")" + end[stmt.end_col_offset:]
        start = lines[stmt.lineno - 1]
        lines[stmt.lineno - 1] = start[:stmt.col_offset] + "print(" + start[stmt.col_offset:]
    return lines


def _print_assignments(code: str, lines: list[str]) -> list[str]:
    """After each top-level assignment, a line that prints the names it set (the sandbox shows each of them)."""
    try:
        tree = parse(code)
    except (SyntaxError, RecursionError, MemoryError, ValueError):   # as the sandbox refused it: shown as typed
        return lines
    for stmt in reversed(tree.body):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(stmt, ast.AugAssign) \
            else []
        names = [e.id for t in targets for e in (t.elts if isinstance(t, ast.Tuple | ast.List) else [t])
                 if isinstance(e, ast.Name)]
        for name in reversed(names):
            lines.insert(stmt.end_lineno, f'print("{name} =", {name})')
    return lines


def _print_leaves(leaves: list[str], language: str = "en") -> list[str]:
    """Every leaf's data and .grad at the end, as the playground's leaf table lists them."""
    ok = [n for n in leaves if all(part.isidentifier() for part in n.split("."))]
    if not ok:
        return []
    return ["", "for name, leaf in {" + ", ".join(f'"{n}": {n}' for n in ok) + "}.items():"
            "   # " + t("codegen.leaves", language), '    print(name, "data", leaf.data, "grad", leaf.grad)']


def plain_code(code: str, device: str, lr: float | None = None, steps: int = 0, loss_name: str = "loss",
               show_names: bool = False, leaves: list[str] | None = None, language: str = "en") -> str:
    """A script a learner can paste into Python to reproduce the run. show_names: print every named result after
    its line, with the sandbox's print options (the Tensors tab); leaves: print these leaves' data and grads at
    the end (the Autograd tab). Its comments are in `language`."""
    uses_lr = lr is not None and re.search(r"\blr\b", code) is not None
    out = header(device, lr if uses_lr else None, language)
    if show_names:
        from playground.tensor_view import PRINT_OPTIONS

        opts = ", ".join(f"{k}={v!r}" for k, v in PRINT_OPTIONS.items())
        out.insert(-1, f"torch.set_printoptions({opts})   # " + t("codegen.print_options", language))
    body = _print_expressions(code)
    if show_names:
        body = _print_assignments(code, body)
    mark = marker_line(code)
    if steps and mark:
        out += body[:mark - 1]
        out += ["losses = []", f"for step in range({steps}):  # " + t("codegen.train_steps", language, steps=steps)]
        out += ["    " + line if line.strip() else "" for line in body[mark:]]
        out += [f"    losses.append({loss_name}.item())", "print(losses)"]
    else:
        out += body
    out += _print_leaves(leaves or [], language)
    return "\n".join(out).rstrip() + "\n"
