"""Classify tab: draw or upload a digit (or a photo), pick a zoo model, see top-5, every model, and the code."""
from __future__ import annotations

import base64
import binascii
import json

import gradio as gr
import numpy as np

from core.errors import InputError
from core.i18n import LANGUAGES, N_, t
from ui.code_comments import translate
from ui.common import ALONE, INTERACTIVE, Place, api_endpoint, code_block, sketch_is_empty
from ui.digit_input import digit_input
from ui.errors import api, message, page, show_status, status_box
from ui.examples import digit_examples, photo_examples
from ui.i18n import follow_headers, follow_language, label, request_language
from zoo import get_spec, list_models
from zoo.classify import (compare_family, disagreement_note, model_unavailable, predict, reproduce_code, route,
                          status_text, weights_on_disk)
from zoo.hub import WeightsUnavailable
from zoo.images import MAX_FILE_BYTES, ImageInputError, open_image
from zoo.pictures import to_rgb, upscale

DEFAULT_MODEL = "resnet_digits"
# The one-line answer under the input (#classify-guess), written in the page from the Prediction label's value.
GUESS_JS = """(v) => {
  if (!v || v.label == null) return "";
  const c = (v.confidences || []).find((x) => x.label === v.label);
  const words = %s[(document.documentElement.lang || "").toLowerCase().startsWith("zh") ? "zh" : "en"];
  return (c ? words[1].replace("{confidence}", (100 * c.confidence).toFixed(1) + "%%") : words[0])
    .replace("{label}", v.label);
}""" % json.dumps({lang: [t("classify.guess", lang), t("classify.guess_confidence", lang)] for lang in LANGUAGES},
                  ensure_ascii=False)
# The pad's picture for an event, read in the page by app.JS (window.playgroundDrawing): replaces the event's first
# input (the hidden #digit-sketch-png box), so the Sketchpad itself is never an event's input (see app.JS).
DRAWING_JS = """async (_, ...rest) => [await window.playgroundDrawing?.('digit-sketch') ?? null, ...rest]"""
PNG_DATA_URL = "data:image/png;base64,"


CLASSIFIER_FAMILIES = ("digits", "imagenet")


def model_choices(language: str | None = None) -> list[tuple[str, str]]:
    """The zoo's classifiers (the generative family has its own tabs); a model whose weights are not here yet
    says so: choosing it means a download from the Hugging Face Hub. The models' titles stay as they are; the
    note is in `language`."""
    return [(f"{get_spec(n).title}  [{n}]" + ("" if weights_on_disk(n) else "  " + t("classify.needs_download",
                                                                                    language)), n)
            for fam in CLASSIFIER_FAMILIES for n in list_models(fam)]


def model_card(name: str, language: str | None = None) -> str:
    """The chosen model in a few lines (its title and description stay English, as the zoo writes them)."""
    spec = get_spec(name or DEFAULT_MODEL)
    w = spec.weights
    acc = ", ".join(f"{k}: {v}%" for k, v in w.accuracy.items()) or t("classify.card.not_measured", language)
    where = "" if weights_on_disk(spec.name) else " " + t("classify.card.not_downloaded", language)
    return t("classify.card", language, title=spec.title, name=spec.name, about=spec.about,
             params=f"{w.num_params:,}", input=w.input_size, accuracy=acc, source=w.source,
             hub=f"{w.repo_id}/{w.filename}", command=w.train_command) + where


def model_card_ui(name: str, request: gr.Request = None) -> str:
    return model_card(name, request_language(request))


def example_names(language: str | None = None) -> list[str]:
    """The examples' names under the upload box (digits, then photos) in a language."""
    return [t(key, language) for key, _ in digit_examples() + photo_examples()]


def model_info_ui(name: str, request: gr.Request = None):
    """On page load: the model's card, the list of models with their notes and the examples' names, in the page's
    language (neither a Dropdown's choice with a value in it nor an example's name can be a page string)."""
    language = request_language(request)
    return (model_card(name, language), gr.Dropdown(choices=model_choices(language)),
            gr.Dataset(sample_labels=example_names(language)))


def _seen_image(spec, x):
    """The tensor the model saw, as a picture (digits: upscaled 28x28; photos: de-normalised 224 crop)."""
    arr = to_rgb(x, spec.weights.mean, spec.weights.std)       # rounded: undoing the normalisation is inexact
    return upscale(arr, 224) if spec.family == "digits" else arr   # 28 -> 224, nearest: every pixel visible


