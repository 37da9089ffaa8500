"""Data: the seeded data sets (datasets.py), visitors' zips (zipdata.py), transforms and augmentation, resampling."""
