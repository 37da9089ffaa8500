"""zoo.strokes: MNIST's stroke widths as the code states them; only what is far thicker than MNIST's pen is thinned."""
import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
import torch.nn.functional as F
from skimage.morphology import skeletonize

from zoo import strokes
from zoo.strokes import MNIST_STROKE, MNIST_STROKE_P90, stroke_width, thin_thick_strokes, width_in_box


def _width_in_box(ink: np.ndarray) -> float:
    return width_in_box(ink > 0.5)


def _upscaled(digit: torch.Tensor, factor: float = 10) -> np.ndarray:
    return F.interpolate(digit[None, None], scale_factor=factor, mode="bilinear")[0, 0].numpy()


def _drawn(digit: torch.Tensor, box: int, brush: int = 28) -> np.ndarray:
    """The digit's pen path traced with a round brush, the digit `box` px tall (as on the Classify sketchpad)."""
    ys, xs = np.nonzero(digit.numpy() > 0)
    big = _upscaled(digit, box / (max(np.ptp(ys), np.ptp(xs)) + 1))
    ink = ndi.uniform_filter((ndi.distance_transform_edt(~skeletonize(big > 0.4)) <= brush / 2).astype(np.float32), 3)
    ys, xs = np.nonzero(ink > 0.05)
    return ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def test_width_of_a_known_bar():
    bar = np.zeros((60, 200), bool)
    bar[20:32, 10:190] = True                       # 12 px wide
    assert stroke_width(bar) == pytest.approx(12, abs=1.0)
    assert stroke_width(np.zeros((5, 5), bool)) == 0.0


def test_mnist_widths_are_the_stated_constants(mnist_digits):
    widths = [_width_in_box(_upscaled(d[0])) for d in mnist_digits[:300]]
    assert np.median(widths) == pytest.approx(MNIST_STROKE, abs=0.15)
    assert np.percentile(widths, 90) == pytest.approx(MNIST_STROKE_P90, abs=0.2)


def test_mnist_strokes_are_left_alone(mnist_digits):
    ups = [_upscaled(d[0]) for d in mnist_digits[:100]]
    unchanged = sum(thin_thick_strokes(up) is up for up in ups)
    assert unchanged >= 85                          # only those thicker than 9 in 10 of MNIST's may be thinned


def test_a_small_digit_drawn_with_the_big_brush_is_thinned(mnist_digits):
    digit = mnist_digits[0][0]
    drawn = _drawn(digit, box=110)
    assert _width_in_box(drawn) > MNIST_STROKE_P90 + 1      # the 28 px brush on a 110 px digit: far too thick
    thinner = thin_thick_strokes(drawn)
    assert max(thinner.shape) <= strokes.WORK_SIDE
    assert _width_in_box(thinner) == pytest.approx(MNIST_STROKE, abs=0.8)
    # still the same digit: its ink covers the path it was drawn along
    ref = F.interpolate(torch.from_numpy(drawn)[None, None], size=thinner.shape, mode="bilinear",
                        antialias=True)[0, 0].numpy()
    assert (thinner > 0.5)[skeletonize(ref > 0.5)].mean() > 0.9


def test_usual_strokes_small_pictures_and_blank_come_back_unchanged(mnist_digits):
    digit = mnist_digits[0][0]
    big = _drawn(digit, box=300)                            # the big brush on a big digit: MNIST-like widths
    assert thin_thick_strokes(big) is big
    small = np.ones((30, 30), np.float32)
    assert thin_thick_strokes(small) is small
    faint = np.full((100, 100), 0.3, np.float32)
    assert thin_thick_strokes(faint) is faint


def test_erosion_that_would_erase_the_digit_is_refused():
    bar = np.ones((40, 80), np.float32)                     # "strokes" 40 px wide in an 80 px box: far too thick,
    assert _width_in_box(bar) > 2 * MNIST_STROKE_P90        # but thinning it to MNIST's width would leave under a
    assert thin_thick_strokes(bar) is bar                   # fifth of its ink, so it is left as it is


@pytest.fixture(scope="module")
def mnist_digits():
    from training.data.datasets import mnist5k

    return mnist5k().test_x
