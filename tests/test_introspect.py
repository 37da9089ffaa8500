"""Look inside: activation capture vs forward hooks, statistics vs numpy, Grad-CAM on the ink, weights and
checkpoints (hostile files refused), the endpoints through gradio_client, and the tab in Chromium."""
from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest
import torch

from look_inside import activations as A
from look_inside import weights as W
from zoo.registry import get_model, get_spec


@pytest.fixture(scope="module")
def digits():
    from training.data.datasets import mnist5k
    from zoo.catalog import MNIST_MEAN, MNIST_STD

    s = mnist5k()
    return s.test_x[:24], s.test_y[:24], (s.test_x[:24] - MNIST_MEAN) / MNIST_STD


def _hook_reference(model, x, nodes):
    """What plain forward hooks (with clone) record for every call_module node, by call order."""
    mods = sorted({n.module for n in nodes if n.module})
    ref = A.capture_with_hooks(model, x, mods)
    out = {}
    for n in nodes:
        if n.module:
            out[n.name] = ref[n.module][A._call_index(n.name)]
    return out


@pytest.mark.parametrize("name,shape", [("resnet_digits", (2, 1, 28, 28)), ("alexnet_digits", (2, 1, 28, 28)),
                                        ("vgg_digits", (2, 1, 28, 28)), ("resnet18", (1, 3, 64, 64))])
def test_captured_activations_equal_forward_hooks(name, shape):
    # Random init is enough: in-place ops (ReLU(inplace=True), torchvision's `out += identity`) overwrite the
    # tensor a naive capture returns; ours must equal what a hook saw at that moment, for every module call.
    torch.manual_seed(0)
    model = get_model(name, weights=None)
    x = torch.randn(shape)
    nodes = A.graph_nodes(model)
    cap = A.capture(model, x)
    ref = _hook_reference(model, x, nodes)
    assert ref, "no module nodes"
    for node_name, r in ref.items():
        torch.testing.assert_close(cap.acts[node_name], r, rtol=0, atol=0, msg=node_name)
    with torch.inference_mode():
        torch.testing.assert_close(cap.logits, model(x))
    if name == "resnet18":  # bn2's output is modified in place by `out += identity`: ours is the pre-add value
        bn2, down, add = (cap.acts[k] for k in ("layer2.0.bn2", "layer2.0.downsample.1", "layer2.0.add"))
        torch.testing.assert_close(add, bn2 + down)
        assert not torch.equal(bn2, add)
        torch.testing.assert_close(cap.acts["layer2.0.relu_1"], add.clamp_min(0))


@contextlib.contextmanager
def _classifying(model, x):
    """Another visitor's Classify: `model(x)` in a loop in a thread of its own while the block runs. Yields what each
    pass gave: "ok" for the logits it gives alone, else the type it got or the exception it met."""
    with torch.inference_mode():
        want = model(x)
    stop, seen = threading.Event(), []

    def classify():
        while not stop.is_set():
            try:
                with torch.inference_mode():
                    out = model(x)
                seen.append("ok" if isinstance(out, torch.Tensor) and torch.equal(out, want) else repr(type(out)))
            except Exception as exc:  # noqa: BLE001 - what the other thread met, reported by the test
                seen.append(f"{type(exc).__name__}: {exc}"[:200])

    worker = threading.Thread(target=classify)
    worker.start()
    try:
        yield seen
    finally:
        stop.set()
        worker.join()


def test_tracing_a_model_does_not_touch_another_threads_forward_passes():
    """Tracing (torch.fx) patches nn.Module.__call__ for every thread while it runs: a visitor's Classify ran into the
    tracer of another's Look inside (a Proxy instead of logits; the tracer's own names corrupted). Ours binds the
    patches to the tracing thread: a forward loop beside repeated traces sees only tensors, the traces are whole."""
    shared = get_model("resnet_digits", weights=None).eval()
    with _classifying(shared, torch.randn(2, 1, 28, 28)) as seen:
        names = [[n.name for n in A.graph_nodes(get_model(name, weights=None))]
                 for name in ["resnet_digits", "alexnet_digits", "vgg_digits"] * 3]
    assert seen and set(seen) == {"ok"}, sorted(set(seen))[:3]
    assert names[0] == names[3] == names[6] and names[1] == names[4] and names[2] == names[5]


