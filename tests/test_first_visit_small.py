"""Issue #26 items 7 and 11, the small ones a new learner met: the GAN's interpolation strip starts and ends on the
digits asked for, and no label floats over the GAN's pictures; the autoencoder says when a picture is not a digit;
Fine-tune's file drop boxes show their whole text; the resampling chart's legend sits beside the bars, not on
them; and building the app imports none of the heavy libraries the page does not need (start-up time).
Screenshots land in test-artifacts/first_visit_small_<name>.png."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import ARTIFACTS, ROOT

WIDTHS = [1280, 414]
# Heavy libraries the page does not need to be built; each is imported on first use (bench/bench_startup.py).
HEAVY = ("torchvision", "torch._dynamo", "matplotlib", "scipy", "sklearn", "captum", "skimage", "mlxtend", "sympy")


# ---- start-up (item 11) ---------------------------------------------------------------------------------------

@pytest.mark.app   # builds the app in a subprocess
def test_building_the_app_imports_no_heavy_library():
    code = ("import json, sys, app; app.build_app(); "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.app   # builds the app in a subprocess
def test_building_the_app_leaves_its_fastapi_app_to_launch():
    """build_app skips the FastAPI apps Gradio builds and throws away before launch() (app._fastapi_app_at_launch_only):
    demo.app is None until launch, building twice works, and any other Blocks gets its app as Gradio builds it.
    `import app` leaves the garbage collector on (only `python app.py` turns it off until the server answers)."""
    code = ("import gc, json, app, gradio as gr; a = app.build_app(); b = app.build_app(); "
            "other = gr.Blocks(); other.__enter__(); gr.Markdown('x'); other.__exit__(); other.queue(); "
            "print(json.dumps([a.app is None, b.app is None, type(other.app).__name__, gc.isenabled()]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(ROOT), capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, True, "App", True]


def test_the_gan_grid_is_torchvisions_make_grid():
    """zoo.generative_ops.grid lays images out as torchvision.utils.make_grid does (it no longer imports it)."""
    from torchvision.utils import make_grid

    from zoo.generative_ops import grid
    from zoo.pictures import to_uint8

    gen = torch.Generator().manual_seed(0)
    for n, nrow, pad in [(1, None, 2), (2, 10, 2), (10, 10, 2), (17, None, 2), (64, 10, 2), (225, 15, 1)]:
        x = torch.rand(n, 1, 28, 28, generator=gen) * 1.4 - 0.2
        k = nrow or max(1, int(np.ceil(np.sqrt(n))))
        want = to_uint8(make_grid(x.clamp(0, 1), nrow=k, padding=pad, pad_value=0.35)[0], 3)
        assert np.array_equal(grid(x, nrow, 3, pad), want), (n, nrow, pad)


# ---- GAN (item 7a) --------------------------------------------------------------------------------------------

def _strip_frames(path: str, steps: int) -> torch.Tensor:
    """The frames of an interpolation strip (grid(frames, nrow=steps, scale=3), 2 px frames) as (steps, 1, 28, 28)."""
    with Image.open(path) as im:
        a = np.asarray(im.convert("L"), dtype=np.float32)[::3, ::3] / 255.0
    return torch.stack([torch.from_numpy(a[2:30, 2 + 30 * k:30 + 30 * k].copy()) for k in range(steps)])[:, None]


def test_interpolation_ends_are_the_digits_asked_for():
    """Every seed 0..19, 3 -> 8 and 7 -> 1: resnet_digits reads the first frame as digit A and the last as digit B
    (seed 0's first noise vector, drawn as a 3, reads as a 5: the strip used to start there)."""
    from zoo.generative_ops import end_latent, interpolate, read_digits, sample

    assert int(read_digits(sample(0, 1, 3))[0]) != 3            # the case the learner met, still in the model
    for a, b in [(3, 8), (7, 1)]:
        for seed in range(20):
            frames, _ = interpolate(seed, seed + 1, 6, a, b)
            reads = read_digits(frames).tolist()
            assert (reads[0], reads[-1]) == (a, b), (seed, a, b, reads)
    z, k = end_latent(0, 3)
    assert k > 0 and torch.equal(end_latent(0, 3)[0], z)         # the same seed, the same end


def test_the_interpolation_api_strip_starts_at_digit_a(client):
    from zoo.generative_ops import read_digits

    strip, _gif, code = client.predict(0, 1, "3", "8", 10, 0.0, api_name="/gan_interpolate")
    reads = read_digits(_strip_frames(strip, 10)).tolist()
    assert reads[0] == 3 and reads[-1] == 8, reads
    assert "latent(0, 16, 64, 0.0)[" in code                     # the snippet names the rows it used


def _overlaps(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def _open_tab(pg, title: str) -> None:
    """A tab by title; on a narrow screen the tabs that do not fit are behind a "..." menu."""
    pg.locator("[role=tab]").first.wait_for(state="visible")
    pg.wait_for_timeout(300)
    tab = pg.get_by_role("tab", name=title, exact=True).locator("visible=true")
    if tab.count():
        tab.first.click()
        return
    item = pg.locator(".overflow-dropdown button").get_by_text(title, exact=True)
    menu = pg.locator(".overflow-menu").filter(has=item).locator("visible=true").first
    menu.locator("> button").click()
    menu.locator(".overflow-dropdown button").get_by_text(title, exact=True).first.click()


@pytest.fixture(params=WIDTHS, ids=lambda w: f"{w}px")
def wpage(request, browser, app_url):
    ctx = browser.new_context(viewport={"width": request.param, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(120_000)
    pg.goto(app_url, wait_until="domcontentloaded")
    pg.wait_for_selector(".gradio-container", state="visible")
    pg.width = request.param
    yield pg
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{request.node.name.replace('[', '_').rstrip(']')}.png"), full_page=True)
    ctx.close()


def _snap(pg, locator, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    locator.scroll_into_view_if_needed()
    pg.wait_for_timeout(300)
    locator.screenshot(path=str(ARTIFACTS / f"first_visit_small_{name}_{pg.width}px.png"))


def test_gan_pictures_have_no_label_over_them_and_the_strip_says_what_it_shows(wpage):
    pg = wpage
    _open_tab(pg, "GAN")
    pg.locator("#gan-interp-btn").click()      # (the tab's first visit shows the same strip; this does not wait on it)
    note = pg.locator("#gan-strip-note")
    note.get_by_text("reads the frames as").wait_for()
    assert "From a 3 to an 8" in note.inner_text()
    reads = note.inner_text().split("reads the frames as:")[1].split(".")[0].split()
    assert reads[0] == "3" and reads[-1] == "8", reads
    for pic in ("#gan-grid", "#gan-strip"):
        img = pg.locator(f"{pic} img").first
        img.scroll_into_view_if_needed()
        pg.wait_for_function(f"() => document.querySelector('{pic} img')?.complete")
        box = img.bounding_box()
        over = pg.locator(f"{pic} [data-testid=block-label], {pic} button:not(:has(img))").locator("visible=true").all()
        assert not [e.inner_text() or e.get_attribute("aria-label") for e in over if _overlaps(e.bounding_box(), box)]
    assert pg.locator("#gan-grid-title").inner_text().strip() == "The same samples as one grid"
    _snap(pg, pg.locator("#gan-grid").locator("xpath=.."), "gan_grid")
    _snap(pg, pg.locator("#gan-strip").locator("xpath=../.."), "gan_strip")


# ---- Autoencoder (item 7b) ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def photo_png(tmp_path_factory):
    import skimage.data

    p = tmp_path_factory.mktemp("photo") / "chelsea.png"
    Image.fromarray(skimage.data.chelsea()).save(p)
    return str(p)


def test_the_autoencoder_says_a_photo_is_not_a_digit(client, photo_png):
    from gradio_client import handle_file

    from ui.examples import digit_examples

    summary = client.predict(handle_file(photo_png), api_name="/reconstruct")[4]
    assert "does not look like a digit" in summary and "This picture:" in summary and "This digit" not in summary
    assert "many colours" in summary                               # the photo check's own reason, in words
    digit = client.predict(handle_file(digit_examples()[3][1]), api_name="/reconstruct")[4]
    assert "This digit:" in digit and "does not look like a digit" not in digit


def test_the_autoencoder_tab_shows_the_photo_note(page, photo_png):
    from tests.conftest import open_tab

    open_tab(page, "Autoencoder")
    page.get_by_role("tab", name="Upload", exact=True).locator("visible=true").first.click()
    page.locator("#ae-upload input[type=file]").set_input_files(photo_png)
    summary = page.locator("#ae-summary")
    summary.get_by_text("does not look like a digit").wait_for()
    assert "This picture:" in summary.inner_text()
    page.width = 1300
    _snap(page, summary.locator("xpath=../.."), "autoencoder_photo")


# ---- Fine-tune (item 7c) --------------------------------------------------------------------------------------

def test_finetune_drop_boxes_show_their_whole_text(wpage):
    pg = wpage
    _open_tab(pg, "Fine-tune")
    pg.get_by_text("Resume from a checkpoint").first.click()
    for box_id in ("ft-zip", "ft-ckpt-in"):
        drop = pg.locator(f"#{box_id} .upload-container").first
        drop.scroll_into_view_if_needed()
        sizes = drop.evaluate("e => [e.scrollHeight, e.clientHeight]")
        assert sizes[0] <= sizes[1] + 1, (box_id, sizes)       # nothing cut off at the bottom
        outer = drop.bounding_box()
        for text in ("Drop File Here", "Click to Upload"):
            inner = drop.get_by_text(text).first.bounding_box()
            assert inner["y"] >= outer["y"] and inner["y"] + inner["height"] <= outer["y"] + outer["height"], text
    _snap(pg, pg.locator("#ft-zip"), "finetune_zip")


# ---- Data: resampling chart (item 7d) -------------------------------------------------------------------------

def test_the_resampling_legend_covers_no_bar():
    """The chart as /resample draws it, from the real histograms (1 training step per method): the legend's box
    meets no bar, and the chart is saved for a look."""
    from matplotlib.patches import Rectangle

    from training.resample import compare
    from ui.data import DEFAULT_COUNTS, _hist_figure
    from zoo.pictures import fig_to_array

    hist = compare(DEFAULT_COUNTS, steps=1)["histograms"]
    assert len(hist) == 5                                        # before + the four methods
    fig = _hist_figure(hist)
    pixels = fig_to_array(fig)                                   # draws it: the boxes below are the drawn ones
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    bars = [p.get_window_extent() for p in ax.patches if isinstance(p, Rectangle) and p.get_height() > 0]
    assert len(bars) == 50
    assert not [b for b in bars if b.overlaps(legend)]
    assert fig.bbox.contains(legend.x0, legend.y0) and fig.bbox.contains(legend.x1 - 1, legend.y1 - 1)  # not cut
    ARTIFACTS.mkdir(exist_ok=True)
    Image.fromarray(pixels).save(ARTIFACTS / "first_visit_small_resample_chart.png")
