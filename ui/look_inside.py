"""Look inside tab: a layer's feature maps and every layer's statistics, Grad-CAM + saliency, weight histograms
and filters, two checkpoints compared, and a model summary - for any zoo model, on a drawn or uploaded input."""
from __future__ import annotations

import gradio as gr

from look_inside.activations import STATS_HEADERS, graph_nodes
from look_inside.plain_code import activation_code, attribution_code, compare_code, summary_code, weights_code
from look_inside.views import (RANDOM, TRAINED, activation_view, attribution_view, compare_view, get_inspect_model,
                               input_tensor, layer_choices, summary_view, weights_label, weights_view)
from look_inside.weights import COMPARE_HEADERS, SUMMARY_HEADERS, TABLE_HEADERS, load_checkpoint, param_tensors
from ui.classify import model_choices
from core.errors import InputError
from ui.common import ALONE, INTERACTIVE, Place, api_endpoint, code_block, sketch_is_empty, whole_number
from ui.digit_input import digit_input
from ui.errors import KEEP, api, page, status_box
from ui.examples import digit_examples, photo_examples
from zoo import get_spec
from zoo.catalog import categories_of
from zoo.classify import model_unavailable
from zoo.hub import WeightsUnavailable

DEFAULT_MODEL = "resnet_digits"
AUTO_LAYER = ("automatic (first ReLU)", "")
PREDICTED = ("the predicted class", "")
CMP_RANDOM = "random init (seed) -> trained"
CMP_UPLOAD = "trained -> uploaded .safetensors"


def _model(name, weights, seed):
    try:
        return get_inspect_model(name or DEFAULT_MODEL, weights or TRAINED,
                                 whole_number(seed or 0, "field.random_init_seed", 0, 2**31 - 1))
    except WeightsUnavailable:
        raise model_unavailable(name or DEFAULT_MODEL, inspecting=True) from None


def _pick(sketch, upload, source):
    return sketch if source == "draw" else upload


# ---- activations + attribution ------------------------------------------------------------------------------

def _activations(src, model_name, layer, top_k, weights, seed, shared_scale):
    model_name = model_name or DEFAULT_MODEL
    spec = get_spec(model_name)
    model = _model(model_name, weights, seed)
    v = activation_view(model, spec, input_tensor(spec, src), layer or None, int(top_k or 16), bool(shared_scale))
    node = next(n for n in graph_nodes(model) if n.name == v.layer)
    text = f"_{weights_label(weights or TRAINED, int(seed or 0))}_  \n" + v.text
    choices = [AUTO_LAYER] + [(n, n) for n in layer_choices(model)]
    return (v.grid, v.hist, v.rows, text, activation_code(model_name, v.layer, node.module, spec.family),
            gr.Dropdown(choices=choices, value=layer or ""))


@api
def activations(image, model_name: str = DEFAULT_MODEL, layer: str = "", top_k: int = 16, weights: str = TRAINED,
                seed: int = 0, shared_scale: bool = False):
    """Feature maps of one layer and every layer's statistics for an image file (the public API: /activations).
    Returns the feature-map grid first, then the activation histograms, the statistics table, a description,
    the PyTorch code, and the layer list."""
    return _activations(image, model_name, layer, top_k, weights, seed, shared_scale)


def _attribution(src, model_name, target, weights, seed):
    model_name = model_name or DEFAULT_MODEL
    spec = get_spec(model_name)
    model = _model(model_name, weights, seed)
    t = None if target in (None, "") else int(target)
    v = attribution_view(model, spec, input_tensor(spec, src), t)
    text = f"_{weights_label(weights or TRAINED, int(seed or 0))}_  \n" + v.text
    return v.gradcam, v.saliency, text, attribution_code(model_name, v.layer, t, spec.family)


@api
def attribution(image, model_name: str = DEFAULT_MODEL, target: str = "", weights: str = TRAINED, seed: int = 0):
    """Grad-CAM and saliency overlays for an image file and a class ('' = the predicted one)."""
    return _attribution(image, model_name, target, weights, seed)


