"""A visitor's whole program, run as `python program.py` would run it, inside the forked, fenced child
(playground/zygote.py): printed output streamed to the server as it happens, then what the tabs show (a row per
module-level tensor and per bare expression, heatmaps and histograms, the program's matplotlib figures, and for
the Autograd tab the graph of the last tensor backward() was called on, every leaf's .grad, the last
optimizer.step() and the loss of each `# step` repetition).

The program's own semantics are Python's: classes, functions, loops, imports, exceptions. The conveniences of
the playground stay: torch, nn, F, optim and device are defined before the first line (importing them gives the
same modules), and a bare expression on its own top-level line is shown with its value."""
from __future__ import annotations

import ast
import copy
import functools
import io
import linecache
import os
import subprocess
import sys
import time
import traceback
import types

import numpy as np
import torch
import torch.utils.data
from PIL import Image
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from core.errors import term
from playground import codegen, frames, graph, tensor_view

FILENAME = "program.py"
SHOW = "__playground_show__"
MAX_ROWS = 200
MAX_PICTURES = 6
MAX_FIGURES = 6
MAX_PICTURE_NUMEL = 1 << 20
MAX_OUTPUT_CHARS = 400_000
MAX_TRAIN_STEPS = 300   # playground.limits.MAX_TRAIN_STEPS: the server refuses more before a run starts
CONVENIENCES = ("torch", "nn", "F", "optim", "device")
# Our words in a run, in English: the server sends them in the visitor's language (spec["words"],
# playground.words.child_words), since this process reads no catalogue.
WORDS = {"value": "value", "mean": "mean", "output_cut": f"[output cut at {MAX_OUTPUT_CHARS:,} characters]",
         "exit_code": "exit code {code}", "no_results": "the playground could not show the results: {error}",
         "train_steps": f"at most {MAX_TRAIN_STEPS} training steps per run (asked for {{asked}}); press Reset",
         "no_step_marker": "to train, put a line `# step` above the lines of one training step (forward, loss, "
                           "backward, optimizer.step()), as in the Net preset"}


def _words(spec: dict) -> dict:
    """WORDS, with the server's words in the visitor's language where it sent them."""
    sent = spec.get("words") if isinstance(spec.get("words"), dict) else {}
    return {k: sent[k] if isinstance(sent.get(k), str) else v for k, v in WORDS.items()}


# ---- output -------------------------------------------------------------------------------------------------
class Stream(io.TextIOBase):
    """sys.stdout / sys.stderr of the program: batches text into "out" frames (at a newline, at most every
    50 ms, or past 8 KB; "e": 1 marks stderr) and stops sending after MAX_OUTPUT_CHARS, saying so once."""

    def __init__(self, sock, is_err: bool, shared: dict):
        self.sock, self.is_err, self.shared = sock, int(is_err), shared

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:
        return "utf-8"

    def isatty(self) -> bool:
        return False

    def write(self, s) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        sh = self.shared
        n = len(s)
        if sh["sent"] >= MAX_OUTPUT_CHARS:
            return n
        room = MAX_OUTPUT_CHARS - sh["sent"] - sh["pending"]
        if n > room:
            s = s[:max(room, 0)] + "\n" + sh.get("cut", WORDS["output_cut"]) + "\n"
        if sh["chunks"] and sh["chunks"][-1][0] == self.is_err:
            sh["chunks"][-1][1].append(s)
        else:
            sh["chunks"].append((self.is_err, [s]))
        sh["pending"] += len(s)
        if sh["pending"] > 8192 or ("\n" in s and time.monotonic() - sh["last"] > 0.05):
            flush_output(self.sock, sh)
        return n

    def flush(self) -> None:
        flush_output(self.sock, self.shared)


def new_shared() -> dict:
    return {"chunks": [], "pending": 0, "sent": 0, "last": 0.0}


def flush_output(sock, sh: dict) -> None:
    chunks, sh["chunks"] = sh["chunks"], []
    for is_err, parts in chunks:
        text = "".join(parts)
        sh["sent"] += len(text)
        frames.send(sock, {"t": "out", "s": text, "e": is_err})
    sh["pending"] = 0
    sh["last"] = time.monotonic()


