"""Jobs off the interactive path: the worker process, its queue, cancel, a dying worker, and two visitors."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch


def _wait(pred, timeout=120.0, every=0.1):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(every)
    return False


def test_wire_format_round_trips_tensors_and_refuses_objects():
    from jobs.wire import decode, encode

    obj = {"a": [1, 2.5, None, "x", (3, 4)], "t": torch.arange(6).reshape(2, 3),
           "n": {"u": torch.ones(2, dtype=torch.uint8)}}
    back = decode(*encode(obj))
    assert back["a"] == [1, 2.5, None, "x", [3, 4]]
    assert torch.equal(back["t"], obj["t"]) and torch.equal(back["n"]["u"], obj["n"]["u"])
    with pytest.raises(TypeError):
        encode({"m": torch.nn.Linear(2, 2)})       # only plain data and tensors cross the pipe


@pytest.fixture(scope="module")
def queue():
    from jobs.queue import JobQueue, WorkerRunner

    q = JobQueue(lambda: WorkerRunner(threads=torch.get_num_threads()))
    yield q
    q.close()


def _ft(**kw):
    from training.finetuning.finetune_config import FinetuneConfig

    return {"config": FinetuneConfig(**kw).to_dict(), "compare_scratch": False}


@pytest.mark.slow
@pytest.mark.app   # the job worker process
def test_same_seed_in_process_and_in_the_worker_gives_identical_weights(queue):
    from safetensors.torch import load_file

    from training.finetuning.finetune import load_target, run_finetune
    from training.finetuning.finetune_config import FinetuneConfig

    cfg = FinetuneConfig(max_steps=3)
    job = queue.submit("seed-test", "finetune", _ft(max_steps=3))
    assert job.finished.wait(300), "the job did not finish"
    assert job.state == "done", job.error
    here = run_finetune(cfg, load_target(cfg), device="cpu")
    theirs = load_file(job.result["weights"])
    ours = here.model.state_dict()
    assert set(theirs) == set(ours)
    assert all(torch.equal(theirs[k], ours[k]) for k in ours)
    assert job.result["test_acc"] == here.test_acc
    assert [round(h["loss"], 6) for h in job.result["history"]] == [round(h["loss"], 6) for h in here.history]
    steps = [e for e in job.events if e.get("phase") == "fine-tune"]
    assert len(steps) == len(here.history)                       # every step streamed


@pytest.mark.app   # the job worker process
def test_one_job_per_session_and_cancel_of_queued_and_running(queue):
    from jobs.queue import JobRefused

    first = queue.submit("A", "finetune", _ft(stage1_epochs=20, stage2_epochs=20))
    with pytest.raises(JobRefused, match="one job per visitor"):
        queue.submit("A", "resample", {"counts": [50] * 10, "steps": 10})
    second = queue.submit("B", "finetune", _ft(max_steps=2))
    assert _wait(lambda: first.state == "running")
    assert queue.position(second) == 1 and second.state == "queued"
    assert queue.cancel("B").startswith("Cancelled: your job left the queue")
    assert second.finished.wait(5) and second.state == "cancelled"
    assert not os.path.exists(second.dir)
    assert _wait(lambda: any(e.get("phase") == "fine-tune" for e in first.events), 300)
    n = len(first.events)
    t0 = time.time()
    assert queue.cancel("A").startswith("Cancelling")
    assert first.finished.wait(60)
    assert first.state == "done" and first.result["stopped"]         # stopped after the step in flight
    assert len([e for e in first.events[n:] if e.get("phase") == "fine-tune"]) <= 2
    assert time.time() - t0 < 60                                     # (the wait above): a step, then the save
    assert os.path.exists(first.result["checkpoint"])                # best weights kept, as before


@pytest.mark.slow
@pytest.mark.app   # the job worker process
def test_worker_killed_mid_run_fails_clearly_keeps_nothing_and_the_next_job_runs(queue):
    job = queue.submit("K", "finetune", _ft(stage1_epochs=20, stage2_epochs=20))
    assert _wait(lambda: any(e.get("phase") == "fine-tune" for e in job.events), 300)
    runner = queue._runners[0]
    os.kill(runner.pid, signal.SIGKILL)
    assert job.finished.wait(30)
    assert job.state == "failed" and "stopped in the middle of this job" in str(job.error)
    assert "Nothing from it was saved" in str(job.error)
    assert not os.path.exists(job.dir)
    nxt = queue.submit("K", "resample", {"counts": [30] * 10, "steps": 10})
    assert nxt.finished.wait(300) and nxt.state == "done", nxt.error
    assert {r["method"] for r in nxt.result["rows"]} == {"none", "oversample", "bootstrap", "smote"}


def test_zip_pixel_budget_is_checked_from_headers_before_decoding(tmp_path):
    import zipfile

    from PIL import Image

    from training.data.zipdata import ZipRejected, load_zip_dataset

    big = tmp_path / "big.png"
    Image.new("L", (6000, 6000)).save(big)            # 36 MP each, compresses to a few KB
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w") as zf:                   # stored: the PNGs are already compressed
        for c in ("a", "b"):
            for i in range(4):
                zf.write(big, f"{c}/{i}.png")
    calls = []
    t0 = time.time()
    with pytest.raises(ZipRejected, match="megapixels"):
        load_zip_dataset(str(z), progress=lambda *a: calls.append(a))
    assert calls == [] and time.time() - t0 < 30          # refused before a single image was decoded (~12 s if not)


def test_zip_decoding_is_cancellable(tmp_path):
    import zipfile

    from PIL import Image

    from jobs.kinds import Cancelled
    from training.data.zipdata import load_zip_dataset

    z = tmp_path / "ok.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for c in ("a", "b"):
            for i in range(10):
                p = tmp_path / f"{c}{i}.png"
                Image.fromarray((np.random.default_rng(i).random((20, 20)) * 255).astype(np.uint8)).save(p)
                zf.write(p, f"{c}/{i}.png")
    seen = []

    def progress(done, total, text):
        seen.append(done)
        if done >= 3:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        load_zip_dataset(str(z), progress=progress)
    assert seen == [0, 1, 2, 3]


def test_resumed_checkpoint_is_held_to_the_tabs_limits_and_a_finished_run_says_so(tmp_path):
    from training.checkpoint import CheckpointError, read_checkpoint_meta, save_checkpoint
    from training.finetuning.finetune import load_target, run_finetune, save_result_checkpoint
    from training.finetuning.finetune_config import FinetuneConfig, check_resumable, config_from_header

    cfg = FinetuneConfig(max_steps=2, stage2_epochs=0)
    res = run_finetune(cfg, load_target(cfg), device="cpu")
    path = save_result_checkpoint(res, str(tmp_path / "done.safetensors"))
    meta, pos = read_checkpoint_meta(path)
    assert config_from_header(meta).max_steps == 2
    with pytest.raises(CheckpointError, match="already finished"):
        check_resumable(meta, pos)
    st = dict(res.train_state)
    weights = st.pop("model")
    for field, value, words in (("stage1_epochs", 200, "Stage 1 epochs"), ("batch_size", 1, "The batch size")):
        bad = dict(meta, config=dict(meta["config"], **{field: value}))
        p = save_checkpoint(str(tmp_path / f"{field}.safetensors"), weights, st, bad)
        with pytest.raises(CheckpointError, match=f"{words} is {value}; this server allows"):
            config_from_header(read_checkpoint_meta(p)[0])


def test_a_checkpoints_rng_state_does_not_touch_the_callers_rng():
    from training.finetuning.finetune import load_target, run_finetune
    from training.finetuning.finetune_config import FinetuneConfig

    torch.manual_seed(1234)
    expect = torch.rand(3)
    torch.manual_seed(1234)
    cfg = FinetuneConfig(max_steps=1, stage2_epochs=0)
    run_finetune(cfg, load_target(cfg), device="cpu")
    assert torch.equal(torch.rand(3), expect)


# ---------------------------------------------------------------- two visitors through gradio_client

def test_interactive_answers_while_a_job_runs_and_the_second_job_shows_its_position(client, app_url, tmp_path):
    from gradio_client import Client, handle_file
    from PIL import Image

    from training.data.datasets import mnist5k

    digit = tmp_path / "d.png"
    Image.fromarray((mnist5k().test_x[0, 0].numpy() * 255).astype(np.uint8)).save(digit)
    client.predict(handle_file(str(digit)), api_name="/classify")       # warm
    other = Client(app_url, verbose=False)
    third = Client(app_url, verbose=False)
    long_run = client.submit(stage1_epochs=20, stage2_epochs=20, compare_scratch=False, api_name="/finetune")
    assert _wait(lambda: any("step" in str(o[0]) for o in long_run.outputs()), 300), long_run.outputs()[-1:]
    t0 = time.perf_counter()
    label = other.predict(handle_file(str(digit)), api_name="/classify")[0]
    assert time.perf_counter() - t0 < 30 and label["label"]      # not held up by the training job (bench_serving)
    waiting = third.submit(max_steps=1, compare_scratch=False, api_name="/finetune")
    assert _wait(lambda: any("Queued: 1 job is ahead of yours" in str(o[0]) for o in waiting.outputs()), 60)
    with pytest.raises(Exception, match="one job per visitor"):            # same visitor, second job: refused
        client.predict(max_steps=1, api_name="/finetune")
    assert "Cancelled: your job left the queue" in third.predict(api_name="/cancel")
    assert "Cancelled before it started" in waiting.result(timeout=60)[0]
    assert "Cancelling" in client.predict(api_name="/cancel")
    status, *rest = long_run.result(timeout=120)
    assert "cancelled" in status and "cancelled" in rest[2]


def test_a_killed_worker_reaches_the_api_caller_as_a_clear_error_and_the_next_job_runs(client):
    from jobs.queue import get_queue

    job = client.submit(stage1_epochs=20, stage2_epochs=20, compare_scratch=False, api_name="/finetune")
    assert _wait(lambda: any("step" in str(o[0]) for o in job.outputs()), 300)
    q = get_queue()                   # the app in this process (tests/conftest.py's app_url)
    running = [j for j in q._active.values() if j.state == "running"]
    assert running
    folder = running[0].dir
    os.kill(q._runners[0].pid, signal.SIGKILL)
    with pytest.raises(Exception, match="stopped in the middle of this job"):
        job.result(timeout=60)
    assert not os.path.exists(folder)
    out = client.predict(max_steps=1, compare_scratch=False, api_name="/finetune")
    assert "Test accuracy" in out[3]
