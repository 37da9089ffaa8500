"""The sandbox's warm template: `python -m playground.zygote`, started by the server (playground/fork_server.py)
with exec and a clean environment (no HF_TOKEN, no GRADIO_*, nothing of the server's memory), never forked from
it. It imports torch, torchvision, numpy, PIL, safetensors, matplotlib and scikit-learn once, then forks one
child per program: the child pays nothing for those imports (a fresh `python program.py` pays seconds).

The template never initialises CUDA (a forked child could not use it) and never runs a parallel torch op (an
OpenMP pool started before fork is broken in the child). It talks to the server over one SOCK_SEQPACKET socket
(fd given in argv): the server sends {"t": "fork", "id"} with the run's own socket attached (SCM_RIGHTS); the
template answers {"t": "forked", "id", "pid"}, and {"t": "exit", "pid", "status"} when a child ends (it reaps
them, so a pid it is asked to kill is always its own live child).

The child (run_child) reads its spec from the run socket, moves into the visitor's scratch folder, fences itself
(playground/fence.py) and runs the program (playground/program_run.py), then leaves with os._exit: an
interpreter shutdown after fork costs most of a second and would run the template's atexit handlers.
"""
from __future__ import annotations

import json
import os
import random
import selectors
import signal
import socket
import sys

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # device_count without initialising CUDA

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402,F401 - warmed for the programs (its font cache is built now)
import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402,F401
import safetensors.torch  # noqa: E402,F401
import torch  # noqa: E402
import torch.utils.data  # noqa: E402,F401
import torchvision  # noqa: E402,F401
import torchvision.transforms  # noqa: E402,F401

from playground import fence, frames, graph, program_run, tensor_view  # noqa: E402

MSG = 65536


def _warm() -> None:
    """Import what programs commonly import and touch torch's single-threaded paths (no OpenMP pool)."""
    # The app's code panels import a few of its own modules ("Open in the playground" runs them here): imported
    # now, so a fenced program uses them without reading the app's folder, which it may not.
    for name in ("sklearn.preprocessing", "torchvision.models", "torch.nn.functional", "collections", "itertools",
                 "functools", "io", "math", "time", "zoo", "zoo.hub", "zoo.images", "zoo.digits", "zoo.catalog",
                 "zoo.generative", "training.data", "training.transforms", "training.trainer"):
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
    x = torch.tensor(2.0, requires_grad=True)
    graph.render(graph.build((x * x).sin(), {id(x): "x"}))
    if fence.seccomp_available():
        import pyseccomp  # noqa: F401
    import traceback  # noqa: F401


def _vm_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def run_child(sock: socket.socket, cfg: dict) -> None:
    """In the forked child: spec, scratch folder, fence, program. Never returns."""
    code = 0
    try:
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL if sig != signal.SIGINT else signal.default_int_handler)
        signal.set_wakeup_fd(-1)
        msg = frames.Reader().read_blocking(sock)
        if msg is None:
            os._exit(0)
        spec = msg[0]
        scratch = spec["scratch"]
        os.chdir(scratch)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        os.environ.clear()
        os.environ.update({"HOME": scratch, "TMPDIR": scratch, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                           "MPLCONFIGDIR": cfg["mpl_dir"], "MPLBACKEND": "Agg"})
        # a fresh seed per run, as a fresh `python program.py` has (fork copies the template's RNG states)
        seed = int.from_bytes(os.urandom(8), "little")
        torch.manual_seed(seed)
        np.random.seed(seed % (2 ** 32))
        random.seed(os.urandom(16))
        torch.set_num_threads(int(cfg.get("threads", 2)))
        os.nice(int(cfg.get("nice", 10)))
        info = _fence(spec, cfg, scratch)
        frames.send(sock, {"t": "ready", "fence": info})
        program_run.run(sock, spec)
    except BaseException as exc:  # noqa: BLE001 - report what stopped the run before it began
        code = 3
        try:
            frames.send(sock, {"t": "failed", "message": f"{type(exc).__name__}: {exc}"[:2000]})
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


def _fence(spec: dict, cfg: dict, scratch: str) -> dict:
    """rlimits always; Landlock, seccomp and no capabilities when the run is fenced (everywhere the kernel
    offers them; an unfenced run happens only on a local instance of a machine without them)."""
    lim = fence.RunLimits(cpu_s=int(spec.get("cpu_s", 30)), memory_bytes=int(spec.get("memory_bytes", 2 << 30)),
                          file_bytes=int(spec.get("file_bytes", 64 << 20)))
    fence.apply_rlimits(lim, _vm_bytes())
    if not spec.get("fence"):
        return {"fenced": False}
    info: dict = {"fenced": True}
    if os.geteuid() == 0:
        info["capabilities_dropped"] = fence.drop_capabilities()
    reads = list(cfg["read_paths"]) + ["/proc/self", "/proc/cpuinfo"] + list(spec.get("read_paths", []))
    info.update(fence.landlock_restrict(reads, [scratch], rw_files=["/dev/null"],
                                        ioctl_paths=cfg.get("gpu_paths", [])))
    info.update(fence.seccomp_restrict())
    return info


def _reap(ctl: socket.socket, children: set) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        ctl.send(json.dumps({"t": "exit", "pid": pid, "status": status}).encode())


def main() -> None:
    ctl = socket.socket(fileno=int(sys.argv[1]))
    fence.non_dumpable()
    cfg = json.loads(ctl.recv(MSG))
    _warm()
    ctl.send(json.dumps({"t": "ready", "pid": os.getpid(), "probe": fence.probe(),
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
    while True:
        for key, _ in sel.select():
            if key.data == "chld":
                os.read(rfd, 4096)
                _reap(ctl, children)
                continue
            msg, fds, _flags, _addr = socket.recv_fds(ctl, MSG, 2)
            if not msg:  # the server is gone: so are we (children are killed by their own limits)
                for pid in children:
                    _kill(pid)
                os._exit(0)
            req = json.loads(msg)
            if req.get("t") == "fork" and fds:
                pid = os.fork()
                if pid == 0:
                    sel.close()
                    os.close(rfd)
                    os.close(wfd)
                    ctl.close()
                    run_child(socket.socket(fileno=fds[0]), cfg)
                children.add(pid)
                ctl.send(json.dumps({"t": "forked", "id": req["id"], "pid": pid}).encode())
            elif req.get("t") == "kill" and req.get("pid") in children:
                _kill(req["pid"])
            for fd in fds:
                os.close(fd)
            _reap(ctl, children)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    main()
