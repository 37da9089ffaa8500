"""GAN tab: sample the class-conditional DCGAN by seed and digit, truncate its noise, interpolate, see its training."""
from __future__ import annotations

import os
import tempfile
import time

import gradio as gr
import pandas as pd

from training.generative.fid import class_histogram
from core.errors import InputError
from core.i18n import N_, current_language, t
from ui.code_comments import translate
from ui.common import ALONE, INTERACTIVE, Place, api_endpoint, code_block, whole_number
from ui.errors import api, page, status_box
from ui.i18n import label
from zoo.generative import GENERATIVE_REPO, read_extra
from zoo.generative_ops import (END_CANDIDATES, END_SURE, digit_labels, gif_bytes, grid, interpolate, read_digits,
                                realness, sample)
from zoo.pictures import to_uint8

ANY = "any (0-9 in turn)"
DIGITS = [ANY] + [str(d) for d in range(10)]
DIGIT_CHOICES = [(label("gan.digit.any"), ANY)] + [(d, d) for d in DIGITS[1:]]   # the value stays ANY
MAX_COUNT = 100
GALLERY_SCALE = 3  # 28 px -> 84 px tiles

CODE = '''import torch
import torch.nn as nn
from huggingface_hub import hf_hub_download
from safetensors.torch import load_model


# ---- the models: this project's class-conditional DCGAN (zoo/generative.py), written out
{classes}


G, D = Generator(width=48), Discriminator(width=32)
load_model(G, hf_hub_download("{repo}", "gan_digits_g.safetensors"), strict=True)   # safetensors weights
load_model(D, hf_hub_download("{repo}", "gan_digits_d.safetensors"), strict=True)
G.eval(); D.eval()

g = torch.Generator().manual_seed({seed})
z = torch.randn({n}, 64, generator=g)                   # the noise: one row per image{trunc}
y = {labels}        # the digit each image should be
with torch.inference_mode():
    images = G(z, y)                                    # ({n}, 1, 28, 28) in [0, 1]
    p_real = torch.sigmoid(D(images, y))                # D's belief that each one is real
print(tuple(images.shape), "mean pixel of each image:", [round(v, 3) for v in images.mean(dim=(1, 2, 3)).tolist()])
print("D's belief that each is real (under each picture):", [round(v, 2) for v in p_real.tolist()])
'''

TRUNC_CODE = '''
for _ in range(100):                                    # truncation: redraw entries beyond +-{t}
    bad = z.abs() > {t}
    if not bad.any(): break
    z[bad] = torch.randn(int(bad.sum()), generator=g)
z = z.clamp(-{t}, {t})                                  # (in case 100 rounds left any)'''

INTERP_CODE = '''import torch
import torch.nn as nn
from huggingface_hub import hf_hub_download
from safetensors.torch import load_model


# ---- the generator: this project's class-conditional DCGAN generator (zoo/generative.py), written out
{classes}


# ---- seeded noise (truncated as in the sampler) and spherical interpolation between two noise vectors
{helpers}


G = Generator(width=48)
load_model(G, hf_hub_download("{repo}", "gan_digits_g.safetensors"), strict=True)   # safetensors weights
G.eval()
# each end: the first of the seed's first {n} noise vectors that G draws clearly as that end's digit (the digits
# classifier resnet_digits at least {sure:.0%} sure: G does not always draw the digit it is asked for)
za, zb = latent({a}, {n}, 64, {trunc})[{ka}], latent({b}, {n}, 64, {trunc})[{kb}]
t = torch.linspace(0, 1, {steps})
z = slerp(za, zb, t)                                    # ({steps}, 64): a path through noise space
e = torch.lerp(G.embed(torch.tensor([{da}])), G.embed(torch.tensor([{db}])), t[:, None])  # digit embeddings
with torch.inference_mode():
    h = G.fc(torch.cat([z, e], 1)).view(-1, 96, 7, 7)
    frames = (G.net(h) + 1) / 2                         # ({steps}, 1, 28, 28)
print(tuple(frames.shape), "mean pixel of each frame:", [round(v, 3) for v in frames.mean(dim=(1, 2, 3)).tolist()])
'''


def _classes(*names: str) -> str:
    """The DCGAN classes' source for the code panels (zoo.standalone: plain PyTorch, no import of this project)."""
    from zoo.standalone import generative_classes

    return generative_classes(*names)


