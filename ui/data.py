"""Data tab: a transforms.v2 augmentation playground, one-hot labels, small-sample resampling, Dataset/DataLoader."""
from __future__ import annotations

import functools

from collections import OrderedDict

import gradio as gr
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.errors import InputError, render
from core.fonts import text_language
from core.i18n import LANGUAGES, N_, current_language, speaking, t
from training.data.datasets import digits, mnist5k
from training.plain import data_imports, data_source
from training.resample import METHODS, parse_counts, resample_code
from training.data.transforms import (MAX_SIDE, AugmentSettings, draw_each, draws_code, fit_within, for_display,
                                      one_batch, to_image_tensor, validate)
from ui import code_comments, first_screens
from ui.common import ALONE, INTERACTIVE, JOB, ImageFile, Place, api_endpoint, code_block, whole_number
from ui.errors import KEEP, api, page, status_box
from ui.i18n import follow_headers, label, request_language
from jobs.queue import CANCELLING
from ui.jobstream import cancel_button, ended_text, event_text, queued_text, run_job
from zoo.pictures import enlarge, figure, to_rgb

EXAMPLES = {"photo: cat (chelsea)": "chelsea", "photo: astronaut": "astronaut", "photo: coffee cup": "coffee",
            "MNIST test digit #0": 0, "MNIST test digit #1": 1}
EXAMPLE_KEYS = {"photo: cat (chelsea)": N_("data.ui.example.cat"), "photo: astronaut": N_("data.ui.example.astronaut"),
                "photo: coffee cup": N_("data.ui.example.coffee"), "MNIST test digit #0": N_("data.ui.example.digit0"),
                "MNIST test digit #1": N_("data.ui.example.digit1")}
PADDING_KEYS = {"constant": N_("data.ui.padding.constant"), "edge": N_("data.ui.padding.edge"),
                "reflect": N_("data.ui.padding.reflect"), "symmetric": N_("data.ui.padding.symmetric")}
METHOD_KEYS = {"none": N_("data.ui.method.none"), "oversample": N_("data.ui.method.oversample"),
               "bootstrap": N_("data.ui.method.bootstrap"), "smote": N_("data.ui.method.smote")}
SOURCE_KEYS = {"mnist5k": N_("data.ui.source.mnist5k"), "digits": N_("data.ui.source.digits")}
RESAMPLE_HEADERS = [N_("data.resample.method"), N_("data.resample.train_images"), N_("data.resample.test_acc"),
                    N_("data.resample.minority_acc"), N_("data.resample.seconds"), N_("data.resample.note")]
DEFAULT_COUNTS = "400,400,400,400,400,20,20,20,400,400"
# The last augmentation settings each session applied here: the Fine-tune tab's "data-tab" augmentation uses them.
_LAST_SETTINGS: OrderedDict[str, dict] = OrderedDict()
_MAX_SESSIONS = 512


def last_settings(session: str | None) -> dict | None:
    """The AugmentSettings (as a dict) this session last applied on the Data tab, if any."""
    return _LAST_SETTINGS.get(session or "")


def _remember(session: str | None, settings: dict) -> None:
    _LAST_SETTINGS[session or ""] = settings
    _LAST_SETTINGS.move_to_end(session or "")
    while len(_LAST_SETTINGS) > _MAX_SESSIONS:
        _LAST_SETTINGS.popitem(last=False)


DISPLAY_SIDE = 512   # each augmented draw is shown at most this large (the gallery shows 4 per row)


def to_picture(x, min_side: int = 160) -> np.ndarray:
    """(C, H, W) float in [0, 1] -> (H, W, 3) uint8, small images enlarged (nearest) so pixels stay visible."""
    return enlarge(to_rgb(x), min_side)


def example_image(name: str):
    """An example as a (C, H, W) uint8 tensor: an skimage photo or an mnist5k test digit."""
    src = EXAMPLES.get(name, "chelsea")
    if isinstance(src, int):
        return (mnist5k().test_x[src] * 255).round().to(torch.uint8)
    import skimage.data  # on first use: the app starts without scikit-image (tests/test_app.py)

    arr = getattr(skimage.data, src)()
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()