# ---- the program --------------------------------------------------------------------------------------------
def _shown(tree: ast.Module, source: str) -> ast.Module:
    """Wrap each top-level bare expression (not a docstring) in __playground_show__(line, text, value)."""
    body = []
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and not (isinstance(stmt.value, ast.Constant)
                                               and isinstance(stmt.value.value, str)):
            text = (ast.get_source_segment(source, stmt.value) or ast.unparse(stmt.value)).splitlines()[0][:120]
            call = ast.Call(func=ast.Name(SHOW, ast.Load()), args=[ast.Constant(stmt.lineno), ast.Constant(text),
                                                                   stmt.value], keywords=[])
            stmt = ast.copy_location(ast.Expr(ast.copy_location(call, stmt.value)), stmt)
        body.append(stmt)
    tree.body = body
    return ast.fix_missing_locations(tree)


def _assigned_lines(tree: ast.Module) -> dict[str, int]:
    """name -> the last top-level line that assigns it (for the per-name rows)."""
    lines: dict[str, int] = {}
    for stmt in tree.body:
        for node in ast.walk(stmt) if not isinstance(stmt, (ast.FunctionDef, ast.ClassDef)) else [stmt]:
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                lines[node.id] = stmt.lineno
        if isinstance(stmt, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
            names = [stmt.name] if hasattr(stmt, "name") else [(a.asname or a.name).split(".")[0]
                                                              for a in stmt.names]
            for n in names:
                lines[n] = stmt.lineno
    return lines


class Recorder:
    """What the tabs show about a run: bare expressions as they run, the backward() roots, optimizer steps."""

    def __init__(self):
        self.shown: list[tuple[int, str, object]] = []
        self.roots: list[torch.Tensor] = []
        self.last_step = None
        self._before = None
        self.notes: list[str] = []

    def show(self, lineno: int, text: str, value) -> None:
        if value is None or isinstance(value, torch.Generator) or len(self.shown) >= MAX_ROWS or _drawing(value):
            return
        self.shown.append((lineno, text, _snapshot(value)))


def _drawing(value) -> bool:
    """plt.plot(...), plt.title(...) and friends return artists: the figure shows them, a row would not."""
    items = value if isinstance(value, (list, tuple)) and value else [value]
    return all(type(v).__module__.startswith("matplotlib") for v in items)


def _snapshot(value):
    """A bare expression's value as it was on its line (a tensor changed later in place keeps what was shown)."""
    if isinstance(value, torch.Tensor):
        with torch.no_grad():
            return value.detach().clone() if value.numel() <= MAX_PICTURE_NUMEL else value
    return value


def _install_hooks(rec: Recorder, names_of, fenced: bool = False) -> list:
    """backward() roots, optimizer steps (before/after/grad), DataLoader workers forced to 0."""
    handles = []
    original_backward = torch.Tensor.backward

    def backward(self, *args, **kwargs):
        rec.roots.append(self)
        return original_backward(self, *args, **kwargs)

    torch.Tensor.backward = backward
    original_autograd_backward = torch.autograd.backward

    def autograd_backward(tensors, *args, **kwargs):
        ts = [tensors] if isinstance(tensors, torch.Tensor) else list(tensors or [])
        rec.roots.extend(t for t in ts if isinstance(t, torch.Tensor))
        return original_autograd_backward(tensors, *args, **kwargs)

    torch.autograd.backward = autograd_backward

    def pre(opt, args, kwargs):
        params = [p for g in opt.param_groups for p in g["params"]]
        names = names_of()
        rec._before = [(names.get(id(p), f"param{i}"), p.detach().clone(),
                        None if p.grad is None else p.grad.detach().clone(), p) for i, p in enumerate(params[:32])]

    def post(opt, args, kwargs):
        if rec._before is not None:
            rec.last_step = [(n, b, g, p.detach().clone()) for n, b, g, p in rec._before]
            rec._before = None

    handles.append(register_optimizer_step_pre_hook(pre))
    handles.append(register_optimizer_step_post_hook(post))

    loader_init = torch.utils.data.DataLoader.__init__

    def init(self, *args, **kwargs):
        asked = kwargs.get("num_workers", args[6] if len(args) > 6 else 0)
        if isinstance(asked, int) and asked > 0:
            if len(args) > 6:
                args = (*args[:6], 0, *args[7:])
            else:
                kwargs["num_workers"] = 0
            for k in ("persistent_workers", "prefetch_factor", "multiprocessing_context", "worker_init_fn"):
                kwargs.pop(k, None)
            note = term("sandbox.note.num_workers", asked=asked)   # the server writes it in the visitor's language
            if note not in rec.notes:
                rec.notes.append(note)
        return loader_init(self, *args, **kwargs)

    torch.utils.data.DataLoader.__init__ = init
    if fenced:
        _note_process_starts(rec)
    return handles


def _note_process_starts(rec: Recorder) -> None:
    """Behind the fence no program starts another process: os.system returns 32512 (what Python returns when the
    shell cannot start), subprocess and os.fork raise PermissionError, all as Python does; the tab says why, beside
    the output (a note), so a learner is not left guessing."""
    def note(call: str) -> None:
        n = term("sandbox.note.no_processes", call=call)
        if n not in rec.notes:
            rec.notes.append(n)

    system = os.system

    @functools.wraps(system)
    def os_system(command):
        status = system(command)
        if status == 127 << 8:
            note("os.system")
        return status

    def refused(fn, call: str):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except PermissionError:
                note(call)
                raise
        return wrapper

    os.system = os_system
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            setattr(os, name, refused(getattr(os, name), f"os.{name}"))
    subprocess.Popen._execute_child = refused(subprocess.Popen._execute_child, "subprocess")


def _names(g: dict) -> dict[int, str]:
    """id(tensor) -> the first module-level name it has (a variable, or module.param like fc1.weight)."""
    names: dict[int, str] = {}
    for name, value in list(g.items()):
        if name.startswith("_"):
            continue
        if isinstance(value, torch.Tensor):
            names.setdefault(id(value), name)
        elif isinstance(value, torch.nn.Module):
            try:
                for pname, p in list(value.named_parameters())[:256]:
                    names.setdefault(id(p), f"{name}.{pname}")
            except Exception:  # noqa: BLE001 - a user module whose named_parameters() fails
                pass
    return names


def _module(device: torch.device, rec: Recorder) -> types.ModuleType:
    """A fresh __main__ (so classes defined by the program pickle, as under `python program.py`)."""
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=FILENAME, __builtins__=__builtins__, torch=torch, nn=torch.nn,
                         F=torch.nn.functional, optim=torch.optim, device=device)
    main.__dict__[SHOW] = rec.show
    sys.modules["__main__"] = main
    sys.argv = [FILENAME]
    return main