def test_attribution_beside_another_threads_forward_passes(digits):
    """Grad-CAM's hooks (captum's, and the layer probe's) go on a private view of the shared model: a Classify
    running the same model object in another thread never meets them, and the maps are what they are alone."""
    from look_inside.attribution import attribute

    _, _, xn = digits
    shared = get_model("resnet_digits").eval()
    x, probe = xn[:1], xn[1:9]
    alone = attribute(shared, x)
    with _classifying(shared, probe) as seen:
        maps = [attribute(shared, x) for _ in range(25)]
    assert seen and set(seen) == {"ok"}, sorted(set(seen))[:3]
    for a in maps:
        np.testing.assert_allclose(a.gradcam_raw, alone.gradcam_raw, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.saliency, alone.saliency, rtol=1e-5, atol=1e-6)
    assert not any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in shared.modules())


def test_layer_names_are_torchvisions():
    from torchvision.models.feature_extraction import get_graph_node_names

    model = get_model("resnet18", weights=None)
    _, eval_nodes = get_graph_node_names(model)
    ours = [n.name for n in A.graph_nodes(model, layers_only=False)]
    assert ours == eval_nodes


def test_layer_statistics_match_numpy(digits):
    model = get_model("resnet_digits")
    x = digits[2][:1]
    cap = A.capture(model, x)
    assert len(cap.stats) == len(A.graph_nodes(model))
    for s in cap.stats:
        a = cap.acts[s.name].numpy().astype(np.float64)
        assert s.mean == pytest.approx(a.mean(), rel=1e-4, abs=1e-5)
        assert s.std == pytest.approx(a.std(), rel=1e-4, abs=1e-5)
        assert (s.min, s.max) == (pytest.approx(a.min()), pytest.approx(a.max()))
        assert s.frac_zero == pytest.approx((a == 0).mean())
        if s.is_relu:
            dead = (a.max(axis=(0, 2, 3)) == 0).mean() if a.ndim == 4 else None
            assert s.dead_channels == pytest.approx(dead)
    relus = [s for s in cap.stats if s.is_relu]
    assert relus and all(0 < s.frac_zero < 1 for s in relus)
    # Dead over a batch: units that are 0 for every input (numpy on the hooks' outputs is the reference).
    xb = digits[2][:16]
    dead = A.dead_units(model, xb)
    ref = A.capture_with_hooks(model, xb, ["layer1.0.relu"])["layer1.0.relu"]
    assert set(dead) == {s.name for s in relus}
    for name, r in [("layer1.0.relu", ref[0]), ("layer1.0.relu_1", ref[1])]:
        assert dead[name] == pytest.approx((r.numpy().max(axis=0) <= 0).mean())


def test_weight_statistics_match_numpy():
    g = torch.Generator().manual_seed(1)
    t = torch.randn(64, 3, 5, 5, generator=g) * 0.05
    t[0] = 0.0                     # a pruned filter
    s = W.tensor_stats("w", t, zero_tol=1e-3)
    a = t.numpy().astype(np.float64).ravel()
    assert s.mean == pytest.approx(a.mean(), abs=1e-12)
    assert s.std == pytest.approx(a.std(), rel=1e-6)   # v - mean is rounded to float32, as the data is
    assert (s.min, s.max) == (pytest.approx(a.min()), pytest.approx(a.max()))
    assert s.l2 == pytest.approx(np.linalg.norm(a), rel=1e-9)
    assert s.frac_near_zero == pytest.approx((np.abs(a) < 1e-3).mean())
    assert s.frac_near_zero >= 1 / 64
    t[1, 0, 0, 0] = float("nan")
    s2 = W.tensor_stats("w", t)
    assert s2.nonfinite == 1 and np.isfinite(s2.mean)