def _classify(src, model_name: str, topk: int, seen: bool = True, drawn: bool = False, glance: bool = False,
              language: str | None = None):
    """drawn: src is the sketchpad's value, so it is a drawing (never refused as a photo for its size or place).
    glance: only the asked model's answer and the summary (no other models, picture or code). language: of the
    summary and the table's status column (None: the request's, core.i18n.current_language)."""
    asked = model_name or DEFAULT_MODEL
    if get_spec(asked).family not in CLASSIFIER_FAMILIES:
        raise InputError("classify.not_classifier", model=asked, models=", ".join(n for _, n in model_choices()))
    src = open_image(src)                 # decoded (and checked) once for the photo check and all the models
    name, note = route(asked, src, drawn, language)  # a photo for a digits model: an ImageNet model, or refused
    spec = get_spec(name)
    try:
        p = predict(name, src, topk=int(topk))
    except WeightsUnavailable:
        raise model_unavailable(name) from None
    summary = t("classify.summary", language, name=name, label=p.label, confidence=f"{p.confidence:.1%}",
                ms=f"{p.latency_ms:.1f}", shape=tuple(p.input_tensor.shape),
                mean=f"{float(p.input_tensor.mean()):+.3f}")
    if glance:
        return p.probs, (note + "  \n" + summary if note else summary)
    rows = compare_family(src, spec.family, known=p)
    table = [[r["model"], r["prediction"], r["confidence"], r["latency_ms"], status_text(r, language)] for r in rows]
    for extra in (disagreement_note(rows, spec.family, language), note):
        if extra:
            summary = extra + "  \n" + summary
    return p.probs, (_seen_image(spec, p.input_tensor) if seen else None), table, reproduce_code(name), summary


COMPARE_HEADERS = ["model", "prediction", "confidence", "latency_ms", "status"]   # the API's table columns
COMPARE_HEADER_KEYS = [N_("classify.col.model"), N_("classify.col.prediction"), N_("classify.col.confidence"),
                       N_("classify.col.latency_ms"), N_("classify.col.status")]


def _page_table(out: tuple, language: str) -> tuple:
    """The page's outputs: the comparison table with its headers and the code with its comments in the page's
    language (a Dataframe's headers are not page strings); the API keeps its plain rows, column names and English
    code."""
    probs, seen, table, code, summary = out
    headers = [t(k, language) for k in COMPARE_HEADER_KEYS]
    return probs, seen, gr.Dataframe(value=table, headers=headers), translate(code, language), summary


# ---- the public API (errors raise: a gradio_client caller gets an exception with the message) --------------

@api
def classify(image, model_name: str = DEFAULT_MODEL, topk: int = 5):
    """The public API (/classify): an image file -> (top-k label, every model of the family, code, summary).

    The picture of what the model saw is left out: encoding and fetching an image would double an API
    call's time for a picture most API clients do not want. A photo given to a digits model is answered by
    an ImageNet model when its weights can be had, and is an error otherwise (never a digit for a photo).
    """
    probs, _, table, code, summary = _classify(image, model_name, topk, seen=False)
    return probs, table, code, summary


@api
def classify_sketch(sketch, model_name: str = DEFAULT_MODEL, topk: int = 5):
    """The public API (/classify_sketch): a sketchpad value -> (label, what the model saw, table, code, summary).
    A drawing in the pad's black ink is always read as a digit; a picture in colour is treated as a photo."""
    return _classify(sketch, model_name, topk, drawn=True)


# ---- the tab (errors go to the status line under the input; other outputs reset, never painted red) --------

RESET = (None, None, None, "", "")  # label, seen, table, code, summary


def _upload_empty(image, *_, **__):
    return image is None


# progress: the first use of an ImageNet model downloads its weights from the Hub (45-530 MB); track_tqdm turns
# huggingface_hub's download bar into the tab's progress bar instead of a bare timer.
@page(RESET, empty=_upload_empty)
def classify_upload_ui(image, model_name: str, topk: int, request: gr.Request = None,
                       progress=gr.Progress(track_tqdm=True)):
    language = request_language(request)
    return _page_table(_classify(image, model_name, topk, language=language), language)


@page(RESET, empty=sketch_is_empty)
def classify_sketch_ui(sketch, model_name: str, topk: int, request: gr.Request = None):
    language = request_language(request)
    return _page_table(_classify(sketch, model_name, topk, drawn=True, language=language), language)