# The tab's events show errors in the status line under the input; a cleared input resets the views quietly.
ACT_RESET = (None, None, None, "", "", KEEP)       # grid, histograms, table, text, code, layer list
ATTR_RESET = (None, None, "", "")                  # Grad-CAM, saliency, text, code


@page(ACT_RESET + ATTR_RESET, empty=sketch_is_empty)
def look_sketch(sketch, model_name, layer, top_k, weights, seed, shared_scale, target):
    """Live view while drawing: activations and attribution of the sketch."""
    return (*_activations(sketch, model_name, layer, top_k, weights, seed, shared_scale),
            *_attribution(sketch, model_name, target, weights, seed))


# progress: as on Classify, the first use of an ImageNet model downloads its weights from the Hub (45-530 MB);
# track_tqdm turns huggingface_hub's download bar into the tab's progress bar. Every event that loads trained
# weights on request takes one (the sketchpad's live view hides its progress, as Classify's does).
@page(ACT_RESET + ATTR_RESET, empty=lambda image, *_: image is None)
def look_upload(image, model_name, layer, top_k, weights, seed, shared_scale, target,
                progress=gr.Progress(track_tqdm=True)):
    """An upload or an example: activations and attribution."""
    return (*_activations(image, model_name, layer, top_k, weights, seed, shared_scale),
            *_attribution(image, model_name, target, weights, seed))


@page(ACT_RESET)
def activations_ui(sketch, upload, source, model_name, layer, top_k, weights, seed, shared_scale,
                   progress=gr.Progress(track_tqdm=True)):
    src = _pick(sketch, upload, source)
    if src is None or (source == "draw" and sketch_is_empty(src)):
        raise InputError("inspect.no_input")
    return _activations(src, model_name, layer, top_k, weights, seed, shared_scale)


@page(ATTR_RESET)
def attribution_ui(sketch, upload, source, model_name, target, weights, seed, progress=gr.Progress(track_tqdm=True)):
    src = _pick(sketch, upload, source)
    if src is None or (source == "draw" and sketch_is_empty(src)):
        raise InputError("inspect.no_input")
    return _attribution(src, model_name, target, weights, seed)


# ---- weights, comparison, summary ---------------------------------------------------------------------------

@api
def weight_stats(model_name: str = DEFAULT_MODEL, weights: str = TRAINED, seed: int = 0, include_bn: bool = False,
                 zero_tol: float = 1e-3):
    """Per-tensor weight histograms (first output), the statistics table, first-layer filters, a description and
    the code (the public API: /weight_stats; every parameter has a default)."""
    model_name = model_name or DEFAULT_MODEL
    zero_tol = float(zero_tol if zero_tol is not None else 1e-3)
    if not 0 <= zero_tol < 1e3:
        raise InputError("inspect.zero_tol")
    label = weights_label(weights or TRAINED, int(seed or 0))
    v = weights_view(_model(model_name, weights, seed), label, bool(include_bn), zero_tol)
    return (v.hist, v.rows, v.filters, f"_{label}_  \n" + v.text,
            weights_code(model_name, None if (weights or TRAINED) == TRAINED else int(seed or 0), zero_tol))


@api
def compare_checkpoints(model_name: str = DEFAULT_MODEL, mode: str = CMP_RANDOM, seed: int = 0,
                        checkpoint: str | None = None, layer: str = ""):
    """Two checkpoints of one architecture, layer by layer: relative-change bars first, then the overlaid
    histograms of one tensor ('' = the most changed), the table, a description and the code."""
    model_name = model_name or DEFAULT_MODEL
    seed = int(seed or 0)
    trained = _model(model_name, TRAINED, 0)
    if mode == CMP_UPLOAD:
        if not checkpoint:
            raise InputError("inspect.upload_first")
        path = checkpoint if isinstance(checkpoint, str) else getattr(checkpoint, "name", str(checkpoint))
        a, b = trained, load_checkpoint(get_spec(model_name), path)
        labels = ("trained (shipped)", "uploaded file")
    else:
        a, b = get_inspect_model(model_name, RANDOM, seed), trained
        labels = (f"random init (seed {seed})", "trained")
    v = compare_view(a, b, labels, layer or None)
    choices = [("most changed (automatic)", "")] + [(n, n) for n in param_tensors(a)]
    note = ("  \nSeed 0 is the seed the shipped digits weights were trained with, so for them A is the training "
            "run's true starting point (hence the high cosine of some layers)." if mode != CMP_UPLOAD and seed == 0
            and get_spec(model_name).family == "digits" else "")
    code = compare_code(model_name, labels[0], labels[1], seed, uploaded=mode == CMP_UPLOAD)
    return (v.bars, v.hist, v.rows, v.text + note, code,
            gr.Dropdown(choices=choices, value=layer or ""))


