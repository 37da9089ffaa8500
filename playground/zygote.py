"""The sandbox's warm template: `python -m playground.zygote`, started by the server (playground/fork_server.py)
with exec and a clean environment (no HF_TOKEN, no GRADIO_*, nothing of the server's memory), never forked from
it. It imports torch, torchvision, numpy, PIL, safetensors, matplotlib and scikit-learn once, then forks one
child per program: the child pays nothing for those imports (a fresh `python program.py` pays seconds).

The template never initialises CUDA (a forked child could not use it) and never runs a parallel torch op (an
OpenMP pool started before fork is broken in the child). It talks to the server over one SOCK_SEQPACKET socket
(fd given in argv): the server sends {"t": "fork", "id"}; the template hands over a spare child (forked ahead)
with {"t": "forked", "id", "pid"} and the child's socket attached (SCM_RIGHTS), and sends {"t": "exit", "pid",
"status"} when a child ends (it reaps them, so a pid it is asked to kill is always its own live child).

The child (run_child) reads its spec from the run socket, moves into the visitor's scratch folder, fences itself
(playground/fence.py) and runs the program (playground/program_run.py), then leaves with os._exit: an
interpreter shutdown after fork costs most of a second and would run the template's atexit handlers.
"""
from __future__ import annotations

import ast
import ctypes
import gc
import json
import os
import random
import resource  # noqa: F401 - imported here once: fence.apply_rlimits imports it in every child
import selectors
import signal
import socket
import sys
import tempfile
import time

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # device_count without initialising CUDA

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402,F401 - warmed for the programs (its font cache is built now)
from core.fonts import use_in_matplotlib  # noqa: E402
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402,F401
import safetensors.torch  # noqa: E402,F401
import torch  # noqa: E402
import torch.utils.data  # noqa: E402,F401
import torchvision  # noqa: E402,F401
import torchvision.transforms  # noqa: E402,F401

from playground import fence, frames, graph, program_run, tensor_view  # noqa: E402

MSG = 65536
# Spares are forked again when no run is going, or once runs have stopped arriving for this long: a burst of runs
# is handed the spares forked ahead, and the forks that replace them (a few ms of CPU each) do not compete with the
# burst's programs.
REFILL_AFTER_S = 0.05


def _warm() -> None:
    """Import what programs commonly import and touch torch's single-threaded paths (no OpenMP pool)."""
    use_in_matplotlib()   # a program's Chinese titles and labels: the CJK font where one is installed
    # The app's code panels import a few of its own modules ("Open in the playground" runs them here): imported
    # now, so a fenced program uses them without reading the app's folder, which it may not. Not scikit-learn:
    # with SciPy it maps ~800 more regions (of ~1,700), which every fork copies and every exit tears down (~3 ms
    # a run); the few programs that import it pay its import (~1 s) instead.
    for name in ("torchvision.models", "torch.nn.functional", "collections", "itertools",
                 "functools", "io", "math", "time", "zoo", "zoo.hub", "zoo.images", "zoo.digits", "zoo.catalog",
                 "zoo.generative", "training.data.datasets", "training.data.transforms", "training.trainer"):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - an optional library missing here: the program's import says so
            pass
    torch.ones(2) + 1
    fig = plt.figure(figsize=(1, 1))
    fig.canvas.draw()
    plt.close(fig)
    # what every run's results use: the pictures, the graph, the printout (print options restored), seccomp
    saved = dict(torch._tensor_str.PRINT_OPTS.__dict__)
    tensor_view.value_text(torch.ones(2))
    torch._tensor_str.PRINT_OPTS.__dict__.update(saved)
    tensor_view.render("w", torch.ones(3, 3))
    tensor_view.render("v", torch.ones(100))
    # a Chinese visitor's pictures: their words and Chinese names drawn with the CJK font, loaded once here (~17 ms
    # a run otherwise); English where no CJK font is installed
    tensor_view.render("张量", torch.ones(100), tensor_view.picture_words("zh"))
    x = torch.tensor(2.0, requires_grad=True)
    graph.render(graph.build((x * x).sin(), {id(x): "x"}))
    if fence.seccomp_available():
        import pyseccomp  # noqa: F401
    import traceback  # noqa: F401


_MADV_COLLAPSE = 25     # Linux 6.1+: make 2 MiB pages of a range now, whatever the system's THP setting
_HUGE = 2 << 20