def _error(exc: BaseException, tb) -> dict:
    """The exception as CPython reports it (type, message, the program's innermost line) and its traceback."""
    frames_ = [f for f in traceback.extract_tb(tb) if f.filename == FILENAME]
    line = frames_[-1].lineno if frames_ else getattr(exc, "lineno", None) if isinstance(exc, SyntaxError) else None
    if isinstance(exc, SyntaxError) and exc.filename == FILENAME:
        line = exc.lineno
    # drop this module's own frames (where the program started, the process-start notes' wrappers): the traceback
    # is the one `python program.py` prints
    report = traceback.TracebackException(type(exc), exc, tb)
    report.stack = traceback.StackSummary.from_list([f for f in report.stack if f.filename != __file__])
    text = "".join(report.format())
    return {"type": type(exc).__name__, "message": str(exc)[:2000], "line": line, "traceback": text[-20000:]}


def raw_picture(arr: np.ndarray) -> tuple[bytes, list[int]]:
    """A picture of ours as raw RGB bytes and its [height, width]: no PNG encoding in the child and no decoding in
    the server (tens of ms a picture); the server checks the size against the shape before using it."""
    rgb = np.ascontiguousarray(arr[..., :3], dtype=np.uint8)
    return rgb.tobytes(), [int(rgb.shape[0]), int(rgb.shape[1])]


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _rows_and_pictures(g: dict, rec: Recorder, lines: dict, words: dict | None = None) -> tuple[list, list, list]:
    """Rows (line, name, summary), the values' facts ([line, name, summary, value text]: the server writes their
    words, tensor_view.values_text), and the pictures of the first few tensors (their words: `words`)."""
    items = [(lines.get(n, 0), n, v) for n, v in g.items()
             if isinstance(v, torch.Tensor) and not n.startswith("_")]
    items += [(ln, text, v) for ln, text, v in rec.shown]
    items.sort(key=lambda x: x[0])
    rows, texts, pictures = [], [], []
    saved = copy.copy(torch._tensor_str.PRINT_OPTS.__dict__)
    try:
        for ln, label, value in items[:MAX_ROWS]:
            s = tensor_view.summarize(value)
            rows.append([ln or "", str(label)[:60], *_row(s)])
            texts.append([ln or "", str(label)[:60], s, tensor_view.value_text(value)])
            if (isinstance(value, torch.Tensor) and len(pictures) < MAX_PICTURES and value.numel() <= MAX_PICTURE_NUMEL
                    and tensor_view.picture_kind(value)):
                img = tensor_view.render(str(label)[:40], value.detach().cpu(), words)
                if img is not None:
                    pictures.append((str(label)[:60], img))
    finally:
        torch._tensor_str.PRINT_OPTS.__dict__.update(saved)
    return rows, texts, pictures


