"""Benchmark the digit preprocessing and the photo detector (issue #17): the numbers as JSON.

    python -m bench.bench_preprocess            # prints one JSON object (results: bench/results/preprocess.json)

1. Where MNIST puts a digit: the centre of mass and bounding box of all 5,000 mnist5k digits, and how wide its
   strokes are (zoo.strokes.width_in_box on 1,000 of them upscaled 10x, in pixels of the 20-pixel box).
2. MNIST digits uploaded as they are: the first 100 mnist5k test digits saved as 28x28 PNGs, each preprocessed;
   how many reach the model exactly as uploaded, the PSNR between upload and what the model saw, and the
   autoencoder's (ae_digits_16) reconstruction against the upload. Before (the preprocessing as it was,
   kept below as `legacy_mnist_preprocess`) and after (zoo.images.mnist_preprocess).
3. Hand-drawn digits, by proxy: all 1,000 mnist5k test digits redrawn as a sketchpad would hold them:
   upscaled 7-13x, strokes thickened by 0-14 px with a square pen, binarised and anti-aliased, dark ink at a random
   place on a 400x400 white canvas (seeded: the same set before and after), three seeds; then a held-out check
   that the stroke thinning (zoo.strokes) was not fitted to that pen: three more seeds drawn with a round brush;
   and the Classify tab's own sketchpad: each digit's pen path traced with its 28 px brush, the digit 100-350 px
   tall on the 400x400 canvas (three seeds). The three zoo models' accuracy on each preprocessing, by stroke
   thickness or digit size, with a paired bootstrap interval per set and pooled over the three sets.
4. The photo detector (zoo.images.PHOTO_RULES): the part of each set called a photo. Photos: 18 skimage
   pictures, 8 random square crops of each, 50 LFW faces (skimage's lfw_subset). Digit-like: 1,000 mnist5k
   test digits (28x28, and inverted), 4x upscaled mnist digits, 359 sklearn digits (MNIST frame), the 1,000
   sketches of (3), the same as transparent RGBA sketches, and 200 scanned-looking digits (ink on tinted
   paper, uneven light, noise, blur, JPEG). Then, of the photos it misses and of 500 digits and 500 sketches, how
   many the Classify tab marks "Not sure" because the digits models disagree.
"""
from __future__ import annotations

import io
import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter


def legacy_mnist_preprocess(src, threshold: float = 0.2) -> torch.Tensor:
    """zoo.images.mnist_preprocess before issue #17 (commit 892bafd), verbatim but for the imports: the
    'before' of this benchmark. Crops at 20% of the peak, centres the mass at (13.5, 13.5)."""
    from zoo.images import ImageInputError, _ink_map, open_image

    img = open_image(src)
    ink = _ink_map(img)
    ink = ink - np.median(ink) if np.median(ink) > 0.05 else ink
    ink = np.clip(ink, 0, 1)
    peak = ink.max(initial=0)
    if peak < 0.1:
        raise ImageInputError("No digit found: the image is blank (draw with a visible stroke).")
    ink = ink / peak
    ys, xs = np.nonzero(ink > threshold)
    crop = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    t = torch.from_numpy(np.ascontiguousarray(crop)).float()[None, None]
    h, w = crop.shape
    scale = 20.0 / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    t = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)
    canvas = torch.zeros(1, 1, 28, 28)
    top, left = (28 - nh) // 2, (28 - nw) // 2
    canvas[..., top:top + nh, left:left + nw] = t
    m = canvas[0, 0]
    total = m.sum()
    cy = (m.sum(1) * torch.arange(28)).sum() / total
    cx = (m.sum(0) * torch.arange(28)).sum() / total
    dy, dx = int(round(13.5 - cy.item())), int(round(13.5 - cx.item()))
    dy = max(-top, min(dy, 28 - (top + nh)))
    dx = max(-left, min(dx, 28 - (left + nw)))
    return torch.roll(canvas, shifts=(dy, dx), dims=(2, 3))[0]