def _settings(*vals):
    (resize, crop_size, crop_padding, pad_if_needed, fill, padding_mode, rrc_size, rrc_scale_min, hflip_p, vflip_p,
     rotation, brightness, contrast, saturation, hue, normalize) = vals
    return validate(AugmentSettings(
        resize=int(resize), crop_size=int(crop_size), crop_padding=int(crop_padding), pad_if_needed=bool(pad_if_needed),
        fill=int(fill), padding_mode=str(padding_mode), rrc_size=int(rrc_size), rrc_scale_min=float(rrc_scale_min),
        hflip_p=float(hflip_p), vflip_p=float(vflip_p), rotation=float(rotation), brightness=float(brightness),
        contrast=float(contrast), saturation=float(saturation), hue=float(hue), normalize=bool(normalize)))


def _image_size(image) -> tuple[int, int] | None:
    """(H, W) of an upload from its header, without decoding it (None if it cannot be read: decoding says why)."""
    try:
        with Image.open(image) as im:
            return im.size[1], im.size[0]
    except Exception:  # noqa: BLE001
        return None


def _image_code(image, example: str, scaled: bool) -> str:
    """The lines that load the picture the tab augmented, as `img`: (C, H, W) uint8."""
    if image is not None:
        thumb = ("\nimg.thumbnail((1024, 1024), resample=Image.BICUBIC)   # the tab previews large pictures at 1024 px"
                 if scaled else "")
        return f'''from PIL import Image, ImageOps
im = ImageOps.exif_transpose(Image.open("my_image.png")).convert("RGBA")   # your picture (any format PIL reads)
img = Image.new("RGB", im.size, (255, 255, 255))
img.paste(im, mask=im.getchannel("A"))                # transparent parts on white, as the tab does{thumb}
img = v2.functional.pil_to_tensor(img)                # (3, H, W) uint8'''
    src = EXAMPLES.get(example, "chelsea")
    if isinstance(src, int):      # mnist5k from the Hub, as this project ships it (training.plain)
        return (f"from huggingface_hub import hf_hub_download\nfrom safetensors.torch import load_file\n\n"
                f"{data_source('mnist5k')}\n"
                f"img = (test_x[{src}] * 255).round().to(torch.uint8)   # MNIST test digit #{src}, 1x28x28")
    return (f"# the example photo is one of scikit-image's sample pictures (pip install scikit-image)\n"
            f"import skimage.data\n"
            f"img = torch.from_numpy(skimage.data.{src}()).permute(2, 0, 1)   # the example photo: (3, H, W) uint8")


@api
def augment(image=None, resize=64, crop_size=64, crop_padding=4, pad_if_needed=False, fill=0,
            padding_mode="constant", rrc_size=0, rrc_scale_min=0.5, hflip_p=0.5, vflip_p=0.0, rotation=15.0,
            brightness=0.2, contrast=0.2, saturation=0.0, hue=0.0, normalize=False, n_draws=8, seed=0,
            example="photo: cat (chelsea)", request: gr.Request = None):
    """Apply the v2 pipeline to an image (or the example) n times, seeded (the public API: /augment).

    Returns (augmented images, summary of the final tensor, the Compose code)."""
    seed = whole_number(seed, "field.seed", 0, 2**63 - 1)
    s = _settings(resize, crop_size, crop_padding, pad_if_needed, fill, padding_mode, rrc_size, rrc_scale_min,
                  hflip_p, vflip_p, rotation, brightness, contrast, saturation, hue, normalize)
    full = _image_size(image) if image is not None else None
    img = to_image_tensor(image, max_side=MAX_SIDE) if image is not None else example_image(example)
    img = fit_within(img, MAX_SIDE)   # bounded work: a 40-megapixel upload is previewed at 1024 px
    stats = {"min": float("inf"), "max": float("-inf"), "sum": 0.0, "count": 0}

    def keep(x):  # hold a display-size picture and running statistics, never the full float tensor
        stats.update(min=min(stats["min"], float(x.min())), max=max(stats["max"], float(x.max())),
                     sum=stats["sum"] + float(x.double().sum()), count=stats["count"] + x.numel(),
                     shape=tuple(x.shape), dtype=x.dtype)
        return to_picture(fit_within(for_display(x, s), DISPLAY_SIDE))

    pics = [(p, t("data.augment.draw", i=i))
            for i, p in enumerate(draw_each(img, s, n=int(n_draws), seed=int(seed), keep=keep))]
    _remember(getattr(request, "session_hash", None), s.to_dict())
    shown = (img.shape[0], *(full or img.shape[1:]))
    scaled = "" if tuple(shown) == tuple(img.shape) else \
        t("data.augment.scaled", shape=tuple(img.shape), side=MAX_SIDE)
    summary = t("data.augment.summary", input=tuple(shown), dtype=img.dtype, scaled=scaled, shape=stats["shape"],
                out_dtype=stats["dtype"], low=stats["min"], high=stats["max"],
                mean=stats["sum"] / max(1, stats["count"]), seed=int(seed))
    return pics, summary, code_comments.translate(draws_code(s, _image_code(image, example, bool(scaled)),
                                                         int(n_draws), int(seed)))


