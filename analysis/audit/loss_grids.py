"""The grids and gradient computations the loss claims (:mod:`analysis.audit.loss_claims`) are decided on.

Gradients are computed in float64 with the losses of :mod:`training.losses` through
:func:`analysis.audit.gradients.loss_gradients`. Grids: ``p_t`` in ``0.01, 0.02, ..., 0.99``,
``n_classes`` in (2, 10, 100) with the remaining mass spread uniformly
(:func:`analysis.audit.gradients.logits_for_true_prob`), thresholds (0.3, 0.6, 0.7, 0.8, 0.9).
"Above the threshold" means ``p_t > tau`` (the convention of :mod:`training.losses`); grid points
equal to a threshold are left out of above/below comparisons.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from analysis.audit.gradients import logits_for_true_prob, loss_gradients

P_GRID = np.round(np.arange(1, 100) / 100.0, 2)
CLASS_COUNTS = (2, 10, 100)
THRESHOLDS = (0.3, 0.6, 0.7, 0.8, 0.9)
VARIANTS = ("published", "soft", "keras")
#: grid points this close to a threshold are left out of above/below comparisons: the softmax
#: of the constructed logits may land an ulp on either side of ``p_t == tau``
BOUNDARY_GAP = 1e-9

#: the demonstration printed in the corrections section (threshold 0.3, batch of two, targets 0)
DEMO_PRINTED: dict[str, Any] = {
    "threshold": 0.3,
    "probs": [[0.587, 0.413], [0.025, 0.975]],
    "probs_decimals": 3,
    "labels": [0, 0],
    "logits_decimals": 5,
    "probs_grad_decimals": 4,
    "grad_logits": {
        "ce": [[-0.20656, 0.20656], [-0.48766, 0.48766]],
        "published": [[0.0, 0.0], [-0.48766, 0.48766]],
        "soft": [[-0.02066, 0.02066], [-0.48766, 0.48766]],
    },
    "grad_probs": {
        "ce": [[-0.8519, 0.0], [-20.2611, 0.0]],
        "published": [[0.0, 0.0], [-20.2611, 0.0]],
        "soft": [[-0.0852, 0.0], [-20.2611, 0.0]],
    },
}


def round10(x: float) -> float:
    """Round to 10 significant digits (stable JSON and regression output)."""
    x = float(x)
    if x == 0.0 or not math.isfinite(x):
        return x + 0.0
    return float(f"{x:.10g}")


def true_class_grid(n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax gives class 0 each ``p_t`` of :data:`P_GRID`, and the labels (all 0)."""
    return logits_for_true_prob(P_GRID, n_classes=n_classes), np.zeros(P_GRID.shape[0], dtype=np.int64)


def ratio_above_below(variant: str) -> dict[str, dict[str, float]]:
    """Ratio of the dynamic-loss logit gradient (L1 norm) to cross-entropy's, above and below tau."""
    out: dict[str, list[float]] = {"above": [], "below": []}
    for n_classes in CLASS_COUNTS:
        z, y = true_class_grid(n_classes)
        g_ce = np.abs(loss_gradients(z, y, "ce")).sum(axis=1)
        for tau in THRESHOLDS:
            g = np.abs(loss_gradients(z, y, "dynamic", threshold=tau, variant=variant)).sum(axis=1)
            above, below = P_GRID > tau + BOUNDARY_GAP, P_GRID < tau - BOUNDARY_GAP
            out["above"].extend((g[above] / g_ce[above]).tolist())
            out["below"].extend((g[below] / g_ce[below]).tolist())
    return {k: {"min": round10(min(v)), "max": round10(max(v))} for k, v in out.items()}


def above_stats() -> dict[str, dict[str, float]]:
    """Per variant, the gradient above tau: its ratio to cross-entropy's and its largest L1 norm; and
    the Keras variant at C = 10, tau = 0.7 against CE and against 0.1 * p_t * CE."""
    stats: dict[str, dict[str, float]] = {}
    for variant in VARIANTS:
        ratios = ratio_above_below(variant)["above"]
        g_max = 0.0
        for n_classes in CLASS_COUNTS:
            z, y = true_class_grid(n_classes)
            for tau in THRESHOLDS:
                g = np.abs(loss_gradients(z, y, "dynamic", threshold=tau, variant=variant)).sum(axis=1)
                g_max = max(g_max, float(g[P_GRID > tau + BOUNDARY_GAP].max()))
        stats[variant] = {"ratio_to_ce_min": ratios["min"], "ratio_to_ce_max": ratios["max"], "max_grad_l1": round10(g_max)}
    # Keras at the typical setting: C = 10, tau = 0.7 (the other classes stay below tau)
    z, y = true_class_grid(10)
    above = P_GRID > 0.7 + BOUNDARY_GAP
    g_k = np.abs(loss_gradients(z, y, "dynamic", threshold=0.7, variant="keras")).sum(axis=1)[above]
    g_ce = np.abs(loss_gradients(z, y, "ce")).sum(axis=1)[above]
    rel = g_k / (g_ce * 0.1 * P_GRID[above])
    stats["keras_c10_tau0.7"] = {
        "ratio_to_ce_min": round10((g_k / g_ce).min()),
        "ratio_to_ce_max": round10((g_k / g_ce).max()),
        "ratio_to_0.1_p_t_ce_min": round10(rel.min()),
        "ratio_to_0.1_p_t_ce_max": round10(rel.max()),
    }
    return stats


DEMO_LOSSES = {"ce": ("ce", {}), "published": ("dynamic", {"variant": "published"}), "soft": ("dynamic", {"variant": "soft"})}


def demo_gradients(p_t: np.ndarray, threshold: float) -> dict[str, dict[str, np.ndarray]]:
    """Per-sample demo gradients (batch mean over 2 samples) for probabilities ``[p_t, 1 - p_t]``, target 0."""
    z = np.stack([np.log(p_t), np.log1p(-p_t)], axis=1)
    y = np.zeros(len(p_t), dtype=np.int64)
    out: dict[str, dict[str, np.ndarray]] = {"grad_logits": {}, "grad_probs": {}}
    for key, (name, params) in DEMO_LOSSES.items():
        if name == "dynamic":
            params = {**params, "threshold": threshold}
        for wrt, col in (("logits", "grad_logits"), ("probs", "grad_probs")):
            # the demo averages over its batch of two samples
            out[col][key] = loss_gradients(z, y, name, wrt=wrt, **params) / 2.0
    return out