def mnist_geometry() -> dict:
    from training.data.datasets import mnist5k
    from zoo.strokes import width_in_box

    s = mnist5k()
    x = torch.cat([s.train_x, s.test_x])[:, 0]
    m = x.sum((1, 2))
    ar = torch.arange(28.0)
    cy = (x.sum(2) * ar).sum(1) / m
    cx = (x.sum(1) * ar).sum(1) / m
    nz = x > 0
    side = torch.maximum(nz.any(2).sum(1), nz.any(1).sum(1))
    widths = []
    for i in range(1000):
        big = F.interpolate(x[i][None, None], scale_factor=10, mode="bilinear")[0, 0].numpy()
        widths.append(width_in_box(big > 0.5))
    return {"digits": len(x), "com_mean_row_col": [round(float(cy.mean()), 3), round(float(cx.mean()), 3)],
            "com_std_row_col": [round(float(cy.std()), 3), round(float(cx.std()), 3)],
            "bbox_longest_side_counts": {int(k): int(v) for k, v in zip(*torch.unique(side, return_counts=True))},
            "stroke_width_in_20px_box": {"digits": len(widths), "median": round(float(np.median(widths)), 2),
                                         "p10": round(float(np.percentile(widths, 10)), 2),
                                         "p90": round(float(np.percentile(widths, 90)), 2)}}


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / (a - b).pow(2).mean().clamp_min(1e-10)))


def uploads_of_mnist(n: int = 100) -> dict:
    from training.data.datasets import mnist5k
    from zoo.generative_ops import load, reconstruct_batch
    from zoo.images import mnist_preprocess

    s = mnist5k()
    ae = load("ae_digits_16")
    out = {}
    for tag, fn in (("before", legacy_mnist_preprocess), ("after", mnist_preprocess)):
        ups, seen = [], []
        for i in range(n):
            arr = (s.test_x[i, 0].numpy() * 255).round().astype(np.uint8)
            ups.append(torch.from_numpy(arr).float()[None] / 255)
            seen.append(fn(_png(arr)))
        up, x = torch.stack(ups), torch.stack(seen)
        exact = int(sum(bool(torch.equal(a, b)) for a, b in zip(up, x)))
        each = [_psnr(a, b) for a, b in zip(up, x)]
        r = reconstruct_batch(ae, x)
        rec = [_psnr(a, b) for a, b in zip(r, up)]
        rec_own = [_psnr(a, b) for a, b in zip(r, x)]
        out[tag] = {"model_sees_the_upload_exactly": exact, "of": n,
                    "psnr_upload_vs_seen_db_median": round(float(np.median(each)), 2),
                    "ae_recon_vs_upload_db_mean": round(float(np.mean(rec)), 2),
                    "ae_recon_vs_own_input_db_mean": round(float(np.mean(rec_own)), 2)}
    return out


