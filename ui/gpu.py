"""ZeroGPU: jobs run through `spaces.GPU`, with a duration computed from each job's size; elsewhere nothing changes.

On a ZeroGPU Space a GPU exists only inside a call decorated with `spaces.GPU` (in a process the platform forks
for it), and CUDA must not be initialised anywhere else. So there:
- jobs run from the server process (jobs.runners.InlineRunner, not our worker process), each as
  job_stream() through `spaces.GPU(duration=job_seconds(...))`, inside core.device.gpu_scope();
- interactive events never enter gpu_scope(), so core.device.get_device() gives them the CPU (a digits model
  answers in milliseconds there; waiting for a GPU to be attached would take longer).
Off ZeroGPU install() does nothing and jobs keep their worker process. `spaces` is imported only on ZeroGPU (it
imports gradio, so it stays out of zoo/ and training/).
"""
from __future__ import annotations

import math
import queue
import threading

from core.device import gpu_scope, on_zero_gpu
from jobs.queue import set_runner_factory
from jobs.run import Context, run_kind
from jobs.runners import InlineRunner
from jobs.wire import encode

MIN_S, MAX_S = 20, 300          # ZeroGPU bills and schedules by the requested duration: ask for what fits
# Images per data set as the tab loads them (zip uploads are capped by training/data/zipdata.py's entry count).
TARGET_IMAGES = {"digits": 1_437, "mnist5k": 4_000, "MNIST": 60_000, "FashionMNIST": 60_000, "CIFAR-10": 50_000,
                 "zip": 20_000}
IMAGES_PER_S = 20_000           # a digits ResNet on an H200 (fp32); bench/bench_gpu.py measures the real figure


def job_seconds(kind: str, params: dict) -> int:
    """A generous GPU-time estimate for one job, from its size (epochs x images, or steps), within [20, 300] s."""
    p = params or {}
    if kind in ("finetune", "resume"):
        cfg = p.get("config", p)
        epochs = int(cfg.get("stage1_epochs", 2)) + int(cfg.get("stage2_epochs", 2))
        images = TARGET_IMAGES.get(str(cfg.get("target", "digits")), 20_000)
        per_class = int(cfg.get("few_shot", 0) or 0)
        if per_class:
            images = min(images, per_class * 10)
        seconds = 15 + 2 * epochs * images / IMAGES_PER_S          # x2: the from-scratch comparison
    elif kind in ("compress", "ensemble"):
        seconds = 120                                               # several short trainings in a row
    else:                                                           # resample, autocast timing: seconds
        seconds = 30
    return int(min(MAX_S, max(MIN_S, math.ceil(seconds))))


def job_stream(kind: str, params: dict, job_dir: str):
    """Run one job and yield ("event", {...}) as it goes, then ("done", (plain JSON, safetensors bytes)).

    This is the function spaces.GPU runs. On ZeroGPU it runs in a process the platform forks, so it takes only
    plain, picklable arguments and hands everything back by yielding (spaces streams a generator's items to
    the caller); closing the generator (Cancel) stops the job after its current step."""
    events: queue.Queue = queue.Queue()
    stop = threading.Event()
    out: dict = {}
    end = object()

    def work():
        try:
            with gpu_scope():
                out["result"] = run_kind(kind, params, Context(job_dir, events.put, stop))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the generator below
            out["error"] = exc
        finally:
            events.put(end)

    t = threading.Thread(target=work, name=f"gpu-job-{kind}", daemon=True)
    t.start()
    try:
        while (ev := events.get()) is not end:
            yield "event", ev
        if "error" in out:
            raise out["error"]
        yield "done", encode(out["result"])
    finally:
        stop.set()
        t.join()


def gpu_stream(kind: str, params: dict, job_dir: str):
    """job_stream through spaces.GPU(duration=job_seconds(kind, params)) (only called on ZeroGPU)."""
    import spaces  # type: ignore  # only on ZeroGPU (see install)

    return spaces.GPU(duration=job_seconds(kind, params))(job_stream)(kind, params, job_dir)


def install() -> bool:
    """On ZeroGPU, make the job queue run jobs in-process through gpu_call. Returns whether it did."""
    if not on_zero_gpu():
        return False
    set_runner_factory(lambda: InlineRunner(stream=gpu_stream))
    return True