@api
def one_hot(labels_text: str = "1, 2, 0, 3, 2"):
    """Integer labels -> one-hot with F.one_hot and with sklearn's OneHotEncoder, side by side."""
    from sklearn.preprocessing import OneHotEncoder  # on first use: scikit-learn takes ~1.5 s to import

    try:
        labels = [int(t) for t in labels_text.replace(";", ",").replace(" ", ",").split(",") if t.strip()]
    except ValueError:
        raise InputError("onehot.not_numbers") from None
    if not 1 <= len(labels) <= 100 or not all(0 <= v <= 99 for v in labels):
        raise InputError("onehot.range")
    oh = F.one_hot(torch.tensor(labels))                     # (N, max+1) int64
    enc = OneHotEncoder()
    sk = enc.fit_transform(np.array(labels).reshape(-1, 1)).toarray()   # (N, number of distinct labels) float64
    cats = [int(c) for c in enc.categories_[0]]
    torch_df = [[lab] + row for lab, row in zip(labels, oh.tolist())]
    sk_df = [[lab] + [int(v) for v in row] for lab, row in zip(labels, sk.tolist())]
    note = t("data.onehot.note", torch_shape=tuple(oh.shape), torch_dtype=oh.dtype, last=max(labels),
             sk_shape=sk.shape, sk_dtype=sk.dtype, seen=cats)
    code = (f"# OneHotEncoder, beside F.one_hot, is scikit-learn's (pip install scikit-learn)\n"
            f"import numpy as np\nimport torch\nimport torch.nn.functional as F\n"
            f"from sklearn.preprocessing import OneHotEncoder\n\nlabels = {labels}\n"
            f"onehot_torch = F.one_hot(torch.tensor(labels))                    # {tuple(oh.shape)}\n"
            f"onehot_sk = OneHotEncoder().fit_transform(np.array(labels).reshape(-1, 1)).toarray()  # {sk.shape}\n"
            f"print(onehot_torch)\nprint(onehot_sk)\n")
    column = t("data.onehot.label")
    return (gr.Dataframe(torch_df, headers=[column] + [str(i) for i in range(oh.shape[1])]),
            gr.Dataframe(sk_df, headers=[column] + [f"x0_{c}" for c in cats]), note,
            code_comments.translate(code))


def _hist_figure(hist: dict, language: str | None = None):
    """The class counts before and after each resampling method, in `language` where a CJK font can draw it."""
    fig = figure(8, 3.2, dpi=90)
    language = text_language(language or current_language())
    ax = fig.subplots()
    names = list(hist)
    w = 0.8 / len(names)
    for j, name in enumerate(names):
        shown = t("data.resample.before", language) if name == "before" else name   # the methods keep their names
        ax.bar(np.arange(10) + (j - (len(names) - 1) / 2) * w, hist[name], width=w, label=shown)
    ax.set_xticks(range(10))
    ax.set_xlabel(t("data.resample.digit_class", language))
    ax.set_ylabel(t("data.resample.training_images", language))
    ax.set_title(t("data.resample.title", language))
    # the legend goes to the right of the axes: inside them ("best") it covered the bars, which reach the top
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    fig.tight_layout()
    return fig