def test_gradcam_highlights_the_ink_not_the_background(digits):
    from look_inside.attribution import attribute

    raw, y, x = digits
    for name, min_inside_share in [("resnet_digits", 0.8), ("vgg_digits", None)]:
        model = get_model(name)
        inside_more, density = 0, []
        for i in range(20):
            a = attribute(model, x[i:i + 1])
            ink = raw[i, 0].numpy() > 0.1
            ys, xs = np.nonzero(ink)
            box = np.zeros_like(ink)
            box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
            cam = a.gradcam
            assert cam.shape == (28, 28) and cam.max() == pytest.approx(1.0)
            inside_more += cam[box].sum() > cam[~box].sum()
            density.append(cam[box].mean() / max(cam[~box].mean(), 1e-9))
        # Per pixel, Grad-CAM is denser inside the ink's bounding box than outside for (nearly) every digit.
        assert np.median(density) > (2.0 if name == "resnet_digits" else 1.0), (name, density)
        if min_inside_share:  # ...and for the ResNet it puts more total mass inside the box than outside
            assert inside_more >= min_inside_share * 20, (name, inside_more)


def test_saliency_is_the_input_gradient(digits):
    from look_inside.attribution import attribute

    model = get_model("vgg_digits")
    x = digits[2][3:4]
    a = attribute(model, x, target=5)
    xi = x.clone().requires_grad_(True)
    model(xi)[0, 5].backward()
    g = xi.grad[0].abs().amax(0)
    np.testing.assert_allclose(a.saliency, (g / g.max()).numpy(), rtol=1e-5, atol=1e-6)
    assert a.target == 5


def test_automatic_target_layer_per_architecture():
    from look_inside.attribution import auto_target_layer

    cases = [("resnet_digits", 28, "layer2.0"), ("vgg_digits", 28, "features.13"), ("alexnet_digits", 28, "features.5"),
             ("resnet18", 224, "layer4.1"), ("alexnet", 224, "features.11")]
    for name, size, want in cases:
        c = get_spec(name).weights.input_size[0]
        layer, why = auto_target_layer(get_model(name, weights=None), (1, c, size, size))
        assert layer == want, (name, layer)
        assert "7x7" in why and layer in why


def test_compare_and_checkpoints(tmp_path):
    from zoo.hub import WeightsError, save_safetensors_atomic

    spec = get_spec("resnet_digits")
    trained = get_model("resnet_digits")
    ta = W.param_tensors(trained)
    scaled = {k: v * 1.1 for k, v in ta.items()}
    for c in W.compare(ta, scaled):
        assert c.rel_change == pytest.approx(0.1, rel=1e-6) or (c.norm_a == 0 and c.rel_change == 0)
    # A valid checkpoint round-trips: zero change against the shipped weights.
    good = tmp_path / "ft.safetensors"
    save_safetensors_atomic(trained.state_dict(), str(good))
    loaded = W.load_checkpoint(spec, str(good))
    assert all(c.rel_change == 0 for c in W.compare(ta, W.param_tensors(loaded)))
    # A fine-tuned file with a new head (3 classes, as training.finetuning.transfer.replace_head makes) is still
    # comparable.
    from look_inside.views import compare_view

    sd = dict(trained.state_dict(), **{"fc.weight": torch.randn(3, 128), "fc.bias": torch.zeros(3)})
    save_safetensors_atomic(sd, str(tmp_path / "head.safetensors"))
    ft = W.load_checkpoint(spec, str(tmp_path / "head.safetensors"))
    assert ft.fc.out_features == 3
    view = compare_view(trained, ft, ("A", "B"))
    assert "Replaced head" in view.text and "`fc.weight` (10, 128) -> (3, 128)" in view.text
    # Hostile or wrong files are refused with a message, never unpickled.
    pickled = tmp_path / "evil.safetensors"
    torch.save(trained.state_dict(), pickled)
    garbage = tmp_path / "junk.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    other = tmp_path / "vgg.safetensors"
    save_safetensors_atomic(get_model("vgg_digits", weights=None).state_dict(), str(other))
    ints = tmp_path / "ints.safetensors"
    save_safetensors_atomic({k: (v * 100).to(torch.int32) if k == "conv1.weight" else v
                             for k, v in trained.state_dict().items()}, str(ints))
    pt = tmp_path / "model.pt"
    pt.write_bytes(b"x")
    for bad, words in [(pickled, "not a valid safetensors"), (garbage, "not a valid safetensors"),
                       (other, "do not fit"), (ints, "dtype"), (pt, "only .safetensors")]:
        with pytest.raises(WeightsError, match=words):
            W.load_checkpoint(spec, str(bad))


