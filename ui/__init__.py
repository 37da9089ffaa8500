"""Gradio tabs: one module per tab, each with build_tab(). Only this package imports gradio."""
