"""What the two sandbox tabs run (inside the worker): a tensor program with every result summarised and
pictured, and an autograd program with backward(), the graph, every leaf's grad and optimizer steps.
Results are plain data (str, numbers, numpy images) so they cross the process boundary cheaply."""
from __future__ import annotations

import torch

from core.i18n import t
from playground import codegen, graph, tensor_view
from playground import allowlist as A
from playground.evaluator import LanguageLimits, SandboxError, UserCodeError, parse, refusal_text
from playground.interpreter import Interpreter
from playground.limits import MAX_TRAIN_STEPS
from playground.words import autograd_lines, warning_lines

MAX_PICTURES = 6
MAX_PICTURE_NUMEL = 1 << 20


def _error_text(exc: BaseException, language: str = "en") -> str:
    """Our line about an error in `language`; PyTorch's own message (type: message) below it as Python writes it."""
    if isinstance(exc, UserCodeError):
        text = (t("sandbox.error_on_line", language, line=exc.lineno, source=exc.source)
                + f"\n{type(exc.exc).__name__}: {exc.exc}")
        if isinstance(exc.exc, NameError):    # the names this language has, in the visitor's language
            names = ("、" if language.startswith("zh") else ", ").join(sorted(A.BUILTINS))
            text += "\n" + t("sandbox.names_available", language, builtins=names)
        return text
    return t("sandbox.refused_by", language, why=refusal_text(exc, language))


def run_tensors(code: str, device: torch.device | None = None, limits: LanguageLimits = LanguageLimits(),
                language: str = "en") -> dict:
    """Run a tensor program; every named result gets a summary, its value and (some) a picture. Our words (the
    notes, a refusal) are in `language`."""
    device = device or torch.device("cpu")
    results, pictures = [], []

    def record(lineno, label, value):
        if isinstance(value, torch.Generator):  # torch.manual_seed(0) returns one: nothing to show
            return
        s = tensor_view.summarize(value)
        results.append({"line": lineno, "label": label, "summary": s, "text": tensor_view.value_text(value)})
        if (isinstance(value, torch.Tensor) and len(pictures) < MAX_PICTURES
                and value.numel() <= MAX_PICTURE_NUMEL and tensor_view.picture_kind(value)):
            pictures.append((label, value.detach().cpu().clone()))

    interp = Interpreter(limits=limits, device=device, record=record)
    error = None
    try:
        interp.run(code)
    except (SandboxError, UserCodeError) as exc:
        error = _error_text(exc, language)
    blocks = [t("sandbox.autograd.device", language, device=device)]
    for r in results:
        blocks.append(tensor_view.fact_block(r["line"], r["label"], r["summary"], r["text"], language))
    if interp.printed:
        blocks.append(t("sandbox.autograd.printed", language) + "\n" + "\n".join(interp.printed))
    blocks += warning_lines(interp.warnings, language)
    if error:
        blocks.append(error)
    words = tensor_view.picture_words(language)
    images = [(tensor_view.render(label[:40], value, words), f"{label[:60]}") for label, value in pictures]
    rows = [[r["line"], r["label"][:60], *_row(r["summary"])] for r in results]
    return {"text": "\n\n".join(blocks), "rows": rows, "images": [i for i in images if i[0] is not None],
            "code": codegen.plain_code(code, str(device), show_names=True, language=language), "error": error,
            "device": str(device)}


def _row(s: dict) -> list:
    if s.get("type") != "Tensor":
        return [s.get("type"), "", "", "", "", "", ""]
    return [str(s["shape"]), s["dtype"], s["device"], s["requires_grad"], s["grad_fn"], str(s["stride"]),
            s["contiguous"]]


def _split_steps(tree, code: str):
    mark = codegen.marker_line(code)
    if mark is None:
        return tree.body, []
    return [s for s in tree.body if s.lineno < mark], [s for s in tree.body if s.lineno > mark]


