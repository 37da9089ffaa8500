"""The few Python builtins a sandbox program may call (print, min, max, abs, len, round, float, int, bool),
each bounded: print's output is capped, min/max take numbers only, the rest take plain values."""
from __future__ import annotations

import torch

from playground.evaluator import LanguageLimits, SandboxError
from playground.guard import to_meta


class SafeBuiltins:
    """The Interpreter's `_b_<name>` builtins (a mixin): needs `self.limits`, `self.printed`,
    `self.printed_chars` and `self.guarded`."""

    limits: LanguageLimits

    def _b_print(self, *args):
        text = " ".join(str(a) for a in args)
        room = self.limits.max_print - self.printed_chars
        if room > 0:
            self.printed.append(text[:room])
            self.printed_chars += len(text) + 1
        return None

    @staticmethod
    def _numbers_only(name, args):
        flat = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
        if any(isinstance(a, torch.Tensor) for a in flat):
            raise SandboxError("sandbox.builtin_on_tensor", name=name)
        return flat

    def _b_min(self, *args):
        return min(self._numbers_only("min", args))

    def _b_max(self, *args):
        return max(self._numbers_only("max", args))

    def _b_abs(self, x):
        return self.guarded("abs", lambda: abs(x), lambda: abs(to_meta(x))) if isinstance(x, torch.Tensor) else abs(x)

    def _b_len(self, x):
        if not isinstance(x, (torch.Tensor, list, tuple, str, torch.Size, torch.nn.Sequential)):
            raise SandboxError("sandbox.len", kind=type(x).__name__)
        return len(x)

    @staticmethod
    def _b_round(x, ndigits=None):
        return round(x) if ndigits is None else round(x, ndigits)

    @staticmethod
    def _scalar(kind, x):
        if not isinstance(x, (int, float, bool, str, torch.Tensor)):
            raise SandboxError("sandbox.convert", call=kind.__name__, kind=type(x).__name__)
        return kind(x)

    def _b_float(self, x=0.0):
        return self._scalar(float, x)

    def _b_int(self, x=0):
        return self._scalar(int, x)

    def _b_bool(self, x=False):
        return self._scalar(bool, x)
