"""Zoo: every registered model builds, runs, loads strictly; the digits weights meet their accuracy bar."""
import pytest
import torch

from zoo import get_model, get_spec, list_models
from zoo.hub import WeightsError, WeightsUnavailable, load_state_strict, load_weights


CLASSIFIERS = list_models("digits") + list_models("imagenet")


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_builds_and_runs(name):
    spec = get_spec(name)
    model = get_model(name, weights=None).eval()
    c, h, w = spec.weights.input_size
    with torch.inference_mode():
        out = model(torch.randn(2, c, h, w))
    assert out.shape == (2, len(spec.weights.categories) or 1000)
    assert torch.isfinite(out).all()
    assert sum(p.numel() for p in model.parameters()) == spec.weights.num_params


@pytest.mark.parametrize("name", list_models("digits"))
def test_digits_weights_load_strictly_and_are_accurate(name):
    from training.data.datasets import mnist5k
    from training.trainer import evaluate

    model = get_model(name)  # strict load of the shipped safetensors
    s = mnist5k()
    acc = evaluate(model, s.test_x, s.test_y)
    assert acc >= 98.8, f"{name}: {acc:.2f}% on the mnist5k test split"
    # The manifest records what the training command measured.
    assert abs(get_spec(name).weights.accuracy["mnist5k-test"] - acc) < 0.01


def test_strict_load_refuses_wrong_keys_and_shapes():
    model = get_model("resnet_digits", weights=None)
    state = model.state_dict()
    with pytest.raises(WeightsError, match="missing"):
        load_state_strict(model, {k: v for k, v in state.items() if not k.startswith("fc.")})
    with pytest.raises(WeightsError, match="unexpected"):
        load_state_strict(model, {**state, "extra.weight": torch.zeros(1)})
    with pytest.raises(WeightsError, match="shape"):
        load_state_strict(model, {**state, "fc.weight": torch.zeros(3, 3)})


def test_registry_refuses_duplicates():
    from zoo.registry import register_model

    with pytest.raises(ValueError, match="already registered"):
        register_model(get_spec("resnet_digits"))


def test_imagenet_facts_match_torchvision_metadata():
    import torchvision.models as tvm

    for name in list_models("imagenet"):
        spec = get_spec(name)
        meta = tvm.get_model_weights(name).IMAGENET1K_V1.meta
        assert spec.weights.num_params == meta["num_params"]
        assert spec.weights.accuracy["imagenet-1k top-1 (torchvision)"] == meta["_metrics"]["ImageNet-1K"]["acc@1"]


def test_timm_vgg_keys_map_back_to_torchvision():
    from zoo.catalog import timm_vgg_to_torchvision

    model = get_model("vgg16", weights=None)
    tv = model.state_dict()
    # timm's layout of the same tensors (see timm/models/vgg.py _filter_fn)
    timm_state = {}
    for k, v in tv.items():
        if k.startswith("classifier.0."):
            v = v.reshape(-1, 512, 7, 7) if k.endswith("weight") else v
            k = k.replace("classifier.0.", "pre_logits.fc1.")
        elif k.startswith("classifier.3."):
            v = v.reshape(-1, 4096, 1, 1) if k.endswith("weight") else v
            k = k.replace("classifier.3.", "pre_logits.fc2.")
        elif k.startswith("classifier.6."):
            k = k.replace("classifier.6.", "head.fc.")
        timm_state[k] = v
    mapped = timm_vgg_to_torchvision(timm_state)
    load_state_strict(model, mapped)
    assert all(torch.equal(mapped[k], tv[k]) for k in tv)


def test_imagenet_offline_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(WeightsUnavailable, match="offline"):
        load_weights(get_model("resnet18", weights=None), get_spec("resnet18"))


def test_cached_models_stay_usable_for_autograd():
    """Classify loads models lazily inside inference code; they must still work for Grad-CAM afterwards."""
    import numpy as np

    from zoo.classify import _models, load_model, predict

    _models.pop("alexnet_digits", None)
    predict("alexnet_digits", np.full((28, 28), 0, np.uint8) + np.eye(28, dtype=np.uint8) * 255)
    model = load_model("alexnet_digits")
    x = torch.zeros(1, 1, 28, 28, requires_grad=True)
    model(x).sum().backward()
    assert x.grad is not None


def test_predict_logits_batches_like_one_forward_and_restores_mode():
    from zoo.inference import predict_classes, predict_logits

    model = get_model("resnet_digits").train()
    x = torch.rand(7, 1, 28, 28)
    out = predict_logits(model, x, 0.1307, 0.3081, batch_size=3)
    assert model.training
    with torch.no_grad():
        ref = model.eval()((x - 0.1307) / 0.3081)
    torch.testing.assert_close(out, ref)
    assert torch.equal(predict_classes(model, x, 0.1307, 0.3081, batch_size=3), out.argmax(1))
    assert predict_logits(model, x[:0]).numel() == 0
