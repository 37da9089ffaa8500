"""Preprocessing lands drawn digits like MNIST; every hostile image kind gets a clear ImageInputError."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.images import (MNIST_COM, ImageInputError, looks_like_photo, mnist_preprocess, open_image, photo_features,
                        photo_reasons)


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


def _canvas_with_digit(digit: torch.Tensor, size=600, scale=12, at=(40, 300), invert=True) -> np.ndarray:
    """An mnist digit drawn big and off-centre on a large canvas, dark ink on white (like a sketchpad)."""
    big = torch.nn.functional.interpolate(digit[None], scale_factor=scale, mode="bilinear")[0, 0].numpy()
    canvas = np.zeros((size, size), np.float32)
    y, x = at
    canvas[y:y + big.shape[0], x:x + big.shape[1]] = big[: size - y, : size - x]
    canvas = np.clip(canvas, 0, 1)
    return ((1 - canvas if invert else canvas) * 255).astype(np.uint8)


def test_preprocessed_digit_is_centred_like_mnist():
    canvas = np.full((500, 800), 255, np.uint8)
    canvas[50:450, 600:640] = 0  # a thick "1", far right
    x = mnist_preprocess(canvas)
    assert x.shape == (1, 28, 28) and 0 <= x.min() and x.max() <= 1
    ys, xs = torch.nonzero(x[0] > 0.2, as_tuple=True)
    assert 19 <= ys.max() - ys.min() + 1 <= 21  # longest side fit to 20 px
    m = x[0]
    cy = (m.sum(1) * torch.arange(28)).sum() / m.sum()
    cx = (m.sum(0) * torch.arange(28)).sum() / m.sum()
    assert abs(cy - MNIST_COM[0]) <= 0.5 and abs(cx - MNIST_COM[1]) <= 0.5  # an integer shift, as MNIST's


def test_mnist_com_constant_is_measured():
    """MNIST_COM is where mnist5k's digits have their centre of mass (not the field's centre, 13.5)."""
    from training.data.datasets import mnist5k

    s = mnist5k()
    x = torch.cat([s.train_x, s.test_x])[:, 0]
    ar = torch.arange(28.0)
    cy = ((x.sum(2) * ar).sum(1) / x.sum((1, 2))).mean()
    cx = ((x.sum(1) * ar).sum(1) / x.sum((1, 2))).mean()
    assert abs(cy - MNIST_COM[0]) < 0.05 and abs(cx - MNIST_COM[1]) < 0.05


def test_an_mnist_digit_upload_reaches_the_model_unchanged():
    from training.data.datasets import mnist5k

    s = mnist5k()
    for i in range(40):
        arr = (s.test_x[i, 0].numpy() * 255).round().astype(np.uint8)
        up = torch.from_numpy(arr).float()[None] / 255
        assert torch.equal(mnist_preprocess(_png(Image.fromarray(arr))), up), i
        inverted = mnist_preprocess(_png(Image.fromarray(255 - arr)))  # dark ink on white: 1 - gray, float rounding
        assert torch.allclose(inverted, up, atol=1e-6), i


def test_an_offcentre_28px_digit_is_still_recentred():
    from training.data.datasets import mnist5k

    arr = (mnist5k().test_x[0, 0].numpy() * 255).astype(np.uint8)
    moved = np.roll(arr, (-4, 5), axis=(0, 1))  # still 28x28, but not where MNIST puts it
    x = mnist_preprocess(moved)
    assert not torch.equal(x, torch.from_numpy(moved).float()[None] / 255)
    m = x[0]
    cy = float((m.sum(1) * torch.arange(28)).sum() / m.sum())
    assert abs(cy - MNIST_COM[0]) <= 0.5


def test_a_large_sketch_lands_like_mnist_and_keeps_its_soft_edges():
    """A big anti-aliased stroke: the bounding box includes the soft edge (MNIST's 20 px box is of all nonzero
    pixels), and the centre of mass lands where MNIST's does."""
    from training.data.datasets import mnist5k

    canvas = _canvas_with_digit(mnist5k().test_x[1], size=400, scale=12, at=(30, 150))
    x = mnist_preprocess(canvas)[0]
    ys, xs = torch.nonzero(x > 0, as_tuple=True)
    assert max(ys.max() - ys.min(), xs.max() - xs.min()) + 1 in (20, 21)
    cy = float((x.sum(1) * torch.arange(28)).sum() / x.sum())
    cx = float((x.sum(0) * torch.arange(28)).sum() / x.sum())
    assert abs(cy - MNIST_COM[0]) <= 0.5 and abs(cx - MNIST_COM[1]) <= 0.5


