"""Training lab: augmentation settings, resampling, freezing, cancel/keep-best, exact resume, checkpoints."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import zipfile

import pytest
import torch

from training.data.datasets import digits
from training.finetuning.finetune import build_model, run_finetune, save_result_checkpoint
from training.finetuning.finetune_config import FinetuneConfig
from training.finetuning.transfer import freeze, parts_of, trainable_paths
from training.trainer import TrainConfig, train
from training.data.transforms import AugmentSettings, build_pipeline, draw, pipeline_code

OFF = dict(resize=0, crop_size=0, rotation=0, hflip_p=0, vflip_p=0, brightness=0, contrast=0)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """2 shared cores: one intra-op thread is ~10x faster than two fighting other processes (restored after)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def small_digits(n_train=256, n_test=100):
    d = digits()
    from training.data.datasets import Split

    return Split(d.train_x[:n_train], d.train_y[:n_train], d.test_x[:n_test], d.test_y[:n_test], d.classes)


# ---------------------------------------------------------------- augmentation

@pytest.mark.parametrize("mode,border", [("constant", 7), ("edge", 128), ("reflect", 128)])
def test_random_crop_padding_mode_and_fill_take_effect(mode, border):
    img = torch.full((1, 8, 8), 128, dtype=torch.uint8)
    s = AugmentSettings(**{**OFF, "crop_size": 12, "crop_padding": 2, "fill": 7, "padding_mode": mode})
    out = draw(img, s, n=1, seed=0)[0, 0]                      # padded to 12x12, crop 12 = the whole padded image
    assert out.shape == (12, 12)
    assert torch.allclose(out[0], torch.full((12,), border / 255.0))
    assert torch.allclose(out[5, 5], torch.tensor(128 / 255.0))


def test_pad_if_needed_and_seeded_draws():
    img = (torch.rand(3, 20, 30) * 255).to(torch.uint8)
    s = AugmentSettings(**{**OFF, "crop_size": 32, "crop_padding": 0, "pad_if_needed": True, "rotation": 30,
                           "hflip_p": 0.5, "brightness": 0.5, "normalize": True, "mean": (0.5,), "std": (0.25,)})
    a, b, c = draw(img, s, 6, seed=3), draw(img, s, 6, seed=3), draw(img, s, 6, seed=4)
    assert a.shape == (6, 3, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) < 0  # Normalize ran: (0 - 0.5) / 0.25 = -2 at padded pixels
    with pytest.raises(ValueError, match="pad_if_needed|smaller|larger|size"):
        draw(img, AugmentSettings(**{**OFF, "crop_size": 32, "crop_padding": 0}), 1)


def test_shown_code_is_the_pipeline():
    s = AugmentSettings(rrc_size=48, vflip_p=0.3, saturation=0.4, hue=0.1, normalize=True, mean=(0.4, 0.5, 0.6),
                        std=(0.2, 0.2, 0.2))
    ns: dict = {}
    exec(pipeline_code(s).split("\nx = transform")[0], ns)  # noqa: S102 - our own generated code
    assert repr(ns["transform"]) == repr(build_pipeline(s))
    img = (torch.rand(3, 64, 64) * 255).to(torch.uint8)
    with torch.random.fork_rng():
        torch.manual_seed(1)
        mine = ns["transform"](img)
    assert torch.equal(mine, draw(img, s, 1, seed=1)[0])


def test_bad_settings_refused():
    with pytest.raises(ValueError, match="padding_mode"):
        draw(torch.zeros(1, 8, 8, dtype=torch.uint8), AugmentSettings(padding_mode="wrap"), 1)
    with pytest.raises(ValueError, match="resize"):
        AugmentSettings.from_dict({"resize": 100_000})


# ---------------------------------------------------------------- resampling

