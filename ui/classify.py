"""Classify tab: draw or upload a digit (or a photo), pick a zoo model, see top-5, every model, and the code."""
from __future__ import annotations

import gradio as gr
import numpy as np

from ui.common import INTERACTIVE, ImageFile, code_block, example_png, friendly
from zoo import get_spec, list_models

DEFAULT_MODEL = "resnet_digits"
N_DIGIT_EXAMPLES = 10
PHOTO_EXAMPLES = {"photo: cat (chelsea)": "chelsea", "photo: coffee cup": "coffee",
                  "photo: astronaut": "astronaut", "photo: rocket": "rocket"}


CLASSIFIER_FAMILIES = ("digits", "imagenet")


def model_choices() -> list[tuple[str, str]]:
    """The zoo's classifiers (the generative family has its own tabs)."""
    return [(f"{get_spec(n).title}  [{n}]", n) for fam in CLASSIFIER_FAMILIES for n in list_models(fam)]


def model_card(name: str) -> str:
    spec = get_spec(name)
    w = spec.weights
    acc = ", ".join(f"{k}: {v}%" for k, v in w.accuracy.items()) or "not measured yet"
    return (f"**{spec.title}** (`{name}`) - {spec.about}.  \n"
            f"{w.num_params:,} parameters; input {w.input_size}; accuracy {acc}.  \n"
            f"Weights: {w.source}; Hub `{w.repo_id}/{w.filename}`; made by `{w.train_command}`.")