def _helpers() -> str:
    from zoo.generative_ops import latent, slerp
    from zoo.standalone import source

    return source(latent, slerp)


def _digit(choice) -> int | None:
    if choice in (None, "", ANY):
        return None
    try:
        d = int(str(choice).strip())
    except ValueError:
        d = -1
    if not 0 <= d <= 9:
        raise InputError("gan.digit", any=ANY, value=str(choice))
    return d


@api
def gan_sample(seed: float = 0, count: float = 64, digit: str = ANY, truncation: float = 0.0):
    """Sample the generator (the public API: /gan_sample). Returns the gallery, a grid, a summary and the code."""
    seed, n, d = whole_number(seed, "field.seed", 0, 2**63 - 1), int(count or 64), _digit(digit)
    if not 1 <= n <= MAX_COUNT:
        raise InputError("gan.count", most=MAX_COUNT, value=n)
    trunc = float(truncation or 0.0)
    t0 = time.perf_counter()
    x = sample(seed, n, d, trunc)                                    # (n, 1, 28, 28)
    ms = (time.perf_counter() - t0) * 1000
    y = digit_labels(n, d)
    p = realness(x, y)
    _, pred = class_histogram(x)
    agree = int((pred == y).sum())
    gallery = [(to_uint8(img, GALLERY_SCALE), f"{int(yi)}→{int(pi)} D{float(pi_r):.2f}".replace("D0.", "D."))
               for img, yi, pi, pi_r in zip(x, y, pred, p)]
    summary = t("gan.summary", None, n=n, ms=f"{ms:.1f}", agree=agree, p=f"{float(p.mean()):.2f}")
    labels = f"torch.full(({n},), {d})" if d is not None else f"torch.arange({n}) % 10"
    code = CODE.format(seed=seed, n=n, labels=labels, trunc=TRUNC_CODE.format(t=trunc) if trunc > 0 else "",
                       classes=_classes("Generator", "Discriminator"), repo=GENERATIVE_REPO)
    return gallery, grid(x, nrow=min(n, 10), scale=2), summary, code


@api
def gan_interpolate(seed_a: float = 0, seed_b: float = 1, digit_a: str = "3", digit_b: str = "8",
                    steps: float = 10, truncation: float = 0.0):
    """Images along a path from seed A (digit A) to seed B (digit B): a strip and an animated GIF."""
    strip, path, code, _note = _interpolate(seed_a, seed_b, digit_a, digit_b, steps, truncation)
    return strip, path, code


def _interpolate(seed_a, seed_b, digit_a, digit_b, steps, truncation):
    """gan_interpolate's work, with a line under the strip: the digit resnet_digits reads in each frame."""
    steps = int(min(max(int(steps or 10), 2), 32))
    da, db = _digit(digit_a), _digit(digit_b)
    da = 0 if da is None else da
    db = da if db is None else db
    seed_a = whole_number(seed_a, "field.seed_a", 0, 2**63 - 1)
    seed_b = whole_number(seed_b, "field.seed_b", 0, 2**63 - 1)
    frames, (ka, kb) = interpolate(seed_a, seed_b, steps, da, db, float(truncation or 0.0))
    path = os.path.join(tempfile.mkdtemp(prefix="gan-gif-"), f"interp-{int(seed_a)}-{int(seed_b)}.gif")
    with open(path, "wb") as f:
        f.write(gif_bytes(frames))
    code = INTERP_CODE.format(classes=_classes("Generator"), helpers=_helpers(), repo=GENERATIVE_REPO,
                              a=int(seed_a), b=int(seed_b), steps=steps, da=da, db=db, n=END_CANDIDATES, ka=ka,
                              kb=kb, sure=END_SURE, trunc=float(truncation or 0.0))
    reads = " ".join(str(d) for d in read_digits(frames).tolist())
    ends = [t("gan.interp.end", None, seed=int(s), row=k) for s, k in ((seed_a, ka), (seed_b, kb)) if k]
    note = t("gan.interp.note", None, a=da, b=db, reads=reads)
    if ends:
        note += ("" if current_language() == "zh" else " ") + t("gan.interp.ends", None, n=END_CANDIDATES,
                                                                 sure=f"{END_SURE:.0%}",
                                                                 ends=t("gan.interp.and").join(ends))
    return grid(frames, nrow=steps, scale=3), path, code, note