def test_resampling_changes_class_counts_as_expected():
    from training.resample import imbalanced_subset, resample

    d = digits()
    counts = [30, 30, 30, 30, 30, 4, 4, 30, 30, 30]
    x, y = imbalanced_subset(d.train_x, d.train_y, counts)
    assert torch.bincount(y, minlength=10).tolist() == counts
    for method in ("bootstrap", "smote"):
        xr, yr = resample(x, y, method)
        assert torch.bincount(yr, minlength=10).tolist() == [30] * 10, method
        assert xr.shape[1:] == (1, 28, 28)
    xs, ys = resample(x, y, "smote")
    synthetic = xs[len(x):]  # imblearn appends the new minority samples
    assert len(synthetic) == 52 and not any(torch.equal(s, o) for s in synthetic[:5] for o in x)
    xo, yo = resample(x, y, "oversample")
    c = torch.bincount(yo, minlength=10)
    assert len(yo) == 300 and c[5] > 15 and c[6] > 15  # 4 images each, drawn ~30 times
    with pytest.raises(ValueError, match="SMOTE needs at least 2"):
        resample(*imbalanced_subset(d.train_x, d.train_y, [30] * 9 + [1]), "smote")


# ---------------------------------------------------------------- fine-tuning

def test_parts_known_for_every_zoo_architecture():
    from training.finetuning.finetune_config import finetunable_models
    from zoo import get_spec

    names = finetunable_models()
    assert {"resnet_digits", "vgg_digits", "alexnet_digits", "alexnet", "vgg16", "resnet18", "resnet50"} <= set(names)
    for name in names:
        model = get_spec(name).builder()
        parts = parts_of(model)
        head = model.get_submodule(parts.head)
        assert isinstance(head, torch.nn.Linear), name
        assert len(parts.blocks) >= 3, name
        for block in parts.blocks:
            for path in block:
                model.get_submodule(path)
        for s in ("last1", "last2"):  # the last blocks + head, and nothing from the first block
            paths = trainable_paths(parts, 2, s)
            assert parts.head in paths and not set(parts.blocks[0]) & set(paths)


def test_freezing_really_freezes():
    cfg = FinetuneConfig(max_steps=3)
    model, parts = build_model(cfg, 10)
    freeze(model, trainable_paths(parts, 1, "all"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, small_digits(), TrainConfig(epochs=1, batch_size=32, max_steps=3, eval_every=1, augment=False),
          device="cpu")
    after = model.state_dict()
    for k, v in before.items():
        if k.startswith("fc."):
            assert not torch.equal(v, after[k]), k
        else:
            assert torch.equal(v, after[k]), k  # weights AND BatchNorm running stats unchanged
    assert all(p.grad is None for n, p in model.named_parameters() if not n.startswith("fc."))


def test_cancel_stops_within_one_step_and_keeps_best():
    import threading

    stop = threading.Event()
    seen = []

    def on_step(stage, info):
        seen.append(info.step)
        if info.step == 4:
            stop.set()

    cfg = FinetuneConfig(stage1_epochs=3, eval_every=1, augment="none")
    res = run_finetune(cfg, small_digits(), on_step=on_step, stop=stop, device="cpu")
    assert res.stopped and seen == [1, 2, 3, 4] and len(res.stages) == 1
    best = max(h["test_acc"] for h in res.history)
    assert res.test_acc == pytest.approx(best)


def test_trainer_keep_best_restores_best_weights():
    """The trained resnet_digits, evaluated after every step; after step 1 the callback wipes its weights (a run
    that diverges), so step 1 is the best. keep_best must put back exactly step 1's weights and BatchNorm
    statistics, and report their accuracy."""
    from training.trainer import evaluate
    from zoo import get_model

    data = small_digits()
    model = get_model("resnet_digits")
    accs, at_best = [], {}

    def on_step(info):
        accs.append(info.test_acc)
        if info.step == 1:
            at_best.update({k: v.detach().clone() for k, v in model.state_dict().items()})
            with torch.no_grad():
                for p in model.parameters():
                    p.zero_()

    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-3, optimizer="sgd", max_steps=4, eval_every=1, keep_best=True,
                      augment=False)
    m = train(model, data, cfg, on_step=on_step, device="cpu")
    assert len(accs) == 4 and accs[0] == max(accs) and accs[-1] < accs[0] - 20, accs   # the best was step 1
    assert m["restored_best"] and m["test_acc"] == accs[0]
    state = model.state_dict()
    assert set(state) == set(at_best)
    for k, v in at_best.items():
        assert torch.equal(state[k], v), k                   # step 1's weights, running stats included
    assert evaluate(model, data.test_x, data.test_y) == pytest.approx(accs[0])


