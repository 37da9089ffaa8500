"""Ensembles & compression: combiners on hand-made logits, stacking's held-out data, safetensors round trips,
pruning sparsity, the app through gradio_client and the tab in a browser."""
from __future__ import annotations

import math
import re

import pytest
import torch

from training.ensembles.combiners import (accuracy_weights, average, fit_stacker, majority_vote, samme_alpha,
                                          samme_combine, stack_predict, weighted_average)
from training.compression.compressed_io import layer_shapes, load_compressed, save_compressed
from training.compression.distill import distill_loss
from training.ensembles.ensemble import EnsembleConfig, split_holdout
from training.compression.measure import predict_logits, prepare_input
from training.compression.prune import channel_prune, magnitude_prune, weight_sparsity
from training.compression.quantize import quantize_dynamic_linear, quantize_static_fx
from zoo import get_model

# Three members, two inputs, three classes (padded to 10 by the combiners that need it).
P = torch.tensor([
    [[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]],
    [[0.1, 0.8, 0.1], [0.2, 0.5, 0.3]],
    [[0.5, 0.4, 0.1], [0.3, 0.3, 0.4]],
])


def test_average_and_vote_on_hand_made_probs():
    assert torch.allclose(average(P), torch.tensor([[0.4, 0.5, 0.1], [0.2, 1 / 3, 1.4 / 3]]))
    assert average(P).argmax(1).tolist() == [1, 2]      # averaging: the confident member 1 wins input 0
    assert majority_vote(P).tolist() == [0, 2]          # voting: members 0 and 2 outvote it


def test_vote_tie_goes_to_highest_mean_probability():
    p = torch.tensor([[[0.9, 0.1, 0.0]], [[0.45, 0.55, 0.0]]])   # one vote each for 0 and 1
    assert majority_vote(p).tolist() == [0]


def test_weighted_average_and_weights():
    w = torch.tensor([0.0, 1.0, 0.0])
    assert torch.allclose(weighted_average(P, w), P[1])
    y = torch.tensor([0, 2])
    aw = accuracy_weights(P, y)                         # members 0 and 2 right twice, member 1 never
    assert aw[0] == aw[2] > 0 and aw[1] == 0
    aw = accuracy_weights(P, torch.tensor([1, 1]))      # now only member 1 is right (twice)
    assert aw[1] > 0 and aw[0] == aw[2] == 0
    with pytest.raises(ValueError):
        weighted_average(P, torch.zeros(3))


def test_samme_alpha_and_combine():
    assert samme_alpha(0.9) == pytest.approx(0.0, abs=1e-9)   # chance level for 10 classes: no say
    assert samme_alpha(0.1) == pytest.approx(math.log(9) + math.log(9))
    s = samme_combine(P, torch.tensor([1.0, 3.0, 1.0]))
    assert s.argmax(1).tolist() == [1, 1] and torch.allclose(s.sum(1), torch.ones(2))


def test_stacking_fits_only_on_held_out_train_images():
    from training.data.datasets import mnist5k

    data = mnist5k()
    fit, hx, hy = split_holdout(data, 300)
    assert len(fit.train_x) == 3700 and len(hx) == 300
    assert torch.equal(hx, data.train_x[-300:])                    # the tail of the TRAIN split
    test_rows = {tuple(r) for r in data.test_x.flatten(1)[:, ::7].tolist()[:200]}
    assert not any(tuple(r) in test_rows for r in hx.flatten(1)[:, ::7].tolist())
    g = torch.Generator().manual_seed(0)
    hold = torch.softmax(torch.randn(2, 300, 10, generator=g) + 4 * torch.nn.functional.one_hot(hy, 10), -1)
    meta = fit_stacker(hold, hy)
    assert meta.n_fit_ == 300
    out = stack_predict(meta, hold)
    assert out.shape == (300, 10) and (out.argmax(1) == hy).float().mean() > 0.9


