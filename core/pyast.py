"""`ast.parse` that is safe to call from the server's threads.

CPython before 3.12.4 keeps the AST converter's recursion counter per interpreter, not per thread
(python/cpython#106905). Two threads parsing at once, with a switch between them (a garbage collection that
runs a finaliser is enough), make one of them fail with "SystemError: AST constructor recursion depth
mismatch". The server parses a visitor's code in its worker threads (the plain script beside a result), so
every parse there goes through `parse`: one lock for ours, and one retry for a clash with a library's own.
"""
from __future__ import annotations

import ast
import threading

_LOCK = threading.Lock()
_CLASH = "AST constructor recursion depth mismatch"


def parse(source: str, filename: str = "<unknown>", mode: str = "exec") -> ast.Module:
    """ast.parse(source, filename, mode), serialised; raises what ast.parse raises (SyntaxError, RecursionError
    and MemoryError on a program nested too deep, ValueError on NUL bytes)."""
    with _LOCK:
        try:
            return ast.parse(source, filename, mode)
        except SystemError as exc:
            if _CLASH not in str(exc):
                raise
            return ast.parse(source, filename, mode)
