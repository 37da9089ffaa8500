"""Ensembles: members (ensemble.py), how their votes are combined (combiners.py), and the results."""