def test_run_ensemble_tiny():
    from training.ensembles.ensemble import run_ensemble
    from training.ensembles.ensemble_results import table

    res = run_ensemble(EnsembleConfig(zoo_members=("resnet_digits",), n_bagged=1, n_boosted=1, steps=3,
                                      batch_size=32, holdout=200))
    assert res.test_probs.shape[1:] == (1000, 10) and res.holdout_probs.shape[1:] == (200, 10)
    assert res.stacker.n_fit_ == 200
    rows = table(res)
    names = [r[0] for r in rows]
    assert "stacking (LogisticRegression on held-out)" in names and "boosting (SAMME vote of boosted)" in names
    acc = dict(zip(res.names, res.member_acc()))
    own = res.combo_best_member()
    assert own["average (zoo members)"] == acc["resnet_digits"]
    assert own["bagging (average of bagged)"] == acc[res.names[1]]              # the one bagged member
    assert own["average (all members)"] == max(acc.values())
    gap = rows[names.index("bagging (average of bagged)")][4]
    assert gap == round(res.combo_acc()["bagging (average of bagged)"] - acc[res.names[1]], 2)


def test_members_take_the_listed_architectures_in_turn():
    from training.ensembles.ensemble import run_ensemble

    cfg = EnsembleConfig(zoo_members=("vgg_digits",), n_bagged=3, n_boosted=0, member_arch="small_cnn, resnet_digits",
                         steps=2, batch_size=32, holdout=100)
    assert [cfg.arch_of(k) for k in range(3)] == ["small_cnn", "resnet_digits", "small_cnn"]
    res = run_ensemble(cfg)
    assert [type(m).__name__ for m in res.models[1:]] == ["StudentCNN", "ResNetDigits", "StudentCNN"]
    assert "resnet_digits" in res.names[2]
    with pytest.raises(ValueError, match="architecture must be small_cnn or digits models"):
        run_ensemble(EnsembleConfig(n_bagged=1, n_boosted=0, member_arch="small_cnn,nope", steps=1))
    with pytest.raises(ValueError, match="architecture must be small_cnn or digits models"):
        EnsembleConfig(member_arch=" , ").archs()


@pytest.fixture(scope="module")
def vgg():
    return get_model("vgg_digits")


@pytest.fixture(scope="module")
def calib():
    from training.data.datasets import mnist5k

    return prepare_input(mnist5k().train_x[:64])


@pytest.mark.parametrize("technique", ["int8-static-fx", "int8-dynamic-linear", "magnitude-pruned",
                                       "channel-pruned", "channel-pruned+int8-static-fx"])
def test_compressed_models_load_back_from_safetensors(tmp_path, vgg, calib, technique):
    from training.data.datasets import mnist5k

    shapes = None
    if technique == "int8-static-fx":
        m = quantize_static_fx(vgg, calib)
    elif technique == "int8-dynamic-linear":
        m = quantize_dynamic_linear(vgg)
    elif technique == "magnitude-pruned":
        m = magnitude_prune(vgg, 0.6)
    else:
        m = channel_prune(vgg, 0.5)
        shapes = layer_shapes(m)
        if technique.endswith("int8-static-fx"):
            m = quantize_static_fx(m, calib)
    path = save_compressed(m, str(tmp_path / "m.safetensors"), "vgg_digits", technique, shapes)
    from safetensors.torch import load_file

    stored = load_file(path)
    if "int8" in technique:
        assert any(v.dtype == torch.int8 for v in stored.values())     # int8 tensors + scales, not floats
        assert any(k.endswith(".__scale") for k in stored)
    m2, info = load_compressed(path)
    assert info["technique"] == technique
    x = mnist5k().test_x[:64]
    assert torch.equal(predict_logits(m, x), predict_logits(m2, x))


def test_resnet_int8_round_trip(tmp_path, calib):
    from training.data.datasets import mnist5k

    m = quantize_static_fx(get_model("resnet_digits"), calib)
    m2, _ = load_compressed(save_compressed(m, str(tmp_path / "r.safetensors"), "resnet_digits", "int8-static-fx"))
    x = mnist5k().test_x[:32]
    assert torch.equal(predict_logits(m, x), predict_logits(m2, x))


def test_load_compressed_refuses_other_files(tmp_path):
    from zoo.hub import WeightsError

    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(WeightsError):
        load_compressed(str(bad))
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(WeightsError):
        load_compressed(str(tmp_path / "plain.safetensors"))


