"""How the sandbox calls things: allow-listed torch functions (dry-run first), tensor methods, nn.Module
constructors (sized on `meta` before they allocate) and forward calls, and optimizer.step() (recording each
parameter before and after, for the graph)."""
from __future__ import annotations

import functools
import inspect

import torch
from torch.func import functional_call

from playground import allowlist as A
from playground.evaluator import BoundMethod, LanguageLimits, SafeFunc, SandboxError
from playground.guard import fmt_bytes, to_meta, to_meta_kw


@functools.lru_cache(maxsize=None)
def _accepts_device(cls) -> bool:
    try:
        return "device" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


class Calls:
    """The Interpreter's calls (a mixin): needs `self.limits`, `self.allocated`, `self.env`,
    `self.backward_roots`, `self.last_step` and the guard's `guarded` / `check_size`."""

    limits: LanguageLimits

    def call(self, func, args: list, kwargs: dict):
        if isinstance(func, SafeFunc):
            if func.kind == "builtin":
                return func.fn(*args, **kwargs)
            if func.kind == "module":
                return self.build_module(func, args, kwargs)
            if func.kind == "optim":
                return func.fn(*args, **kwargs)
            name = func.qualname.split(".")[-1]
            if name in A.NO_DRY_RUN:
                return func.fn(*args, **kwargs)
            extra = {"device": "meta"} if func.kind == "factory" else {}
            return self.guarded(func.qualname, lambda: func.fn(*args, **kwargs),
                                lambda: func.fn(*to_meta(args), **{**to_meta_kw(kwargs), **extra}))
        if isinstance(func, BoundMethod):
            return self.call_method(func.obj, func.name, args, kwargs)
        if isinstance(func, torch.nn.Module):
            return self.call_module(func, args, kwargs)
        raise SandboxError("sandbox.not_callable", kind=type(func).__name__)

    def call_method(self, obj, name: str, args, kwargs):
        method = getattr(obj, name)
        if isinstance(obj, torch.optim.Optimizer) and name == "step":
            if args or kwargs:  # step(closure) would make torch call a user-chosen object
                raise SandboxError("sandbox.step_closure")
            return self.optimizer_step(obj, args, kwargs)
        if isinstance(obj, torch.Tensor):
            if name == "backward":
                self.backward_roots.append(obj)
            if name == "tolist" and obj.numel() > self.limits.max_tolist:
                raise SandboxError("sandbox.tolist", count=obj.numel(), limit=self.limits.max_tolist)
            if name not in A.NO_DRY_RUN:
                return self.guarded(f"Tensor.{name}", lambda: method(*args, **kwargs),
                                    lambda: getattr(to_meta(obj), name)(*to_meta(args), **to_meta_kw(kwargs)))
        return method(*args, **kwargs)

    def build_module(self, func: SafeFunc, args, kwargs):
        cls = func.fn
        if _accepts_device(cls):
            try:
                probe = cls(*to_meta(args), **{**to_meta_kw(kwargs), "device": "meta"})
            except Exception:  # noqa: BLE001 - the real constructor below raises the user's error
                probe = None
            if probe is not None:
                params = list(probe.parameters())
                self.check_size(params, func.qualname)
                total = sum(p.numel() * p.element_size() for p in params)
                if self.allocated + total > self.limits.max_total_bytes:
                    raise SandboxError("sandbox.call_too_large", call=func.qualname, size=fmt_bytes(total))
        elif cls is torch.nn.Sequential and not all(isinstance(a, torch.nn.Module) for a in args):
            raise TypeError("nn.Sequential takes modules, e.g. nn.Sequential(nn.Linear(3, 5), nn.ReLU())")
        module = cls(*args, **kwargs)
        self.check_size(list(module.parameters()), func.qualname, count=True)
        return module

    def call_module(self, module, args, kwargs):
        def meta():
            state = {k: v.detach().to("meta") for k, v in (*module.named_parameters(), *module.named_buffers())}
            return functional_call(module, state, tuple(to_meta(args)), to_meta_kw(kwargs))

        return self.guarded(type(module).__name__, lambda: module(*args, **kwargs), meta)

    def optimizer_step(self, opt, args, kwargs):
        params = [p for g in opt.param_groups for p in g["params"]]
        names = self.tensor_names()
        before = [(names.get(id(p), f"param{i}"), p.detach().clone(),
                   None if p.grad is None else p.grad.detach().clone()) for i, p in enumerate(params)]
        out = opt.step(*args, **kwargs)
        self.last_step = [(n, b, g, p.detach().clone()) for (n, b, g), p in zip(before, params)]
        return out

    def tensor_names(self) -> dict:
        """id(tensor) -> the first name the user gave it (a variable, or module.param like fc1.weight)."""
        names: dict[int, str] = {}
        for name, value in self.env.items():
            if isinstance(value, torch.Tensor):
                names.setdefault(id(value), name)
            elif isinstance(value, torch.nn.Module):
                for pname, p in value.named_parameters():
                    names.setdefault(id(p), f"{name}.{pname}")
        return names