def _huge_pages() -> int:
    """Move the template's private anonymous memory (torch's CUDA build alone holds ~400 MB of it) onto 2 MiB
    pages, once. fork() copies one page-table entry per page and a child's exit tears them down again, which is most
    of what many programs at once cost the machine: huge pages make both several times cheaper (docs/numbers.md,
    "Why the code is as it is"). A page a child writes is still copied 4 KiB at a time.
    Returns the MiB collapsed; 0 where the kernel cannot (older than 6.1, or THP off)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        with open("/proc/self/maps") as fh:
            maps = fh.read().splitlines()
    except (OSError, AttributeError):
        return 0
    done = 0
    for line in maps:
        f = line.split()
        path = f[5] if len(f) > 5 else ""
        if f[1][:2] != "rw" or f[1][3] != "p" or (path and path != "[heap]"):
            continue
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        a, b = -(-lo // _HUGE) * _HUGE, hi // _HUGE * _HUGE
        if b - a >= _HUGE and libc.madvise(a, b - a, _MADV_COLLAPSE) == 0:
            done += b - a
    return done >> 20


def _vm_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def run_child(sock: socket.socket, cfg: dict, ahead: bool = False) -> None:
    """In the forked child, a spare until the server hands it a run: everything that does not depend on the run
    first (so it is done before anyone waits), then the spec, the visitor's folder, the fence, the program. A spare
    forked `ahead` of its run also rehearses what every run's results do (_rehearse). Never returns."""
    code = 0
    try:
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL if sig != signal.SIGINT else signal.default_int_handler)
        signal.set_wakeup_fd(-1)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        os.environ.clear()
        os.environ.update({"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MPLCONFIGDIR": cfg["mpl_dir"],
                           "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",   # no network: the cache, read-only
                           "JOBLIB_MULTIPROCESSING": "0"})   # no processes here: joblib (scikit-learn) says so quietly
        if cfg.get("hub_cache"):
            os.environ["HF_HUB_CACHE"] = cfg["hub_cache"]
        # a fresh seed per run, as a fresh `python program.py` has (fork copies the template's RNG states)
        seed = int.from_bytes(os.urandom(8), "little")
        torch.manual_seed(seed)
        np.random.seed(seed % (2 ** 32))
        random.seed(os.urandom(16))
        torch.set_num_threads(int(cfg.get("threads", 2)))
        os.nice(int(cfg.get("nice", 10)))
        early = _fence_early(cfg)   # the same for every run: done while the spare waits
        if ahead:
            _rehearse()
        msg = frames.Reader().read_blocking(sock)
        if msg is None:   # the template or the server went away before this spare was used
            os._exit(0)
        spec = msg[0]
        scratch = spec["scratch"]
        os.chdir(scratch)
        os.environ.update({"HOME": scratch, "TMPDIR": scratch})
        tempfile.tempdir = scratch   # gettempdir() may have been cached as /tmp in the template
        info = {**early, **_fence(spec, cfg, scratch)}
        frames.send(sock, {"t": "ready", "fence": info})
        program_run.run(sock, {**spec, "fenced": bool(info.get("fenced"))})   # the fence is known here, not sent
    except BaseException as exc:  # noqa: BLE001 - report what stopped the run before it began
        code = 3
        try:
            frames.send(sock, {"t": "failed", "message": f"{type(exc).__name__}: {exc}"[:2000]})
        except BaseException:  # noqa: BLE001
            pass
    finally:
        _idle()
        os._exit(code)


def _rehearse() -> None:
    """What every run's results do (a tensor's summary, printout and picture; a program compiled), done once by a
    spare while it waits, on a tensor of its own: the pages this touches are the template's, shared copy-on-write,
    and the first write to each copies it (~1,000 pages, ~4 ms). Made here, those copies are off the run's path:
    a one-liner's child took ~8 ms from fork to result before, ~5 ms after (bench/bench_programs.py). Nothing of
    it is left for the program: the print options are restored, the tensor and picture dropped; no random numbers
    are drawn."""
    saved = dict(torch._tensor_str.PRINT_OPTS.__dict__)
    try:
        x = torch.ones(2) + 1
        tensor_view.summarize(x)
        tensor_view.value_text(x)
        program_run.raw_picture(tensor_view.render("x", x))
        compile(ast.parse("x = torch.ones(2) + 1"), "<rehearsal>", "exec")
    except Exception:  # noqa: BLE001 - a rehearsal only saves time: the run does the same work for real
        pass
    finally:
        torch._tensor_str.PRINT_OPTS.__dict__.update(saved)