@pytest.mark.parametrize("shapes", [{"features.0": [1 << 16, 1 << 16, 3, 3]},      # a 300 GB conv: refused unbuilt
                                    {"features.0": [-4, 1, 3, 3]}, {"no.such.layer": [4, 1, 3, 3]},
                                    {"features.0": "16x1x3x3"}])
def test_load_compressed_refuses_hostile_shapes(tmp_path, shapes):
    import json

    from safetensors.torch import save_file

    from training.compression.compressed_io import FORMAT
    from zoo.hub import WeightsError

    info = {"format": FORMAT, "base": "vgg_digits", "technique": "channel-pruned", "path": "", "shapes": shapes}
    save_file({"a": torch.zeros(1)}, str(tmp_path / "h.safetensors"), metadata={"playground": json.dumps(info)})
    with pytest.raises(WeightsError, match="header"):
        load_compressed(str(tmp_path / "h.safetensors"))


def test_load_compressed_refuses_tensors_that_do_not_fit(tmp_path):
    import json

    from safetensors.torch import save_file

    from training.compression.compressed_io import FORMAT
    from zoo.digits import StudentCNN
    from zoo.hub import WeightsError

    good = StudentCNN().state_dict()
    info = {"format": FORMAT, "base": "student", "technique": "student", "path": "", "shapes": {}}
    bad = {k: v.clone() for k, v in good.items()}
    bad["classifier.1.weight"] = torch.zeros(3, 3)                          # wrong shape
    save_file(bad, str(tmp_path / "a.safetensors"), metadata={"playground": json.dumps(info)})
    meta = {"playground": json.dumps(info), "q:classifier.1.weight": "per_tensor"}   # "quantized", no scale
    save_file(dict(good), str(tmp_path / "b.safetensors"), metadata=meta)
    for name in ("a", "b"):
        with pytest.raises(WeightsError, match="do not fit"):
            load_compressed(str(tmp_path / f"{name}.safetensors"))


def test_student_of_any_width_loads_back(tmp_path):
    from zoo.digits import StudentCNN

    m = StudentCNN(widths=(8, 16, 32)).eval()
    m2, _ = load_compressed(save_compressed(m, str(tmp_path / "s.safetensors"), "student", "student",
                                            layer_shapes(m)))
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(m(x), m2(x))


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.75])
def test_magnitude_pruning_sparsity_is_what_was_asked(vgg, sparsity):
    pruned = magnitude_prune(vgg, sparsity)
    assert weight_sparsity(pruned) == pytest.approx(sparsity, abs=1e-4)
    assert weight_sparsity(vgg) < 1e-4                     # the original is untouched


def test_channel_pruning_really_shrinks_and_keeps_function_at_ratio_one(vgg):
    from training.data.datasets import mnist5k

    x = mnist5k().test_x[:16]
    same = channel_prune(vgg, 1.0)
    assert torch.allclose(predict_logits(same, x), predict_logits(vgg, x), atol=1e-5)
    half = channel_prune(vgg, 0.5)
    convs = [m for m in half.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 64]
    assert sum(p.numel() for p in half.parameters()) < 0.45 * sum(p.numel() for p in vgg.parameters())
    r = channel_prune(get_model("resnet_digits"), 0.5)
    assert r.layer3[0].conv1.out_channels == 64 and predict_logits(r, x).shape == (16, 10)


def test_distill_loss_reduces_to_ce_and_matches_teacher():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    y = torch.tensor([0])
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert torch.allclose(distill_loss(logits, logits * 5, y, 4.0, 0.0), ce)
    assert distill_loss(logits, logits, y, 4.0, 1.0).abs() < 1e-6   # KL to itself


def test_averaged_teacher_gives_the_mean_probabilities_as_logits():
    from training.compression.distill import AveragedTeacher
    from zoo.digits import StudentCNN

    torch.manual_seed(0)
    a, b = StudentCNN().eval(), StudentCNN().eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        out = AveragedTeacher([a, b])(x)
        assert torch.allclose(out.softmax(1), (a(x).softmax(1) + b(x).softmax(1)) / 2, atol=1e-6)
        assert torch.allclose(AveragedTeacher([a])(x), a(x).log_softmax(1), atol=1e-5)
    with pytest.raises(ValueError):
        AveragedTeacher([])