def page_drawing(value):
    """The drawing as a sketchpad value. From the page it comes as a PNG data URL of the pad's composite (DRAWING_JS),
    decoded like any upload (zoo.images: size caps, formats); a pad's opaque white canvas becomes RGB, so a blank pad
    counts as empty (ui.common.sketch_is_empty). A sketchpad dict (API, tests) or None passes through."""
    if value is None or isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.startswith(PNG_DATA_URL):
        raise ImageInputError("image.drawing_unreadable")
    data = value[len(PNG_DATA_URL):]
    if len(data) > MAX_FILE_BYTES * 4 // 3 + 4:
        raise ImageInputError("image.drawing_too_large", limit_mb=MAX_FILE_BYTES // 2**20)
    try:
        img = open_image(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        raise ImageInputError("image.drawing_unreadable") from None
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 4 and arr[:, :, 3].min() == 255:
        arr = arr[:, :, :3]
    return {"background": None, "layers": [], "composite": arr}


RESET_GLANCE = (None, "")  # label, summary


@page(RESET_GLANCE, empty=sketch_is_empty)
def glance_sketch_ui(sketch, model_name: str, topk: int, request: gr.Request = None):
    return _classify(sketch, model_name, topk, drawn=True, glance=True, language=request_language(request))


def glance_drawing_ui(drawing, model_name: str, topk: int, request: gr.Request = None):
    """While a stroke is drawn (app.JS, at most every LIVE_MS): the asked model's answer and the summary only, a
    fraction of the work for the server and the page; the stroke's end brings the whole result (read_drawing_ui)."""
    try:
        sketch = page_drawing(drawing)
    except ImageInputError as exc:
        return (*RESET_GLANCE, show_status(message(exc, "glance_drawing_ui", request_language(request))))
    return glance_sketch_ui(sketch, model_name, topk, request)


def read_drawing_ui(drawing, model_name: str, topk: int, request: gr.Request = None):
    """The pad's event (see build_tab): classify the drawing and remember that the result shown came from it."""
    try:
        sketch = page_drawing(drawing)
    except ImageInputError as exc:
        return (*RESET, show_status(message(exc, "read_drawing_ui", request_language(request))), gr.skip())
    return (*classify_sketch_ui(sketch, model_name, topk, request),
            gr.skip() if sketch_is_empty(sketch) else "sketch")


def rerun_ui(drawing, last: str, upload, model_name: str, topk: int, request: gr.Request = None,
             progress=gr.Progress(track_tqdm=True)):
    """After a model change, classify whichever input produced the current result (the drawing as read from the
    page by DRAWING_JS, which fills the first input, or a sketchpad value)."""
    if last == "upload":
        return classify_upload_ui(upload, model_name, topk, request)
    try:
        sketch = page_drawing(drawing)
    except ImageInputError as exc:
        return (*RESET, show_status(message(exc, "rerun_ui", request_language(request))))
    return classify_sketch_ui(sketch, model_name, topk, request)


def first_example() -> str:
    """The digit the tab shows on arrival (an mnist5k test digit, shipped as a PNG)."""
    return digit_examples()[7][1]


def first_screen(model_name: str, topk: int, request: gr.Request = None):
    """On page load: the example digit in the upload box and its result, so the tab opens on PyTorch at work.
    A drawing made meanwhile wins (its event cancels this one)."""
    path = first_example()
    return (*classify_upload_ui(path, model_name, topk, request), path, "upload")


def _drawing_parts():
    """Inside the Draw tab: clicked by app.JS while the pad is drawn on (live-sketch) and after; the box carries the
    drawing that DRAWING_JS reads from the page into the event (see build_tab's events)."""
    glance = gr.Button(label("classify.glance"), visible="hidden", elem_id="digit-sketch-live")
    read = gr.Button(label("classify.read"), visible="hidden", elem_id="digit-sketch-go")
    drawing = gr.Textbox(visible="hidden", elem_id="digit-sketch-png")
    return glance, read, drawing


def build_tab(place: Place = ALONE) -> None:
    """place.demo: every page load shows the first screen and writes the card in the page's language."""
    gr.Markdown(label("classify.intro"))
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            digit = digit_input("digit", digit_examples() + photo_examples(), canvas=400, brush=28, upload_height=280,
                                ids=("digit-sketch", "upload-image", "classify-examples"),
                                sketch_classes=("live-sketch",), in_draw=_drawing_parts,
                                draw_tab=label("pad.draw_tab"), upload_tab=label("pad.upload_tab"),
                                sketch_label=label("pad.draw_digit"), upload_label=label("classify.upload"),
                                examples_label=label("classify.examples"), example_labels=example_names("en"))
            sketch, upload, examples = digit.sketch, digit.upload, digit.examples
            glance, read, drawing = digit.extra
            # The answer in one line right under the input: on a phone the Prediction box is a screen further down
            # (app.CSS shows this line on narrow screens only).
            guess = gr.Markdown(elem_id="classify-guess")
            status = status_box("classify-status")
            model = gr.Dropdown(model_choices("en"), value=DEFAULT_MODEL, label=label("classify.model"),
                                elem_id="model-choice")
            topk = gr.Slider(1, 10, value=5, step=1, label=label("classify.topk"))
            gr.Markdown(label("classify.how"))
        with gr.Column(scale=1, min_width=300):
            prediction = gr.Label(num_top_classes=5, label=label("classify.prediction"), elem_id="prediction")
            summary = gr.Markdown(elem_id="classify-summary")
            seen = gr.Image(label=label("classify.seen"), interactive=False, height=224, elem_id="classify-seen",
                            format="png")  # lossless: the exact pixels the model saw
    compare = gr.Dataframe(headers=COMPARE_HEADERS, label=label("classify.compare"), interactive=False,
                           elem_id="classify-compare")   # headers: in the page's language from the first result
    # after a switch of language (ui.i18n): the models' notes and the table's headers in the new one
    follow_language(model, lambda language: gr.Dropdown(choices=model_choices(language)))
    follow_headers(compare, dict(zip(COMPARE_HEADERS, COMPARE_HEADER_KEYS)))
    card = gr.Markdown(model_card(DEFAULT_MODEL, "en"), elem_id="classify-card")
    code = code_block()

    outputs = [prediction, seen, compare, code, summary, status]
    common = INTERACTIVE
    last = gr.State("upload")  # which input the shown result came from, so a model change re-runs it
    # The first screen: on page load, an example digit and its result (not at import, not at start-up).
    first = place.on_load(first_screen, [model, topk], outputs + [upload, last], api_visibility="private", **common)
    first = [first] if first is not None else []
    # User actions cancel the first screen if it is still running, so it never overwrites their result.
    upload.upload(classify_upload_ui, [upload, model, topk], outputs, api_visibility="private",
                  trigger_mode="always_last", cancels=first, **common).then(
        lambda: "upload", None, last, api_visibility="private")
    upload.clear(classify_upload_ui, [upload, model, topk], outputs, api_visibility="private", cancels=first)
    examples.load_input_event.then(classify_upload_ui, [upload, model, topk], outputs, api_visibility="private",
                                   **common).then(lambda: "upload", None, last, api_visibility="private")
    # The drawing is read while it is drawn, at a bounded rate, with one request per reading. No .change/.input
    # listener on the pad: with one, Gradio encodes and sends the canvas after every change, and a Sketchpad that is
    # the input of any finished event is encoded and uploaded again at every status update of every event (one
    # stroke sent ~50 requests: bench/bench_drawing.py). app.JS clicks `glance` during a stroke (at most every
    # LIVE_MS: the asked model's answer only) and `read` after it (and after Undo, Redo, Clear: the whole result);
    # DRAWING_JS reads the pad's picture into the event. always_last keeps only the newest click while a reading
    # runs, and `read` cancels any glance still running, so the final drawing's result is always the one shown.
    glancing = [glance.click(glance_drawing_ui, [drawing, model, topk], [prediction, summary, status], js=DRAWING_JS,
                             api_visibility="private", trigger_mode="always_last", show_progress="hidden",
                             cancels=first, **common)]
    read.click(read_drawing_ui, [drawing, model, topk], outputs + [last], js=DRAWING_JS, api_visibility="private",
               trigger_mode="always_last", show_progress="hidden", cancels=first + glancing, **common)
    prediction.change(None, prediction, guess, js=GUESS_JS, api_visibility="private", queue=False)
    # the card and the models' notes in the page's language
    place.on_load(model_info_ui, model, [card, model, examples.dataset], api_visibility="private",
                  show_progress="hidden")
    model.change(model_card_ui, model, card, api_visibility="private").then(
        rerun_ui, [drawing, last, upload, model, topk], outputs, js=DRAWING_JS, api_visibility="private", **common)
    api_endpoint(classify, [upload, model, topk], [prediction, compare, code, summary], "classify", one_thread=True,
                 **common)
    api_endpoint(classify_sketch, [sketch, model, topk], [prediction, seen, compare, code, summary], "classify_sketch",
                 **common)
