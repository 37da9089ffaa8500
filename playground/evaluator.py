"""The restricted language (the sandbox's fallback where the operating system's fence cannot be built and the
app is public; see docs/sandbox.md): an `ast` whitelist checked up front (every refusal listed at once), then a
tree-walking interpreter that only ever calls allow-listed torch functions (playground/allowlist.py) and checks
every allocation's size on the `meta` device before it happens.

Nothing here compiles or execs user text. Python-level bombs (2**2**100, [0]*10**9, 1 << 10**9) are
refused by size checks on the operands; tensor bombs (torch.ones(10**6, 10**6), x.repeat(10**5, 10**5))
are refused by a dry run on meta tensors, which costs no memory. The worker process (worker.py) adds
CPU-time, memory and wall-clock limits as the backstop for anything these checks do not foresee.
"""
from __future__ import annotations

import ast
import operator
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim

from core import pyast
from core.errors import VisitorError, render, term
from playground import allowlist as A


@dataclass(frozen=True)
class LanguageLimits:
    """Caps for one request (see the README for why these numbers)."""
    max_chars: int = 4000            # input length
    max_lines: int = 150
    max_nodes: int = 2500            # AST nodes
    max_depth: int = 40              # AST nesting
    max_numel: int = 1 << 24         # per tensor: 16.7M elements ...
    max_bytes: int = 64 << 20        # ... and 64 MiB
    max_total_bytes: int = 512 << 20  # everything one request allocates, summed
    max_seq: int = 100_000           # Python list/str/tuple length
    max_int_bits: int = 4096         # Python int size
    max_print: int = 20_000          # characters of print() output
    max_tolist: int = 10_000


class SandboxError(VisitorError):
    """A refusal by the sandbox (not a PyTorch error): the message says what and why (keys sandbox.*)."""

    key = "sandbox.refused"


class UserCodeError(Exception):
    """An error raised by the user's program (PyTorch's own message), with the line it came from."""

    def __init__(self, lineno: int, source: str, exc: BaseException):
        self.lineno, self.source, self.exc = lineno, source, exc
        super().__init__(f"line {lineno}: {source}\n{type(exc).__name__}: {exc}")


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
           ast.MatMult: operator.matmul, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
           ast.BitOr: operator.or_, ast.BitXor: operator.xor, ast.BitAnd: operator.and_}
_INPLACE = {ast.Add: operator.iadd, ast.Sub: operator.isub, ast.Mult: operator.imul, ast.Div: operator.itruediv,
            ast.FloorDiv: operator.ifloordiv, ast.Mod: operator.imod, ast.Pow: operator.ipow,
            ast.MatMult: operator.imatmul, ast.LShift: operator.ilshift, ast.RShift: operator.irshift,
            ast.BitOr: operator.ior, ast.BitXor: operator.ixor, ast.BitAnd: operator.iand}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Invert: operator.invert, ast.Not: operator.not_}
_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
        ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not,
        ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_ALLOWED_NODES = tuple({ast.Module, ast.Expr, ast.Assign, ast.AugAssign, ast.Name, ast.Load, ast.Store,
                        ast.Constant, ast.Tuple, ast.List, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.And, ast.Or,
                        ast.Compare, ast.Call, ast.keyword, ast.Attribute, ast.Subscript, ast.Slice, ast.IfExp,
                        ast.Pass, *_BINOPS, *_UNARY, *_CMP})
_CONST_TYPES = (int, float, complex, bool, str, type(None), type(Ellipsis))
_HINTS = {ast.Import: "sandbox.refuse.import", ast.ImportFrom: "sandbox.refuse.import",   # catalogue keys
          ast.Lambda: "sandbox.refuse.lambda", ast.JoinedStr: "sandbox.refuse.fstring",
          ast.ListComp: "sandbox.refuse.comprehension", ast.GeneratorExp: "sandbox.refuse.generator",
          ast.FunctionDef: "sandbox.refuse.function", ast.ClassDef: "sandbox.refuse.class",
          ast.For: "sandbox.refuse.for", ast.While: "sandbox.refuse.while"}


def parse(code: str, limits: LanguageLimits = LanguageLimits()) -> ast.Module:
    """Parse and check the whole program against the whitelist before anything runs."""
    if not isinstance(code, str):
        raise SandboxError("sandbox.not_text")
    if len(code) > limits.max_chars:
        raise SandboxError("sandbox.too_many_chars", chars=len(code), limit=limits.max_chars)
    if code.count("\n") + 1 > limits.max_lines:
        raise SandboxError("sandbox.too_many_lines", limit=limits.max_lines)
    try:
        tree = pyast.parse(code, mode="exec")
    except SyntaxError as exc:
        raise SandboxError("sandbox.syntax", line=exc.lineno, detail=exc.msg) from None
    except (RecursionError, MemoryError, ValueError):  # e.g. "too complex", NUL bytes
        raise SandboxError("sandbox.too_nested_to_parse") from None
    _check_tree(tree, limits)
    return tree


