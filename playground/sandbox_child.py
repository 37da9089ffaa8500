"""The sandbox worker's child side: `python -m playground.sandbox_child`, started by playground/worker.py.

It connects back to the parent (address and key on stdin), imports and warms everything while imports and file
writes are still allowed, clamps itself (playground/limits.py), then runs one program per request.
"""
from __future__ import annotations

from dataclasses import asdict

import torch
# matplotlib (which the graph pictures use) and its font cache load now, while files may still be written
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401

# Everything is imported here, before the child clamps itself; none of these imports `resource`, so
# simulate_platform_in_child still hides it from the program (tests of other platforms).
from core.errors import wire
from core.i18n import LANGUAGES, catalogue
from core.spawn import connect_to_parent
from playground import graph, programs, tensor_view  # noqa: F401
from playground.limits import (THREADS, WorkerLimits, arm_cpu_limit, clamp_child, process_vm_size,
                               simulate_platform_in_child)
from core.device import get_device



def _warm_up(limits: WorkerLimits) -> dict:
    """Warm everything, then clamp the process."""
    torch.set_num_threads(THREADS)
    device = get_device()
    if device.type == "cuda":
        torch.zeros(1, device=device)  # initialise CUDA before the address-space limit
        torch.cuda.set_per_process_memory_fraction(0.25, device)
        torch.set_default_device(device)
    programs.run_autograd("x = torch.tensor(1.0, requires_grad=True)\ny = x * 2\ny.backward()", device=device)
    for language in LANGUAGES:   # the refusals and notes are written in the visitor's language: read both now
        catalogue(language)
    plan = limits.plan()
    info = {"device": str(device), "platform": limits.platform, "vm_before_limit": process_vm_size(),
            "plan": asdict(plan), "resource_module": _importable("resource")}
    info.update(clamp_child(plan, limits, info["vm_before_limit"]))
    return info


def _importable(name: str) -> bool:
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def _child_main() -> None:
    """Connect to the parent, warm up, then loop: receive (kind, kwargs), run, send ("ok", result) or ("error", msg)."""
    conn = connect_to_parent()
    limits = WorkerLimits(**conn.recv())
    simulate_platform_in_child(limits)
    try:
        info = _warm_up(limits)
    except BaseException as exc:  # noqa: BLE001 - report and stop
        conn.send(("error", wire(exc, "the sandbox worker's start")))   # logged here; its id travels
        return
    conn.send(("ready", info))
    plan = limits.plan()
    handlers = {"tensors": programs.run_tensors, "autograd": programs.run_autograd}
    while True:
        try:
            kind, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        arm_cpu_limit(plan, limits.cpu_s)
        try:
            result = handlers[kind](device=get_device(), **kwargs)
            reply = ("ok", result)
        except MemoryError:
            reply = ("error", {"key": "sandbox.out_of_memory", "values": {}})
        except BaseException as exc:  # noqa: BLE001 - the worker must survive anything the program does
            reply = ("error", wire(exc, "the sandbox worker"))   # the program's own errors are in its result
        try:
            conn.send(reply)
        except Exception:  # noqa: BLE001 - e.g. a result that cannot be pickled
            conn.send(("error", {"key": "sandbox.result_unsendable", "values": {}}))


if __name__ == "__main__":  # python -m playground.sandbox_child (address and key on stdin)
    _child_main()