def sketch_canvases(n: int = 1000, seed: int = 0, brush: str = "square") -> tuple[list, torch.Tensor, np.ndarray]:
    """mnist5k test digits redrawn as big, thick, anti-aliased dark strokes on a 400x400 white canvas, their labels,
    and how many canvas pixels the pen added to each digit's strokes (0, 4, 8 or 14, chosen per digit): a square pen
    (max-pooling) or a round brush (a disc around every inked pixel)."""
    from training.data.datasets import mnist5k

    s = mnist5k()
    rng = np.random.default_rng(seed)
    out, thickening = [], []
    for i in range(n):
        big = F.interpolate(s.test_x[i:i + 1], scale_factor=float(rng.uniform(7, 13)), mode="bilinear")
        k = int(rng.choice([1, 5, 9, 15]))
        if k > 1 and brush == "square":
            big = F.max_pool2d(big, k, 1, k // 2)                  # thicker strokes
        elif k > 1:
            import scipy.ndimage as ndi
            far = ndi.distance_transform_edt(big[0, 0].numpy() <= 0.4)
            big = torch.from_numpy((far <= k / 2).astype(np.float32))[None, None]
        big = F.avg_pool2d((big > 0.4).float(), 3, 1, 1)           # a brush's solid ink with soft edges
        b = big[0, 0].numpy()[:400, :400]
        c = np.zeros((400, 400), np.float32)
        y0, x0 = int(rng.integers(0, 400 - b.shape[0] + 1)), int(rng.integers(0, 400 - b.shape[1] + 1))
        c[y0:y0 + b.shape[0], x0:x0 + b.shape[1]] = b
        out.append(c)
        thickening.append(k - 1)
    return out, s.test_y[:n], np.array(thickening)


def app_brush_canvases(n: int = 1000, seed: int = 10) -> tuple[list, torch.Tensor, np.ndarray]:
    """mnist5k test digits drawn the way the Classify tab's sketchpad draws: each digit's pen path (the skeleton of
    the digit upscaled so that its box is 100-350 px) traced with the tab's round 28 px brush on the 400x400
    canvas, at a random place; with labels and each digit's box in canvas pixels (small = thick strokes)."""
    import scipy.ndimage as ndi
    from skimage.morphology import skeletonize

    from training.data.datasets import mnist5k

    s = mnist5k()
    rng = np.random.default_rng(seed)
    out, boxes = [], []
    for i in range(n):
        x = s.test_x[i:i + 1]
        ys, xs = np.nonzero(x[0, 0].numpy() > 0)
        box = float(rng.uniform(100, 350))
        big = F.interpolate(x, scale_factor=box / (max(np.ptp(ys), np.ptp(xs)) + 1), mode="bilinear")[0, 0].numpy()
        ink = (ndi.distance_transform_edt(~skeletonize(big > 0.4)) <= APP_BRUSH / 2).astype(np.float32)
        ink = ndi.uniform_filter(ink, 3)                                  # soft edges, as the canvas draws them
        ys, xs = np.nonzero(ink > 0)
        ink = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1][:400, :400]
        c = np.zeros((400, 400), np.float32)
        y0, x0 = int(rng.integers(0, 400 - ink.shape[0] + 1)), int(rng.integers(0, 400 - ink.shape[1] + 1))
        c[y0:y0 + ink.shape[0], x0:x0 + ink.shape[1]] = ink
        out.append(c)
        boxes.append(box)
    return out, s.test_y[:n], np.array(boxes)


APP_BRUSH = 28                                               # ui/classify.py: gr.Brush(default_size=28), 400x400
SKETCH_MODELS = ("resnet_digits", "vgg_digits", "alexnet_digits")
SKETCH_SEEDS = (0, 1, 2)
HELD_OUT_SEEDS = (3, 4, 5)                                   # round brush: a check on sets no choice was made with
APP_BRUSH_SEEDS = (10, 11, 12)


def _paired(before: np.ndarray, after: np.ndarray) -> dict:
    """Accuracy before/after and the paired difference with a 95% bootstrap interval over digits (each row of
    before/after is one model x seed run over the same digits; the same digits are resampled for both)."""
    diff = (after.astype(np.float64) - before).mean(0)
    rng = np.random.default_rng(0)
    boots = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(2000)]
    return {"accuracy_before": round(100 * float(before.mean()), 3),
            "accuracy_after": round(100 * float(after.mean()), 3),
            "after_minus_before_points": round(100 * float(diff.mean()), 3),
            "after_minus_before_95ci": [round(100 * float(q), 3) for q in np.percentile(boots, [2.5, 97.5])]}


