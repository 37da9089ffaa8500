"""Ensembles & compression tab: combine digits models (ui/ensembles.py), or shrink one (ui/compression.py),
with size, latency and accuracy measured on this machine."""
from __future__ import annotations

import gradio as gr

from ui import compression, ensembles
from ui.common import ALONE, Place


def build_tab(place: Place = ALONE) -> None:   # place: not needed here (ui.common.Place)
    gr.Markdown("Combine several digit classifiers, or make one smaller and faster, and see what it costs: every "
                "number below is measured on this machine, on the 1,000 mnist5k test digits.")
    with gr.Tabs():
        with gr.Tab("Ensembles"):
            ensembles.build_tab()
        with gr.Tab("Compression"):
            compression.build_tab()