@api
def model_summary(model_name: str = DEFAULT_MODEL, height: int = 0, width: int = 0, depth: int = 4):
    """torchinfo summary (layers, output shapes, params, mult-adds, memory) for a 1 x C x H x W input
    (0 = the model's own size)."""
    model_name = model_name or DEFAULT_MODEL
    c, h0, w0 = get_spec(model_name).weights.input_size
    h = whole_number(height or h0, "field.input_height", 8, 1024)
    w = whole_number(width or w0, "field.input_width", 8, 1024)
    rows, text = summary_view(model_name, h, w, int(depth or 4))
    return rows, f"```\n{text.strip()}\n```", summary_code(model_name, (1, c, h, w), int(depth or 4))


@page((None, None, None, "", ""))
def weight_stats_ui(model_name, weights, seed, include_bn, zero_tol, progress=gr.Progress(track_tqdm=True)):
    return weight_stats(model_name, weights, seed, include_bn, zero_tol)


@page((None, None, None, "", "", KEEP))
def compare_checkpoints_ui(model_name, mode, seed, checkpoint, layer, progress=gr.Progress(track_tqdm=True)):
    return compare_checkpoints(model_name, mode, seed, checkpoint, layer)


def _class_choices(model_name: str):
    cats = categories_of(get_spec(model_name or DEFAULT_MODEL))
    return [PREDICTED] + [(f"{i}: {c}", str(i)) for i, c in enumerate(cats)]


def on_model_change(model_name):
    """A new model: reset the layer and class lists (filled with the model's own layers on the next run)."""
    spec = get_spec(model_name or DEFAULT_MODEL)
    c, h, w = spec.weights.input_size
    return (gr.Dropdown(choices=[AUTO_LAYER], value=""), gr.Dropdown(choices=_class_choices(model_name), value=""),
            gr.Dropdown(choices=[("most changed (automatic)", "")], value=""), h, w)


def first_visit(current, shown, sketch, *look):
    """On the first visit: an example digit in the upload box with its activations and attribution. Later
    visits, or a drawing made meanwhile, keep what the visitor did."""
    if current is not None or shown is not None or not sketch_is_empty(sketch):
        return (gr.skip(),) * 13
    path = digit_examples()[3][1]
    return (*look_upload(path, *look), path, "upload")


