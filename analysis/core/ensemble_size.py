"""Accuracy and ECE of the Average and Vote fusions against the number of members fused."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.core import metrics as M
from analysis.core.config import S_SIZE, AnalysisConfig
from analysis.core.reader import PresetLogits


def ensemble_size_curves(data: PresetLogits, *, config: AnalysisConfig, sizes: list[int] | None = None) -> pd.DataFrame:
    """Accuracy and ECE of Average and Vote against the number of members (random subsets).

    For each size k, ``config.size_repeats`` seeded subsets of k members (without replacement; all
    distinct subsets when fewer exist) are fused. Bands are the 5 % and 95 % quantiles over subsets.
    """
    rows = []
    for (ds, arm), a in data.arms.items():
        m = a.n_members
        ks = sizes or sorted({k for k in (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, m) if k <= m})
        rng = np.random.default_rng([config.seed, S_SIZE, data.datasets.index(ds), data.arm_names(ds).index(arm)])
        member_preds = a.test_logits.argmax(axis=2)
        for k in ks:
            n_rep = min(config.size_repeats, math.comb(m, k))
            subsets = _distinct_subsets(m, k, n_rep, rng)
            res = {"Average": [], "Vote": []}
            for s in subsets:
                for name, (preds, probs) in zip(res, subset_fusions(a.test_logits, member_preds, s)):
                    correct = preds == a.test_labels
                    res[name].append((correct.mean(), M.confidence_calibration_error(probs.max(1), correct, n_bins=config.n_bins)))
            for name, vals in res.items():
                v = np.array(vals)
                rows.append({"dataset": ds, "arm": arm, "fusion": name, "n_members": k, "n_subsets": len(v),
                             "accuracy_mean": v[:, 0].mean(), "accuracy_q05": np.quantile(v[:, 0], 0.05),
                             "accuracy_q50": np.quantile(v[:, 0], 0.5), "accuracy_q95": np.quantile(v[:, 0], 0.95),
                             "ece_mean": v[:, 1].mean(), "ece_q05": np.quantile(v[:, 1], 0.05),
                             "ece_q50": np.quantile(v[:, 1], 0.5), "ece_q95": np.quantile(v[:, 1], 0.95)})
    from analysis.core.schema import ENSEMBLE_SIZE_COLUMNS

    return pd.DataFrame(rows).reindex(columns=list(ENSEMBLE_SIZE_COLUMNS))


def subset_fusions(logits: np.ndarray, member_preds: np.ndarray, subset) -> tuple[tuple, tuple]:
    """``(average_fusion(logits[subset]), vote_fusion(logits[subset]))`` of
    :mod:`analysis.core.fusion`, equal to them bit for bit, sharing the subset's mean logits and
    reusing ``member_preds = logits.argmax(axis=2)`` (computed once for all subsets). No input
    checks: ``logits`` are the reader's finite test logits."""
    idx = list(subset)
    sub = logits[idx]
    _, n, c = sub.shape
    mean = sub.mean(axis=0, dtype=np.float64)
    counts = np.bincount((np.arange(n)[None, :] * c + member_preds[idx]).ravel(), minlength=n * c).reshape(n, c)
    tied = counts == counts.max(axis=1, keepdims=True)
    vote_preds = np.where(tied, mean, -np.inf).argmax(axis=1)
    return (mean.argmax(axis=1), M.softmax(mean)), (vote_preds, counts / len(idx))


def _distinct_subsets(m: int, k: int, n: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    if math.comb(m, k) <= n:
        import itertools

        return list(itertools.combinations(range(m), k))
    seen: set[tuple[int, ...]] = set()
    out = []
    while len(out) < n:
        s = tuple(sorted(rng.choice(m, size=k, replace=False).tolist()))
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


