"""Experiments built from the training and evaluation commands (``python -m fastddgan.experiments.compare``)."""