def _idle() -> None:
    """The run is over (its answer sent): the exit's teardown (unmapping a large address space, a few ms of CPU)
    waits for cores that have nothing else to do, instead of competing with the programs and events still going."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        pass


def _fence_early(cfg: dict) -> dict:
    """What fences every run alike, applied by a spare before its run arrives: no capabilities, seccomp (which
    also sets no_new_privs). Nothing of it depends on the run."""
    if not cfg.get("fenced"):
        return {"fenced": False}
    info: dict = {"fenced": True}
    if os.geteuid() == 0:   # the template dropped them (main): a child inherits none
        info["capabilities_dropped"] = cfg.get("capabilities_dropped", 0)
    info.update(fence.seccomp_restrict())
    return info


def _fence(spec: dict, cfg: dict, scratch: str) -> dict:
    """rlimits always (counted from the run's start); Landlock when fenced: read-only system and library
    folders, read-write the visitor's own folder, which only the run names."""
    lim = fence.RunLimits(cpu_s=int(spec.get("cpu_s", 30)), memory_bytes=int(spec.get("memory_bytes", 2 << 30)),
                          file_bytes=int(spec.get("file_bytes", 64 << 20)))
    fence.apply_rlimits(lim, _vm_bytes())
    if not cfg.get("fenced"):
        return {}
    reads = list(cfg["read_paths"]) + ["/proc/self", "/proc/cpuinfo"] + list(spec.get("read_paths", []))
    return fence.landlock_restrict(reads, [scratch], rw_files=["/dev/null"], ioctl_paths=cfg.get("gpu_paths", []))


def _reap(ctl: socket.socket, children: set, spares: list) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        for i, (spare_pid, sock) in enumerate(spares):
            if spare_pid == pid:   # a spare that died waiting (it should not): forget it
                sock.close()
                del spares[i]
                break
        ctl.send(json.dumps({"t": "exit", "pid": pid, "status": status}).encode())


def _spare(cfg: dict, closing: list, ahead: bool) -> tuple[int, socket.socket]:
    """Fork one spare child that waits for its run on a socket of its own; returns (pid, our end). A spare forked
    `ahead` of a request rehearses while it waits; one forked for a waiting request goes straight to its run."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        ours.close()
        for fd in closing:
            try:
                os.close(fd)
            except OSError:
                pass
        run_child(theirs, cfg, ahead)
    theirs.close()
    return pid, ours


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    fence.non_dumpable()
    cfg = json.loads(ctl.recv(MSG))
    _warm()
    # Every object the template holds goes to the permanent generation: a collection in a child would otherwise
    # write to every object's header and copy most of the template's pages (copy-on-write), tens of ms a run.
    gc.freeze()
    huge = _huge_pages()
    if cfg.get("fenced") and os.geteuid() == 0:
        # Every capability goes once, here: the template needs none (it forks, lowers limits and priority, and
        # signals its own children), and each child inherits the empty sets instead of dropping them itself.
        cfg["capabilities_dropped"] = fence.drop_capabilities()
    ctl.send(json.dumps({"t": "ready", "pid": os.getpid(), "probe": fence.probe(), "huge_pages_mib": huge,
                         "threads_before_fork": len(os.listdir("/proc/self/task"))
                         if os.path.isdir("/proc/self/task") else None}).encode())
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(ctl, selectors.EVENT_READ, "ctl")
    sel.register(rfd, selectors.EVENT_READ, "chld")
    children: set[int] = set()
    # Forking a template that holds torch & co. takes tens of ms (its page tables): spares are forked ahead, so
    # a run starts in the time it takes to hand one over. The spares in a child's memory are closed there.
    spares: list[tuple[int, socket.socket]] = []
    n_spares = int(cfg.get("spares", 4))

    def add_spare(ahead: bool = True):
        closing = [ctl.fileno(), rfd, wfd, *(s.fileno() for _, s in spares)]
        pid, sock = _spare(cfg, closing, ahead)
        children.add(pid)
        spares.append((pid, sock))

    last_fork = 0.0
    while True:
        # Requests first; a spare is forked only when no run is going or nothing has been asked for REFILL_AFTER_S
        # (one at a time, so a burst of runs is handed the spares there are and forks for the rest on demand,
        # instead of queueing behind refills or sharing the cores with them).
        wait = None
        if len(spares) < n_spares:
            going = len(children) - len(spares)
            wait = 0.0 if not going else max(0.0, last_fork + REFILL_AFTER_S - time.monotonic())
        events = sel.select(wait)
        if not events:
            add_spare()
            continue
        for key, _ in events:
            if key.data == "chld":
                os.read(rfd, 4096)
                _reap(ctl, children, spares)
                continue
            msg, fds, _flags, _addr = socket.recv_fds(ctl, MSG, 2)
            for fd in fds:
                os.close(fd)
            if not msg:  # the server is gone: so are we (children are killed by their own limits)
                for pid in children:
                    _kill(pid)
                os._exit(0)
            req = json.loads(msg)
            if req.get("t") == "fork":
                last_fork = time.monotonic()
                if not spares:
                    add_spare(ahead=False)
                pid, sock = spares.pop(0)
                socket.send_fds(ctl, [json.dumps({"t": "forked", "id": req["id"], "pid": pid}).encode()],
                                [sock.fileno()])
                sock.close()
            elif req.get("t") == "kill" and req.get("pid") in children:
                _kill(req["pid"])
            _reap(ctl, children, spares)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    main()