def test_random_init_is_seeded_and_leaves_global_rng_alone():
    builder = get_spec("vgg_digits").builder
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = W.random_init(builder, 7)
    assert torch.equal(torch.rand(1), before)
    b = W.random_init(builder, 7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_model_summary_counts_and_shapes():
    rows, text = W.model_summary(get_spec("resnet_digits").builder(), (1, 1, 28, 28))
    conv1 = next(r for r in rows if r[0] == "conv1")
    assert any(r[0] == "layer1.0.downsample.0" and r[1] == "Conv2d" for r in rows)
    assert conv1[2] == "1x16x28x28" and conv1[3] == 144
    assert f"{get_spec('resnet_digits').weights.num_params:,}" in text
    with pytest.raises(ValueError, match="cannot take"):
        W.model_summary(get_spec("vgg_digits").builder(), (1, 1, 20, 20))


def test_pictures_are_drawn_with_numpy():
    from look_inside import plots

    maps = np.random.default_rng(0).random((16, 7, 7)).astype(np.float32)
    g = plots.feature_grid(maps, [f"ch {i}" for i in range(16)], tile=96)
    assert g.dtype == np.uint8 and g.shape[2] == 3 and g.shape[1] == 4 + 4 * (98 + 4)  # 7 px maps x14 = 98 px tiles
    f = plots.filters_grid(np.random.default_rng(0).standard_normal((8, 3, 5, 5)))
    assert f.shape[2] == 3
    assert plots.vector_tile(np.arange(10.0)).shape[2] == 3


# ---- the app: endpoints through gradio_client ---------------------------------------------------------------

def _digit_png(tmp_path, i=0):
    from PIL import Image

    from training.data.datasets import mnist5k

    p = tmp_path / f"d{i}.png"
    Image.fromarray((mnist5k().test_x[i, 0].numpy() * 255).astype(np.uint8)).save(p)
    return str(p)


def test_activations_and_weight_stats_endpoints(client, tmp_path):
    from gradio_client import handle_file
    from PIL import Image

    grid, hist, table, text, code, layer = client.predict(handle_file(_digit_png(tmp_path)), api_name="/activations")
    assert Image.open(grid).size[0] > 200 and Image.open(hist).size[0] > 200
    assert "relu" in text and "register_forward_hook" in code and "never fire" in text
    rows = table["data"] if isinstance(table, dict) else table
    assert len(rows) == len(A.graph_nodes(get_model("resnet_digits")))
    _, _, _, text, _, _ = client.predict(handle_file(_digit_png(tmp_path)), "vgg_digits", "features.10", 8,
                                         api_name="/activations")
    assert "features.10" in text and "top 8 of 128" in text
    hist, wtable, filters, wtext, wcode = client.predict(api_name="/weight_stats")
    assert Image.open(hist).size[1] > 150 and Image.open(filters).size[0] > 50
    assert len(wtable["data"]) == len(list(get_model("resnet_digits").parameters()))
    assert "trained" in wtext and "named_parameters" in wcode


def test_two_visitors_classify_and_look_inside_at_once(app_url, tmp_path):
    """Two clients: one classifies in a loop while the other asks Look inside for a new random model's activations
    (a trace each time) and Grad-CAM on the very model the first one uses. Every answer of both is right."""

    from gradio_client import Client, handle_file

    from look_inside.views import RANDOM

    png = handle_file(_digit_png(tmp_path))
    a, b = Client(app_url, verbose=False), Client(app_url, verbose=False)
    label, *_ = a.predict(png, "resnet_digits", api_name="/classify")
    stop, problems, answers = threading.Event(), [], []

    def classify():
        while not stop.is_set():
            try:
                got, *_ = a.predict(png, "resnet_digits", api_name="/classify")
                answers.append(got["label"] == label["label"] or got)
            except Exception as exc:  # noqa: BLE001 - reported below
                problems.append(f"classify: {exc}"[:300])

    worker = threading.Thread(target=classify)
    worker.start()
    try:
        for seed in range(6):
            try:
                *_, text, _code, _layer = b.predict(png, "resnet_digits", "", 8, RANDOM, seed, api_name="/activations")
                assert "relu" in text
                b.predict(png, "resnet_digits", "", api_name="/attribution")
            except Exception as exc:  # noqa: BLE001 - reported below
                problems.append(f"look inside: {exc}"[:300])
    finally:
        stop.set()
        worker.join()
    assert not problems, problems[:3]
    assert answers and all(x is True for x in answers), answers[:3]


def test_offline_imagenet_and_hostile_checkpoint_get_clear_errors(client, tmp_path):
    from gradio_client import handle_file

    img = _digit_png(tmp_path)
    with pytest.raises(Exception, match="cache|offline|Hub"):
        client.predict(handle_file(img), "resnet18", api_name="/activations")
    evil = tmp_path / "evil.safetensors"
    torch.save({"x": torch.zeros(1)}, evil)
    with pytest.raises(Exception, match="not a valid safetensors"):
        client.predict("resnet_digits", "trained -> uploaded .safetensors", 0, handle_file(str(evil)),
                       api_name="/compare_checkpoints")
    # A 30 MB upload gets past the app's cap (100 MB: a fine-tuned ResNet-18 is 45 MB) to our own checks.
    from safetensors.torch import save_file

    big = tmp_path / "big.safetensors"
    save_file({**get_model("resnet_digits").state_dict(), "pad": torch.zeros(30 * 2**18)}, str(big))
    assert big.stat().st_size > 30 * 2**20
    with pytest.raises(Exception, match="do not fit this architecture: unexpected 1 keys"):
        client.predict("resnet_digits", "trained -> uploaded .safetensors", 0, handle_file(str(big)),
                       api_name="/compare_checkpoints")
    # Random-init ImageNet architecture works offline, clearly labelled; and the server still serves.
    hist, *_, wtext, _ = client.predict("resnet18", "random init", 0, api_name="/weight_stats")
    assert "RANDOM INIT" in wtext
    bars, chist, table, ctext, *_ = client.predict(api_name="/compare_checkpoints")
    assert "random init (seed 0)" in ctext and len(table["data"]) > 10


# ---- the tab in Chromium ------------------------------------------------------------------------------------

def test_look_inside_tab_in_browser(page):
    from tests.conftest import open_tab

    open_tab(page, "Look inside")
    canvas = page.locator("#inspect-sketch canvas").last
    canvas.wait_for()
    page.wait_for_timeout(500)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.85, steps=8)
    page.mouse.up()
    page.wait_for_function("document.querySelector('#inspect-act-text')?.innerText.includes('predicts')",
                           timeout=60_000)
    assert page.locator("#inspect-grid img").count() == 1
    page.get_by_role("tab", name="Weights").click()
    page.locator("#inspect-w-btn").click()
    page.wait_for_function("document.querySelector('#inspect-w-text')?.innerText.includes('parameter tensors')",
                           timeout=60_000)
    assert page.locator("#inspect-w-hist img").count() == 1
    # The drawing also ran Grad-CAM (hidden tabs are rendered when opened): a "1", explained on layer2.0.
    page.get_by_role("tab", name="Attribution").click()
    page.wait_for_function("document.querySelector('#inspect-attr-text')?.innerText.includes('layer2.0')",
                           timeout=60_000)
    assert page.locator("#inspect-cam img").count() == 1
