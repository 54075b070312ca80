"""Training side of the dynamic-loss toolkit.

Losses, datasets, splits, models, single-run training, the job grid with its executors, and the
numpy-only cache format. Nothing here imports :mod:`analysis`.
"""
