"""Autoencoder tab: a digit in, its reconstruction out (with PSNR vs PCA), denoising, and the latent-2 map."""
from __future__ import annotations

import math
import time

import gradio as gr
import numpy as np
import torch

from training.generative.latent_space import (decode_grid, map_extent, map_image, map_pixel_to_latent, pca, test_codes,
                                              test_set_psnr)
from core.errors import InputError
from core.i18n import t
from ui.code_comments import translate
from ui.common import ALONE, INTERACTIVE, Place, api_endpoint, code_block, sketch_is_empty
from ui.digit_input import digit_input
from ui.errors import KEEP, api, page, status_box
from ui.examples import digit_examples, noise_example
from ui.i18n import label
from zoo.generative import GENERATIVE_REPO, read_extra
from zoo.generative_ops import add_noise, decode_points, error_map, grid, load, psnr
from zoo.images import mnist_preprocess, photo_reasons, reason_text
from zoo.pictures import to_uint8

MODELS = [(label("ae.model.16"), "ae_digits_16"), (label("ae.model.denoising"), "dae_digits_16"),
          (label("ae.model.2"), "ae_digits_2")]
DEFAULT_MODEL = "ae_digits_16"
MAP_MODEL = "ae_digits_2"
SCALE = 8  # 28 px shown as 224 px, nearest neighbour: every pixel visible

CODE = '''{imports}

# ---- the model: this project's convolutional autoencoder (zoo/generative.py), written out
{classes}


# ---- the preprocessing: MNIST's recipe (crop to ink, fit 20x20, centre of mass in 28x28)
{preprocess}


model = ConvAutoencoder(latent={latent})
load_model(model, hf_hub_download("{repo}", "{name}.safetensors"), strict=True)   # safetensors weights
model.eval()

clean = mnist_preprocess("my_digit.png").unsqueeze(0)  # (1, 1, 28, 28) in [0, 1]
g = torch.Generator().manual_seed(0)                    # the tab's noise is seeded: the same noise every time
x = (clean + {noise} * torch.randn(clean.shape, generator=g)).clamp(0, 1)   # optional input noise
with torch.inference_mode():
    z = model.encode(x)                                 # (1, {latent}): the code
    r = model.decode(z)                                 # (1, 1, 28, 28): the reconstruction
psnr = 10 * torch.log10(1 / (r - clean).pow(2).mean())  # dB against the clean digit, peak 1.0

# the PCA baseline with the same number of numbers: the mean and top principal components of the 4,000 mnist5k
# training digits (float64), published beside the weights
pca = load_file(hf_hub_download("{repo}", "{pca_file}"))
V = pca["components"][:{latent}]                        # ({latent}, 784)
r_pca = (((x.flatten(1).double() - pca["mean"]) @ V.T) @ V + pca["mean"]).float().view(1, 1, 28, 28).clamp(0, 1)
psnr_pca = 10 * torch.log10(1 / (r_pca - clean).pow(2).mean())
print(f"autoencoder {{psnr:.1f}} dB, PCA-{latent} {{psnr_pca:.1f}} dB")
'''

MAP_CODE = '''import torch
import torch.nn as nn
from huggingface_hub import hf_hub_download
from safetensors.torch import load_model


# ---- the model: this project's convolutional autoencoder (zoo/generative.py), written out
{classes}


model = ConvAutoencoder(latent=2)
load_model(model, hf_hub_download("{repo}", "ae_digits_2.safetensors"), strict=True)   # safetensors weights
model.eval()
with torch.inference_mode():
    img = model.decode(torch.tensor([[{z1:.3f}, {z2:.3f}]]))   # (1, 1, 28, 28): the digit at that point of the map
print("decoded", tuple(img.shape), "mean pixel", round(img.mean().item(), 4))
'''


