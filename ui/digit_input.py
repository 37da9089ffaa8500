"""The draw-or-upload digit input that Classify, Autoencoder and Look inside share: a Draw tab with a sketchpad in
the pad's fixed black brush, an Upload tab with an upload box that leaves decoding to us (ui.common.ImageFile) and
one-click examples, and which of the two the visitor last used. Each tab wires its own events to the parts."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ui.common import TABS_CLASS, ImageFile


@dataclass
class DigitInput:
    sketch: gr.Sketchpad
    upload: ImageFile
    examples: gr.Examples
    draw_tab: gr.Tab
    upload_tab: gr.Tab
    extra: object = None          # what `in_draw` made


def digit_input(prefix: str, examples: list[tuple[str, str]], *, canvas: int, brush: int, upload_height: int,
                upload_label="Upload a digit picture", sketch_label="Draw a digit", draw_tab="Draw",
                upload_tab="Upload", examples_label="Examples: one click", example_labels=None,
                sketch_classes: tuple[str, ...] = (), ids: tuple[str, str, str] | None = None,
                in_draw=None) -> DigitInput:
    """Lay the input out where this is called. prefix names the parts' elem_ids (<prefix>-sketch, <prefix>-upload,
    <prefix>-examples; or ids: the three); examples: (name, picture path) pairs; example_labels: their labels as
    shown (default: the names): plain text (gr.Examples shows a label() there as its raw marker; send the names in
    the page's language with gr.Dataset(sample_labels=...)); the other labels may be the page's (ui.i18n.label).
    in_draw: called inside the Draw tab after the sketchpad (a tab's own hidden parts); what it returns is .extra."""
    sketch_id, upload_id, examples_id = ids or (f"{prefix}-sketch", f"{prefix}-upload", f"{prefix}-examples")
    with gr.Tabs(elem_classes=TABS_CLASS):
        with gr.Tab(draw_tab) as draw:
            sketch = gr.Sketchpad(label=sketch_label, type="numpy", image_mode="RGBA", canvas_size=(canvas, canvas),
                                  elem_id=sketch_id, elem_classes=["auto-brush", *sketch_classes],
                                  brush=gr.Brush(default_size=brush, colors=["#000000"], color_mode="fixed"))
            extra = in_draw() if in_draw is not None else None
        with gr.Tab(upload_tab) as up:
            upload = ImageFile(label=upload_label, type="filepath", sources=["upload", "clipboard"],
                               elem_id=upload_id, height=upload_height)
            shown = example_labels if example_labels is not None else [n for n, _ in examples]
            ex = gr.Examples([[p] for _, p in examples], inputs=upload, example_labels=shown, label=examples_label,
                             examples_per_page=len(examples), elem_id=examples_id)
    return DigitInput(sketch, upload, ex, draw, up, extra)
