"""The real huggingface_hub code against a local Hub: download, cache hit, offline, bad repo, corrupt file, publish."""
import dataclasses

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import save

from zoo import get_model, get_spec
from zoo.hub import WeightsError, WeightsUnavailable, load_safetensors, load_weights, publish, read_manifest


def _spec_on(repo_id: str, name: str = "resnet_digits"):
    spec = get_spec(name)
    return dataclasses.replace(spec, weights=dataclasses.replace(spec.weights, repo_id=repo_id, local_file=None))


def _digits_bytes(name="resnet_digits"):
    model = get_model(name)
    return model, save({k: v.contiguous() for k, v in model.state_dict().items()})


def test_download_then_cache_hit_then_offline(fake_hub, monkeypatch):
    model, blob = _digits_bytes()
    fake_hub.add_file("team/digits", "resnet_digits.safetensors", blob)
    spec = _spec_on("team/digits")
    fresh = get_model("resnet_digits", weights=None)
    load_weights(fresh, spec)
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    n = len(fake_hub.requests)
    load_weights(get_model("resnet_digits", weights=None), spec)  # cache hit: no network at all
    assert len(fake_hub.requests) == n
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    load_weights(get_model("resnet_digits", weights=None), spec)  # offline: served from the cache
    assert len(fake_hub.requests) == n


def test_offline_without_cache_fails_fast(fake_hub, monkeypatch):
    fake_hub.add_file("team/digits", "resnet_digits.safetensors", _digits_bytes()[1])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsUnavailable, match="offline"):
        load_weights(get_model("resnet_digits", weights=None), _spec_on("team/digits"))
    assert fake_hub.requests == [] or all("resolve" not in p for _, p in fake_hub.requests)


def test_bad_repo_and_missing_file(fake_hub):
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        load_weights(get_model("resnet_digits", weights=None), _spec_on("team/nothing-here"))
    fake_hub.add_file("team/empty", "README.md", b"hi")
    with pytest.raises(WeightsUnavailable, match="not in Hub repo"):
        load_weights(get_model("resnet_digits", weights=None), _spec_on("team/empty"))


def test_corrupt_or_pickled_file_is_refused(fake_hub):
    _, blob = _digits_bytes()
    fake_hub.add_file("team/bad", "resnet_digits.safetensors", blob)
    fake_hub.corrupt.add(("team/bad", "resnet_digits.safetensors"))
    with pytest.raises((WeightsError, WeightsUnavailable)):
        load_weights(get_model("resnet_digits", weights=None), _spec_on("team/bad"))
    # A pickle under a .safetensors name is not loaded (and never unpickled).
    import io
    import pickle

    buf = io.BytesIO()
    pickle.dump({"fc.weight": torch.zeros(1)}, buf)
    fake_hub.add_file("team/pickle", "resnet_digits.safetensors", buf.getvalue())
    with pytest.raises(WeightsError, match="not a valid safetensors"):
        load_weights(get_model("resnet_digits", weights=None), _spec_on("team/pickle"))


def test_wrong_architecture_file_is_refused(fake_hub):
    _, blob = _digits_bytes("vgg_digits")
    fake_hub.add_file("team/mixup", "resnet_digits.safetensors", blob)
    with pytest.raises(WeightsError, match="do not fit"):
        load_weights(get_model("resnet_digits", weights=None), _spec_on("team/mixup"))


def test_publish_round_trip(fake_hub, tmp_path):
    from zoo.publish import main as publish_main

    assert publish_main(["--repo", "me/playground-digits", "--token", "hf_test", "--models", "resnet_digits"]) == 0
    files = fake_hub.repos["me/playground-digits"]
    assert {"resnet_digits.safetensors", "manifest.json", "README.md"} <= set(files)
    load_weights(get_model("resnet_digits", weights=None), _spec_on("me/playground-digits"))
    card = ModelCard(files["README.md"].decode())            # parsed and checked as huggingface_hub does
    assert card.data.library_name is None                    # no Hub library loads a plain state dict ("pytorch" is
    assert "library_name" not in card.content                # not a Hub library key)
    assert card.data.license == "mit" and card.data.pipeline_tag == "image-classification"
    assert {"pytorch", "safetensors", "mnist"} <= set(card.data.tags) and card.data.datasets == ["ylecun/mnist"]
    assert card.data.metrics == ["accuracy"] and card.data.model_name == "playground-digits"
    (result,) = card.data.eval_results
    acc = read_manifest()["resnet_digits"]["accuracy"]["mnist5k-test"]
    assert (result.task_type, result.dataset_type, result.dataset_split) == ("image-classification", "ylecun/mnist",
                                                                             "test")
    assert (result.metric_type, result.metric_value) == ("accuracy", acc) and "resnet_digits" in result.metric_name
    assert f"| resnet_digits | {get_spec('resnet_digits').weights.num_params:,} | {acc}% |" in card.text
    with pytest.raises(ValueError, match="only safetensors"):
        publish({"model.pt": str(tmp_path / "x")}, "me/x", token="hf_test")


def test_load_safetensors_rejects_garbage(tmp_path):
    p = tmp_path / "x.safetensors"
    p.write_bytes(b"\x00" * 10)
    with pytest.raises(WeightsError):
        load_safetensors(str(p))