@api
def gan_interpolate_page(seed_a=0, seed_b=1, digit_a="3", digit_b="8", steps=10, truncation=0.0):
    """The page's Interpolate: the strip, the GIF, the code (its comments in the request's language) and the line
    that says what each frame reads as."""
    strip, path, code, note = _interpolate(seed_a, seed_b, digit_a, digit_b, steps, truncation)
    return strip, path, translate(code), note


@page((None, None, "", ""))
def gan_sample_ui(seed=0, count=64, digit=ANY, truncation=0.0):
    """The page's Sample: the code's comments in the request's language (the API's stay English)."""
    gallery, picture, summary, code = gan_sample(seed, count, digit, truncation)
    return gallery, picture, summary, translate(code)


def curves_frames(language: str | None = None):
    """The recorded G and D training curves as long-format DataFrames (None when not recorded), and the note under
    them in a language (None: the request's)."""
    rec = read_extra().get("gan_digits_g")
    if not rec or not rec.get("curve"):
        return None, None, t("gan.curves.none", language)
    c = pd.DataFrame(rec["curve"])
    loss = pd.concat([pd.DataFrame({"step": c.step, "value": c.d_loss, "series": "D loss"}),
                      pd.DataFrame({"step": c.step, "value": c.g_loss, "series": "G loss"})])
    prob = pd.concat([pd.DataFrame({"step": c.step, "value": c.d_real, "series": "D(real)"}),
                      pd.DataFrame({"step": c.step, "value": c.d_fake, "series": "D(G(z))"})])
    m = rec.get("metrics", {})
    chk = ", ".join(t("gan.curves.checkpoint", language, step=k["step"], fid=f"{k['fid_train']:.2f}")
                    for k in rec.get("checkpoints", []))
    note = (t("gan.curves.note", language, steps=rec.get("steps"), seconds=rec.get("train_seconds"),
              device=rec.get("device"), command=rec.get("train_command"), kept=rec.get("kept_step"),
              fid=m.get("fid_test"), real=m.get("fid_ref_train_vs_test"),
              blurred=m.get("fid_ref_blurred_test_vs_test"), checkpoints=chk)
            + "  \n" + t("gan.curves.reading", language))
    return loss, prob, note


def curve_plots(language: str | None = None):
    """The two training-curve plots with their titles and axes in a language (None: the request's), and the note."""
    loss, prob, note = curves_frames(language)
    common = dict(x="step", y="value", color="series", height=260, x_title=t("gan.plot.step", language),
                  color_title=t("gan.plot.series", language))
    return (gr.LinePlot(loss, title=t("gan.plot.losses", language), y_title=t("gan.plot.loss", language),
                        elem_id="gan-loss-plot", **common),
            gr.LinePlot(prob, title=t("gan.plot.d_output", language), y_title=t("gan.plot.probability", language),
                        y_lim=[0, 1], elem_id="gan-prob-plot", **common),
            note)


def first_visit(current, seed, count, digit, truncation, seed_a, seed_b, digit_a, digit_b, steps):
    """Sample and interpolate with the settings shown, on the first visit only (later visits keep what the
    visitor did); the examples' names, the training curves and their note in the page's language."""
    if current:
        return (gr.skip(),) * 12
    return (*gan_sample_ui.__wrapped__(seed, count, digit, truncation),
            *gan_interpolate_page(seed_a, seed_b, digit_a, digit_b, steps, truncation),
            gr.Dataset(sample_labels=[t(key) for _, key in EXAMPLES]), *curve_plots())


EXAMPLES = [([0, 64, ANY, 0.0], N_("gan.example.seed0")), ([7, 20, "3", 0.0], N_("gan.example.threes")),
            ([7, 20, "3", 0.7], N_("gan.example.truncated")), ([1, 30, "8", 0.0], N_("gan.example.eights"))]