def test_teacher_model_names_a_zoo_model_or_the_zoo_average():
    from training.compression.distill import (ZOO_AVERAGE, ZOO_AVERAGE_MEMBERS, AveragedTeacher, teacher_model,
                                              teacher_names)

    assert ZOO_AVERAGE in teacher_names() and "resnet_digits" in teacher_names()
    avg = teacher_model(ZOO_AVERAGE)
    assert isinstance(avg, AveragedTeacher) and len(avg.members) == len(ZOO_AVERAGE_MEMBERS) and not avg.training
    with pytest.raises(ValueError, match="teacher must be"):
        teacher_model("resnet18")                     # an ImageNet model is no digits teacher


def test_train_student_distills_through_the_trainers_loss_hook():
    import copy

    from training.data.datasets import Split, mnist5k
    from training.compression.distill import train_student
    from training.trainer import TrainConfig, train
    from zoo.digits import StudentCNN

    d = mnist5k()
    data = Split(d.train_x[:128], d.train_y[:128], d.test_x[:64], d.test_y[:64], d.classes)
    teacher = get_model("resnet_digits")
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    cfg = TrainConfig(epochs=1, batch_size=32, max_steps=3)
    torch.manual_seed(0)
    a = StudentCNN()
    b, c = copy.deepcopy(a), copy.deepcopy(a)
    assert train_student(a, data, cfg, teacher, 4.0, 0.9)["steps"] == 3
    train_student(b, data, cfg, None)
    train_student(c, data, cfg, teacher, 4.0, 0.0)                 # alpha 0: the student alone, same loop
    sb, sc, sa = b.state_dict(), c.state_dict(), a.state_dict()
    assert all(torch.equal(sb[k], sc[k]) for k in sb)
    assert not all(torch.equal(sb[k], sa[k]) for k in sb)          # the teacher's soft targets changed the run
    assert not teacher.training and all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())

    seen = []

    def loss_fn(logits, labels, inputs):
        seen.append((logits.shape, labels.shape, float(inputs.std())))
        return torch.nn.functional.cross_entropy(logits, labels)

    train(StudentCNN(), data, TrainConfig(epochs=1, batch_size=32, max_steps=2, augment=False), loss_fn=loss_fn)
    assert [s[:2] for s in seen] == [((32, 10), (32,))] * 2
    assert all(sd > 0.7 for _, _, sd in seen)        # the normalised batch (std ~1), not raw [0, 1] pixels (std ~0.3)


@pytest.mark.slow
def test_client_compress_and_ensemble(client):
    table, plot, files, notes, code, status = client.predict(distill_steps=0, finetune_steps=0, repeats=3,
                                                             api_name="/compress")
    assert "done" in status
    rows = table["data"]
    names = [r[0] for r in rows]
    assert names[0] == "baseline fp32" and "int8 static (FX)" in names
    int8 = rows[names.index("int8 static (FX)")]
    assert int8[4] > 3.5                       # smaller_x
    assert len(files) >= 5 and "prepare_fx" in code and "quantize_fx" in notes
    table, _, _, notes, code, _ = client.predict(distill_steps=3, finetune_steps=0, repeats=3, teacher="zoo_average",
                                              mixup=1.0, alone_mixup=0.4, api_name="/compress")
    names = [r[0] for r in table["data"]]
    assert "teacher zoo_average" in names and "same student alone (mixup 0.4)" in names
    assert any(n.startswith("student distilled") and "mixup 1" in n for n in names)
    assert "averaged teacher's members" in notes and "teacher = AveragedTeacher([t0, t1, t2])" in code
    for bad in ({"teacher": "nope"}, {"student_widths": "8,16"}, {"mixup": -1}):
        try:    # a problem comes back as the status (near the button), or Gradio refuses the value itself
            status = client.predict(distill_steps=0, finetune_steps=0, repeats=3, api_name="/compress", **bad)[-1]
        except Exception as exc:  # noqa: BLE001
            status = str(exc)
        assert re.search("(?i)teacher must be|student size must be|not in the list of choices|mixup must be|"
                         "less than minimum", status), status
    with pytest.raises(Exception, match="not built yet"):      # votes need a built ensemble (building is a job)
        client.predict(test_index=3, members=["resnet_digits"], n_bagged=1, n_boosted=0, steps=3,
                       api_name="/ensemble_votes")
    table, summary, gallery, code, status = client.predict(members=["resnet_digits", "vgg_digits"], n_bagged=1,
                                                           n_boosted=0, steps=3, api_name="/ensemble")
    kinds = [r[1] for r in table["data"]]
    assert kinds.count("zoo") == 2 and "ensemble" in kinds and "held-out" in summary
    votes, note, img = client.predict(test_index=3, members=["resnet_digits", "vgg_digits"], n_bagged=1,
                                      n_boosted=0, steps=3, api_name="/ensemble_votes")
    assert len(votes["data"]) >= 3 and "test digit #3" in note