def _code(latent: int, name: str, noise: float) -> str:
    """The reconstruction's plain-PyTorch code (zoo.standalone: the classes and preprocessing written out)."""
    from zoo.standalone import IMPORTS, PCA_FILE, generative_classes, preprocess_source

    return CODE.format(imports=IMPORTS.rstrip(), classes=generative_classes("ConvAutoencoder"),
                       preprocess=preprocess_source(), latent=latent, name=name, noise=noise, repo=GENERATIVE_REPO,
                       pca_file=PCA_FILE)


def _map_code(z1: float, z2: float) -> str:
    """The map's code (the page's only: its comments in the request's language)."""
    from zoo.standalone import generative_classes

    return translate(MAP_CODE.format(classes=generative_classes("ConvAutoencoder"), repo=GENERATIVE_REPO, z1=z1,
                                     z2=z2))


def slider_range() -> tuple[float, float, float, float]:
    """The map's extent as the trainer recorded it (cheap at build time; the model is loaded only on use)."""
    ext = read_extra().get(MAP_MODEL, {}).get("map_extent")
    if not ext:
        return -5.0, 5.0, -5.0, 5.0
    x0, x1, y0, y1 = ext
    return math.floor(x0 * 100) / 100, math.ceil(x1 * 100) / 100, math.floor(y0 * 100) / 100, math.ceil(y1 * 100) / 100


def _clip(z) -> tuple[float, float]:
    x0, x1, y0, y1 = slider_range()
    return round(min(max(z[0], x0), x1), 2), round(min(max(z[1], y0), y1), 2)


def _big(x) -> np.ndarray:
    return to_uint8(x, SCALE)


def _encode_map(x) -> tuple[float, float]:
    m = load(MAP_MODEL)
    with torch.no_grad():
        z = m.encode(x.to(next(m.parameters()).device))[0].cpu()
    return float(z[0]), float(z[1])


def _reconstruct(src, model_name: str, noise: float, drawn: bool = False, language: str | None = None):
    """Everything the tab shows for one input. drawn: src came from the sketchpad, so it is a drawing (the photo
    check is for uploads: a picture that is not digit-like is still rebuilt, and the summary says so). language:
    the summary's (None: the request's)."""
    name = model_name or DEFAULT_MODEL
    if name not in dict((v, k) for k, v in MODELS):
        raise InputError("autoencoder.model", model=name, models=", ".join(v for _, v in MODELS))
    noise = float(min(max(noise or 0.0, 0.0), 1.0))
    not_digit = [] if drawn else photo_reasons(src)             # [] = digit-like
    clean = mnist_preprocess(src).unsqueeze(0)                  # (1, 1, 28, 28)
    x = add_noise(clean, noise, seed=0)
    model = load(name)
    with torch.inference_mode():
        xd = x.to(next(model.parameters()).device)
        model(xd)                                                # warm-up: time the second pass, not lazy init
        t0 = time.perf_counter()
        r = model(xd).cpu()                                      # (1, 1, 28, 28)
        ms = (time.perf_counter() - t0) * 1000
    r_pca = pca(model.latent)(x).clamp(0, 1)
    ae_db, pca_db, in_db = psnr(r, clean), psnr(r_pca, clean), psnr(x, clean)
    t_ae, t_pca, latent = test_set_psnr(name)
    z = _encode_map(x)
    this, test = (("ae.summary.this_picture", "ae.summary.test_set_picture") if not_digit
                  else ("ae.summary.this_digit", "ae.summary.test_set_digit"))
    lines = [t(this, language, ae=f"{ae_db:.1f}", latent=latent, pca=f"{pca_db:.1f}",
               ms=f"{ms:.1f}")]
    if not_digit:
        lines.insert(0, t("ae.summary.not_a_digit", language,
                          reasons=t("ae.summary.reasons_joiner", language).join(
                              reason_text(why, language) for why in not_digit[:2])))
    if noise > 0:
        lines.append(t("ae.summary.noisy", language, db=f"{in_db:.1f}", noise=f"{noise:.2f}"))
    lines.append(t(test, language, name=name, ae=f"{t_ae:.2f}", latent=latent,
                   pca=f"{t_pca:.2f}", z1=f"{z[0]:.2f}", z2=f"{z[1]:.2f}"))
    code = _code(latent, name, round(noise, 3))
    zc = _clip(z)
    return (_big(r), _big(x), error_map(x, r, SCALE), _big(r_pca), "  \n".join(lines),
            map_image(MAP_MODEL, marker=z, point=z), zc[0], zc[1], _big(_decode(z)), z, code)