def _check_tree(tree: ast.AST, limits: LanguageLimits) -> None:
    """Every problem at once, top to bottom, each with its line (a refused node's children are not checked:
    one refusal per construct). The size limits stop the check at once."""
    count = 0
    problems: list[tuple[int, dict]] = []
    stack = [(tree, 0)]
    while stack:  # iterative, so a deep tree cannot exhaust the C stack here
        node, depth = stack.pop()
        count += 1
        line = getattr(node, "lineno", 0)
        if count > limits.max_nodes:
            raise SandboxError("sandbox.too_many_nodes", limit=limits.max_nodes)
        if depth > limits.max_depth:
            raise SandboxError("sandbox.too_deep", line=line, limit=limits.max_depth)
        problem = _problem(node)
        if problem:
            problems.append((line, problem))
            if not isinstance(node, _ALLOWED_NODES):
                continue
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    if problems:
        unique = sorted({(ln, p["key"], tuple(sorted(p["values"].items()))): (ln, p) for ln, p in problems}.items())
        raise Refusals([item for _, item in unique])


class Refusals(SandboxError):
    """Every refusal of the up-front check, each with its line (`problems`: (line, catalogue term) pairs, so the
    list can be written in any language: refusal_text). str() and the values hold the English list."""

    def __init__(self, problems: list[tuple[int, dict]]):
        self.problems = problems
        text = problems_text(problems)
        if len(problems) > 1:
            super().__init__("sandbox.problems", count=len(problems), problems=text)
        else:
            super().__init__("sandbox.problem", problem=text)


def problems_text(problems: list[tuple[int, dict]], language: str = "en") -> str:
    """One line per refusal: "line 3: lambdas are not allowed"."""
    return "\n".join(render("sandbox.at_line", {"line": ln, "why": why}, language) for ln, why in problems)


def refusal_text(exc: BaseException, language: str = "en") -> str:
    """A sandbox refusal's message in `language` (the up-front check's whole list too)."""
    problems = getattr(exc, "problems", None)
    if problems:
        text = problems_text(problems, language)
        return render("sandbox.problems", {"count": len(problems), "problems": text}, language) \
            if len(problems) > 1 else text
    return exc.text(language) if isinstance(exc, VisitorError) else str(exc)


def _problem(node: ast.AST) -> dict | None:
    """Why the restricted language refuses this node (a catalogue term), or None."""
    if not isinstance(node, _ALLOWED_NODES):
        hint = _HINTS.get(type(node))
        return term(hint) if hint else term("sandbox.refuse.syntax", kind=type(node).__name__)
    if isinstance(node, ast.Constant) and not isinstance(node.value, _CONST_TYPES):
        return term("sandbox.refuse.literal", kind=type(node.value).__name__)
    if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
        return term("sandbox.private_attribute", name=node.attr)
    if isinstance(node, ast.Name) and node.id.startswith("_"):
        return term("sandbox.refuse.private_name", name=node.id)
    if isinstance(node, ast.keyword) and (node.arg is None or node.arg.startswith("_")):
        return term("sandbox.refuse.kwargs")
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            elts = target.elts if isinstance(target, ast.Tuple | ast.List) else [target]
            if not all(isinstance(e, ast.Name | ast.Subscript) for e in elts):
                return term("sandbox.refuse.assign")
    return None


@dataclass
class Namespace:
    """torch / nn / F / optim as the sandbox sees them: only listed names resolve."""
    name: str
    module: object
    names: frozenset
    kinds: dict = field(default_factory=dict)  # name -> "factory" | "op" | "module" | "optim" | "value"

    def get(self, attr: str):
        if attr not in self.names:
            raise SandboxError("sandbox.no_attribute", name=f"{self.name}.{attr}")
        kind = self.kinds.get(attr, "op")
        value = getattr(self.module, attr)
        return value if kind == "value" else SafeFunc(f"{self.name}.{attr}", value, kind)

    def __repr__(self):
        return f"<{self.name} (sandboxed)>"


@dataclass(frozen=True)
class SafeFunc:
    """An allow-listed callable; `kind` tells the interpreter how to dry-run it."""
    qualname: str
    fn: object
    kind: str

    def __repr__(self):
        return f"<{self.qualname}>"


@dataclass(frozen=True)
class BoundMethod:
    """tensor.method / module.method / optimizer.method, resolved through the allow-lists."""
    obj: object
    name: str

    def __repr__(self):
        return f"<method {self.name} of {type(self.obj).__name__}>"


def namespaces() -> dict:
    kinds = {n: "factory" for n in A.TORCH_FACTORIES} | {n: "value" for n in A.TORCH_DTYPES}
    kinds["device"] = "op"
    return {
        "torch": Namespace("torch", torch, A.TORCH_FACTORIES | A.TORCH_OPS | A.TORCH_DTYPES | A.TORCH_OTHER, kinds),
        "nn": Namespace("nn", nn, A.NN_MODULES, {n: "module" for n in A.NN_MODULES}),
        "F": Namespace("F", F, A.F_FUNCS),
        "optim": Namespace("optim", optim, A.OPTIMIZERS, {n: "optim" for n in A.OPTIMIZERS}),
    }