def test_mixed_precision_modes():
    """bf16 autocast on the CPU: the convolutions really run in bfloat16, the weights stay float32 and are
    trained, the losses are finite, and the first loss is the float32 run's (same weights, same batch)."""
    from zoo.digits import ResNetDigits

    def run(amp):
        torch.manual_seed(0)
        model = ResNetDigits()
        before = {k: v.clone() for k, v in model.named_parameters()}
        dtypes = []
        model.conv1.register_forward_hook(lambda mod, inp, out: dtypes.append(out.dtype))
        m = train(model, small_digits(), TrainConfig(epochs=1, batch_size=32, max_steps=2, amp=amp), device="cpu")
        assert m["steps"] == 2
        losses = [h["loss"] for h in m["history"]]
        assert len(losses) == 2 and all(math.isfinite(v) for v in losses), losses
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert any(not torch.equal(p, before[k]) for k, p in model.named_parameters())   # it trained
        return losses, dtypes[:2]   # the two training steps' forwards (evaluation comes after them)

    losses, dtypes = run("bf16")
    assert dtypes == [torch.bfloat16, torch.bfloat16]
    ref, ref_dtypes = run("off")
    assert ref_dtypes == [torch.float32, torch.float32]
    assert losses[0] == pytest.approx(ref[0], rel=0.02)
    with pytest.raises(ValueError, match="fp16 mixed precision needs a CUDA"):
        train(ResNetDigits(), small_digits(), TrainConfig(max_steps=1, amp="fp16"), device="cpu")


# ---------------------------------------------------------------- checkpoints

@pytest.fixture(scope="module")
def stopped_run():
    """A run cancelled after step 5, its resume state, and the same run never interrupted."""
    from zoo.digits import ResNetDigits

    stop_at = 5
    data = small_digits(n_train=96, n_test=50)
    cfg = TrainConfig(epochs=2, batch_size=16, max_steps=9, eval_every=4)
    torch.manual_seed(0)
    init = ResNetDigits().state_dict()
    ref = ResNetDigits()
    ref.load_state_dict(init)
    train(ref, data, cfg, device="cpu")                      # uninterrupted
    m = ResNetDigits()
    m.load_state_dict(init)
    st: dict = {}
    train(m, data, cfg, on_step=lambda i: i.step < stop_at, device="cpu", state_out=st)
    return data, cfg, ref, st


def _copy(st):
    return {k: v for k, v in st.items()}


def test_checkpoint_round_trip_resumes_to_the_same_state(tmp_path, stopped_run):
    from training.checkpoint import load_checkpoint, save_checkpoint
    from zoo.digits import ResNetDigits

    data, cfg, ref, st = stopped_run
    st = _copy(st)
    path = save_checkpoint(str(tmp_path / "ck.safetensors"), st.pop("model"), st, {"note": "test"})
    with open(path, "rb") as f:
        assert b"pickle" not in f.read(4096)
    ck = load_checkpoint(path)
    assert ck.meta == {"note": "test"} and ck.train_state["step"] == 5
    for pid, s in st["optimizer"]["state"].items():
        for k, v in s.items():
            assert torch.equal(torch.as_tensor(ck.train_state["optimizer"]["state"][pid][k]), torch.as_tensor(v))
    assert ck.train_state["scheduler"] == st["scheduler"]
    m = ResNetDigits()
    m.load_state_dict(ck.model_state)
    train(m, data, cfg, device="cpu", resume=ck.train_state)
    for (k, a), b in zip(ref.state_dict().items(), m.state_dict().values()):
        assert torch.equal(a, b), k   # bit-identical to the run that was never interrupted


