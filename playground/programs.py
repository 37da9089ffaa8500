"""What the two sandbox tabs run (inside the worker): a tensor program with every result summarised and
pictured, and an autograd program with backward(), the graph, every leaf's grad and optimizer steps.
Results are plain data (str, numbers, numpy images) so they cross the process boundary cheaply."""
from __future__ import annotations

import torch

from playground import codegen, graph, tensor_view
from playground.evaluator import LanguageLimits, SandboxError, UserCodeError, parse
from playground.interpreter import Interpreter

MAX_PICTURES = 6
MAX_PICTURE_NUMEL = 1 << 20
MAX_TRAIN_STEPS = 300


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, UserCodeError):
        return f"Error on line {exc.lineno}: {exc.source}\n{type(exc.exc).__name__}: {exc.exc}"
    return f"Refused by the sandbox: {exc}"


def run_tensors(code: str, device: torch.device | None = None, limits: LanguageLimits = LanguageLimits()) -> dict:
    """Run a tensor program; every named result gets a summary, its value and (some) a picture."""
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
        error = _error_text(exc)
    blocks = [f"Device: {device}"]
    for r in results:
        blocks.append(f"[line {r['line']}] " + tensor_view.summary_line(r["label"], r["summary"]) + "\n" + r["text"])
    if interp.printed:
        blocks.append("print output:\n" + "\n".join(interp.printed))
    blocks += interp.warnings
    if error:
        blocks.append(error)
    images = [(tensor_view.render(label[:40], t), f"{label[:60]}") for label, t in pictures]
    rows = [[r["line"], r["label"][:60], *_row(r["summary"])] for r in results]
    return {"text": "\n\n".join(blocks), "rows": rows, "images": [i for i in images if i[0] is not None],
            "code": codegen.plain_code(code, str(device), show_names=True), "error": error, "device": str(device)}


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
                 limits: LanguageLimits = LanguageLimits()) -> dict:
    """Run an autograd program once (steps=0), or its setup once and its `# step` block `steps` times."""
    device = device or torch.device("cpu")
    steps = int(steps)
    if steps > MAX_TRAIN_STEPS:
        raise SandboxError("sandbox.train_steps", limit=MAX_TRAIN_STEPS, asked=steps)
    interp = Interpreter(limits=limits, device=device, env={"lr": float(lr)})
    notes, losses, error = [f"Device: {device}"], [], None
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
        root = _root(interp, notes)
    except (SandboxError, UserCodeError) as exc:
        error, root = _error_text(exc), None
    names = interp.tensor_names()
    picture = None
    if root is not None:
        picture = graph.render(graph.build(root, names))
    leaves = _leaf_rows(interp, names)
    step_rows = [[n, graph.values(b), graph.values(g), graph.values(a)] for n, b, g, a in (interp.last_step or [])]
    text = _autograd_text(notes, leaves, step_rows, losses, interp, error)
    loss_name = names.get(id(root), "loss") if root is not None else "loss"
    return {"text": text, "graph": picture, "leaves": leaves, "step_rows": step_rows, "losses": losses,
            "code": codegen.plain_code(code, str(device), lr=float(lr), steps=steps, loss_name=loss_name,
                                      leaves=[row[0] for row in leaves]),
            "error": error, "device": str(device)}


def _root(interp: Interpreter, notes: list) -> torch.Tensor | None:
    """The tensor backward() was called on; if the program never called it, call it on the last result."""
    if interp.backward_roots:
        return interp.backward_roots[-1]
    candidates = [v for v in interp.env.values() if isinstance(v, torch.Tensor) and v.grad_fn is not None]
    if not candidates:
        notes.append("No tensor here needs gradients: give a leaf requires_grad=True, e.g. "
                     "x = torch.tensor(2.0, requires_grad=True).")
        return None
    root = candidates[-1]
    name = interp.tensor_names().get(id(root), "output")
    if root.numel() == 1:
        root.backward()
        notes.append(f"The program did not call backward(); the playground called {name}.backward().")
    else:
        notes.append(f"{name} has {root.numel()} elements; the playground called {name}.sum().backward().")
        root.sum().backward()
        interp.backward_roots.append(root)
    return root


def _leaf_rows(interp: Interpreter, names: dict) -> list:
    rows, seen = [], set()
    candidates = [v for v in interp.env.values() if isinstance(v, torch.Tensor)]
    for m in (v for v in interp.env.values() if isinstance(v, torch.nn.Module)):
        candidates += list(m.parameters())
    for t in candidates:
        if id(t) in seen or not (t.is_leaf and t.requires_grad):
            continue
        seen.add(id(t))
        rows.append([names.get(id(t), "?"), str(tuple(t.shape)), graph.values(t), graph.values(t.grad)])
    return rows


def _autograd_text(notes, leaves, step_rows, losses, interp, error) -> str:
    lines = list(notes)
    if leaves:
        lines.append("Leaf gradients (.grad after backward):")
        lines += [f"  {n} {shape}: data {d}  grad {g}" for n, shape, d, g in leaves]
    if step_rows:
        lines.append("Last optimizer.step(): value before -> after (grad used)")
        lines += [f"  {n}: {b} -> {a}  (grad {g})" for n, b, g, a in step_rows]
    if losses:
        lines.append(f"Loss over {len(losses)} step(s): first {losses[0]:.6g}, last {losses[-1]:.6g}")
    if interp.printed:
        lines.append("print output:\n" + "\n".join(interp.printed))
    lines += interp.warnings
    if error:
        lines.append(error)
    return "\n".join(lines)
