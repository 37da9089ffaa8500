"""Look inside a model (the "Look inside" tab's analysis): activations and dead units (activations.py), Grad-CAM and
saliency (attribution.py), weight statistics, checkpoint comparison and summaries (weights.py), each view as a pure
function from plain inputs to pictures, rows and text (views.py), and the pictures themselves (plots.py).

Imports zoo (models, inference, pictures) and training.data.datasets (reference digits); never gradio or ui.
"""
