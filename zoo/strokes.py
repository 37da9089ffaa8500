"""Stroke width of a digit, and thinning a brush stroke that is much thicker than MNIST's pen.

A sketchpad brush has one size in canvas pixels, so the smaller a visitor draws, the thicker the strokes are
once the digit is scaled to MNIST's 20-pixel box: a small 4 drawn with the 28-pixel brush on the 400-pixel
canvas arrives with strokes twice as wide as MNIST's, its loops filled in. MNIST's digits were written with
pens of one range of widths, and the models learned that range, so a stroke far thicker than that is eroded
back to MNIST's usual width before the digit is scaled. Thin or usual strokes are left as they are.

Widths are measured the same way for MNIST and for an upload: twice the median distance from the stroke's
skeleton to its edge, in pixels of the 20-pixel box (bench/bench_preprocess.py measures MNIST's).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# MNIST's stroke widths in pixels of the 20-pixel box, over mnist5k's digits (each upscaled 10x, ink > 0.5):
# median 2.41, 90th percentile 3.26, used as 3.2 (bench/bench_preprocess.py: mnist_geometry; tests/test_strokes.py).
MNIST_STROKE = 2.4
MNIST_STROKE_P90 = 3.2
WORK_SIDE = 80                 # strokes are measured and thinned with the box scaled to this (4x MNIST's 20)
MIN_SIDE = 40                  # smaller pictures hold too few pixels per stroke to thin; they are left alone
BOX = 20


def stroke_width(binary: np.ndarray) -> float:
    """Twice the median distance from the skeleton of a boolean ink mask to the background, in pixels."""
    import scipy.ndimage as ndi                   # on first use, like the app's other heavy imports (~0.2 s)
    from skimage.morphology import skeletonize

    if not binary.any():
        return 0.0
    inside = ndi.distance_transform_edt(np.pad(binary, 1))[1:-1, 1:-1]
    along = inside[skeletonize(binary)]
    return 2.0 * float(np.median(along)) if along.size else 0.0


def box_side(binary: np.ndarray) -> int:
    """The longest side of a non-empty mask's bounding box, in pixels."""
    ys, xs = np.nonzero(binary)
    return int(max(ys.max() - ys.min(), xs.max() - xs.min()) + 1)


def width_in_box(binary: np.ndarray) -> float:
    """stroke_width of a non-empty mask in pixels of the 20-pixel box its bounding box is scaled to (how MNIST's
    and an upload's widths are compared)."""
    return stroke_width(binary) * BOX / box_side(binary)


def crop_to_ink(ink: np.ndarray, threshold: float) -> np.ndarray:
    """The bounding box of the pixels above `threshold` (there must be some)."""
    ys, xs = np.nonzero(ink > threshold)
    return ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def thin_thick_strokes(crop: np.ndarray, threshold: float = 0.05) -> np.ndarray:
    """A digit's ink (values in [0, 1], cropped to its bounding box) with its strokes thinned by their excess over
    MNIST's median width, when they are thicker than 9 in 10 of MNIST's. The result is cropped to its ink again;
    when thinned it is scaled down to at most WORK_SIDE on its longest side first (the caller scales it to 20 pixels
    anyway). Returned unchanged: small pictures, usual or thin strokes, and any digit erosion would mostly erase."""
    original, side = crop, max(crop.shape)
    if side < MIN_SIDE:
        return original
    if side > WORK_SIDE:
        nh, nw = (max(1, round(n * WORK_SIDE / side)) for n in crop.shape)
        t = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None, None]
        crop = F.interpolate(t, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)[0, 0].numpy()
    binary = crop > 0.5
    if not binary.any():
        return original
    box, width = box_side(binary), width_in_box(binary)
    if width <= MNIST_STROKE_P90:
        return original
    # Eroding by r takes 2r off the width: take off the excess over MNIST's median, measured in this box. (Making up
    # also for the box shrinking by 2r thins a little more and read no better on bench_preprocess's square-pen
    # sketches: 98.72% vs 98.77% over the three zoo models and seeds 0-2.)
    r = int(round((width - MNIST_STROKE) * box / BOX / 2))
    if r < 1:
        return original
    import scipy.ndimage as ndi
    from skimage.morphology import disk

    thinner = ndi.grey_erosion(crop, footprint=disk(r), mode="constant", cval=0.0)   # the crop ends at the ink
    if (thinner > 0.5).sum() < 0.2 * binary.sum() or thinner.max(initial=0) < 0.5:
        return original
    return crop_to_ink(thinner, threshold)
