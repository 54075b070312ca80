"""Analysis side of the dynamic-loss toolkit.

Cache reader, fusion, metrics, statistics, calibration, the claim audit and table builders. Pure
functions over numpy arrays wherever possible; may import :mod:`training` (losses, cache format).
"""
