"""The sandbox's allocation guard: every allocating call is first dry-run on `meta` tensors (shapes, no
memory), so a too-large result is refused before any memory is taken; real results count against the
program's total budget."""
from __future__ import annotations

import torch

from playground.evaluator import LanguageLimits, SandboxError

_FAILED = object()


def fmt_bytes(n: int) -> str:
    """1536 -> '1.5 KiB' (for the guard's messages)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def to_meta(v, depth: int = 0):
    """A meta copy of a value for the dry run (tensors become meta tensors; containers are copied)."""
    if isinstance(v, torch.Tensor):
        return v.detach().to("meta")
    if depth < 3 and type(v) in (list, tuple):
        return type(v)(to_meta(x, depth + 1) for x in v)
    if depth < 3 and isinstance(v, slice):
        return slice(to_meta(v.start, depth + 1), to_meta(v.stop, depth + 1), to_meta(v.step, depth + 1))
    return v


def _tensors_in(v, depth: int = 0):
    if isinstance(v, torch.Tensor):
        yield v
    elif depth < 3 and isinstance(v, (list, tuple)):
        for x in v:
            yield from _tensors_in(x, depth + 1)


def to_meta_kw(kwargs: dict) -> dict:
    return {k: to_meta(v) for k, v in kwargs.items()}


class AllocationGuard:
    """The Interpreter's guard (a mixin): needs `self.limits` (LanguageLimits) and `self.allocated` (bytes so far)."""

    limits: LanguageLimits
    allocated: int

    def guarded(self, label: str, real, meta=None):
        """Dry-run `meta()` (no memory), refuse if any result is too big, then run `real()` and check again."""
        if meta is not None:
            try:
                with torch.no_grad():
                    dry = meta()
            except Exception:  # noqa: BLE001 - shape errors, data-dependent ops: the real call reports/bounds
                dry = _FAILED
            if dry is not _FAILED:
                self.check_size(dry, label)
        out = real()
        self.check_size(out, label, count=True)
        return out

    def check_size(self, value, label: str, count: bool = False) -> None:
        L = self.limits
        for t in _tensors_in(value):
            numel, nbytes = t.numel(), t.numel() * t.element_size()
            if numel > L.max_numel or nbytes > L.max_bytes:
                raise SandboxError("sandbox.tensor_too_large", call=label, shape=str(tuple(t.shape)), count=numel,
                                   size=fmt_bytes(nbytes), limit=L.max_numel, limit_size=fmt_bytes(L.max_bytes))
            if count and t.device.type != "meta" and not t._is_view():
                self.allocated += nbytes
                if self.allocated > L.max_total_bytes:
                    raise SandboxError("sandbox.allocated", limit=fmt_bytes(L.max_total_bytes))