def test_finetune_checkpoint_resume(tmp_path):
    import threading

    from training.checkpoint import load_checkpoint
    from training.finetuning.finetune_config import config_from_checkpoint

    data = small_digits()
    stop = threading.Event()
    cfg = FinetuneConfig(stage1_epochs=1, stage2_epochs=1, batch_size=64, eval_every=2)
    res = run_finetune(cfg, data, on_step=lambda s, i: stop.set() if i.step == 2 else None, stop=stop, device="cpu")
    path = save_result_checkpoint(res, str(tmp_path / "ft.safetensors"))
    ck = load_checkpoint(path)
    assert config_from_checkpoint(ck) == cfg and ck.meta["stage"] == 1
    done = run_finetune(cfg, data, resume=ck, device="cpu")
    assert [s["stage"] for s in done.stages] == [1, 2] and done.stages[0]["steps"] == 4 and not done.stopped


KILLED_SAVE = textwrap.dedent("""
    import os, signal
    import torch
    from training.checkpoint import save_checkpoint
    state = {{"optimizer": {{"state": {{}}, "param_groups": [{{"lr": 0.1, "params": [0]}}]}},
             "scheduler": {{"last_epoch": 1}}, "step": 1, "epoch": 0, "batch_in_epoch": 1, "total_steps": 9,
             "generator": torch.Generator().get_state(), "torch_rng": torch.get_rng_state(), "perm": None}}
    save_checkpoint({path!r}, {{"w": torch.zeros(1000)}}, state, {{"v": "old"}})
    real_fsync = os.fsync
    def die(fd):  # the new file is written but not yet renamed into place: kill -9 now
        os.kill(os.getpid(), signal.SIGKILL)
    os.fsync = die
    save_checkpoint({path!r}, {{"w": torch.ones(1000)}}, state, {{"v": "new"}})
""")


def test_killed_save_leaves_previous_checkpoint_loadable(tmp_path):
    from training.checkpoint import load_checkpoint

    path = str(tmp_path / "ck.safetensors")
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVE.format(path=path)], capture_output=True,
                          timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert any(n.endswith(".tmp") for n in os.listdir(tmp_path))   # the half-done save was really under way
    ck = load_checkpoint(path)
    assert ck.meta == {"v": "old"} and torch.equal(ck.model_state["w"], torch.zeros(1000))


def _tamper(path, out, fn):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(path, framework="pt") as f:
        md = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    doc = json.loads(md["json"])
    doc, tensors = fn(doc, tensors)
    md["json"] = json.dumps(doc) if not isinstance(doc, str) else doc
    save_file(tensors, out, metadata=md)
    return out


def test_hostile_checkpoints_are_refused(tmp_path, stopped_run):
    from training.checkpoint import CheckpointError, check_fits, load_checkpoint
    from zoo.digits import VGGDigits

    data, cfg, ref, st = stopped_run
    st = _copy(st)
    good = __import__("training.checkpoint", fromlist=["x"]).save_checkpoint(
        str(tmp_path / "good.safetensors"), st.pop("model"), st, {})
    pickled = tmp_path / "evil.pt"
    torch.save({"model": ref.state_dict()}, pickled)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 8 + b"not a header")
    from safetensors.torch import save_file

    plain = str(tmp_path / "plain.safetensors")
    save_file({"w": torch.zeros(2)}, plain)
    cases = {
        str(pickled): "not a safetensors|pickle",
        str(garbage): "not a safetensors",
        plain: "not a PyTorch Playground checkpoint",
        _tamper(good, str(tmp_path / "t1.safetensors"),
                lambda d, t: ({**d, "scheduler": {**d["scheduler"], "__class__": "os.system"}}, t)):
            "unknown scheduler",
        _tamper(good, str(tmp_path / "t2.safetensors"),
                lambda d, t: ('{"meta": {}, "optimizer": NaN}', t)): "not valid JSON",
        _tamper(good, str(tmp_path / "t3.safetensors"),
                lambda d, t: (d, {**t, "extra/payload": torch.zeros(1)})): "unexpected tensor",
        _tamper(good, str(tmp_path / "t4.safetensors"),
                lambda d, t: ({**d, "position": {**d["position"], "step": 10**9}}, t)): "position",
        _tamper(good, str(tmp_path / "t5.safetensors"),
                lambda d, t: (d, {**t, "model/fc.weight": torch.full_like(t["model/fc.weight"], float("nan"))})):
            "NaN",
        _tamper(good, str(tmp_path / "t6.safetensors"),
                lambda d, t: (d, {**t, "run/perm": torch.zeros(96, dtype=torch.int64)})): "not a permutation",
    }
    for path, msg in cases.items():
        with pytest.raises(CheckpointError, match=msg):
            load_checkpoint(path)
    with pytest.raises(CheckpointError, match="do not fit"):
        check_fits(load_checkpoint(good), VGGDigits())