def sketch_accuracy(canvases, labels, thickening) -> dict:
    """Accuracy on the redrawn test digits, before vs after, for the three zoo architectures and three sketch
    seeds (seed 0 = the canvases also used by the photo detector), then on three held-out round-brush seeds.
    A 1,000-digit set moves by 0.1 point per digit, so the paired difference (after - before) gets a 95% bootstrap
    interval over digits, pooled over models and seeds. Also by thickening (canvas pixels the pen added)."""
    from zoo.classify import load_model
    from zoo.images import mnist_preprocess
    from zoo.registry import get_spec

    out: dict = {"digits_per_seed": len(labels), "seeds": list(SKETCH_SEEDS), "per_model": {}}
    models = {name: (get_spec(name), load_model(name)) for name in SKETCH_MODELS}
    parts = (("square_pen", SKETCH_SEEDS, "square"), ("held_out_round_brush", HELD_OUT_SEEDS, "round"),
             ("app_brush", APP_BRUSH_SEEDS, "app"))
    pooled: dict = {"before": [], "after": []}
    for part, seeds, brush in parts:
        correct: dict = {"before": [], "after": []}
        groups: list = []
        for seed in seeds:
            if seed == 0 and brush == "square":
                cs, ys, ks = canvases, labels, thickening
            elif brush == "app":
                cs, ys, box = app_brush_canvases(len(labels), seed=seed)
                ks = np.digitize(box, [150, 200, 250, 300]) * 50 + 100      # the box's 50 px bin, by its lower end
            else:
                cs, ys, ks = sketch_canvases(len(labels), seed=seed, brush=brush)
            xs = {tag: torch.stack([fn(((1 - c) * 255).astype(np.uint8)) for c in cs])
                  for tag, fn in (("before", legacy_mnist_preprocess), ("after", mnist_preprocess))}
            for name, (spec, model) in models.items():
                mean, std = spec.weights.mean[0], spec.weights.std[0]
                for tag, x in xs.items():
                    with torch.inference_mode():
                        pred = torch.cat([model((x[i:i + 250] - mean) / std).argmax(1) for i in range(0, len(x), 250)])
                    ok = (pred == ys).numpy()
                    correct[tag].append(ok)
                    pooled[tag].append(ok)
                    if part == "square_pen":
                        acc = round(100 * float(ok.mean()), 2)
                        out["per_model"].setdefault(name, {}).setdefault(tag, []).append(acc)
                groups.append(ks)
        before, after = np.stack(correct["before"]), np.stack(correct["after"])     # (models x seeds, digits)
        k = np.stack(groups)
        res = _paired(before, after)
        key = "by_box_px" if brush == "app" else "by_thickening_px"
        res[key] = {int(t): {"before": round(100 * float(before[k == t].mean()), 2),
                             "after": round(100 * float(after[k == t].mean()), 2)} for t in np.unique(k)}
        if part == "square_pen":
            out.update(res)
        else:
            out[part] = {"seeds": list(seeds), **res}
    out["all_three_sets_pooled"] = _paired(np.stack(pooled["before"]), np.stack(pooled["after"]))
    out["resnet_digits_accuracy_before"] = out["per_model"]["resnet_digits"]["before"][0]
    out["resnet_digits_accuracy_after"] = out["per_model"]["resnet_digits"]["after"][0]
    return out


def _scan(digit: torch.Tensor, rng) -> bytes:
    big = F.interpolate(digit[None], scale_factor=6, mode="bilinear")[0, 0].numpy()
    pad = 40
    c = np.zeros((big.shape[0] + 2 * pad,) * 2, np.float32)
    c[pad:pad + big.shape[0], pad:pad + big.shape[1]] = big
    paper = np.array([240, 233, 215], np.float32) / 255 * rng.uniform(0.8, 1.0)
    yy, xx = np.mgrid[0:c.shape[0], 0:c.shape[1]] / c.shape[0]
    light = 1 - 0.25 * rng.uniform() * (xx if rng.uniform() < 0.5 else yy)
    ink = np.array([30, 30, 60], np.float32) / 255
    img = (paper * (1 - c[..., None]) + ink * c[..., None]) * light[..., None] + rng.normal(0, 0.03, c.shape + (3,))
    im = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=60)
    return buf.getvalue()


PHOTOS = ["astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
          "gravel.png", "horse.png", "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png",
          "retina.jpg", "rocket.jpg", "cell.png", "microaneurysms.png", "color.png"]