@api
def resample(counts: str = DEFAULT_COUNTS, steps: int = 60, method_for_code: str = "smote",
             request: gr.Request = None):
    """Imbalanced mnist5k subset -> none / oversample / bootstrap / SMOTE, a short training run each, as a job (the
    public API: /resample): the note shows the queue position and the method in training, then the results."""
    skip = gr.skip()
    parsed = parse_counts(counts)
    if not 10 <= int(steps) <= 400 or method_for_code not in METHODS:
        raise InputError("resample.steps", methods=", ".join(METHODS))

    language = request_language(request)

    def show(j):
        ev = j.last
        note = (t("data.resample.cancelled", language, why=ended_text(j, language)) if j.finished.is_set()
                else queued_text(j, language) if j.state == "queued"
                else t(CANCELLING, language) if j.cancel_requested.is_set()     # the visitor's Cancel, said here
                else t("data.resample.running", language, text=event_text(ev, language), k=ev["done"] + 1,
                       n=ev["total"]) if ev else t("data.resample.starting", language))
        return skip, skip, note, skip

    job = yield from run_job("resample", {"counts": parsed, "steps": int(steps)}, request, show)
    if job is None:
        return
    r = job.result
    table = [[row["method"], row["train_images"], row["test_acc"], row["minority_acc"], row["seconds"],
              render(row["note_key"], row.get("note_values") or {}, language) if row.get("note_key") else row["note"]]
             for row in r["rows"]]
    md = t("data.resample.summary", language, rare=r["minority_classes"], steps=r["steps"])
    yield (_hist_figure(r["histograms"], language), {"headers": [t(k, language) for k in RESAMPLE_HEADERS],
                                                      "data": table}, md,
           code_comments.translate(resample_code(r["counts"], method_for_code, r["steps"]), language))


# The page's /resample: a problem shows under the button, the note is cleared (the last results stay)
resample_ui = page((KEEP, KEEP, "", KEEP))(resample)


@api
def dataloader(source: str = "mnist5k", batch_size: int = 16, shuffle: bool = True, num_workers: int = 0,
               pin_memory: bool = False, seed: int = 0):
    """A custom Dataset + DataLoader over the chosen data; one batch drawn as a grid."""
    seed = whole_number(seed, "field.seed", 0, 2**63 - 1)
    data = digits() if source == "digits" else mnist5k()
    name = "digits" if source == "digits" else "mnist5k"      # the data written out (training.plain)
    images, labels, code = one_batch(data.train_x, data.train_y, int(batch_size), bool(shuffle), int(num_workers),
                                     bool(pin_memory), int(seed), source=name,
                                     data_code=data_source(name) + "\nx, y = train_x, train_y   # the training split",
                                     data_imports=data_imports(name))
    from torchvision.utils import make_grid  # on first use: torchvision (and torch._dynamo) cost ~1 s at start

    grid = make_grid(images, nrow=8, padding=2, pad_value=1.0)
    note = (t("data.loader.note", shape=tuple(images.shape), dtype=images.dtype, labels=labels.tolist())
            + ("" if not pin_memory or images.is_pinned() else t("data.loader.no_pinning")))
    return to_picture(grid, min_side=700), note, code_comments.translate(code)


@functools.lru_cache(maxsize=len(LANGUAGES))
def _first_screen(language: str) -> tuple:
    with speaking(language):
        return (*augment.__wrapped__(), *one_hot.__wrapped__(), *dataloader.__wrapped__(),
                {"headers": [t(k) for k in RESAMPLE_HEADERS], "data": []})   # the empty table, its headers


def first_screen() -> tuple:
    """The tab's defaults in the visitor's language, computed once per server and language (app.main warms them
    in the background) and shown to every visitor on load: the augmentation draws of the default example, the
    default labels one-hot, one batch, and the resampling table's headers (a page cannot translate them)."""
    return _first_screen(current_language())


def _first_screen_zh() -> tuple:
    return _first_screen("zh")


def _first_part(place: Place, part: slice, outputs: list, name: str) -> list:
    """A page load shows one section's part of the first screen, in an event of its own: the section's own events
    cancel it (cancels=...) if it is still waiting or running, so a result the visitor asked for is never overwritten
    by the defaults (one event for the whole screen would make Encode choose between its table and the others')."""
    def shown():
        value = first_screen()[part]
        return value[0] if len(outputs) == 1 else value

    shown.__name__ = f"data_first_screen_{name}"
    event = place.on_load(shown, None, outputs, api_visibility="private", show_progress="hidden", **INTERACTIVE)
    return [event] if event is not None else []