def test_hostile_zip_is_refused(tmp_path):
    from training.finetuning.finetune import load_target
    from training.data.zipdata import ZipRejected

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("a/1.png", b"x")
        z.writestr("../../etc/evil.png", b"x")
    with pytest.raises(ZipRejected, match="outside"):
        load_target(FinetuneConfig(target="zip"), str(evil))


def test_zip_target_fine_tunes(tmp_path):
    import numpy as np
    from PIL import Image

    d = digits()
    path = tmp_path / "folder.zip"
    with zipfile.ZipFile(path, "w") as z:
        for i in range(60):
            label = int(d.train_y[i])
            if label > 2:
                continue
            img = Image.fromarray((d.train_x[i, 0].numpy() * 255).astype(np.uint8))
            import io

            buf = io.BytesIO()
            img.save(buf, format="PNG")
            z.writestr(f"digits/{['zero', 'one', 'two'][label]}/{i}.png", buf.getvalue())
    from training.finetuning.finetune import load_target

    cfg = FinetuneConfig(target="zip", max_steps=2, batch_size=8)
    data = load_target(cfg, str(path))
    assert data.classes == ("one", "two", "zero") and data.train_x.shape[1:] == (1, 28, 28)
    res = run_finetune(cfg, data, device="cpu")
    assert len(res.per_class) == 3 and len(res.confusion) == 3


def test_mixup_mixes_images_and_targets_alike():
    from training.data.augment import mixup

    x = torch.arange(8.0).reshape(8, 1, 1, 1).expand(8, 1, 4, 4).clone()    # image i is all i
    y = torch.arange(8)
    torch.manual_seed(3)
    xm, ym = mixup(x, y, 1.0, 10, torch.Generator().manual_seed(3))
    assert ym.shape == (8, 10) and torch.allclose(ym.sum(1), torch.ones(8))
    # each mixed image's value is the mean label under its target: images and targets got the same lam and pair
    assert torch.allclose(xm.mean((1, 2, 3)), ym @ torch.arange(10.0), atol=1e-5)
    assert not torch.equal(xm, x)
    xm2, ym2 = mixup(xm, ym, 0.4, 10)                    # probability targets mix again, still sum to 1
    assert torch.allclose(ym2.sum(1), torch.ones(8))
    assert torch.allclose(xm2.mean((1, 2, 3)), ym2 @ torch.arange(10.0), atol=1e-5)
    with pytest.raises(ValueError):
        mixup(x, y, 0.0, 10)


def test_training_with_mixup_resumes_exactly():
    from zoo.digits import ResNetDigits

    data = small_digits(n_train=96, n_test=50)
    cfg = TrainConfig(epochs=2, batch_size=16, max_steps=8, mixup=1.0)
    torch.manual_seed(0)
    init = ResNetDigits().state_dict()
    ref, m = ResNetDigits(), ResNetDigits()
    ref.load_state_dict(init)
    m.load_state_dict(init)
    train(ref, data, cfg, device="cpu")
    st: dict = {}
    train(m, data, cfg, on_step=lambda i: i.step < 3, device="cpu", state_out=st)
    m.load_state_dict(st.pop("model"))
    train(m, data, cfg, device="cpu", resume=st)
    for (k, a), b in zip(ref.state_dict().items(), m.state_dict().values()):
        assert torch.equal(a, b), k
    plain = ResNetDigits()
    plain.load_state_dict(init)
    train(plain, data, TrainConfig(epochs=2, batch_size=16, max_steps=8), device="cpu")
    assert not torch.equal(plain.state_dict()["fc.weight"], ref.state_dict()["fc.weight"])   # mixup changed the run
