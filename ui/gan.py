"""GAN tab: sample the class-conditional DCGAN by seed and digit, truncate its noise, interpolate, see its training."""
from __future__ import annotations

import os
import tempfile
import time

import gradio as gr
import pandas as pd

from training.generative.fid import class_histogram
from core.errors import InputError
from ui.common import ALONE, INTERACTIVE, Place, api_endpoint, code_block, whole_number
from ui.errors import api, page, status_box
from zoo.generative import GENERATIVE_REPO, read_extra
from zoo.generative_ops import (END_CANDIDATES, END_SURE, digit_labels, gif_bytes, grid, interpolate, read_digits,
                                realness, sample)
from zoo.pictures import to_uint8

ANY = "any (0-9 in turn)"
DIGITS = [ANY] + [str(d) for d in range(10)]
MAX_COUNT = 100
GALLERY_SCALE = 3  # 28 px -> 84 px tiles

INTRO = """A **GAN** is two networks trained against each other on the 4,000 mnist5k digits.
The **generator G** turns 64 random numbers *z* (plus the digit you ask for) into a 28x28 image: a linear
layer makes 96 feature maps of 7x7, two transposed convolutions upsample them to 14x14 and 28x28.
The **discriminator D** looks at an image (and the digit it should be) and outputs the probability that it
is a real digit rather than one of G's. D is trained to tell them apart; G is trained to make D say "real".
Neither ever sees a formula for "a 3": G learns it only from D's gradients. The same seed always gives the
same *z*, hence the same images. **Truncation** redraws every entry of *z* beyond +-t: smaller t gives cleaner,
more typical, less varied digits (the trade-off BigGAN made famous)."""

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
    t = float(truncation or 0.0)
    t0 = time.perf_counter()
    x = sample(seed, n, d, t)                                        # (n, 1, 28, 28)
    ms = (time.perf_counter() - t0) * 1000
    y = digit_labels(n, d)
    p = realness(x, y)
    _, pred = class_histogram(x)
    agree = int((pred == y).sum())
    gallery = [(to_uint8(img, GALLERY_SCALE), f"{int(yi)}→{int(pi)} D{float(pi_r):.2f}".replace("D0.", "D."))
               for img, yi, pi, pi_r in zip(x, y, pred, p)]
    summary = (f"{n} samples in {ms:.1f} ms (generator forward). The digits classifier `resnet_digits` reads "
               f"**{agree}/{n}** as the digit asked for; D calls them real with mean probability "
               f"{float(p.mean()):.2f}.")
    labels = f"torch.full(({n},), {d})" if d is not None else f"torch.arange({n}) % 10"
    code = CODE.format(seed=seed, n=n, labels=labels, trunc=TRUNC_CODE.format(t=t) if t > 0 else "",
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
    ends = [f"seed {int(s)}'s row {k}" for s, k in ((seed_a, ka), (seed_b, kb)) if k]
    note = (f"From a **{da}** to an **{db}**; `resnet_digits` reads the frames as: **{reads}**."
            + (f" Each end is the first of its seed's {END_CANDIDATES} noise vectors that G draws clearly as that "
               f"end's digit (resnet_digits at least {END_SURE:.0%} sure: G does not always draw the digit it is "
               f"asked for); here {' and '.join(ends)}." if ends else ""))
    return grid(frames, nrow=steps, scale=3), path, code, note


@api
def gan_interpolate_page(seed_a=0, seed_b=1, digit_a="3", digit_b="8", steps=10, truncation=0.0):
    """The page's Interpolate: the strip, the GIF, the code and the line that says what each frame reads as."""
    return _interpolate(seed_a, seed_b, digit_a, digit_b, steps, truncation)


def curves_frames():
    """The recorded G and D training curves as long-format DataFrames (None when not recorded)."""
    rec = read_extra().get("gan_digits_g")
    if not rec or not rec.get("curve"):
        return None, None, "No training curves recorded yet: run `python -m training.generative.train_gan`."
    c = pd.DataFrame(rec["curve"])
    loss = pd.concat([pd.DataFrame({"step": c.step, "value": c.d_loss, "series": "D loss"}),
                      pd.DataFrame({"step": c.step, "value": c.g_loss, "series": "G loss"})])
    prob = pd.concat([pd.DataFrame({"step": c.step, "value": c.d_real, "series": "D(real)"}),
                      pd.DataFrame({"step": c.step, "value": c.d_fake, "series": "D(G(z))"})])
    m = rec.get("metrics", {})
    chk = ", ".join(f"step {k['step']}: {k['fid_train']:.2f}" for k in rec.get("checkpoints", []))
    note = (f"Trained {rec.get('steps')} steps in {rec.get('train_seconds')} s on {rec.get('device')} "
            f"(`{rec.get('train_command')}`); the shipped weights are the moving average of G at step "
            f"{rec.get('kept_step')}. Frechet distance in resnet_digits features, 1,000 samples vs the test set: "
            f"**{m.get('fid_test')}** (reference points: real training digits {m.get('fid_ref_train_vs_test')}, "
            f"blurred real digits {m.get('fid_ref_blurred_test_vs_test')}). Checkpoints vs the training set: {chk}.  \n"
            "Reading the curves: D's loss staying near 2*ln 2 = 1.39 and D(real), D(G(z)) near 0.5 mean neither "
            "network wins - the equilibrium a GAN aims for. D(real) -> 1 and D(G(z)) -> 0 would mean D wins "
            "and G's gradients vanish.")
    return loss, prob, note


def first_visit(current, seed, count, digit, truncation, seed_a, seed_b, digit_a, digit_b, steps):
    """Sample and interpolate with the settings shown, on the first visit only (later visits keep what the
    visitor did)."""
    if current:
        return (gr.skip(),) * 8
    return (*gan_sample(seed, count, digit, truncation),
            *gan_interpolate_page(seed_a, seed_b, digit_a, digit_b, steps, truncation))


EXAMPLES = [([0, 64, ANY, 0.0], "seed 0: 64 digits"), ([7, 20, "3", 0.0], "seed 7: twenty 3s"),
            ([7, 20, "3", 0.7], "the same 3s, truncated (t=0.7)"), ([1, 30, "8", 0.0], "seed 1: thirty 8s")]


def build_tab(place: Place = ALONE) -> None:
    """place.tab: its select event shows the first samples on the first visit."""
    gr.Markdown("**Start here:** change the seed or the digit and press *Sample*: the generator paints new digits "
                "from 64 random numbers. The same seed always gives the same pictures.")
    with gr.Accordion("What a GAN is", open=False):
        gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=1):
            seed = gr.Number(0, label="Seed", precision=0, elem_id="gan-seed")  # checked by gan_sample
            count = gr.Slider(1, MAX_COUNT, value=64, step=1, label="How many", elem_id="gan-count")
            digit = gr.Dropdown(DIGITS, value=ANY, label="Digit (the generator is class-conditional)",
                                elem_id="gan-digit")
            trunc = gr.Slider(0, 3, value=0, step=0.1, label="Truncation t (0 = off; redraw |z| > t)",
                              elem_id="gan-trunc")
            btn = gr.Button("Sample", variant="primary", elem_id="gan-btn")
            status = status_box("gan-status")
            ex = gr.Examples([e for e, _ in EXAMPLES], inputs=[seed, count, digit, trunc],
                             example_labels=[n for _, n in EXAMPLES], label="Examples: one click",
                             elem_id="gan-examples")
            summary = gr.Markdown(elem_id="gan-summary")
        with gr.Column(scale=2):
            gr.Markdown("Under each sample: the digit asked for → the digit `resnet_digits` reads, then **D**'s "
                        "probability that it is real.", elem_id="gan-caption-key")
            gallery = gr.Gallery(label="Samples", columns=8, height=440, object_fit="contain", format="png",
                                 elem_id="gan-gallery", interactive=False)
            gr.Markdown("**The same samples as one grid**", elem_id="gan-grid-title")
            # a title above, no label or buttons on the picture: they float over its top row (on a phone the
            # download button hid a whole digit); the picture saves with the browser's own "Save image"
            grid_img = gr.Image(label="The same samples as one grid", interactive=False, elem_id="gan-grid",
                                buttons=[], format="png", show_label=False)
    code = code_block()
    gr.Markdown("### Interpolation\nWalk from seed A's noise to seed B's (spherical interpolation) while the digit "
                "embedding blends from digit A to digit B. Smooth change means G learned a continuous space, "
                "not a lookup table of training digits.")
    with gr.Row():
        seed_a = gr.Number(0, label="Seed A", precision=0, elem_id="gan-seed-a")
        seed_b = gr.Number(1, label="Seed B", precision=0, elem_id="gan-seed-b")
        digit_a = gr.Dropdown(DIGITS[1:], value="3", label="Digit A")
        digit_b = gr.Dropdown(DIGITS[1:], value="8", label="Digit B")
        steps = gr.Slider(2, 32, value=10, step=1, label="Steps")
        ibtn = gr.Button("Interpolate", elem_id="gan-interp-btn")
    istatus = status_box("gan-interp-status")
    with gr.Row():
        with gr.Column(scale=3, min_width=320):
            strip = gr.Image(label="Interpolation strip", interactive=False, elem_id="gan-strip", buttons=[],
                             format="png", show_label=False)   # nothing over the frames (as the grid); note below
            strip_note = gr.Markdown(elem_id="gan-strip-note")
        gif = gr.Image(label="Animated GIF", type="filepath", interactive=False, elem_id="gan-gif", scale=1, height=200,
                       min_width=200, buttons=["download"])
    icode = code_block("PyTorch code for the interpolation")
    gr.Markdown("### How it trained\nLosses and D's verdicts recorded while training, read from "
                "`zoo/weights/generative.json`.")
    loss, prob, note = curves_frames()
    with gr.Row():
        gr.LinePlot(loss, x="step", y="value", color="series", title="G and D losses", y_title="loss",
                    height=260, elem_id="gan-loss-plot")
        gr.LinePlot(prob, x="step", y="value", color="series", title="D's mean output", y_title="probability",
                    y_lim=[0, 1], height=260, elem_id="gan-prob-plot")
    gr.Markdown(note)

    common = INTERACTIVE
    sample_in, sample_out = [seed, count, digit, trunc], [gallery, grid_img, summary, code]
    interp_in, interp_out = [seed_a, seed_b, digit_a, digit_b, steps, trunc], [strip, gif, icode]
    page_out = interp_out + [strip_note]
    btn.click(page((None, None, "", ""))(gan_sample), sample_in, sample_out + [status],
              api_visibility="private", **common)
    ex.load_input_event.then(page((None, None, "", ""))(gan_sample), sample_in, sample_out + [status],
                             api_visibility="private", **common)
    ibtn.click(page((None, None, "", ""))(gan_interpolate_page), interp_in, page_out + [istatus],
               api_visibility="private", **common)
    api_endpoint(gan_sample, sample_in, sample_out, "gan_sample", **common)
    api_endpoint(gan_interpolate, interp_in, interp_out, "gan_interpolate", **common)
    place.on_select(first_visit, [gallery] + sample_in + interp_in[:-1], sample_out + page_out,
                    api_visibility="private", **common)