def _decode(z):
    return decode_points(MAP_MODEL, torch.tensor([[float(z[0]), float(z[1])]]))[0]


@api
def reconstruct(image, model: str = DEFAULT_MODEL, noise: float = 0.0):
    """Reconstruct an uploaded digit picture (the public API: /reconstruct)."""
    return _reconstruct(image, model, noise)


@api
def reconstruct_sketch(sketch, model: str = DEFAULT_MODEL, noise: float = 0.0):
    """Reconstruct the sketchpad drawing."""
    return _reconstruct(sketch, model, noise, drawn=True)


@api
def decode_point(z1: float, z2: float, marker):
    """Decode the point picked with the sliders; redraw the map with it."""
    z = _clip((float(z1), float(z2)))
    return _big(_decode(z)), map_image(MAP_MODEL, marker=tuple(marker) if marker else None, point=z), \
        _map_code(z[0], z[1])


@api
def pick_on_map(marker, evt: gr.SelectData):
    """A click on the map picture -> the latent point under it, decoded."""
    px, py = evt.index
    z = _clip(map_pixel_to_latent(float(px), float(py), MAP_MODEL))
    img, mp, code = decode_point(z[0], z[1], marker)
    return z[0], z[1], img, mp, code


@api
def plane_grid(n: int = 15):
    """Decodings of an n x n grid of points spanning the map."""
    n = int(min(max(n, 3), 25))
    return grid(decode_grid(MAP_MODEL, n), nrow=n, scale=2, pad=1)


@api
def initial_map(current=None):
    """Draw the map (once: later visits to the tab keep what the user did)."""
    if current is not None:
        return (gr.skip(),) * 5
    x0, x1, y0, y1 = map_extent(MAP_MODEL)
    z = _clip(((x0 + x1) / 2, (y0 + y1) / 2))
    return map_image(MAP_MODEL, point=z), z[0], z[1], _big(_decode(z)), _map_code(z[0], z[1])


# The tab: errors go to the status line under the input; the map and the picked point stay as they are.
RESET = (None, None, None, None, "", KEEP, KEEP, KEEP, KEEP, KEEP, "")


def _page(out: tuple) -> tuple:
    """The page's outputs: the code's comments in the request's language (the API's stay English)."""
    return (*out[:10], translate(out[10]))


@page(RESET, empty=lambda image, *_: image is None)
def reconstruct_ui(image, model: str, noise: float):
    return _page(_reconstruct(image, model, noise))


@page(RESET, empty=sketch_is_empty)
def reconstruct_sketch_ui(sketch, model: str, noise: float):
    return _page(_reconstruct(sketch, model, noise, drawn=True))


def rerun_ui(last: str, sketch, upload, model: str, noise: float):
    """A new model or noise level: rebuild whichever input is shown."""
    if last == "sketch":
        return reconstruct_sketch_ui(sketch, model, noise)
    return reconstruct_ui(upload, model, noise)


def warm_up() -> None:
    """On page load, in the background: encode the test set for the map and measure the test-set PSNR (both
    cached), so the tab's first visit does not wait for the data set to load (~5 s on a busy 2-core CPU)."""
    test_codes(MAP_MODEL)
    test_set_psnr(DEFAULT_MODEL)


