"""Issue #17, the first five minutes, below the browser: photo routing, plain messages, "needs download" marks,
the status-line error boundary, and uploads of MNIST digits through the API."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


def _astronaut_png(tmp_path):
    import skimage.data

    p = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(p)
    return str(p)


def _mnist_png(tmp_path, i=0):
    from training.data.datasets import mnist5k

    s = mnist5k()
    arr = (s.test_x[i, 0].numpy() * 255).round().astype(np.uint8)
    p = tmp_path / f"mnist{i}.png"
    Image.fromarray(arr).save(p)
    return str(p), arr, str(int(s.test_y[i]))


# ---- photos and ImageNet models -------------------------------------------------------------------------------

def test_a_photo_gets_no_digit_answer_and_a_plain_message(client, tmp_path):
    from gradio_client import handle_file

    with pytest.raises(Exception) as err:
        client.predict(handle_file(_astronaut_png(tmp_path)), api_name="/classify")
    msg = str(err.value)
    assert "looks like a photo" in msg and "ImageNet" in msg and "Draw a digit" in msg
    assert "HF_HUB_OFFLINE" not in msg and "cache" not in msg


def test_a_photo_goes_to_the_imagenet_model_when_its_weights_are_here(monkeypatch):
    """With ResNet-18 loadable (a random-init stand-in here: the Hub is unreachable), a photo given to a digits
    model is answered by ResNet-18 with ImageNet categories, and the summary says why."""
    import torchvision

    import zoo.classify as zc
    from ui.classify import _classify

    stand_in = torchvision.models.resnet18(weights=None).eval()
    real = zc.load_model
    monkeypatch.setattr(zc, "load_model", lambda name: stand_in if name == zc.PHOTO_MODEL else real(name))
    import skimage.data

    photo = skimage.data.coffee()
    assert zc.route("resnet_digits", photo)[0] == "resnet18"
    probs, seen, table, code, summary = _classify(photo, "resnet_digits", 5)
    assert len(probs) == 5 and not set(probs) & {str(d) for d in range(10)}   # ImageNet names, not digits
    assert seen.shape == (224, 224, 3) and "looks like a photo" in summary and "`resnet18` says" in summary
    assert "torchvision.models.get_model(\"resnet18\"" in code
    from training.data.datasets import mnist5k

    digit = 255 - np.kron((mnist5k().test_x[4, 0].numpy() * 255).astype(np.uint8), np.ones((9, 9), np.uint8))
    assert zc.route("resnet_digits", digit) == ("resnet_digits", "")  # a digit picture stays with the digits model


def test_imagenet_models_are_marked_and_explained_in_plain_words(client, tmp_path):
    from gradio_client import handle_file

    from ui.classify import model_choices
    from zoo import get_spec
    from zoo.classify import model_unavailable

    labels = dict((n, lab) for lab, n in model_choices())
    for name, lab in labels.items():
        needs = get_spec(name).family == "imagenet"   # offline here: none of them is cached
        assert ("(needs download)" in lab) == needs, lab
    msg = str(model_unavailable("resnet18"))
    assert "Hugging Face Hub" in msg and "MB" in msg and "HF_HUB_OFFLINE" not in msg
    path, _, _ = _mnist_png(tmp_path)
    with pytest.raises(Exception, match="cannot be reached from this server"):
        client.predict(handle_file(path), "resnet18", api_name="/classify")


def test_weights_on_disk_sees_the_hub_cache(fake_hub, monkeypatch):
    """'needs download' goes away once the file is in the Hugging Face cache (fake Hub: a real download)."""
    from types import SimpleNamespace

    import zoo.classify as zc
    from zoo.hub import download

    fake_hub.add_file("org/tiny", "model.safetensors", b"only its presence matters here")
    tiny = SimpleNamespace(weights=SimpleNamespace(local_file=None, repo_id="org/tiny", filename="model.safetensors",
                                                   revision="main"))
    real = zc.get_spec
    monkeypatch.setattr(zc, "get_spec", lambda name: tiny if name == "tiny" else real(name))
    assert not zc.weights_on_disk("tiny")
    download("org/tiny", "model.safetensors")
    assert zc.weights_on_disk("tiny")
    assert zc.weights_on_disk("resnet_digits")  # shipped in zoo/weights/


# ---- the status-line error boundary ---------------------------------------------------------------------------

def test_the_page_turns_errors_into_a_message_and_resets_outputs():
    import gradio as gr

    from ui.common import sketch_is_empty
    from ui.errors import KEEP, page
    from zoo.images import ImageInputError

    @page((None, "", KEEP), empty=lambda x: x is None)
    def fn(x):
        if x == "bad":
            raise ImageInputError("image.file_empty")
        if x == "bug":
            raise RuntimeError("boom")
        return 1, "two", 3

    ok = fn("fine")
    assert ok[:3] == (1, "two", 3) and ok[3].visible is False
    bad = fn("bad")
    assert bad[0] is None and bad[1] == "" and isinstance(bad[2], type(gr.skip()))
    assert bad[3].value == "The file is empty." and bad[3].visible is True
    bug = fn("bug")[3].value    # ours: logged with an id, shown without internals (core.errors.describe)
    assert "Something went wrong on our side (error id" in bug and "boom" not in bug
    quiet = fn(None)
    assert quiet[0] is None and quiet[3].visible is False   # an empty input resets without a message
    assert fn.__name__ == "fn_ui"  # leaves the plain name for the API endpoint of the same function
    blank = {"composite": np.zeros((40, 40, 4), np.uint8), "layers": [np.zeros((40, 40, 4), np.uint8)]}
    assert sketch_is_empty(blank) and sketch_is_empty(None)
    blank["layers"][0][10, 10, 3] = 255
    assert not sketch_is_empty(blank)


def test_api_endpoints_keep_their_outputs_and_raise_for_bad_input(client, tmp_path):
    from gradio_client import handle_file

    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/classify", "/classify_sketch", "/reconstruct", "/reconstruct_sketch", "/gan_sample",
            "/gan_interpolate", "/activations", "/attribution", "/weight_stats", "/compare_checkpoints",
            "/model_summary"} <= set(api)
    assert len(api["/classify"]["returns"]) == 4
    assert len(api["/reconstruct"]["returns"]) == 10  # (the map marker is a State)
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), "white").save(blank)
    for name in ("/classify", "/reconstruct", "/activations"):
        with pytest.raises(Exception, match="blank"):
            client.predict(handle_file(str(blank)), api_name=name)


# ---- MNIST digits go in unchanged ---------------------------------------------------------------------------

def test_an_uploaded_mnist_digit_is_what_the_autoencoder_sees_and_rebuilds(client, tmp_path):
    from gradio_client import handle_file

    for i in range(3):
        path, arr, _ = _mnist_png(tmp_path, i)
        out = client.predict(handle_file(path), api_name="/reconstruct")
        seen = np.asarray(Image.open(out[1]).convert("L"))
        assert np.array_equal(seen, np.kron(arr, np.ones((8, 8), np.uint8)))   # the upload, every pixel 8x8
        recon = np.asarray(Image.open(out[0]).convert("L"), np.float32)[::8, ::8] / 255
        mse = float(np.mean((recon - arr / 255.0) ** 2))
        assert 10 * np.log10(1 / mse) > 17   # against the upload itself (bench: 21 dB on average over 100)


def test_classify_sees_the_mnist_upload_exactly(tmp_path):
    from ui.classify import classify_upload_ui

    path, arr, truth = _mnist_png(tmp_path, 5)
    probs, seen, table, code, summary, status = classify_upload_ui(path, "resnet_digits", 5)
    assert np.array_equal(seen[::8, ::8, 0], arr) and status.visible is False
    assert max(probs, key=probs.get) == truth


def test_reconstruct_ui_keeps_the_map_on_an_error():
    import gradio as gr

    from ui.autoencoder import reconstruct_ui

    out = reconstruct_ui(np.full((50, 50), 255, np.uint8), "ae_digits_16", 0.0)
    assert out[0] is None and "blank" in out[-1].value
    assert all(isinstance(o, type(gr.skip())) for o in out[5:10])   # map, z1, z2, decoded point, marker kept


def test_a_model_picked_during_the_first_visit_is_the_one_shown_last():
    """The first visit rebuilds its example with the model it started with; when the visitor picked another while
    it ran (the change's answer may land first and be overwritten), the follow-up rebuilds with theirs, once."""
    import gradio as gr

    from ui.autoencoder import after_first_visit, first_visit, reconstruct_ui

    first = first_visit(None, None, "ae_digits_16", 0.0)
    assert first[-1] == ("ae_digits_16", 0.0) and first[-4] == "upload"
    path = first[-5]
    same = after_first_visit(first[-1], "upload", None, path, "ae_digits_16", 0.0)
    assert all(isinstance(o, type(gr.skip())) for o in same[:-1]) and same[-1] is None
    picked = after_first_visit(first[-1], "upload", None, path, "dae_digits_16", 0.0)
    theirs = reconstruct_ui(path, "dae_digits_16", 0.0)
    assert np.array_equal(picked[0], theirs[0]) and not np.array_equal(picked[0], first[0])
    assert picked[-1] is None    # once: a later visit to the tab rebuilds nothing
    later = first_visit(first[0], None, "dae_digits_16", 0.0)
    assert all(isinstance(o, type(gr.skip())) for o in later)
    assert all(isinstance(o, type(gr.skip())) for o in after_first_visit(None, "upload", None, path, "x", 0.5)[:-1])


# ---- numbers typed by a visitor: checked by us (a message under the input), not by Gradio (red badges) -----------

def test_whole_number_says_what_is_allowed():
    from ui.common import whole_number

    seed = "field.seed"
    assert whole_number(7, seed) == 7 and whole_number(3.0, seed) == 3 and whole_number(None, seed) == 0
    for bad in (-1, 2.5, float("inf"), float("nan"), "x", 2**31):
        with pytest.raises(ValueError, match=r"Seed must be a whole number from 0 to 2,147,483,647"):
            whole_number(bad, seed)


def test_no_number_input_leaves_its_check_to_gradio():
    """gr.Number(minimum=/maximum=) fails in Gradio's preprocessing, which marks every output of the event with a
    red "Error" badge; every Number input is checked by its callback instead (ui.common.whole_number)."""
    import app

    demo = app.build_app()
    bounded = [c for c in demo.config["components"] if c.get("type") == "number"
               and (c["props"].get("minimum") is not None or c["props"].get("maximum") is not None)]
    assert bounded == []


def test_out_of_range_numbers_get_a_plain_error_from_the_api(client):
    for kwargs, api, what in ((dict(seed=-1), "/augment", "Seed"), (dict(seed=-1), "/dataloader", "Seed"),
                              (dict(seed_a=-3), "/gan_interpolate", "Seed A"),
                              (dict(height=3), "/model_summary", "Input height"),
                              (dict(weights="random init", seed=-2), "/weight_stats", "random-init seed")):
        with pytest.raises(Exception, match=f"{what} must be a whole number"):
            client.predict(api_name=api, **kwargs)