def _row(s: dict) -> list:
    if s.get("type") != "Tensor":
        return [s.get("type"), "", "", "", "", "", ""]
    return [str(s["shape"]), s["dtype"], s["device"], s["requires_grad"], s["grad_fn"], str(s["stride"]),
            s["contiguous"]]


def _figures() -> list[tuple[str, bytes]]:
    """The program's open matplotlib figures, as PNGs (plt.show() draws nothing under Agg)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    out = []
    for num in plt.get_fignums()[:MAX_FIGURES]:
        fig = plt.figure(num)
        w, h = fig.get_size_inches()
        dpi = min(100.0, 2000.0 / max(w, h, 1e-3))  # at most 2000 px a side whatever size the program asked for
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        out.append((f"Figure {num}", buf.getvalue()))
    plt.close("all")
    return out


def _split_steps(tree: ast.Module, code: str):
    mark = codegen.marker_line(code)
    if mark is None:
        return tree.body, []
    return [s for s in tree.body if s.lineno < mark], [s for s in tree.body if s.lineno > mark]


def run(sock, spec: dict) -> None:
    """Run spec["code"] and send "out" frames, then one "result" frame. Never raises."""
    kind, code = spec.get("kind", "tensors"), str(spec.get("code", ""))
    steps = int(spec.get("steps", 0) or 0)
    device = torch.device(spec.get("device", "cpu"))
    rec = Recorder()
    words = _words(spec)
    shared = new_shared()
    shared["cut"] = words["output_cut"]
    out, err = Stream(sock, False, shared), Stream(sock, True, shared)
    sys.stdout, sys.stderr = out, err
    main = _module(device, rec)
    g = main.__dict__
    if kind == "autograd":
        g["lr"] = float(spec.get("lr", 0.01))
    linecache.cache[FILENAME] = (len(code), None, code.splitlines(True), FILENAME)
    error, losses, lines = None, [], {}
    try:
        tree = _shown(ast.parse(code, FILENAME), code)
        lines = _assigned_lines(tree)
        _install_hooks(rec, lambda: _names(g), bool(spec.get("fenced")))
        setup, step_block = _split_steps(tree, code) if kind == "autograd" and steps else (tree.body, [])
        if steps > MAX_TRAIN_STEPS:
            raise ValueError(words["train_steps"].replace("{asked}", str(steps)))
        if steps and not step_block:
            raise ValueError(words["no_step_marker"])
        exec(compile(ast.Module(setup, []), FILENAME, "exec"), g)  # noqa: S102 - inside the fence, by design
        if step_block:
            block = compile(ast.Module(step_block, []), FILENAME, "exec")
            for _ in range(steps):
                rec.roots.clear()
                exec(block, g)  # noqa: S102
                if rec.roots:
                    losses.append(float(rec.roots[-1].detach().float().sum()))
    except SystemExit as exc:  # sys.exit() ends the program, as under CPython (a non-zero code is shown)
        if exc.code not in (None, 0):
            print(exc.code if isinstance(exc.code, str) else words["exit_code"].replace("{code}", str(exc.code)),
                  file=err)
    except BaseException as exc:  # noqa: BLE001 - the program's exception, reported as CPython would
        error = _error(exc, exc.__traceback__)
        err.write(error["traceback"])
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    flush_output(sock, shared)
    _finish(sock, kind, spec, g, rec, lines, error, losses, device)


def _finish(sock, kind, spec, g, rec, lines, error, losses, device) -> None:
    try:
        result = {"t": "result", "kind": kind, "error": error, "notes": rec.notes, "device": str(device)}
        blobs: list[bytes] = []
        captions: list[str] = []
        if kind == "tensors":
            rows, facts, pictures = _rows_and_pictures(g, rec, lines, _words(spec))
            result.update(rows=rows, values=facts)
        else:
            pictures = []
            result.update(_autograd(g, rec, losses, spec))
            if result.pop("graph_png", None) is not None:
                pictures.append(("graph", rec.graph_png))
        shapes = []
        for label, img in pictures:          # ours: raw RGB with its shape
            data, shape = raw_picture(img)
            captions.append(label)
            blobs.append(data)
            shapes.append(shape)
        for label, png in _figures():        # the program's figures: PNG (any size it asked for, bounded)
            captions.append(label)
            blobs.append(png)
        result.update(captions=captions, n_pictures=len(pictures), shapes=shapes, losses=losses)
        frames.send(sock, result, blobs)
    except BaseException as exc:  # noqa: BLE001 - e.g. a user object whose repr() raises
        frames.send(sock, {"t": "result", "kind": kind, "error": {
            "type": type(exc).__name__, "message": _words(spec)["no_results"].replace("{error}", str(exc))[:2000],
            "line": None, "traceback": ""}, "notes": rec.notes, "device": str(device), "rows": [], "values": "",
            "captions": [], "n_pictures": 0, "losses": losses})


def _autograd(g: dict, rec: Recorder, losses: list, spec: dict) -> dict:
    names = _names(g)
    notes = []
    root = rec.roots[-1] if rec.roots else None
    if root is None:
        candidates = [v for n, v in g.items() if isinstance(v, torch.Tensor) and v.grad_fn is not None
                      and not n.startswith("_")]
        if not candidates:
            notes.append(term("sandbox.note.no_gradients"))
        else:
            root = candidates[-1]
            name = names.get(id(root), "output")
            try:
                if root.numel() == 1:
                    root.backward()
                    notes.append(term("sandbox.note.called_backward", name=name))
                else:
                    root.sum().backward()
                    notes.append(term("sandbox.note.called_sum_backward", name=name, n=root.numel()))
            except RuntimeError as exc:
                notes.append(term("sandbox.note.backward_failed", name=name, error=str(exc)[:300]))
                root = None
    rec.graph_png = None
    if root is not None and root.grad_fn is not None:
        rec.graph_png = graph.render(graph.build(root, names, mean=_words(spec)["mean"]),
                                     str(spec.get("graph_title") or ""),
                                     str(spec.get("graph_truncated") or graph.TRUNCATED))
    leaves, seen, mean = [], set(), _words(spec)["mean"]
    cands = [v for n, v in g.items() if isinstance(v, torch.Tensor) and not n.startswith("_")]
    for m in (v for n, v in g.items() if isinstance(v, torch.nn.Module) and not n.startswith("_")):
        cands += list(m.parameters())[:256]
    for t in cands:
        if id(t) in seen or not (t.is_leaf and t.requires_grad) or len(leaves) >= 64:
            continue
        seen.add(id(t))
        leaves.append([names.get(id(t), "?"), str(tuple(t.shape)), graph.values(t, mean=mean),
                       graph.values(t.grad, mean=mean)])
    step_rows = [[n, graph.values(b, mean=mean), graph.values(gr, mean=mean), graph.values(a, mean=mean)]
                 for n, b, gr, a in (rec.last_step or [])]
    loss_name = names.get(id(root), "loss") if root is not None else "loss"
    return {"graph_png": rec.graph_png, "leaves": leaves, "step_rows": step_rows, "autograd_notes": notes,
            "loss_name": loss_name}
