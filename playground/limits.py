"""The sandbox's limits: their values (core/settings.py, PLAYGROUND_SANDBOX_* and PLAYGROUND_PROGRAMS_*) and, per
OS, how each one is enforced.

| limit            | Linux                    | macOS                                  | Windows                   |
|------------------|--------------------------|----------------------------------------|---------------------------|
| wall clock       | parent's timeout         | parent's timeout                       | parent's timeout          |
| CPU time         | RLIMIT_CPU (child)       | RLIMIT_CPU (child)                     | watchdog (parent, psutil) |
| memory           | RLIMIT_AS (child)        | watchdog: RSS (parent, psutil)         | watchdog: RSS             |
| file writes      | RLIMIT_FSIZE = 0 (child) | RLIMIT_FSIZE = 0 (child)               | the evaluator only        |

macOS has RLIMIT_AS in name only (the kernel does not enforce it, and a process maps hundreds of GB of shared
regions), so memory is watched there. PLAYGROUND_SANDBOX_PLATFORM=darwin|win32 makes a Linux machine take
another OS's path (the tests do this), including "no `resource` module" for win32.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field

from core.errors import term
from core.i18n import t
from core.settings import settings
from zoo.space import on_space

log = logging.getLogger("playground.sandbox")


def _or(value, default):
    """A setting whose default is the sandbox's own (None: not set)."""
    return default if value is None else value


