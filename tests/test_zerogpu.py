"""ZeroGPU, simulated: a GPU exists only inside calls decorated with `spaces.GPU`, and initialising CUDA anywhere
else fails ("CUDA must not be initialized in the main process"). The fixture installs a fake `spaces` module
that enforces that rule (and pickles each call's arguments, as the platform sends them to a forked process),
pretends a GPU is present, and traps torch.cuda._lazy_init, the one door to a CUDA context. The app is built
and every event is called under it. (Real CUDA work is bench/bench_gpu.py's job, on a machine with a GPU.)"""
from __future__ import annotations

import contextlib
import inspect
import os
import pickle
import sys
import threading
import types

import pytest
import torch

from core.settings import reload as reload_settings

RULE = "CUDA must not be initialized in the main process"


class ZeroGPUSim:
    """The platform's rule and bookkeeping: which functions asked for a GPU, for how long, and any violation."""

    def __init__(self):
        self.active = 0
        self.lock = threading.Lock()
        self.calls: list[tuple[str, int]] = []
        self.violations: list[str] = []

    @contextlib.contextmanager
    def attached(self):
        with self.lock:
            self.active += 1
        old = os.environ.get("PLAYGROUND_DEVICE")
        os.environ["PLAYGROUND_DEVICE"] = "cpu"   # the 'GPU' lent here is the CPU: this machine has no CUDA
        reload_settings()
        try:
            yield
        finally:
            with self.lock:
                self.active -= 1
                if self.active == 0:
                    if old is None:
                        os.environ.pop("PLAYGROUND_DEVICE", None)
                    else:
                        os.environ["PLAYGROUND_DEVICE"] = old
                    reload_settings()

    def GPU(self, task=None, *, duration=60, **_):  # noqa: N802 - the spaces API's name
        def deco(fn):
            def wrapper(*args, **kwargs):
                pickle.dumps((args, kwargs))          # arguments travel to a forked process: they must pickle
                d = duration(*args, **kwargs) if callable(duration) else duration
                assert isinstance(d, int) and 0 < d <= 300, d
                self.calls.append((fn.__name__, args[0] if args and isinstance(args[0], str) else None, d))
                if inspect.isgeneratorfunction(fn):
                    def stream():
                        with self.attached():
                            yield from fn(*args, **kwargs)
                    return stream()
                with self.attached():
                    return fn(*args, **kwargs)
            return wrapper
        return deco(task) if callable(task) else deco

    def lazy_init(self):
        where = "inside" if self.active else "outside"
        if not self.active:
            import traceback

            self.violations.append("".join(traceback.format_stack(limit=12)))
        raise RuntimeError(f"{RULE} (simulated ZeroGPU: CUDA touched {where} a spaces.GPU call)")


@contextlib.contextmanager
def zero_gpu():
    sim = ZeroGPUSim()
    module = types.ModuleType("spaces")
    module.GPU = sim.GPU
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPACES_ZERO_GPU", "true")
        mp.delenv("PLAYGROUND_DEVICE", raising=False)
        reload_settings()
        mp.setitem(sys.modules, "spaces", module)
        # Outside a GPU call a GPU seems present (as on ZeroGPU's main process); inside one, the 'GPU' lent here
        # is the CPU (this machine has no CUDA), so torch must not look for CUDA there.
        mp.setattr(torch.cuda, "is_available", lambda: sim.active == 0)
        mp.setattr(torch.cuda, "device_count", lambda: int(sim.active == 0))
        mp.setattr(torch.cuda, "_lazy_init", sim.lazy_init)
        try:
            yield sim
        finally:
            mp.undo()
            reload_settings()       # the settings of the environment as it was


def test_the_fixture_catches_cuda_outside_a_gpu_call():
    with zero_gpu() as sim:
        with pytest.raises(RuntimeError, match=RULE):
            torch.cuda.get_device_name(0)
        assert sim.violations
        import spaces

        @spaces.GPU(duration=30)
        def job(x):
            from core.device import get_device

            return torch.ones(2, device=get_device()) * x

        assert job(3).tolist() == [3.0, 3.0] and sim.calls == [("job", None, 30)]
        with pytest.raises(TypeError, match="pickle"):
            job(threading.Lock())                     # not picklable: the platform could not send it


def test_device_rule_on_zero_gpu():
    from core.device import describe_device, get_device, gpu_scope

    with zero_gpu() as sim:
        assert get_device().type == "cpu"             # interactive work: the CPU, no CUDA touched
        assert "ZeroGPU" in describe_device()         # the UI's device line touches no CUDA either
        with gpu_scope():
            assert get_device().type == "cuda"        # inside a GPU call: the GPU
        assert not sim.violations
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_job_seconds_grow_with_the_job_and_stay_bounded():
    from ui.gpu import MAX_S, MIN_S, job_seconds

    small = job_seconds("finetune", {"config": {"target": "digits", "stage1_epochs": 1, "stage2_epochs": 1}})
    big = job_seconds("finetune", {"config": {"target": "MNIST", "stage1_epochs": 20, "stage2_epochs": 20}})
    assert MIN_S <= small < big <= MAX_S
    assert job_seconds("resample", {}) >= MIN_S and job_seconds("compress", {}) <= MAX_S