def build_tab(place: Place = ALONE) -> None:
    """place.tab: its select event shows the first example on the first visit."""
    gr.Markdown("**Start here:** draw a digit (or pick an example in *Upload*) and see what every layer of the "
                "network computes for it, which pixels drive its decision (Attribution), what its weights look "
                "like and how training moved them. ImageNet models need their Hub weights; without them, choose "
                "*random init* to explore the architecture (clearly labelled).")
    common = INTERACTIVE
    source = gr.State("draw")
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            digit = digit_input("inspect", digit_examples() + photo_examples(), canvas=300, brush=24,
                                upload_height=240, upload_label="Upload an image")
            sketch, upload, examples = digit.sketch, digit.upload, digit.examples
            model = gr.Dropdown(model_choices(), value=DEFAULT_MODEL, label="Model", elem_id="inspect-model")
            with gr.Row():
                weights = gr.Radio([TRAINED, RANDOM], value=TRAINED, label="Weights", elem_id="inspect-weights")
                seed = gr.Number(0, precision=0, label="Random-init seed")  # checked: whole_number
            status = status_box("inspect-status")
        with gr.Column(scale=2):
            with gr.Tabs():
                with gr.Tab("Activations"):
                    with gr.Row():
                        layer = gr.Dropdown([AUTO_LAYER], value="", label="Layer (from the model's fx graph)",
                                            elem_id="inspect-layer", scale=2, allow_custom_value=True, min_width=220)
                        top_k = gr.Slider(1, 64, value=16, step=1, label="Channels shown (top by mean)", scale=1,
                                          min_width=180)
                        shared = gr.Checkbox(False, label="One colour scale for all maps", scale=1, min_width=180)
                    act_btn = gr.Button("Show activations", variant="primary", elem_id="inspect-act-btn")
                    act_text = gr.Markdown(elem_id="inspect-act-text")
                    grid = gr.Image(label="Feature maps (channel index, mean activation)", interactive=False,
                                    elem_id="inspect-grid", format="png", height=460, show_label=False)
                    act_hist = gr.Image(label="Activation histograms, every ReLU layer", interactive=False,
                                        elem_id="inspect-act-hist", elem_classes=["wide-picture"],
                                        format="png", show_label=False)
                    act_table = gr.Dataframe(headers=STATS_HEADERS, label="Every layer's output for this input",
                                             interactive=False, max_height=320)
                    act_code = code_block()
                with gr.Tab("Attribution"):
                    with gr.Row():
                        target = gr.Dropdown(_class_choices(DEFAULT_MODEL), value="", label="Explain class",
                                             elem_id="inspect-target", filterable=True,
                                             allow_custom_value=True)
                        attr_btn = gr.Button("Explain (Grad-CAM + saliency)", variant="primary",
                                             elem_id="inspect-attr-btn")
                    attr_text = gr.Markdown(elem_id="inspect-attr-text")
                    with gr.Row():
                        cam = gr.Image(label="Grad-CAM", interactive=False, elem_id="inspect-cam", format="png")
                        sal = gr.Image(label="Gradient saliency", interactive=False, format="png")
                    attr_code = code_block()
                with gr.Tab("Weights"):
                    with gr.Row():
                        include_bn = gr.Checkbox(False, label="Histograms of biases and BatchNorm too", min_width=200)
                        zero_tol = gr.Number(1e-3, label="'Near zero' means |w| below", min_width=160)
                        w_btn = gr.Button("Show weights", variant="primary", elem_id="inspect-w-btn")
                    w_text = gr.Markdown(elem_id="inspect-w-text")
                    w_hist = gr.Image(label="Weight histograms", interactive=False, elem_id="inspect-w-hist",
                                      elem_classes=["wide-picture"],
                                      format="png", show_label=False)
                    w_table = gr.Dataframe(label="Every parameter tensor", interactive=False, max_height=320,
                                           headers=TABLE_HEADERS)
                    filters = gr.Image(label="First-layer filters", interactive=False, format="png")
                    w_code = code_block()
                with gr.Tab("Compare checkpoints"):
                    gr.Markdown("Same architecture, two sets of weights: A (before) and B (after). Built in: how "
                                "far training moved each tensor from its random init. Or upload a fine-tuned "
                                "`.safetensors` (e.g. the weights from the Fine-tune tab) to compare with the "
                                "shipped weights.")
                    with gr.Row():
                        mode = gr.Radio([CMP_RANDOM, CMP_UPLOAD], value=CMP_RANDOM, label="Compare",
                                        elem_id="inspect-cmp-mode")
                        ckpt = gr.File(label="B: a .safetensors checkpoint", file_types=[".safetensors"],
                                       type="filepath", elem_id="inspect-ckpt")
                    with gr.Row():
                        cmp_layer = gr.Dropdown([("most changed (automatic)", "")], value="",
                                                label="Close-up tensor", elem_id="inspect-cmp-layer",
                                                allow_custom_value=True)
                        cmp_btn = gr.Button("Compare", variant="primary", elem_id="inspect-cmp-btn")
                    cmp_text = gr.Markdown(elem_id="inspect-cmp-text")
                    cmp_bars = gr.Image(label="Relative change per tensor", interactive=False,
                                        elem_classes=["wide-picture"],
                                        elem_id="inspect-cmp-bars", format="png")
                    cmp_hist = gr.Image(label="One tensor, A vs B", interactive=False, format="png",
                                        elem_classes=["wide-picture"])
                    cmp_table = gr.Dataframe(label="Every tensor", interactive=False, max_height=320,
                                             headers=COMPARE_HEADERS)
                    cmp_code = code_block()
                with gr.Tab("Summary"):
                    with gr.Row():
                        s_h = gr.Number(28, precision=0, label="Input height", min_width=120)
                        s_w = gr.Number(28, precision=0, label="Input width", min_width=120)
                        s_depth = gr.Slider(1, 6, value=4, step=1, label="Depth", min_width=160)
                        s_btn = gr.Button("Summarise", variant="primary", elem_id="inspect-sum-btn")
                    s_table = gr.Dataframe(label="Layers (torchinfo)", interactive=False, max_height=420,
                                           elem_id="inspect-sum-table",
                                           headers=SUMMARY_HEADERS)
                    s_text = gr.Markdown(elem_id="inspect-sum-text")
                    s_code = code_block()

    act_out = [grid, act_hist, act_table, act_text, act_code, layer]
    attr_out = [cam, sal, attr_text, attr_code]
    digit.draw_tab.select(lambda: "draw", None, source, api_visibility="private")
    digit.upload_tab.select(lambda: "upload", None, source, api_visibility="private")

    look_in = [model, layer, top_k, weights, seed, shared, target]
    # the first visit shows an example; the visitor's own input cancels it
    first = [e for e in [place.on_select(first_visit, [upload, grid, sketch] + look_in,
                                         act_out + attr_out + [status, upload, source], api_visibility="private",
                                         **common)] if e is not None]
    look_out = act_out + attr_out + [status]
    upload.upload(look_upload, [upload] + look_in, look_out, api_visibility="private", trigger_mode="always_last",
                  cancels=first, **common).then(lambda: "upload", None, source, api_visibility="private")
    upload.clear(look_upload, [upload] + look_in, look_out, api_visibility="private", cancels=first)
    examples.load_input_event.then(look_upload, [upload] + look_in, look_out, api_visibility="private",
                                   **common).then(lambda: "upload", None, source, api_visibility="private")
    sketch.change(look_sketch, [sketch] + look_in, look_out, api_visibility="private", trigger_mode="always_last",
                  show_progress="hidden", cancels=first, **common).then(
        lambda s: gr.skip() if sketch_is_empty(s) else "draw", sketch, source, api_visibility="private")
    inputs_any = [sketch, upload, source, model]
    act_btn.click(activations_ui, inputs_any + [layer, top_k, weights, seed, shared], act_out + [status],
                  api_visibility="private", **common)
    attr_btn.click(attribution_ui, inputs_any + [target, weights, seed], attr_out + [status],
                   api_visibility="private", **common)
    w_out = [w_hist, w_table, filters, w_text, w_code]
    w_btn.click(weight_stats_ui, [model, weights, seed, include_bn, zero_tol], w_out + [status],
                api_visibility="private", **common)
    cmp_in = [model, mode, seed, ckpt, cmp_layer]
    cmp_out = [cmp_bars, cmp_hist, cmp_table, cmp_text, cmp_code, cmp_layer]
    cmp_btn.click(compare_checkpoints_ui, cmp_in, cmp_out + [status], api_visibility="private", **common)
    ckpt.upload(lambda: CMP_UPLOAD, None, mode, api_visibility="private")
    s_in, s_out = [model, s_h, s_w, s_depth], [s_table, s_text, s_code]
    s_btn.click(page((None, "", ""))(model_summary), s_in, s_out + [status], api_visibility="private", **common)
    # The public API: the same functions, raising errors for the caller (see ui.common.api_endpoint).
    api_endpoint(activations, [upload] + look_in[:-1], act_out, "activations", **common)
    api_endpoint(attribution, [upload, model, target, weights, seed], attr_out, "attribution", **common)
    api_endpoint(weight_stats, [model, weights, seed, include_bn, zero_tol], w_out, "weight_stats", **common)
    api_endpoint(compare_checkpoints, cmp_in, cmp_out, "compare_checkpoints", **common)
    api_endpoint(model_summary, s_in, s_out, "model_summary", **common)
    model.change(on_model_change, model, [layer, target, cmp_layer, s_h, s_w], api_visibility="private")
