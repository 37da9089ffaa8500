"""Data sets, transforms, training loops, ensembles and compression."""
