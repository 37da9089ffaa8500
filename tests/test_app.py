"""The app: importing starts nothing, the CLI parses, /classify works through gradio_client and survives bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ui.i18n import TITLE_KEYS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


TABS = ["Start here", "Classify", "Tensors", "Autograd", "Autoencoder", "GAN", "Data", "Fine-tune",
        "Ensembles & compression", "Look inside"]


@pytest.mark.app   # builds the app in a subprocess
def test_import_starts_nothing_and_loads_no_model():
    """Also: the built app's top-level tabs are app.TABS, in order, each with its id."""
    code = ("import json, sys, threading, app, gradio as gr; before = threading.active_count(); "
            "demo = app.build_app(); from zoo import classify; "
            "top = next(b for b in demo.children if isinstance(b, gr.Tabs)); "
            "print(json.dumps({'tabs': [[getattr(t.label, 'key', t.label), t.id] for t in top.children "
            "if isinstance(t, gr.Tab)], "
            "'declared': [title for title, _ in app.TABS], 'threads_added': threading.active_count() - before, "
            "'models_loaded': len(classify._models), "
            "'heavy': [m for m in ('mlxtend', 'sklearn', 'captum', 'imblearn', 'skimage') if m in sys.modules]}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts["declared"] == TABS
    # built as declared, in order; each tab's name is its catalogue key (the browser shows it in its language)
    assert facts["tabs"] == [[TITLE_KEYS[t], t.lower().replace(" ", "-")] for t in TABS]
    assert facts["models_loaded"] == 0          # models load lazily, on first use
    assert facts["heavy"] == []                 # heavy libraries are imported inside callbacks
    assert facts["threads_added"] == 0          # no server, no background work at build time


@pytest.mark.app   # runs app.py in a subprocess
def test_cli_help():
    out = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--share" in out.stdout and "--port" in out.stdout


def _digit_png(tmp_path, idx: int):
    from training.data.datasets import mnist5k

    s = mnist5k()
    p = tmp_path / f"digit{idx}.png"
    Image.fromarray((s.test_x[idx, 0].numpy() * 255).astype(np.uint8)).save(p)
    return str(p), str(int(s.test_y[idx]))


def _easy_indices(n: int) -> list[int]:
    """Test digits every digits model gets right in process (a few mnist5k digits are ambiguous)."""
    from training.data.datasets import mnist5k
    from zoo import list_models
    from zoo.classify import predict

    s = mnist5k()
    out = []
    for i in range(50):
        arr = (s.test_x[i, 0].numpy() * 255).astype(np.uint8)
        if all(predict(m, arr).label == str(int(s.test_y[i])) for m in list_models("digits")):
            out.append(i)
        if len(out) == n:
            return out
    raise AssertionError("the digits models disagree with too many test digits")


def test_classify_endpoint(client, tmp_path):
    from gradio_client import handle_file

    for idx in _easy_indices(3):
        path, truth = _digit_png(tmp_path, idx)
        label, table, code, summary = client.predict(handle_file(path), api_name="/classify")
        assert label["label"] == truth
        assert len(label["confidences"]) == 5
        assert "load_model" in code and "mnist_preprocess" in code
        assert [row[0] for row in table["data"]] == ["resnet_digits", "vgg_digits", "alexnet_digits",
                                                     "resnet_digits_hard"]
        assert all(row[1] == truth for row in table["data"])
    label, *_ = client.predict(handle_file(path), "vgg_digits", 3, api_name="/classify")
    assert len(label["confidences"]) == 3


def test_bad_uploads_get_clear_errors_and_server_keeps_serving(client, tmp_path):
    from gradio_client import handle_file

    bad = tmp_path / "evil.png"
    bad.write_bytes(b"MZ\x90\x00 this is not an image")
    with pytest.raises(Exception, match="not an image"):
        client.predict(handle_file(str(bad)), api_name="/classify")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), "white").save(blank)
    with pytest.raises(Exception, match="blank"):
        client.predict(handle_file(str(blank)), api_name="/classify")
    path, truth = _digit_png(tmp_path, _easy_indices(1)[0])
    label, *_ = client.predict(handle_file(path), api_name="/classify")
    assert label["label"] == truth


def test_imagenet_model_offline_is_explained(client, tmp_path):
    from gradio_client import handle_file

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(photo)
    with pytest.raises(Exception, match="offline|cannot be reached|not in the local cache"):
        client.predict(handle_file(str(photo)), "resnet18", api_name="/classify")


def test_classify_offers_only_classifiers(client, tmp_path):
    from gradio_client import handle_file

    from ui.classify import model_choices
    from zoo import get_spec

    assert {get_spec(n).family for _, n in model_choices()} == {"digits", "imagenet"}
    path, _ = _digit_png(tmp_path, 0)
    with pytest.raises(Exception, match="not a classifier|not in the list of choices"):
        client.predict(handle_file(path), "gan_digits_g", api_name="/classify")


def test_queue_keeps_no_per_event_analytics_and_no_monitoring_page(app_url, client, monkeypatch, tmp_path):
    """Gradio rebuilds a pandas summary of up to 10,000 past events after every event for its /monitoring page
    (12.7 ms of server CPU per request once 10,000 are recorded). The app turns the page off and rebuilds the
    summary at most once per app.ANALYTICS_EVERY events."""
    import httpx
    from gradio.queueing import Queue
    from gradio_client import handle_file

    built = []
    real = Queue._get_df
    monkeypatch.setattr(Queue, "_get_df", staticmethod(lambda records: built.append(len(records)) or real(records)))
    path, _ = _digit_png(tmp_path, 0)
    for _ in range(12):
        client.predict(handle_file(path), api_name="/classify")
    assert len(built) <= 1, built
    for route in ("/monitoring", "/monitoring/summary"):
        assert httpx.get(app_url.rstrip("/") + route, timeout=30).status_code == 403


def test_the_example_photos_are_served_wherever_scikit_image_is_installed():
    """On a Space the packages live in /usr/local, outside the folders Gradio serves unasked: the photos' folder is
    allowed at launch (Classify's and Look inside's examples failed there with InvalidPathError)."""
    import app
    from ui.examples import photo_examples

    photos = photo_examples()
    assert photos, "scikit-image's sample photos are installed (requirements.txt)"
    assert {os.path.dirname(p) for _, p in photos} <= set(app.launch_kwargs()["allowed_paths"])