def _photo(name):
    import skimage.data

    return getattr(skimage.data, name)()


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket", "camera", "moon"])
def test_photos_are_recognised(name):
    reasons = photo_reasons(_photo(name))
    assert reasons and all(isinstance(r, str) for r in reasons)


def test_digit_pictures_are_not_photos():
    """MNIST digits (either polarity), a thick sketch (opaque and transparent) and a scanned-looking digit on
    tinted, unevenly lit, noisy paper are digit-like."""
    from training.data.datasets import mnist5k

    s = mnist5k()
    for i in range(20):
        arr = (s.test_x[i, 0].numpy() * 255).astype(np.uint8)
        assert not looks_like_photo(arr) and not looks_like_photo(255 - arr)
        assert not looks_like_photo(np.kron(arr, np.ones((5, 5), np.uint8)))
    canvas = _canvas_with_digit(s.test_x[2], size=400, scale=12, at=(60, 90))
    assert not looks_like_photo(canvas)
    rgba = np.zeros((400, 400, 4), np.uint8)
    rgba[..., 3] = 255 - canvas
    assert not looks_like_photo({"composite": rgba, "background": None, "layers": []})
    ink = np.kron(s.test_x[3, 0].numpy(), np.ones((6, 6), np.float32))
    paper = np.array([235, 228, 210], np.float32) * np.linspace(1.0, 0.8, ink.shape[1])[None, :, None]
    scan = paper * (1 - ink[..., None]) + np.array([30, 30, 60], np.float32) * ink[..., None]
    scan += np.random.default_rng(0).normal(0, 6, scan.shape)
    assert not looks_like_photo(np.clip(scan, 0, 255).astype(np.uint8))


def test_photo_features_are_what_they_say():
    two_tone = np.zeros((100, 100), np.uint8)
    two_tone[20:80, 45:55] = 255
    f = photo_features(two_tone)
    assert f["shapes"] == 1 and f["bimodality"] > 0.99 and abs(f["ink_fraction"] - 0.06) < 0.01
    assert f["colour_variety"] == 0 and f["background_texture"] < 0.05  # only where the background meets the bar
    noise = np.random.default_rng(0).integers(0, 256, (100, 100, 3), dtype=np.uint8)
    g = photo_features(noise)
    assert g["colour_variety"] > 0.1 and g["background_texture"] > 1 and g["shapes"] > 3


def test_big_offcentre_drawings_are_read_right():
    """mnist5k test digits redrawn 12x larger, off-centre, dark-on-white: the classifier still reads them."""
    from training.data.datasets import mnist5k
    from zoo.classify import predict

    s = mnist5k()
    n, correct = 60, 0
    for i in range(n):
        canvas = _canvas_with_digit(s.test_x[i], at=(20 + 3 * i % 200, 10 + 5 * i % 250))
        correct += predict("resnet_digits", canvas).label == str(int(s.test_y[i]))
    assert correct / n >= 0.95


def test_transparent_sketch_with_black_ink():
    rgba = np.zeros((400, 400, 4), np.uint8)
    rgba[100:300, 190:210, 3] = 255  # opaque black stroke on a transparent canvas
    x = mnist_preprocess({"composite": rgba, "background": None, "layers": []})
    assert x.sum() > 10