def build_tab(place: Place = ALONE) -> None:
    """place.tab: its select event shows the first samples on the first visit."""
    gr.Markdown(label("gan.intro"))
    with gr.Accordion(label("gan.what"), open=False):
        gr.Markdown(label("gan.what.text"))
    with gr.Row():
        with gr.Column(scale=1):
            seed = gr.Number(0, label=label("gan.seed"), precision=0, elem_id="gan-seed")  # checked by gan_sample
            count = gr.Slider(1, MAX_COUNT, value=64, step=1, label=label("gan.count_field"), elem_id="gan-count")
            digit = gr.Dropdown(DIGIT_CHOICES, value=ANY, label=label("gan.digit_field"), elem_id="gan-digit")
            trunc = gr.Slider(0, 3, value=0, step=0.1, label=label("gan.truncation"), elem_id="gan-trunc")
            btn = gr.Button(label("gan.sample_button"), variant="primary", elem_id="gan-btn")
            status = status_box("gan-status")
            ex = gr.Examples([e for e, _ in EXAMPLES], inputs=[seed, count, digit, trunc],
                             example_labels=[t(key, "en") for _, key in EXAMPLES], label=label("pad.examples"),
                             elem_id="gan-examples")
            summary = gr.Markdown(elem_id="gan-summary")
        with gr.Column(scale=2):
            gr.Markdown(label("gan.caption_key"), elem_id="gan-caption-key")
            gallery = gr.Gallery(label=label("gan.samples"), columns=8, height=440, object_fit="contain",
                                 format="png", elem_id="gan-gallery", interactive=False)
            gr.Markdown(label("gan.grid_title"), elem_id="gan-grid-title")
            # a title above, no label or buttons on the picture: they float over its top row (on a phone the
            # download button hid a whole digit); the picture saves with the browser's own "Save image"
            grid_img = gr.Image(label=label("gan.grid"), interactive=False, elem_id="gan-grid",
                                buttons=[], format="png", show_label=False)
    code = code_block()
    gr.Markdown(label("gan.interp.intro"))
    with gr.Row():
        seed_a = gr.Number(0, label=label("gan.seed_a"), precision=0, elem_id="gan-seed-a")
        seed_b = gr.Number(1, label=label("gan.seed_b"), precision=0, elem_id="gan-seed-b")
        digit_a = gr.Dropdown(DIGITS[1:], value="3", label=label("gan.digit_a"))
        digit_b = gr.Dropdown(DIGITS[1:], value="8", label=label("gan.digit_b"))
        steps = gr.Slider(2, 32, value=10, step=1, label=label("gan.steps"))
        ibtn = gr.Button(label("gan.interp_button"), elem_id="gan-interp-btn")
    istatus = status_box("gan-interp-status")
    with gr.Row():
        with gr.Column(scale=3, min_width=320):
            strip = gr.Image(label=label("gan.strip"), interactive=False, elem_id="gan-strip", buttons=[],
                             format="png", show_label=False)   # nothing over the frames (as the grid); note below
            strip_note = gr.Markdown(elem_id="gan-strip-note")
        gif = gr.Image(label=label("gan.gif"), type="filepath", interactive=False, elem_id="gan-gif", scale=1,
                       height=200, min_width=200, buttons=["download"])
    icode = code_block(label("gan.interp_code"))
    gr.Markdown(label("gan.trained.intro"))
    with gr.Row():   # in English until the first visit sends them in the page's language (first_visit)
        loss_plot, prob_plot, note = curve_plots("en")
    note = gr.Markdown(note)

    common = INTERACTIVE
    sample_in, sample_out = [seed, count, digit, trunc], [gallery, grid_img, summary, code]
    interp_in, interp_out = [seed_a, seed_b, digit_a, digit_b, steps, trunc], [strip, gif, icode]
    page_out = interp_out + [strip_note]
    btn.click(gan_sample_ui, sample_in, sample_out + [status], api_visibility="private", **common)
    ex.load_input_event.then(gan_sample_ui, sample_in, sample_out + [status], api_visibility="private", **common)
    ibtn.click(page((None, None, "", ""))(gan_interpolate_page), interp_in, page_out + [istatus],
               api_visibility="private", **common)
    api_endpoint(gan_sample, sample_in, sample_out, "gan_sample", **common)
    api_endpoint(gan_interpolate, interp_in, interp_out, "gan_interpolate", **common)
    place.on_select(first_visit, [gallery] + sample_in + interp_in[:-1],
                    sample_out + page_out + [ex.dataset, loss_plot, prob_plot, note], api_visibility="private",
                    **common)