# Small settings for the events that train, so the sweep takes seconds per job.
JOB_ARGS = {
    "/finetune": dict(stage1_epochs=1, stage2_epochs=1, max_steps=3, compare_scratch=False),
    "/export_run": dict(stage1_epochs=1, stage2_epochs=1, max_steps=3),
    "/ensemble": dict(n_bagged=1, n_boosted=1, steps=5),
    "/ensemble_votes": dict(n_bagged=1, n_boosted=1, steps=5),
    "/compress": dict(finetune_steps=10, distill_steps=10, repeats=3),
    "/resample": dict(counts="60,60,60,60,60,10,10,10,60,60", steps=10),
    "/autocast_training": dict(steps=1),
}
JOB_KINDS = {"/finetune": "finetune", "/resume": "resume", "/ensemble": "ensemble", "/compress": "compress",
             "/resample": "resample", "/autocast_training": "autocast"}


@pytest.fixture(scope="module")
def zero_gpu_app(tmp_path_factory):
    """A second app, built and served under the simulated ZeroGPU rule: (client, sim)."""
    from gradio_client import Client

    import app as app_module
    from jobs.queue import set_runner_factory
    from tests.conftest import free_port

    half = _half_run_checkpoint(tmp_path_factory.mktemp("ckpt"))   # before the rule: a run stopped at step 3
    with zero_gpu() as sim:
        demo = app_module.build_app()           # building the UI must not touch CUDA either
        demo.launch(prevent_thread_lock=True, quiet=True, **app_module.launch_kwargs("127.0.0.1", free_port()))
        try:
            yield Client(demo.local_url, verbose=False), sim, half
        finally:
            demo.close()
            set_runner_factory(None)      # later tests get the worker process again


def _half_run_checkpoint(folder) -> str:
    import threading

    from training.finetuning.finetune import load_target, run_finetune, save_result_checkpoint
    from training.finetuning.finetune_config import FinetuneConfig

    cfg = FinetuneConfig(max_steps=6, stage2_epochs=0)
    stop = threading.Event()
    half = run_finetune(cfg, load_target(cfg), on_step=lambda s, i: stop.set() if i.step == 3 else None, stop=stop,
                        device="cpu")
    return save_result_checkpoint(half, str(folder / "half.safetensors"))


def _digit_file(tmp_path):
    import numpy as np
    from gradio_client import handle_file
    from PIL import Image

    from training.data.datasets import mnist5k

    path = tmp_path / "digit.png"
    Image.fromarray((mnist5k().test_x[0, 0].numpy() * 255).astype(np.uint8)).save(path)
    return handle_file(str(path))


@pytest.mark.slow
@pytest.mark.app   # builds and launches its own app (zero_gpu_app)
@pytest.mark.timeout(900)
def test_every_event_under_the_zero_gpu_rule(zero_gpu_app, tmp_path):
    """Every named endpoint runs; CUDA is never initialised outside a spaces.GPU call; every training job went
    through spaces.GPU with a duration computed from it, and nothing else did."""
    client, sim, half_checkpoint = zero_gpu_app
    digit = _digit_file(tmp_path)
    sketch = {"background": digit, "layers": [], "composite": digit}
    needs = {"image": digit, "sketch": sketch}
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in sorted(endpoints):
        params = {p["parameter_name"]: needs[p["parameter_name"]] for p in endpoints[name]["parameters"]
                  if not p["parameter_has_default"]}
        params.update(JOB_ARGS.get(name, {}))
        if name == "/resume":
            from gradio_client import handle_file

            params = {"ckpt_file": handle_file(half_checkpoint)}
        client.predict(**params, api_name=name)
    assert not sim.violations, sim.violations[0]
    kinds = [k for fn, k, _ in sim.calls]
    assert all(fn == "job_stream" for fn, _, _ in sim.calls)
    assert sorted(set(kinds)) == sorted(JOB_KINDS.values()), kinds


def test_events_that_may_download_weights_show_progress():
    """The first use of an ImageNet model downloads its weights (Classify, Look inside): Gradio shows
    huggingface_hub's tqdm bar as the tab's progress when the event takes a gr.Progress(track_tqdm=True)."""
    import inspect as stdlib_inspect

    import gradio as gr

    from ui import look_inside
    from ui.classify import classify_upload_ui, rerun_ui

    downloading = (classify_upload_ui, rerun_ui, look_inside.look_upload, look_inside.activations_ui,
                   look_inside.attribution_ui, look_inside.weight_stats_ui, look_inside.compare_checkpoints_ui)
    for fn in downloading:
        p = stdlib_inspect.signature(fn).parameters["progress"].default
        assert isinstance(p, gr.Progress) and p.track_tqdm, fn.__name__
    # Look inside's buttons and uploads run those functions (not copies without a progress bar).
    with gr.Blocks() as demo:
        with gr.Tab("Look inside"):
            look_inside.build_tab()
    wired = {getattr(f.fn, "__wrapped__", f.fn) for f in demo.fns.values()}
    for fn in downloading[2:]:
        assert fn.__wrapped__ in wired, fn.__name__