def _seen_image(spec, x):
    """The tensor the model saw, as a picture (digits: upscaled 28x28; photos: de-normalised 224 crop)."""
    import torch

    mean = torch.tensor(spec.weights.mean).view(-1, 1, 1)
    std = torch.tensor(spec.weights.std).view(-1, 1, 1)
    img = (x.cpu() * std + mean).clamp(0, 1)
    arr = (img.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if spec.family == "digits":
        arr = arr.repeat(8, axis=0).repeat(8, axis=1)  # 224x224, nearest: every pixel visible
    return arr


def _classify(src, model_name: str, topk: int):
    from zoo.classify import compare_family, predict, reproduce_code

    model_name = model_name or DEFAULT_MODEL
    spec = get_spec(model_name)
    if spec.family not in CLASSIFIER_FAMILIES:
        raise ValueError(f"{model_name!r} is not a classifier; choose one of {[n for _, n in model_choices()]}")
    p = predict(model_name, src, topk=int(topk))
    rows = compare_family(src, spec.family)
    table = [[r["model"], r["prediction"], r["confidence"], r["latency_ms"], r["status"]] for r in rows]
    summary = (f"`{model_name}` says **{p.label}** ({p.confidence:.1%}) in {p.latency_ms:.1f} ms "
               f"(preprocess + forward). Input tensor: {tuple(p.input_tensor.shape)}, "
               f"mean {float(p.input_tensor.mean()):+.3f}.")
    return p.probs, _seen_image(spec, p.input_tensor), table, reproduce_code(model_name), summary


@friendly
def classify(image, model_name: str = DEFAULT_MODEL, topk: int = 5):
    """The public API (/classify): an image file -> (top-k label, every model of the family, code, summary).

    The picture of what the model saw is left to the UI (seen_input, chained after it): encoding and
    fetching an image would double an API call's time for a picture most API clients do not want.
    """
    probs, _, table, code, summary = _classify(image, model_name, topk)
    return probs, table, code, summary


@friendly
def seen_input(image, model_name: str = DEFAULT_MODEL):
    """The exact tensor the model saw for this input, as a picture (for the UI)."""
    from zoo.classify import preprocess

    spec = get_spec(model_name or DEFAULT_MODEL)
    return _seen_image(spec, preprocess(spec, image))


@friendly
def classify_full(image, model_name: str = DEFAULT_MODEL, topk: int = 5):
    """Everything the tab shows, in one round trip (uploads and examples in the UI)."""
    return _classify(image, model_name, topk)


@friendly
def classify_sketch(sketch, model_name: str = DEFAULT_MODEL, topk: int = 5):
    """Classify the sketchpad drawing (a Gradio ImageEditor value)."""
    return _classify(sketch, model_name, topk)


@friendly
def rerun(last: str, sketch, upload, model_name: str, topk: int):
    """After a model change, classify whichever input produced the current result (nothing if none yet)."""
    src = upload if last == "upload" else sketch
    if src is None or (isinstance(src, dict) and src.get("composite") is None):
        return (gr.skip(),) * 5
    return _classify(src, model_name, topk)


@friendly
def load_example(choice: str):
    """Write the chosen example (an mnist5k test digit or an skimage photo) to a temp PNG for the upload box."""
    if not choice:
        return None
    if choice in PHOTO_EXAMPLES:
        import skimage.data

        arr = getattr(skimage.data, PHOTO_EXAMPLES[choice])()
    else:
        from training.data import mnist5k

        idx = int(choice.split("#")[1].split()[0])
        arr = (mnist5k().test_x[idx, 0].numpy() * 255).astype(np.uint8)
    return example_png(arr, choice)


def digit_example_names() -> list[str]:
    # Labels are fixed by the seeded split: test digit #i of mnist5k (see training/data.py).
    return [f"MNIST test digit #{i}" for i in range(N_DIGIT_EXAMPLES)]


def build_tab() -> None:
    gr.Markdown("Draw a digit (anywhere, any size), or upload a picture. It is cropped to the ink, scaled to "
                "20x20 and centred by mass in 28x28, exactly as MNIST was made, then classified. Photos go to the "
                "ImageNet models (AlexNet, VGG-16, ResNet-18/50; weights from the Hugging Face Hub).")
    with gr.Row():
        with gr.Column(scale=1):
            with gr.Tabs():
                with gr.Tab("Draw"):
                    sketch = gr.Sketchpad(label="Draw a digit", type="numpy", image_mode="RGBA",
                                          canvas_size=(400, 400), elem_id="digit-sketch", elem_classes=["auto-brush"],
                                          brush=gr.Brush(default_size=28, colors=["#000000"], color_mode="fixed"))
                with gr.Tab("Upload"):
                    upload = ImageFile(label="Upload an image", type="filepath", sources=["upload", "clipboard"],
                                      elem_id="upload-image", height=280)
                    example = gr.Dropdown(digit_example_names() + list(PHOTO_EXAMPLES), value=None,
                                          label="...or load an example", elem_id="example-choice")
                    btn = gr.Button("Classify upload", variant="primary", elem_id="classify-btn")
            model = gr.Dropdown(model_choices(), value=DEFAULT_MODEL, label="Model", elem_id="model-choice")
            topk = gr.Slider(1, 10, value=5, step=1, label="Top-k")
            gr.Markdown("Drawings are classified as you draw; uploads and examples as soon as they arrive.")
        with gr.Column(scale=1):
            label = gr.Label(num_top_classes=5, label="Prediction", elem_id="prediction")
            summary = gr.Markdown(elem_id="classify-summary")
            seen = gr.Image(label="What the model saw", interactive=False, height=224)
    compare = gr.Dataframe(headers=["model", "prediction", "confidence", "latency_ms", "status"],
                           label="The same input through every model of the family", interactive=False)
    card = gr.Markdown(model_card(DEFAULT_MODEL))
    code = code_block()

    outputs = [label, seen, compare, code, summary]
    common = INTERACTIVE
    last = gr.State("sketch")  # which input the shown result came from, so a model change re-runs it
    btn.click(classify, [upload, model, topk], [label, compare, code, summary], api_name="classify", **common).then(
        seen_input, [upload, model], seen, api_visibility="private").then(
        lambda: "upload", None, last, api_visibility="private")
    upload.upload(classify_full, [upload, model, topk], outputs, api_visibility="private", **common).then(
        lambda: "upload", None, last, api_visibility="private")
    sketch.change(classify_sketch, [sketch, model, topk], outputs, api_name="classify_sketch",
                  trigger_mode="always_last", show_progress="hidden", **common).then(
        lambda: "sketch", None, last, api_visibility="private")
    example.change(load_example, example, upload, api_visibility="private").then(
        classify_full, [upload, model, topk], outputs, api_visibility="private", **common).then(
        lambda: "upload", None, last, api_visibility="private")
    model.change(model_card, model, card, api_visibility="private").then(
        rerun, [last, sketch, upload, model, topk], outputs, api_visibility="private", **common)
