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
from core.fonts import text_language
from core.i18n import N_, current_language, t
from ui.code_comments import translate
from ui.common import (ALONE, INTERACTIVE, TABS_CLASS, Place, api_endpoint, code_block, sketch_is_empty,
                       whole_number)
from ui.digit_input import digit_input
from ui.errors import KEEP, api, page, status_box
from ui.examples import digit_examples, photo_examples
from ui.i18n import follow_headers, follow_language, label
from zoo import get_spec
from zoo.catalog import categories_of
from zoo.classify import model_unavailable
from zoo.hub import WeightsUnavailable

DEFAULT_MODEL = "resnet_digits"
# The lists' automatic entries (value ""): the page shows label(key), an event's update t(key)
AUTO_LAYER_KEY, PREDICTED_KEY, MOST_CHANGED_KEY = (N_("inspect.layer.auto"), N_("inspect.target.predicted"),
                                                   N_("inspect.cmp_layer.auto"))
CMP_RANDOM = "random init (seed) -> trained"       # the comparison's values (the API's `mode`), shown translated
CMP_UPLOAD = "trained -> uploaded .safetensors"
# The tables' column names (look_inside's *_HEADERS, the API's) -> their catalogue keys: the page's tables are
# sent with their headers in the page's language (a Dataframe's headers are not page strings)
HEADER_KEYS = {
    "layer": N_("inspect.col.layer"), "kind": N_("inspect.col.kind"), "output shape": N_("inspect.col.output_shape"),
    "mean": N_("inspect.col.mean"), "std": N_("inspect.col.std"), "min": N_("inspect.col.min"),
    "max": N_("inspect.col.max"), "ReLU zero fraction": N_("inspect.col.relu_zero"),
    "ReLU channels all 0": N_("inspect.col.relu_channels"),
    "ReLU units dead on 256 test digits": N_("inspect.col.relu_dead"), "tensor": N_("inspect.col.tensor"),
    "shape": N_("inspect.col.shape"), "numel": N_("inspect.col.numel"), "L2 norm": N_("inspect.col.l2"),
    "fraction near zero": N_("inspect.col.near_zero"), "non-finite": N_("inspect.col.nonfinite"),
    "relative change ||B-A||/||A||": N_("inspect.col.rel_change"), "cosine(A, B)": N_("inspect.col.cosine"),
    "type": N_("inspect.col.type"), "params": N_("inspect.col.params"), "mult-adds": N_("inspect.col.mult_adds"),
    "output memory (MB, float32)": N_("inspect.col.memory"),
}


def _table(rows, headers: list[str]) -> gr.Dataframe:
    """A page table: the rows, with the headers in the request's language."""
    return gr.Dataframe(value=rows, headers=[t(HEADER_KEYS[h]) if h in HEADER_KEYS else h for h in headers])


def _with_table(out: tuple, at: int, headers: list[str], code_at: int | None = None) -> tuple:
    """The page's outputs: the table at `at` with its headers, and the code at `code_at` with its comments, in the
    request's language (the API's stay English)."""
    out = list(out)
    out[at] = _table(out[at], headers)
    if code_at is not None:
        out[code_at] = translate(out[code_at])
    return tuple(out)


def _attr_page(out: tuple) -> tuple:
    """Attribution's page outputs: its code's comments in the request's language."""
    return (*out[:3], translate(out[3]))


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
    choices = [(t(AUTO_LAYER_KEY), "")] + [(n, n) for n in layer_choices(model)]
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
    cls = None if target in (None, "") else int(target)
    v = attribution_view(model, spec, input_tensor(spec, src), cls)
    text = f"_{weights_label(weights or TRAINED, int(seed or 0))}_  \n" + v.text
    return v.gradcam, v.saliency, text, attribution_code(model_name, v.layer, cls, spec.family)


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
    return (*_with_table(_activations(sketch, model_name, layer, top_k, weights, seed, shared_scale), 2,
                         STATS_HEADERS, 4),
            *_attr_page(_attribution(sketch, model_name, target, weights, seed)))


# progress: as on Classify, the first use of an ImageNet model downloads its weights from the Hub (45-530 MB);
# track_tqdm turns huggingface_hub's download bar into the tab's progress bar. Every event that loads trained
# weights on request takes one (the sketchpad's live view hides its progress, as Classify's does).
@page(ACT_RESET + ATTR_RESET, empty=lambda image, *_: image is None)
def look_upload(image, model_name, layer, top_k, weights, seed, shared_scale, target,
                progress=gr.Progress(track_tqdm=True)):
    """An upload or an example: activations and attribution."""
    return (*_with_table(_activations(image, model_name, layer, top_k, weights, seed, shared_scale), 2,
                         STATS_HEADERS, 4),
            *_attr_page(_attribution(image, model_name, target, weights, seed)))


