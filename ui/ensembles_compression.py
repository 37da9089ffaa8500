"""Ensembles & compression tab: combine digits models (ui/ensembles.py), or shrink one (ui/compression.py),
with size, latency and accuracy measured on this machine."""
from __future__ import annotations

import gradio as gr

from ui import compression, ensembles
from ui.common import ALONE, TABS_CLASS, Place
from ui.i18n import label


def build_tab(place: Place = ALONE) -> None:   # place: not needed here (ui.common.Place)
    gr.Markdown(label("lab.ui.intro"))
    with gr.Tabs(elem_classes=TABS_CLASS):
        with gr.Tab(label("lab.ui.ensembles")):
            ensembles.build_tab()
        with gr.Tab(label("lab.ui.compression")):
            compression.build_tab()
