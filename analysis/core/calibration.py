"""Calibration, reliability diagrams and selective prediction of every fusion and every member.

Temperature scaling is cross-fitted over two seeded halves of the test set: T fitted on one half
(NLL) is applied to the other, so every test sample is scored with a T that never saw it. The
reported ``temperature`` is the mean of the two fits. Vote has no logits: not temperature-scaled.

The metric columns are those of the records in :data:`analysis.core.metric_registry.METRICS`; a
column the tables' schema (:mod:`analysis.core.schema`) does not declare is refused
(:func:`analysis.core.schema.result_frame`), never dropped.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.core import metrics as M
from analysis.core.config import S_TEMP, AnalysisConfig, hash_str
from analysis.core.metric_registry import Scores, metric_values
from analysis.core.reader import PresetLogits


def cross_fitted_temperature(labels: np.ndarray, logits: np.ndarray, *, rng: np.random.Generator
                             ) -> tuple[np.ndarray, float]:
    """Temperature-scaled probabilities, T fitted on one random half of the samples and applied to
    the other (both ways). Returns ``(probs, mean T)``."""
    n = labels.size
    half = rng.permutation(n) < n // 2
    probs = np.empty(logits.shape, dtype=np.float64)
    temps = []
    for fit_part in (half, ~half):
        t = M.fit_temperature(labels[fit_part], logits[fit_part])
        probs[~fit_part] = M.softmax(logits[~fit_part] / t)
        temps.append(t)
    return probs, float(np.mean(temps))


def calibration_tables(data: PresetLogits, fused: dict, *, config: AnalysisConfig) -> dict[str, pd.DataFrame]:
    """calibration, reliability, selective and risk_coverage tables for fusions and single members."""
    cal, rel, sel, rc = [], [], [], []
    grid = np.linspace(0.01, 1.0, 100)

    def add(ds, arm, fusion, member, labels, probs, preds, logits, conf_kind, key):
        variants = [("none", probs, np.nan)]
        if logits is not None:
            p_t, t = cross_fitted_temperature(labels, logits, rng=np.random.default_rng([config.seed, S_TEMP, *key]))
            variants.append(("temperature", p_t, t))
        base = {"dataset": ds, "arm": arm, "fusion": fusion, "member": member}
        for scaling, p, t in variants:
            scores = Scores(labels, p, preds, config.n_bins)
            cal.append({**base, "scaling": scaling, "temperature": t, "confidence_kind": conf_kind,
                        **metric_values("calibration", scores)})
            conf, correct = scores.confidence, scores.correct
            if member < 0:
                for binning in ("width", "mass"):
                    b = M.reliability_bins(conf, correct, n_bins=config.n_bins, binning=binning)
                    for k in range(config.n_bins):
                        rel.append({**base, "scaling": scaling, "binning": binning,
                                    **{c: b[c][k] for c in ("bin", "lower", "upper", "count", "confidence", "accuracy")}})
            if scaling == "none":
                sel.append({**base, "confidence_kind": conf_kind, **metric_values("selective", scores)})
                if member < 0:
                    curve = M.risk_coverage_curve(correct, conf)
                    pos = np.minimum(np.searchsorted(curve["coverage"], grid - 1e-12), curve["coverage"].size - 1)
                    for g, j in zip(grid, pos):
                        rc.append({**base, "coverage_target": g, "coverage": curve["coverage"][j],
                                   "risk": curve["risk"][j], "threshold": curve["threshold"][j]})

    for (ds, arm, fusion), o in fused.items():
        a = data.arms[(ds, arm)]
        add(ds, arm, fusion, -1, a.test_labels, o.probs, o.preds, o.logits, o.confidence_kind,
            (data.datasets.index(ds), data.arm_names(ds).index(arm), hash_str(fusion)))
    for (ds, arm), a in data.arms.items():
        for k, member in enumerate(a.members):
            logits = a.test_logits[k].astype(np.float64)
            add(ds, arm, "Single", member, a.test_labels, M.softmax(logits), logits.argmax(1), logits, "max_prob",
                (data.datasets.index(ds), data.arm_names(ds).index(arm), 1_000 + member))
    from analysis.core.schema import result_frame

    return {name: result_frame(name, rows) for name, rows in
            (("calibration", cal), ("reliability", rel), ("selective", sel), ("risk_coverage", rc))}