# The restricted sandbox's. Read when this module is imported: they are the defaults of WorkerLimits and the pool.
_S = settings()
WALL_SECONDS = _or(_S.sandbox_wall_s, 10.0)
CPU_SECONDS = _or(_S.sandbox_cpu_s, 10.0)                   # 0: no CPU limit
MEMORY_MB = _or(_S.sandbox_memory_mb, 1536)                 # 0: no memory limit
WORKERS = _S.sandbox_workers                                # warm worker processes (~0.7 GB RSS each)
QUEUE_SECONDS = _S.sandbox_queue_s                          # longest wait for a free worker
# Programs one client address may have running or waiting at once (0: no cap). Session ids are chosen by the
# client, so this is what stops one machine from filling the pool with many sessions. On by default only on a
# Space, where each visitor's address is known (X-Forwarded-For); locally and through a --share tunnel every
# visitor arrives from 127.0.0.1, so a cap there would treat all of them as one.
PER_ADDRESS = _or(_S.sandbox_per_address, WORKERS + 1 if on_space() else 0)
PLATFORM = _S.sandbox_platform.strip() or sys.platform
# Whole programs at once (forks of one template share its memory, so this costs CPU, not a process each): more
# than a Space's per-address cap, so one address's runaways never hold every slot.
PROGRAMS_AT_ONCE = _S.programs_at_once
PROGRAMS_PER_ADDRESS = _or(_S.programs_per_address, max(1, PROGRAMS_AT_ONCE // 2) if on_space() else 0)
# torch threads of one program (a whole program's fork, or a restricted worker)
THREADS = _or(_S.sandbox_threads, min(2, os.cpu_count() or 1))
MAX_TRAIN_STEPS = 300   # the Autograd tab's Train: `# step` blocks one run may repeat (Reset starts again)
WATCH_INTERVAL_S = 0.05  # the watchdog's polling period: 20 checks a second cost the parent ~1 ms of CPU


@dataclass(frozen=True)
class Plan:
    """How each limit is enforced here: 'rlimit' (the child's kernel limit), 'watchdog' (the parent polls the
    child with psutil and kills it), 'evaluator' (files: only the allow-list stops writes) or 'off'."""

    cpu: str
    memory: str
    files: str

    @property
    def watched(self) -> bool:
        return "watchdog" in (self.cpu, self.memory)


@dataclass
class WorkerLimits:
    """One sandbox's limits; `platform` is sys.platform unless a test (or PLAYGROUND_SANDBOX_PLATFORM) says
    which OS's enforcement to use."""

    wall_s: float = WALL_SECONDS
    cpu_s: float = CPU_SECONDS
    memory_mb: int = MEMORY_MB
    platform: str = field(default=PLATFORM)

    def no_resource_module(self) -> bool:
        return self.platform.startswith("win")

    def plan(self) -> Plan:
        resource = None
        if not self.no_resource_module():
            try:
                import resource  # noqa: F811 - absent on Windows
            except ImportError:
                resource = None
        cpu = "off" if self.cpu_s <= 0 else ("rlimit" if hasattr(resource, "RLIMIT_CPU") else "watchdog")
        # RLIMIT_AS is enforced by Linux only (macOS defines it but ignores it)
        as_works = self.platform.startswith("linux") and hasattr(resource, "RLIMIT_AS")
        memory = "off" if self.memory_mb <= 0 else ("rlimit" if as_works else "watchdog")
        files = "rlimit" if hasattr(resource, "RLIMIT_FSIZE") else "evaluator"
        return Plan(cpu=cpu, memory=memory, files=files)

    def describe(self, workers: int | None = None, language: str = "en") -> str:
        """The one line the Tensors and Autograd tabs show: which limits apply on this machine, and how."""
        p = self.plan()
        parts = [t("sandbox.limits.wall", language, wall_s=self.wall_s)]
        parts.append(t("sandbox.limits.no_cpu", language) if p.cpu == "off"
                     else t("sandbox.limits.cpu", language, cpu_s=self.cpu_s, how=p.cpu))
        if p.memory == "off":
            parts.append(t("sandbox.limits.no_memory", language))
        else:
            parts.append(t("sandbox.limits.memory", language, size=memory_size(self.memory_mb), how=p.memory))
        writes = "sandbox.limits.no_writes_rlimit" if p.files == "rlimit" else "sandbox.limits.no_writes_evaluator"
        parts.append(t(writes, language))
        line = t("sandbox.limits.head", language, parts=t("sandbox.list_sep", language).join(parts))
        if workers:
            line = t("sandbox.limits.and_at_once", language, line=line, at_once=at_once(workers, language))
        return line


def memory_size(mb: int) -> str:
    """1536 -> '1.5 GiB', 512 -> '512 MiB' (units read the same in both languages)."""
    return f"{mb / 1024:g} GiB" if mb >= 1024 else f"{mb} MiB"


def at_once(workers: int, language: str = "en") -> str:
    """How many programs run at a time ("2 programs at a time, one per visitor")."""
    return t("sandbox.limits.at_once_one" if workers == 1 else "sandbox.limits.at_once", language, n=workers)


# ---- in the child -------------------------------------------------------------------------------------------
def simulate_platform_in_child(limits: WorkerLimits) -> None:
    """Make this interpreter look like the target OS before anything imports `resource` (tests on Linux)."""
    if limits.no_resource_module() and not sys.platform.startswith("win"):
        sys.modules["resource"] = None  # `import resource` now raises ImportError, as on Windows


def clamp_child(plan: Plan, limits: WorkerLimits, vm_size: int) -> dict:
    """Set the kernel limits the plan asks for (after warm-up; vm_size is the address space mapped by then)."""
    info: dict = {}
    if plan.memory == "rlimit":
        import resource  # where used: POSIX only, and hidden from the child in the simulated-platform tests

        if vm_size <= 0:
            raise RuntimeError("cannot measure the worker's address space (install psutil)")

        limit = vm_size + limits.memory_mb * (1 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        info["rlimit_as"] = limit
    if plan.files == "rlimit":
        import resource
        import signal

        if hasattr(signal, "SIGXFSZ"):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write fails with EFBIG instead of killing us
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    return info


def arm_cpu_limit(plan: Plan, cpu_s: float) -> None:
    """Before each request: the CPU soft limit = CPU used so far + cpu_s (SIGXCPU ends the child past it)."""
    if plan.cpu != "rlimit":
        return
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (used + max(1, int(round(cpu_s))), resource.RLIM_INFINITY))


# ---- in the parent ------------------------------------------------------------------------------------------
class Watchdog:
    """The parent's watch over one child where the kernel cannot limit it: resident memory above the size after
    warm-up, and CPU time (user + system) per request, read with psutil (Linux, macOS and Windows alike)."""

    def __init__(self, pid: int, plan: Plan, limits: WorkerLimits):
        try:
            import psutil
        except ImportError as exc:  # pragma: no cover - psutil is in requirements.txt
            raise RuntimeError("the sandbox needs psutil for its limits on this OS: pip install psutil") from exc
        self.plan, self.limits = plan, limits
        self.proc = psutil.Process(pid)
        self.rss_baseline = self.proc.memory_info().rss
        self.cpu_start = 0.0

    def _cpu(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system

    def start_request(self) -> None:
        self.cpu_start = self._cpu()

    def over_limit(self) -> dict | None:
        """Why the child must be stopped now (a catalogue term, core.errors.term), or None."""
        try:
            if self.plan.memory == "watchdog":
                rss = self.proc.memory_info().rss
                if rss - self.rss_baseline > self.limits.memory_mb * (1 << 20):
                    return term("sandbox.why.memory", memory_mb=self.limits.memory_mb)
            if self.plan.cpu == "watchdog" and self._cpu() - self.cpu_start > self.limits.cpu_s:
                return term("sandbox.why.cpu", cpu_s=self.limits.cpu_s)
        except Exception:  # noqa: BLE001 - the process is gone; the connection reports it
            return None
        return None


def process_vm_size() -> int:
    """This process's mapped address space in bytes (psutil: no /proc reads of our own, works on every OS)."""
    try:
        import psutil

        return int(psutil.Process().memory_info().vms)
    except Exception:  # noqa: BLE001 - no psutil: clamp_child says so
        return 0