def first_visit(current, sketch, model: str, noise: float):
    """The first visit: an example digit rebuilt and the map drawn with it (later visits keep what the visitor
    did; a drawing made meanwhile gets the plain map). Outputs: the reconstruction outputs, the status, the
    map's code, the upload box, which input is shown, the decoded grid over the plane, the examples' names in the
    page's language, and the model and noise it rebuilt with (after_first_visit)."""
    if current is not None:
        return (gr.skip(),) * 18
    used = (model, float(noise or 0.0))
    path = digit_examples()[2][1]
    plane = plane_grid(15)
    names = gr.Dataset(sample_labels=example_names())
    out = reconstruct_ui(path, model, noise) if sketch_is_empty(sketch) else None
    if out is None or not isinstance(out[6], float):   # the visitor is drawing (or the example failed): the map
        m, a, b, dec, mcode = initial_map(None)
        return (*(gr.skip(),) * 5, m, a, b, dec, gr.skip(), gr.skip(), gr.skip(), mcode, gr.skip(), gr.skip(), plane,
                names, used)
    return (*out, _map_code(out[6], out[7]), path, "upload", plane, names, used)


def after_first_visit(used, last: str, sketch, upload, model: str, noise: float):
    """After the first visit: if the visitor picked another model or noise level while it ran, its result (made
    with the ones it started with) may have landed after theirs; rebuild with the visitor's. Otherwise nothing.
    The last output clears `used`, so a later visit to the tab (the first visit then does nothing) rebuilds nothing."""
    if not used or (used[0], float(used[1])) == (model, float(noise or 0.0)):
        return (*(gr.skip(),) * 12, None)
    return (*rerun_ui(last, sketch, upload, model, noise), None)


EXAMPLES = digit_examples() + [noise_example()]   # (name's key, path)


def example_names(language: str | None = None) -> list[str]:
    """The examples' names under the upload box in a language (None: the request's)."""
    return [t(key, language) for key, _ in EXAMPLES]