def test_blank_and_empty_inputs():
    with pytest.raises(ImageInputError, match="blank"):
        mnist_preprocess(np.full((100, 100), 255, np.uint8))
    with pytest.raises(ImageInputError):
        mnist_preprocess(None)
    with pytest.raises(ImageInputError, match="empty"):
        mnist_preprocess({"composite": None, "background": None, "layers": []})


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    im = open_image(_png(img, format="JPEG", exif=exif))
    assert im.size == (20, 40)


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "P", "LA", "1", "F"])
def test_odd_modes_decode_to_rgb(mode):
    base = Image.new("L", (30, 30), 0)
    base.paste(255, (10, 5, 20, 25))
    if mode == "CMYK":
        data = _png(base.convert("CMYK"), format="JPEG")
    elif mode == "I;16":
        data = _png(Image.fromarray((np.asarray(base).astype(np.uint16) * 257)))
    elif mode == "P":
        p = base.convert("P")
        p.info["transparency"] = 0
        data = _png(p)
    elif mode == "F":
        data = base.convert("F")        # as a PIL image: the one file format that holds it, TIFF, is not accepted
    else:
        data = _png(base.convert(mode))
    im = open_image(data)
    assert im.mode in ("RGB", "RGBA")
    x = mnist_preprocess(data)
    assert x.max() > 0.5


def test_animated_gif_uses_first_frame():
    frames = [Image.new("L", (30, 30), 0) for _ in range(3)]
    frames[0].paste(255, (12, 4, 16, 26))
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    assert mnist_preprocess(buf.getvalue()).sum() > 5


def test_hostile_files():
    with pytest.raises(ImageInputError, match="not an image"):
        open_image(b"#!/bin/sh\necho hi\n")
    with pytest.raises(ImageInputError, match="empty"):
        open_image(b"")
    good = _png(Image.new("RGB", (200, 200), "red"))
    with pytest.raises(ImageInputError, match="damaged|truncated"):
        open_image(good[: len(good) // 2])
    bomb = _png(Image.new("1", (10000, 10000)))  # 100 MP of zeros: a few KB on disk
    assert len(bomb) < 200_000
    with pytest.raises(ImageInputError, match="too large"):
        open_image(bomb)
    with pytest.raises(ImageInputError, match="aspect"):
        open_image(_png(Image.new("RGB", (2000, 10))))
    tiny = open_image(_png(Image.new("RGB", (1, 1), "white")))
    assert tiny.size == (1, 1)
    with pytest.raises(ImageInputError):
        open_image(np.zeros((3, 3, 7), np.uint8))


def test_models_that_disagree_mark_the_answer_not_sure():
    """A grey cell-culture crop passes the photo check (a two-toned, low-texture picture), so the digits models
    answer; they read different digits, and the tab's summary says "Not sure" instead of a bare confident digit.
    An MNIST digit all models read alike gets no such mark; neither do ImageNet models (1,000 classes)."""
    import skimage.data
    from PIL import Image

    from training.data.datasets import mnist5k
    from ui.classify import classify
    from zoo.classify import disagreement_note

    crop = Image.fromarray(skimage.data.cell()).crop((203, 127, 529, 453))
    assert not looks_like_photo(crop)
    _, table, _, summary = classify(crop, "resnet_digits")
    assert len({row[1] for row in table}) > 1 and summary.startswith("**Not sure:**")
    assert all(f"`{row[0]}` {row[1]}" in summary for row in table)
    digit = (mnist5k().test_x[0, 0].numpy() * 255).astype(np.uint8)
    _, table, _, summary = classify(digit, "resnet_digits")
    assert len({row[1] for row in table}) == 1 and "Not sure" not in summary
    rows = [{"model": "a", "prediction": "cat", "status": "ok"}, {"model": "b", "prediction": "dog", "status": "ok"}]
    assert disagreement_note(rows, "imagenet") == "" and disagreement_note(rows, "digits")
    rows[1]["status"] = "needs download (the Hub cannot be reached now)"
    assert disagreement_note(rows, "digits") == ""