@page(ACT_RESET)
def activations_ui(sketch, upload, source, model_name, layer, top_k, weights, seed, shared_scale,
                   progress=gr.Progress(track_tqdm=True)):
    src = _pick(sketch, upload, source)
    if src is None or (source == "draw" and sketch_is_empty(src)):
        raise InputError("inspect.no_input")
    return _with_table(_activations(src, model_name, layer, top_k, weights, seed, shared_scale), 2, STATS_HEADERS,
                       4)


@page(ATTR_RESET)
def attribution_ui(sketch, upload, source, model_name, target, weights, seed, progress=gr.Progress(track_tqdm=True)):
    src = _pick(sketch, upload, source)
    if src is None or (source == "draw" and sketch_is_empty(src)):
        raise InputError("inspect.no_input")
    return _attr_page(_attribution(src, model_name, target, weights, seed))


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
    which = weights_label(weights or TRAINED, int(seed or 0))
    drawn = weights_label(weights or TRAINED, int(seed or 0), text_language(current_language()))
    v = weights_view(_model(model_name, weights, seed), which, bool(include_bn), zero_tol, drawn_label=drawn)
    return (v.hist, v.rows, v.filters, f"_{which}_  \n" + v.text,
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
        names = (("inspect.cmp.shipped", {}), ("inspect.cmp.uploaded", {}))
    else:
        a, b = get_inspect_model(model_name, RANDOM, seed), trained
        names = (("inspect.cmp.random", {"seed": seed}), ("inspect.cmp.trained", {}))
    language = current_language()
    labels = tuple(t(key, language, **values) for key, values in names)
    drawn = tuple(t(key, text_language(language), **values) for key, values in names)
    v = compare_view(a, b, labels, layer or None, drawn_labels=drawn)
    choices = [(t(MOST_CHANGED_KEY), "")] + [(n, n) for n in param_tensors(a)]
    note = ("  \n" + t("inspect.cmp.seed0") if mode != CMP_UPLOAD and seed == 0
            and get_spec(model_name).family == "digits" else "")
    english = tuple(t(key, "en", **values) for key, values in names)   # the code's chart legend stays English
    code = compare_code(model_name, english[0], english[1], seed, uploaded=mode == CMP_UPLOAD)
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
    return _with_table(weight_stats(model_name, weights, seed, include_bn, zero_tol), 1, TABLE_HEADERS, 4)


@page((None, None, None, "", "", KEEP))
def compare_checkpoints_ui(model_name, mode, seed, checkpoint, layer, progress=gr.Progress(track_tqdm=True)):
    return _with_table(compare_checkpoints(model_name, mode, seed, checkpoint, layer), 2, COMPARE_HEADERS, 4)


@page((None, "", ""))
def model_summary_ui(model_name, height, width, depth):
    return _with_table(model_summary(model_name, height, width, depth), 0, SUMMARY_HEADERS, 2)


def _class_choices(model_name: str, first=None):
    """The classes to explain, after 'the predicted class' (first: that entry's name; default: in the request's
    language)."""
    cats = categories_of(get_spec(model_name or DEFAULT_MODEL))
    return [(first or t(PREDICTED_KEY), "")] + [(f"{i}: {c}", str(i)) for i, c in enumerate(cats)]


def on_model_change(model_name):
    """A new model: reset the layer and class lists (filled with the model's own layers on the next run)."""
    spec = get_spec(model_name or DEFAULT_MODEL)
    c, h, w = spec.weights.input_size
    return (gr.Dropdown(choices=[(t(AUTO_LAYER_KEY), "")], value=""),
            gr.Dropdown(choices=_class_choices(model_name), value=""),
            gr.Dropdown(choices=[(t(MOST_CHANGED_KEY), "")], value=""), h, w)


def first_visit(current, shown, sketch, *look):
    """On the first visit: an example digit in the upload box with its activations and attribution, and the
    examples' names and the models' notes in the page's language. Later visits, or a drawing made meanwhile, keep
    what the visitor did."""
    if current is not None or shown is not None or not sketch_is_empty(sketch):
        return (gr.skip(),) * 15
    path = digit_examples()[3][1]
    return (*look_upload(path, *look), path, "upload", gr.Dataset(sample_labels=example_names()),
            gr.Dropdown(choices=model_choices()))


EXAMPLES = digit_examples() + photo_examples()   # (name's key, path)


def example_names(language: str | None = None) -> list[str]:
    """The examples' names under the upload box in a language (None: the request's)."""
    return [t(key, language) for key, _ in EXAMPLES]


def build_tab(place: Place = ALONE) -> None:
    """place.tab: its select event shows the first example on the first visit."""
    gr.Markdown(label("inspect.intro"))
    common = INTERACTIVE
    source = gr.State("draw")
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            digit = digit_input("inspect", EXAMPLES, canvas=300, brush=24, upload_height=240,
                                upload_label=label("inspect.upload"), sketch_label=label("pad.draw_digit"),
                                draw_tab=label("pad.draw_tab"), upload_tab=label("pad.upload_tab"),
                                examples_label=label("pad.examples"), example_labels=example_names("en"))
            sketch, upload, examples = digit.sketch, digit.upload, digit.examples
            model = gr.Dropdown(model_choices("en"), value=DEFAULT_MODEL, label=label("inspect.model"),
                                elem_id="inspect-model")
            with gr.Row():
                weights = gr.Radio([(label("inspect.weights.choice_trained"), TRAINED),
                                    (label("inspect.weights.choice_random"), RANDOM)], value=TRAINED,
                                   label=label("inspect.weights_field"), elem_id="inspect-weights")
                seed = gr.Number(0, precision=0, label=label("inspect.seed"))  # checked: whole_number
            status = status_box("inspect-status")
        with gr.Column(scale=2):
            with gr.Tabs(elem_classes=TABS_CLASS):
                with gr.Tab(label("inspect.tab.activations")):
                    with gr.Row():
                        layer = gr.Dropdown([(label(AUTO_LAYER_KEY), "")], value="", label=label("inspect.layer"),
                                            elem_id="inspect-layer", scale=2, allow_custom_value=True, min_width=220)
                        top_k = gr.Slider(1, 64, value=16, step=1, label=label("inspect.top_k"), scale=1,
                                          min_width=180)
                        shared = gr.Checkbox(False, label=label("inspect.shared"), scale=1, min_width=180)
                    act_btn = gr.Button(label("inspect.act_button"), variant="primary", elem_id="inspect-act-btn")
                    act_text = gr.Markdown(elem_id="inspect-act-text")
                    grid = gr.Image(label=label("inspect.grid"), interactive=False,
                                    elem_id="inspect-grid", format="png", height=460, show_label=False)
                    act_hist = gr.Image(label=label("inspect.act_hist"), interactive=False,
                                        elem_id="inspect-act-hist", elem_classes=["wide-picture"],
                                        format="png", show_label=False)
                    act_table = gr.Dataframe(headers=STATS_HEADERS, label=label("inspect.act_table"),
                                             interactive=False, max_height=320)
                    act_code = code_block()
                with gr.Tab(label("inspect.tab.attribution")):
                    with gr.Row():
                        target = gr.Dropdown(_class_choices(DEFAULT_MODEL, label(PREDICTED_KEY)), value="",
                                             label=label("inspect.target"), elem_id="inspect-target",
                                             filterable=True, allow_custom_value=True)
                        attr_btn = gr.Button(label("inspect.attr_button"), variant="primary",
                                             elem_id="inspect-attr-btn")
                    attr_text = gr.Markdown(elem_id="inspect-attr-text")
                    with gr.Row():
                        cam = gr.Image(label=label("inspect.cam"), interactive=False, elem_id="inspect-cam",
                                       format="png")
                        sal = gr.Image(label=label("inspect.saliency"), interactive=False, format="png")
                    attr_code = code_block()
                with gr.Tab(label("inspect.tab.weights")):
                    with gr.Row():
                        include_bn = gr.Checkbox(False, label=label("inspect.include_bn"), min_width=200)
                        zero_tol = gr.Number(1e-3, label=label("inspect.zero_tol_field"), min_width=160)
                        w_btn = gr.Button(label("inspect.w_button"), variant="primary", elem_id="inspect-w-btn")
                    w_text = gr.Markdown(elem_id="inspect-w-text")
                    w_hist = gr.Image(label=label("inspect.w_hist"), interactive=False, elem_id="inspect-w-hist",
                                      elem_classes=["wide-picture"],
                                      format="png", show_label=False)
                    w_table = gr.Dataframe(label=label("inspect.w_table"), interactive=False, max_height=320,
                                           headers=TABLE_HEADERS)
                    filters = gr.Image(label=label("inspect.filters"), interactive=False, format="png")
                    w_code = code_block()
                with gr.Tab(label("inspect.tab.compare")):
                    gr.Markdown(label("inspect.cmp_intro"))
                    with gr.Row():
                        mode = gr.Radio([(label("inspect.cmp_mode.random"), CMP_RANDOM),
                                         (label("inspect.cmp_mode.upload"), CMP_UPLOAD)], value=CMP_RANDOM,
                                        label=label("inspect.cmp_mode"), elem_id="inspect-cmp-mode")
                        ckpt = gr.File(label=label("inspect.ckpt"), file_types=[".safetensors"],
                                       type="filepath", elem_id="inspect-ckpt")
                    with gr.Row():
                        cmp_layer = gr.Dropdown([(label(MOST_CHANGED_KEY), "")], value="",
                                                label=label("inspect.cmp_layer"), elem_id="inspect-cmp-layer",
                                                allow_custom_value=True)
                        cmp_btn = gr.Button(label("inspect.cmp_button"), variant="primary", elem_id="inspect-cmp-btn")
                    cmp_text = gr.Markdown(elem_id="inspect-cmp-text")
                    cmp_bars = gr.Image(label=label("inspect.cmp_bars"), interactive=False,
                                        elem_classes=["wide-picture"],
                                        elem_id="inspect-cmp-bars", format="png")
                    cmp_hist = gr.Image(label=label("inspect.cmp_hist"), interactive=False, format="png",
                                        elem_classes=["wide-picture"])
                    cmp_table = gr.Dataframe(label=label("inspect.cmp_table"), interactive=False, max_height=320,
                                             headers=COMPARE_HEADERS)
                    cmp_code = code_block()
                with gr.Tab(label("inspect.tab.summary")):
                    with gr.Row():
                        s_h = gr.Number(28, precision=0, label=label("inspect.height"), min_width=120)
                        s_w = gr.Number(28, precision=0, label=label("inspect.width"), min_width=120)
                        s_depth = gr.Slider(1, 6, value=4, step=1, label=label("inspect.depth"), min_width=160)
                        s_btn = gr.Button(label("inspect.sum_button"), variant="primary", elem_id="inspect-sum-btn")
                    s_table = gr.Dataframe(label=label("inspect.sum_table"), interactive=False, max_height=420,
                                           elem_id="inspect-sum-table",
                                           headers=SUMMARY_HEADERS)
                    s_text = gr.Markdown(elem_id="inspect-sum-text")
                    s_code = code_block()

    # after a switch of language (ui.i18n): the models' notes and the tables' headers in the new one
    follow_language(model, lambda language: gr.Dropdown(choices=model_choices(language)))
    for table, headers in ((act_table, STATS_HEADERS), (w_table, TABLE_HEADERS), (cmp_table, COMPARE_HEADERS),
                           (s_table, SUMMARY_HEADERS)):
        follow_headers(table, {h: HEADER_KEYS[h] for h in headers if h in HEADER_KEYS})
    act_out = [grid, act_hist, act_table, act_text, act_code, layer]
    attr_out = [cam, sal, attr_text, attr_code]
    digit.draw_tab.select(lambda: "draw", None, source, api_visibility="private")
    digit.upload_tab.select(lambda: "upload", None, source, api_visibility="private")

    look_in = [model, layer, top_k, weights, seed, shared, target]
    # the first visit shows an example; the visitor's own input cancels it
    first_out = act_out + attr_out + [status, upload, source, examples.dataset, model]
    first = [e for e in [place.on_select(first_visit, [upload, grid, sketch] + look_in, first_out,
                                         api_visibility="private", **common)] if e is not None]
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
    s_btn.click(model_summary_ui, s_in, s_out + [status], api_visibility="private", **common)
    # The public API: the same functions, raising errors for the caller (see ui.common.api_endpoint).
    api_endpoint(activations, [upload] + look_in[:-1], act_out, "activations", **common)
    api_endpoint(attribution, [upload, model, target, weights, seed], attr_out, "attribution", **common)
    api_endpoint(weight_stats, [model, weights, seed, include_bn, zero_tol], w_out, "weight_stats", **common)
    api_endpoint(compare_checkpoints, cmp_in, cmp_out, "compare_checkpoints", **common)
    api_endpoint(model_summary, s_in, s_out, "model_summary", **common)
    model.change(on_model_change, model, [layer, target, cmp_layer, s_h, s_w], api_visibility="private")