def run_autograd(code: str, lr: float = 0.01, steps: int = 0, device: torch.device | None = None,
                 limits: LanguageLimits = LanguageLimits(), language: str = "en") -> dict:
    """Run an autograd program once (steps=0), or its setup once and its `# step` block `steps` times."""
    device = device or torch.device("cpu")
    steps = int(steps)
    if steps > MAX_TRAIN_STEPS:
        raise SandboxError("sandbox.train_steps", limit=MAX_TRAIN_STEPS, asked=steps)
    interp = Interpreter(limits=limits, device=device, env={"lr": float(lr)})
    notes, losses, error = [t("sandbox.autograd.device", language, device=device)], [], None
    try:
        tree = parse(code, limits)
        interp.source = code
        setup, step_block = _split_steps(tree, code)
        if steps and not step_block:
            raise SandboxError("sandbox.no_step_marker")
        for stmt in setup if steps else tree.body:
            interp.run_statement(stmt)
        for i in range(steps):
            interp.backward_roots.clear()
            for stmt in step_block:
                interp.run_statement(stmt)
            if interp.backward_roots:
                losses.append(float(interp.backward_roots[-1].detach().float().sum()))
        root = _root(interp, notes, language)
    except (SandboxError, UserCodeError) as exc:
        error, root = _error_text(exc, language), None
    names = interp.tensor_names()
    picture, mean = None, t("sandbox.graph.mean", language)
    if root is not None:
        picture = graph.render(graph.build(root, names, mean=mean),
                               t("sandbox.graph.title", language),
                               t("sandbox.graph.truncated", language))
    leaves = _leaf_rows(interp, names, mean)
    step_rows = [[n, graph.values(b, mean=mean), graph.values(g, mean=mean), graph.values(a, mean=mean)]
                 for n, b, g, a in (interp.last_step or [])]
    text = _autograd_text(notes, leaves, step_rows, losses, interp, error, language)
    loss_name = names.get(id(root), "loss") if root is not None else "loss"
    return {"text": text, "graph": picture, "leaves": leaves, "step_rows": step_rows, "losses": losses,
            "code": codegen.plain_code(code, str(device), lr=float(lr), steps=steps, loss_name=loss_name,
                                      leaves=[row[0] for row in leaves], language=language),
            "error": error, "device": str(device)}


def _root(interp: Interpreter, notes: list, language: str = "en") -> torch.Tensor | None:
    """The tensor backward() was called on; if the program never called it, call it on the last result."""
    if interp.backward_roots:
        return interp.backward_roots[-1]
    candidates = [v for v in interp.env.values() if isinstance(v, torch.Tensor) and v.grad_fn is not None]
    if not candidates:
        notes.append(t("sandbox.note.no_gradients", language))
        return None
    root = candidates[-1]
    name = interp.tensor_names().get(id(root), "output")
    if root.numel() == 1:
        root.backward()
        notes.append(t("sandbox.note.called_backward", language, name=name))
    else:
        notes.append(t("sandbox.note.called_sum_backward", language, name=name, n=root.numel()))
        root.sum().backward()
        interp.backward_roots.append(root)
    return root


def _leaf_rows(interp: Interpreter, names: dict, mean: str = "mean") -> list:
    rows, seen = [], set()
    candidates = [v for v in interp.env.values() if isinstance(v, torch.Tensor)]
    for m in (v for v in interp.env.values() if isinstance(v, torch.nn.Module)):
        candidates += list(m.parameters())
    for leaf in candidates:
        if id(leaf) in seen or not (leaf.is_leaf and leaf.requires_grad):
            continue
        seen.add(id(leaf))
        rows.append([names.get(id(leaf), "?"), str(tuple(leaf.shape)), graph.values(leaf, mean=mean),
                     graph.values(leaf.grad, mean=mean)])
    return rows


def _autograd_text(notes, leaves, step_rows, losses, interp, error, language: str = "en") -> str:
    lines = list(notes) + autograd_lines(leaves, step_rows, losses, language)
    if interp.printed:
        lines.append(t("sandbox.autograd.printed", language) + "\n" + "\n".join(interp.printed))
    lines += warning_lines(interp.warnings, language)
    if error:
        lines.append(error)
    return "\n".join(lines)
