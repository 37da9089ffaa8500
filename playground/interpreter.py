"""The tree-walking interpreter behind the sandbox: evaluates a checked `ast` (evaluator.parse) statement by
statement, calling only allow-listed torch objects, and dry-runs every allocating call on `meta` tensors
so that a too-large result is refused before any memory is taken.

Statements, expressions and operators are here; calls in playground/calls.py, the allocation guard in
playground/guard.py, the builtins in playground/safe_builtins.py (the Interpreter's mixins)."""
from __future__ import annotations

import ast
import operator
import warnings
from dataclasses import dataclass, field

import torch

from core.errors import term
from playground import allowlist as A
from playground.calls import Calls
from playground.evaluator import (_BINOPS, _CMP, _INPLACE, _UNARY, BoundMethod, LanguageLimits, Namespace, SafeFunc,
                                  SandboxError, UserCodeError, namespaces, parse)
from playground.guard import AllocationGuard, to_meta
from playground.safe_builtins import SafeBuiltins


@dataclass
class Interpreter(Calls, AllocationGuard, SafeBuiltins):
    """Runs one program. `env` holds the user's names; `record(lineno, label, value)` sees every result."""
    limits: LanguageLimits = field(default_factory=LanguageLimits)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    env: dict = field(default_factory=dict)
    record: object = None
    source: str = ""

    def __post_init__(self):
        self.ns = namespaces()
        self.builtins = {n: SafeFunc(n, getattr(self, f"_b_{n}"), "builtin") for n in A.BUILTINS}
        self.env.setdefault("device", self.device)
        self.allocated = 0
        self.printed: list[str] = []
        self.printed_chars = 0
        self.backward_roots: list[torch.Tensor] = []
        self.last_step: list[tuple] | None = None  # [(name, before, grad, after)] of the last optimizer.step()
        self.warnings: list[tuple[int, str]] = []   # (line, "Category: message"): programs.py writes "line N: "

    # ---- statements -------------------------------------------------------------------------------------
    def run(self, code_or_tree, statements=None) -> None:
        tree = parse(code_or_tree, self.limits) if isinstance(code_or_tree, str) else code_or_tree
        if isinstance(code_or_tree, str):
            self.source = code_or_tree
        for stmt in tree.body if statements is None else statements:
            self.run_statement(stmt)

    def line_of(self, stmt) -> str:
        seg = ast.get_source_segment(self.source, stmt) if self.source else None
        text = (seg or ast.unparse(stmt)).splitlines()[0] if (seg or stmt) else ""
        return text[:120]

    def run_statement(self, stmt) -> None:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._exec(stmt)
            for w in caught[:3]:
                self.warnings.append((stmt.lineno, f"{w.category.__name__}: {str(w.message)[:300]}"))
        except SandboxError as exc:
            if "line" in exc.values or exc.key == "sandbox.at_line":
                raise
            raise SandboxError("sandbox.at_line", line=stmt.lineno, why=term(exc.key, **exc.values)) from None
        except RecursionError:
            raise SandboxError("sandbox.at_line", line=stmt.lineno, why=term("sandbox.nested")) from None
        except Exception as exc:  # the user's program failed: PyTorch's (or Python's) own message
            raise UserCodeError(stmt.lineno, self.line_of(stmt), exc) from None

    def _exec(self, s) -> None:
        if isinstance(s, ast.Expr):
            value = self.eval(s.value)
            if value is not None and self.record:
                self.record(s.lineno, self.line_of(s), value)
        elif isinstance(s, ast.Assign):
            value = self.eval(s.value)
            for target in s.targets:
                self.assign(target, value)
            if self.record:
                for target in s.targets:
                    for name in self._target_names(target):
                        self.record(s.lineno, name, self.env[name])
        elif isinstance(s, ast.AugAssign):
            self._aug_assign(s)
            if self.record and isinstance(s.target, ast.Name):
                self.record(s.lineno, s.target.id, self.env[s.target.id])
        elif not isinstance(s, ast.Pass):
            raise SandboxError("sandbox.statement", kind=type(s).__name__)

    @staticmethod
    def _target_names(t) -> list[str]:
        elts = t.elts if isinstance(t, ast.Tuple | ast.List) else [t]
        return [e.id for e in elts if isinstance(e, ast.Name)]

    def assign(self, target, value) -> None:
        if isinstance(target, ast.Name):
            self.env[target.id] = value
        elif isinstance(target, ast.Subscript):
            self.setitem(self.eval(target.value), self.eval(target.slice), value)
        else:  # tuple unpacking
            if isinstance(value, torch.Tensor) and value.dim() > 0 and len(value) <= 1000:
                items = list(value.unbind(0))
            elif isinstance(value, (tuple, list)) and len(value) <= self.limits.max_seq:
                items = list(value)
            else:
                raise SandboxError("sandbox.unpack", kind=type(value).__name__)
            if len(items) != len(target.elts):
                raise ValueError(f"expected {len(target.elts)} values to unpack, got {len(items)}")
            for t, v in zip(target.elts, items):
                self.assign(t, v)

    def _aug_assign(self, s) -> None:
        rhs = self.eval(s.value)
        if isinstance(s.target, ast.Name):
            self.env[s.target.id] = self.binop(s.op, self.lookup(s.target.id), rhs, inplace=True)
        else:
            base, index = self.eval(s.target.value), self.eval(s.target.slice)
            self.setitem(base, index, self.binop(s.op, self.getitem(base, index), rhs, inplace=True))

    # ---- expressions ------------------------------------------------------------------------------------
    def eval(self, node):
        meth = getattr(self, f"_e_{type(node).__name__}", None)
        if meth is None:
            raise SandboxError("sandbox.syntax_node", kind=type(node).__name__)
        return meth(node)

    def _e_Constant(self, n):
        return n.value

    def _e_Name(self, n):
        return self.lookup(n.id)

    def lookup(self, name: str):
        for scope in (self.env, self.ns, self.builtins):
            if name in scope:
                return scope[name]
        raise NameError(f"name '{name}' is not defined")   # as Python says it; the names there are a hint below it

    def _e_Tuple(self, n):
        return tuple(self.eval(e) for e in n.elts)

    def _e_List(self, n):
        return [self.eval(e) for e in n.elts]

    def _e_Slice(self, n):
        return slice(*(None if x is None else self.eval(x) for x in (n.lower, n.upper, n.step)))

    def _e_IfExp(self, n):
        return self.eval(n.body) if self.eval(n.test) else self.eval(n.orelse)

    def _e_BoolOp(self, n):
        value = self.eval(n.values[0])
        for nxt in n.values[1:]:
            if bool(value) == isinstance(n.op, ast.Or):  # `and` stops at a falsy value, `or` at a truthy one
                return value
            value = self.eval(nxt)
        return value

    def _e_UnaryOp(self, n):
        v, fn = self.eval(n.operand), _UNARY[type(n.op)]
        if isinstance(v, torch.Tensor) and not isinstance(n.op, ast.Not):
            return self.guarded(type(n.op).__name__, lambda: fn(v), lambda: fn(to_meta(v)))
        return fn(v)

    def _e_BinOp(self, n):
        return self.binop(n.op, self.eval(n.left), self.eval(n.right))

    def _e_Compare(self, n):
        left = self.eval(n.left)
        result = True
        for op, comp in zip(n.ops, n.comparators):
            right = self.eval(comp)
            result = self.binop(op, left, right, table=_CMP)
            if len(n.ops) > 1 and not result:
                return result
            left = right
        return result

    def _e_Attribute(self, n):
        return self.get_attr(self.eval(n.value), n.attr)

    def _e_Subscript(self, n):
        return self.getitem(self.eval(n.value), self.eval(n.slice))

    def _e_Call(self, n):
        func = self.eval(n.func)
        args = [self.eval(a) for a in n.args]
        kwargs = {k.arg: self.eval(k.value) for k in n.keywords}
        bad = set(kwargs) & A.FORBIDDEN_KWARGS
        if bad:
            raise SandboxError("sandbox.keyword", name=sorted(bad)[0])
        return self.call(func, args, kwargs)

    # ---- operators, attributes, items -------------------------------------------------------------------
    def binop(self, op, a, b, inplace: bool = False, table=None):
        fn = (table or (_INPLACE if inplace else _BINOPS))[type(op)]
        if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            return self.guarded(type(op).__name__, lambda: fn(a, b), lambda: fn(to_meta(a), to_meta(b)))
        if table is None:
            self._check_python_op(op, a, b)
        out = fn(a, b)
        if isinstance(out, int) and out.bit_length() > self.limits.max_int_bits:
            raise SandboxError("sandbox.int_bits", limit=self.limits.max_int_bits)
        return out

    def _check_python_op(self, op, a, b) -> None:
        L = self.limits
        ints = isinstance(a, int) and isinstance(b, int)
        if ints and isinstance(op, ast.Pow) and b > 0 and abs(a) > 1 and b * a.bit_length() > L.max_int_bits:
            raise SandboxError("sandbox.power", a=a, b=b, bits=b * a.bit_length(), limit=L.max_int_bits)
        if ints and isinstance(op, ast.LShift) and b > 0 and a.bit_length() + b > L.max_int_bits:
            raise SandboxError("sandbox.shift", limit=L.max_int_bits)
        if ints and isinstance(op, ast.Mult) and a.bit_length() + b.bit_length() > L.max_int_bits + 1:
            raise SandboxError("sandbox.int_bits", limit=L.max_int_bits)
        seqs = (str, list, tuple)
        if isinstance(op, ast.Mult) and (isinstance(a, seqs) or isinstance(b, seqs)):
            seq, n = (a, b) if isinstance(a, seqs) else (b, a)
            if isinstance(n, int) and len(seq) * max(n, 0) > L.max_seq:
                raise SandboxError("sandbox.repeat", count=len(seq) * n, limit=L.max_seq)
        if isinstance(op, ast.Add) and isinstance(a, seqs) and isinstance(b, seqs):
            if len(a) + len(b) > L.max_seq:
                raise SandboxError("sandbox.sequence", limit=L.max_seq)
        if isinstance(op, ast.Mod) and isinstance(a, str):
            raise SandboxError("sandbox.percent_format")

    def get_attr(self, obj, attr: str):
        if attr.startswith("_"):
            raise SandboxError("sandbox.private_attribute", name=attr)
        if isinstance(obj, Namespace):
            return obj.get(attr)
        if isinstance(obj, torch.Tensor):
            if attr in A.TENSOR_PROPS:
                return getattr(obj, attr)
            if attr in A.TENSOR_METHODS:
                return BoundMethod(obj, attr)
            raise SandboxError("sandbox.no_attribute", name=f"Tensor.{attr}")
        if isinstance(obj, torch.nn.Module) and attr in A.MODULE_ATTRS:
            value = getattr(obj, attr)
            return BoundMethod(obj, attr) if callable(value) and not isinstance(value, torch.Tensor) else value
        if isinstance(obj, torch.optim.Optimizer) and attr in A.OPTIM_METHODS:
            return BoundMethod(obj, attr)
        if type(obj).__module__ == "torch.return_types" and attr in A.RETURN_TYPE_PROPS:
            return getattr(obj, attr)
        raise SandboxError("sandbox.no_attribute_on", name=attr, kind=type(obj).__name__)

    def getitem(self, base, index):
        if isinstance(base, torch.Tensor):
            return self.guarded("indexing", lambda: base[index], lambda: to_meta(base)[to_meta(index)])
        if isinstance(base, (list, tuple, str, torch.Size, torch.nn.Sequential)) or \
                type(base).__module__ == "torch.return_types":
            return base[index]
        raise SandboxError("sandbox.index", kind=type(base).__name__)

    def setitem(self, base, index, value) -> None:
        if not isinstance(base, torch.Tensor):
            raise SandboxError("sandbox.item_assignment")

        def meta():
            m = to_meta(base)
            m[to_meta(index)] = to_meta(value)
            return m

        self.guarded("item assignment", lambda: operator.setitem(base, index, value), meta)