def build_tab(place: Place = ALONE) -> None:
    """place.demo: every page load shows the tab's first screen, section by section (_first_part)."""
    gr.Markdown(label("data.ui.intro"))
    gpu = INTERACTIVE
    with gr.Accordion(label("data.ui.augmentation"), open=True):
        with gr.Row():
            with gr.Column(scale=1):
                image = ImageFile(label=label("data.ui.image"), type="filepath",
                                 sources=["upload", "clipboard"], height=220, elem_id="aug-image")
                example = gr.Dropdown([(label(EXAMPLE_KEYS[e]), e) for e in EXAMPLES], value="photo: cat (chelsea)",
                                      label=label("data.ui.example"), elem_id="aug-example")
                with gr.Row():
                    # min_width: side by side on a wide screen, one above the other on a phone
                    n_draws = gr.Slider(1, 16, value=8, step=1, label=label("data.ui.draws"), min_width=210)
                    seed = gr.Number(0, precision=0, label=label("data.ui.seed"),
                                     min_width=150)                      # checked by augment (whole_number)
                run = gr.Button(label("data.ui.augment"), variant="primary", elem_id="augment-btn")
                aug_status = status_box("aug-status")
            with gr.Column(scale=2):
                with gr.Row():
                    resize = gr.Slider(0, 256, value=64, step=1, label=label("data.ui.resize"))
                    crop_size = gr.Slider(0, 256, value=64, step=1, label=label("data.ui.crop_size"))
                    crop_padding = gr.Slider(0, 64, value=4, step=1, label=label("data.ui.crop_padding"))
                with gr.Row():
                    pad_if_needed = gr.Checkbox(False, label=label("data.ui.pad_if_needed"))
                    fill = gr.Slider(0, 255, value=0, step=1, label=label("data.ui.fill"))
                    padding_mode = gr.Dropdown([(label(k), v) for v, k in PADDING_KEYS.items()], value="constant",
                                               label=label("data.ui.padding_mode"), elem_id="padding-mode")
                with gr.Row():
                    rrc_size = gr.Slider(0, 256, value=0, step=1, label=label("data.ui.rrc_size"))
                    rrc_scale_min = gr.Slider(0.05, 1.0, value=0.5, step=0.05, label=label("data.ui.rrc_scale"))
                    rotation = gr.Slider(0, 180, value=15, step=1, label=label("data.ui.rotation"))
                with gr.Row():
                    hflip_p = gr.Slider(0, 1, value=0.5, step=0.05, label=label("data.ui.hflip"))
                    vflip_p = gr.Slider(0, 1, value=0.0, step=0.05, label=label("data.ui.vflip"))
                    normalize = gr.Checkbox(False, label=label("data.ui.normalize"))
                with gr.Row():
                    brightness = gr.Slider(0, 2, value=0.2, step=0.05, label=label("data.ui.brightness"))
                    contrast = gr.Slider(0, 2, value=0.2, step=0.05, label=label("data.ui.contrast"))
                    saturation = gr.Slider(0, 2, value=0.0, step=0.05, label=label("data.ui.saturation"))
                    hue = gr.Slider(0, 0.5, value=0.0, step=0.01, label=label("data.ui.hue"))
        gallery = gr.Gallery(label=label("data.ui.gallery"), columns=8, height=260, elem_id="aug-gallery")
        aug_summary = gr.Markdown(elem_id="aug-summary")
        aug_code = code_block(label("data.ui.compose_code"))
    aug_inputs = [image, resize, crop_size, crop_padding, pad_if_needed, fill, padding_mode, rrc_size, rrc_scale_min,
                  hflip_p, vflip_p, rotation, brightness, contrast, saturation, hue, normalize, n_draws, seed, example]
    aug_outputs = [gallery, aug_summary, aug_code]
    augment_ui = page((None, "", ""))(augment)   # errors under the button, not on the gallery
    first = _first_part(place, slice(0, len(aug_outputs)), aug_outputs, "augment")
    run.click(augment_ui, aug_inputs, aug_outputs + [aug_status], api_visibility="private", cancels=first, **gpu)
    example.change(augment_ui, aug_inputs, aug_outputs + [aug_status], api_visibility="private", cancels=first,
                   **gpu)
    api_endpoint(augment, aug_inputs, aug_outputs, "augment", **gpu)

    with gr.Accordion(label("data.ui.onehot"), open=False):
        with gr.Row():
            labels = gr.Textbox("1, 2, 0, 3, 2", label=label("data.ui.labels"), elem_id="labels-text")
            oh_btn = gr.Button(label("data.ui.encode"), elem_id="onehot-btn")
        oh_status = status_box("onehot-status")   # a message about the labels sits under them
        with gr.Row():
            torch_tab = gr.Dataframe(label="torch.nn.functional.one_hot", interactive=False, elem_id="onehot-torch")
            sk_tab = gr.Dataframe(label="sklearn OneHotEncoder", interactive=False, elem_id="onehot-sklearn")
        follow_headers(torch_tab, [N_("data.onehot.label")])   # the label column's header after a switch (ui.i18n)
        follow_headers(sk_tab, [N_("data.onehot.label")])
        oh_note = gr.Markdown()
        oh_code = code_block()
    oh_outputs = [torch_tab, sk_tab, oh_note, oh_code]
    first = _first_part(place, slice(len(aug_outputs), len(aug_outputs) + len(oh_outputs)), oh_outputs,
                        "one_hot")
    oh_btn.click(page((None, None, "", ""))(one_hot), labels, oh_outputs + [oh_status],
                 api_visibility="private", cancels=first)
    api_endpoint(one_hot, labels, oh_outputs, "one_hot")

    with gr.Accordion(label("data.ui.resampling"), open=False):
        with gr.Row():
            counts = gr.Textbox(DEFAULT_COUNTS, label=label("data.ui.counts"), elem_id="counts-text", scale=3,
                                min_width=240)
            steps = gr.Slider(10, 400, value=60, step=10, label=label("data.ui.steps"), scale=2, min_width=220)
            code_for = gr.Dropdown([(label(k), v) for v, k in METHOD_KEYS.items()], value="smote",
                                   label=label("data.ui.code_for"), scale=1, min_width=200)
            rs_btn = gr.Button(label("data.ui.compare"), variant="primary", elem_id="resample-btn", scale=1)
            rs_cancel = gr.Button(label("data.ui.cancel"), variant="stop", elem_id="resample-cancel", scale=1)
        rs_status = status_box("resample-message")   # a problem with the counts or steps, under them
        hist = gr.Plot(label=label("data.ui.histograms"), elem_id="resample-hist")
        rs_table = gr.Dataframe(headers=[t(k, "en") for k in RESAMPLE_HEADERS],
                                label=label("data.ui.resample_table"), interactive=False,
                                elem_id="resample-table")
        follow_headers(rs_table, RESAMPLE_HEADERS)   # after a switch of language (ui.i18n)
        rs_note = gr.Markdown()
        rs_code = code_block()
    rs_outs = [hist, rs_table, rs_note, rs_code]
    first = _first_part(place, slice(-1, None), [rs_table], "resample")   # the empty table's headers
    rs_btn.click(resample_ui, [counts, steps, code_for], rs_outs + [rs_status], api_visibility="private",
                 show_progress="hidden", cancels=first, **JOB)
    api_endpoint(resample, [counts, steps, code_for], rs_outs, "resample", **JOB)
    cancel_button(rs_cancel, rs_note)

    with gr.Accordion(label("data.ui.loader"), open=False):
        with gr.Row():
            source = gr.Radio([(label(k), v) for v, k in SOURCE_KEYS.items()], value="mnist5k",
                              label=label("data.ui.source"), min_width=180)
            bs = gr.Slider(1, 64, value=16, step=1, label=label("data.ui.batch_size"), min_width=160)
            shuffle = gr.Checkbox(True, label=label("data.ui.shuffle"), min_width=150)
            workers = gr.Slider(0, 2, value=0, step=1, label=label("data.ui.num_workers"), min_width=160)
            pin = gr.Checkbox(False, label=label("data.ui.pin_memory"), min_width=150)
            dl_seed = gr.Number(0, precision=0, label=label("data.ui.seed"), min_width=140)   # checked by dataloader
            dl_btn = gr.Button(label("data.ui.draw_batch"), elem_id="dataloader-btn", min_width=140)
        dl_status = status_box("dataloader-status")
        batch_img = gr.Image(label=label("data.ui.batch"), interactive=False, elem_id="batch-grid", height=260)
        dl_note = gr.Markdown(elem_id="dataloader-note")
        dl_code = code_block()
    dl_in, dl_out = [source, bs, shuffle, workers, pin, dl_seed], [batch_img, dl_note, dl_code]
    first = _first_part(place, slice(len(aug_outputs) + len(oh_outputs), -1), dl_out, "dataloader")
    dl_btn.click(page((None, "", ""))(dataloader), dl_in, dl_out + [dl_status],
                 api_visibility="private", cancels=first)
    api_endpoint(dataloader, dl_in, dl_out, "dataloader")
    first_screens.register(first_screen)
    first_screens.register(_first_screen_zh)
