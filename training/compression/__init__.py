"""Compression: the lab (compress.py), quantization, pruning, distillation, their files, and measuring them."""