def photo_detector(canvases) -> dict:
    import skimage

    from training.data.datasets import digits, mnist5k
    from zoo.images import looks_like_photo

    rng = np.random.default_rng(1)
    root = os.path.join(os.path.dirname(skimage.__file__), "data")
    sets: dict[str, list] = {}
    for f in PHOTOS:
        im = Image.open(os.path.join(root, f))
        im.load()
        w, h = im.size
        crops = []
        for _ in range(8):
            s = int(rng.integers(min(w, h) // 4, min(w, h)))
            x0, y0 = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
            crops.append(im.crop((x0, y0, x0 + s, y0 + s)))
        sets[f"photo {f}"] = [im] + crops
    lfw = np.load(os.path.join(root, "lfw_subset.npy"))
    sets["photo lfw faces 25x25"] = [(lfw[i] * 255).astype(np.uint8) for i in range(0, 200, 4)]
    s = mnist5k()
    mn = [(s.test_x[i, 0].numpy() * 255).round().astype(np.uint8) for i in range(1000)]
    sets["digit mnist 28x28"] = mn
    sets["digit mnist 28x28 inverted"] = [255 - a for a in mn]
    sets["digit mnist 4x upscaled"] = [np.kron(a, np.ones((4, 4), np.uint8)) for a in mn[:300]]
    sk = digits().test_x
    sets["digit sklearn (MNIST frame)"] = [(sk[i, 0].numpy() * 255).astype(np.uint8) for i in range(len(sk))]
    sets["digit sketch on white"] = [((1 - c) * 255).astype(np.uint8) for c in canvases]
    rgba = []
    for c in canvases[:300]:
        a = np.zeros((400, 400, 4), np.uint8)
        a[..., 3] = (c * 255).astype(np.uint8)
        rgba.append(a)
    sets["digit sketch transparent RGBA"] = rgba
    sets["digit scanned-looking"] = [_scan(s.test_x[i], rng) for i in range(200)]
    is_photo = {k: [looks_like_photo(x) for x in v] for k, v in sets.items()}
    called = {k: sum(v) for k, v in is_photo.items()}
    per_set = {k: f"{called[k]}/{len(v)}" for k, v in sets.items()}
    photos = [k for k in sets if k.startswith("photo")]
    digit_sets = [k for k in sets if k.startswith("digit")]
    tp, p = sum(called[k] for k in photos), sum(len(sets[k]) for k in photos)
    fp, n = sum(called[k] for k in digit_sets), sum(len(sets[k]) for k in digit_sets)
    missed = [x for k in photos for x, hit in zip(sets[k], is_photo[k]) if not hit]
    return {"called_photo_per_set": per_set,
            "confusion": {"photos_called_photo": tp, "photos_called_digit_like": p - tp,
                          "digit_pictures_called_photo": fp, "digit_pictures_called_digit_like": n - fp},
            "photo_recall_pct": round(100 * tp / p, 1), "digit_false_alarm_pct": round(100 * fp / n, 2),
            "models_disagree": {"missed photos": _disagree(missed), "digit mnist 28x28": _disagree(mn[:500]),
                                "digit sketch on white": _disagree(sets["digit sketch on white"][:500])}}


def _disagree(pictures) -> str:
    """How many pictures the Classify tab marks "Not sure" (zoo.classify.disagreement_note: the digits models
    read different digits); pictures the preprocessing refuses (no ink) are not counted."""
    from zoo.classify import compare_family, disagreement_note
    from zoo.images import ImageInputError

    marked = total = 0
    for x in pictures:
        try:
            rows = compare_family(x, "digits")
        except ImageInputError:
            continue
        total += 1
        marked += bool(disagreement_note(rows, "digits"))
    return f"{marked}/{total}"


def main() -> None:
    torch.manual_seed(0)
    canvases, labels, thickening = sketch_canvases()
    res = {"mnist_geometry": mnist_geometry(), "mnist_uploads": uploads_of_mnist(),
           "sketches": sketch_accuracy(canvases, labels, thickening), "photo_detector": photo_detector(canvases),
           "load_average": os.getloadavg()[0]}
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
