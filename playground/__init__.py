"""Tensor and autograd sandboxes (safe evaluator, graph drawing)."""