@pytest.mark.slow
def test_browser_ensembles_and_compression(page):
    """Both labs are jobs: a stage-by-stage status while they run, Cancel, then the results."""
    from tests.conftest import ARTIFACTS, open_tab

    open_tab(page, "Ensembles & compression")
    page.get_by_role("tab", name="Ensembles", exact=True).click()
    page.locator("#ensemble-btn").click()
    page.wait_for_function("document.querySelector('#ens-status').innerText.includes('member')", timeout=120_000)
    page.locator("#ensemble-table").get_by_text("average (all members)").wait_for(timeout=240_000)
    page.locator("#votes-btn").click()
    page.locator("#votes-table").get_by_text("majority vote (all members)").wait_for(timeout=60_000)
    page.get_by_role("tab", name="Compression", exact=True).click()
    page.locator("#compress-btn").click()
    page.wait_for_function("document.querySelector('#compress-status').innerText.includes('compressing:')",
                           timeout=120_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compression_running.png"), full_page=True)
    page.locator("#compress-cancel").click()
    page.wait_for_function("document.querySelector('#compress-status').innerText.includes('Cancelled')",
                           timeout=180_000)
    page.locator("#compress-btn").click()
    page.locator("#compress-table").get_by_text("int8 static (FX)").wait_for(timeout=240_000)
    assert page.locator("#compress-files").get_by_text("safetensors").first.is_visible()
    assert "done" in page.locator("#compress-status").inner_text()


def test_member_architecture_choices_list_each_architecture_once():
    from ui.ensembles import _digits_archs

    assert _digits_archs() == ["resnet_digits", "vgg_digits", "alexnet_digits"]   # not resnet_digits_hard again


def test_cross_validation_folds_and_bootstrap_interval_of_the_distillation_bench():
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "bench_distill_cv.py")
    spec = importlib.util.spec_from_file_location("bench_distill_cv", path)
    cv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cv)
    train_y = torch.arange(10).repeat_interleave(8)[torch.randperm(80, generator=torch.Generator().manual_seed(0))]
    folds = cv.fold_indices(train_y, n_train=80, n_test=20, n_folds=5)
    assert folds[0].tolist() == list(range(80, 100))                     # fold 0 is the test split
    every = torch.cat(folds)
    assert sorted(every.tolist()) == list(range(100))                    # each image scored exactly once
    for f in folds[1:]:
        assert torch.bincount(train_y[f], minlength=10).tolist() == [2] * 10   # stratified
    a, b = torch.tensor([1.0, 1, 1, 0] * 250), torch.tensor([1.0, 1, 0, 0] * 250)
    r = cv.paired_bootstrap(a, b)
    assert r["diff_points"] == 25.0 and r["ci95"][0] < 25.0 < r["ci95"][1] and r["ci95"][0] > 0
    assert (r["images_distilled_better"], r["images_alone_better"]) == (250, 0)
    same = cv.paired_bootstrap(a, a)
    assert same["diff_points"] == 0 and same["ci95"] == [0.0, 0.0]
    mixed = cv.paired_bootstrap(torch.tensor([1.0, 0] * 500), torch.tensor([0.0, 1] * 500))
    assert mixed["ci95"][0] < 0 < mixed["ci95"][1]                       # no difference: the interval spans 0