def build_tab(place: Place = ALONE) -> None:
    """place.tab: its select event draws the map on the first visit (built alone: on page load, if there is a page)."""
    gr.Markdown(label("ae.intro"))
    with gr.Accordion(label("ae.what"), open=False):
        gr.Markdown(label("ae.what.text"))
    with gr.Row():
        with gr.Column(scale=1):
            digit = digit_input("ae", EXAMPLES, canvas=360, brush=26, upload_height=260,
                                upload_label=label("ae.upload"), sketch_label=label("pad.draw_digit"),
                                draw_tab=label("pad.draw_tab"), upload_tab=label("pad.upload_tab"),
                                examples_label=label("pad.examples"), example_labels=example_names("en"))
            sketch, upload, examples = digit.sketch, digit.upload, digit.examples
            status = status_box("ae-status")
            model = gr.Radio(MODELS, value=DEFAULT_MODEL, label=label("ae.model"), elem_id="ae-model")
            noise = gr.Slider(0, 1, value=0, step=0.05, label=label("ae.noise"), elem_id="ae-noise")
        with gr.Column(scale=2):
            with gr.Row():
                pic = dict(interactive=False, format="png", height=224, buttons=["download"], min_width=140)
                seen = gr.Image(label=label("ae.seen"), **pic)
                recon = gr.Image(label=label("ae.recon"), elem_id="ae-recon", **pic)
                err = gr.Image(label=label("ae.error"), **pic)
                pca_img = gr.Image(label=label("ae.pca"), **pic)
            summary = gr.Markdown(elem_id="ae-summary")
    gr.Markdown(label("ae.map.intro"))
    with gr.Row():
        with gr.Column(scale=3):
            map_img = gr.Image(label=label("ae.map"), interactive=False,
                               elem_id="ae-map", elem_classes=["wide-picture"], height=520, buttons=["download"])
        with gr.Column(scale=2):
            x0, x1, y0, y1 = slider_range()
            z1 = gr.Slider(x0, x1, value=round((x0 + x1) / 2, 2), step=0.01, label="z1", elem_id="ae-z1")
            z2 = gr.Slider(y0, y1, value=round((y0 + y1) / 2, 2), step=0.01, label="z2", elem_id="ae-z2")
            decoded = gr.Image(label=label("ae.decoded"), interactive=False, format="png", height=224,
                               elem_id="ae-decoded")
            grid_n = gr.Slider(5, 25, value=15, step=1, label=label("ae.grid_size"))
            grid_btn = gr.Button(label("ae.grid_button"), elem_id="ae-grid-btn")
    plane = gr.Image(label=label("ae.grid"), interactive=False, elem_id="ae-grid")
    marker = gr.State(None)
    code = code_block()
    map_code = code_block(label("ae.map_code"))

    outputs = [recon, seen, err, pca_img, summary, map_img, z1, z2, decoded, marker, code]
    common = INTERACTIVE
    last = gr.State("upload")  # which input the shown reconstruction came from
    point_code = dict(fn=_map_code, inputs=[z1, z2], outputs=map_code,
                      api_visibility="private")  # the map's code follows the point a reconstruction picked
    # The map needs the model: drawn when the tab is first opened (not at start-up), with an example digit rebuilt;
    # the visitor's own input cancels that if it is still running, so it never overwrites their result.
    first_in = [map_img, sketch, model, noise]
    first_used = gr.State(None)   # the model and noise the first visit rebuilt with
    first_out = outputs + [status, map_code, upload, last, plane, examples.dataset, first_used]
    first = place.on_select(first_visit, first_in, first_out, api_visibility="private", **common) \
        or place.on_load(first_visit, first_in, first_out, api_visibility="private", **common)
    if first is not None:   # a model or noise picked while it ran: the visitor's choice is shown last
        first.then(after_first_visit, [first_used, last, sketch, upload, model, noise], outputs + [status, first_used],
                   api_visibility="private", **common).then(**point_code)
    first = [first] if first is not None else []
    upload.upload(reconstruct_ui, [upload, model, noise], outputs + [status], api_visibility="private",
                  trigger_mode="always_last", cancels=first, **common).then(
        lambda: "upload", None, last, api_visibility="private").then(**point_code)
    upload.clear(reconstruct_ui, [upload, model, noise], outputs + [status], api_visibility="private", cancels=first)
    examples.load_input_event.then(reconstruct_ui, [upload, model, noise], outputs + [status],
                                   api_visibility="private", **common).then(
        lambda: "upload", None, last, api_visibility="private").then(**point_code)
    sketch.change(reconstruct_sketch_ui, [sketch, model, noise], outputs + [status], api_visibility="private",
                  trigger_mode="always_last", show_progress="hidden", cancels=first, **common).then(
        lambda s: gr.skip() if sketch_is_empty(s) else "sketch", sketch, last, api_visibility="private").then(
        **point_code)
    model.change(rerun_ui, [last, sketch, upload, model, noise], outputs + [status], api_visibility="private",
                 **common).then(**point_code)
    noise.release(rerun_ui, [last, sketch, upload, model, noise], outputs + [status], api_visibility="private",
                  **common).then(**point_code)
    api_endpoint(reconstruct, [upload, model, noise], outputs, "reconstruct", **common)
    api_endpoint(reconstruct_sketch, [sketch, model, noise], outputs, "reconstruct_sketch", **common)
    for ctl in (z1, z2):
        ctl.release(decode_point, [z1, z2, marker], [decoded, map_img, map_code],
                    api_visibility="private", **common)
    map_img.select(pick_on_map, marker, [z1, z2, decoded, map_img, map_code], api_visibility="private", **common)
    grid_btn.click(plane_grid, grid_n, plane, api_name="ae_plane_grid", **common)
    if place.demo is not None:
        place.demo.load(warm_up, None, None, api_visibility="private", show_progress="hidden",
                        concurrency_id="warm-up", concurrency_limit=1)
