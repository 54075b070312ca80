"""Paired bootstrap intervals on the differences of calibration and selective-prediction metrics
between each dynamic arm and the cross-entropy reference arms, ``ce-lr0.01`` and the tuned
cross-entropy arm (``calibration_diff.csv``).

The metrics are those of :data:`RELIABILITY_METRICS` (ECE, NLL, Brier, AUROC, AURC), each the
registry's metric (:mod:`analysis.core.metric_registry`) of a fusion's test output: its
predictions, its probability scores and the confidence of each prediction (the score of the
predicted class; Vote: the share of members voting for it), before any temperature scaling.

Every metric is a function of per-sample terms and can be scored on a resample given as
multinomial counts per sample (:func:`weighted_metrics`), which equals scoring the materialised
resample (samples repeated by their counts; the tests check it against scikit-learn and the plain
functions of :mod:`analysis.core.metrics`):

- ECE: equal-width bins of the confidence, fixed per sample; ``Σ_b |Σ_{i∈b} w_i (1[correct_i] − conf_i)| / Σ w``;
- NLL, Brier: count-weighted means of the per-sample terms;
- AUROC: the Mann–Whitney statistic of confidence for correct against wrong, ties counting ½,
  over tie groups of the sorted confidence (a repeated sample ties with itself);
- AURC: the selective risk at the end of each tie group (samples sorted by decreasing
  confidence), weighted by the group's count.

Two intervals per difference (arm − reference, same fusion):

- ``ci_*``: test samples resampled (``n_reliability_resamples`` resamples of the ``S_REL`` stream
  keyed by dataset), shared by every arm and fusion of the dataset: paired; the members are fixed.
- ``seed_ci_*``: two-level, for the fusions with a batched re-fusion (Average, Vote; ProbAverage
  is left out of the table, :data:`SKIPPED_FUSIONS`):
  each arm's members are also drawn with replacement (independently per arm, the ``S_SEED`` draws
  of Table 1's intervals keyed by dataset and arm) and re-fused, on the first
  ``n_reliability_seed_resamples`` test-sample resamples; centred as Table 1's seed intervals (the
  mean shift of ensembles with repeated members, against all members on the same samples, is
  removed). NaN for the learned fusions (a refit per member draw).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from analysis.core import metrics as M
from analysis.core.config import S_REL, S_SEED, AnalysisConfig, hash_str
from analysis.core.metric_registry import METRICS
from analysis.core.seed_bootstrap import member_count_draws, weighted_predictions
from analysis.core.stats import bootstrap_counts, percentile_interval

#: the metrics of the reliability comparison (columns of calibration.csv / selective.csv)
RELIABILITY_METRICS: tuple[str, ...] = ("ece", "nll", "brier", "auroc", "aurc")
#: fusions that can be re-fused on drawn members for the two-level interval
SEED_FUSIONS: tuple[str, ...] = ("Average", "ProbAverage", "Vote")
#: fusions left out of the comparison: ProbAverage (nearly Average; its cells would add a third to the cost)
SKIPPED_FUSIONS: tuple[str, ...] = ("ProbAverage",)


def sample_terms(labels: np.ndarray, probs: np.ndarray, preds: np.ndarray, *, n_bins: int = 15
                 ) -> dict[str, np.ndarray]:
    """Per-sample terms of the metrics: ``confidence`` (score of the predicted class, clipped to
    [0, 1]), ``correct``, ``bin`` (equal-width bin of the confidence), ``nll`` (−log of the true
    class's score clipped to [eps, 1 − eps], as :func:`analysis.core.metrics.nll`) and ``brier``
    (Σ_k (p_k − 1[y = k])²). ``probs`` ``(N, C)`` or ``(B, N, C)`` with ``preds`` of its leading
    shape (one row per resample)."""
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    preds = np.asarray(preds)
    if probs.shape[:-1] != preds.shape or preds.shape[-1] != labels.shape[0]:
        raise ValueError(f"Expected `probs` (..., {labels.shape[0]}, C) and `preds` of its leading shape, got "
                         f"{probs.shape} and {preds.shape}")
    conf = np.clip(np.take_along_axis(probs, preds[..., None], axis=-1)[..., 0], 0.0, 1.0)
    eps = np.finfo(np.float64).eps
    p_true = np.take_along_axis(probs, np.broadcast_to(labels, preds.shape)[..., None], axis=-1)[..., 0]
    onehot = np.eye(probs.shape[-1])[labels]
    return {"confidence": conf, "correct": preds == labels,
            "bin": M.bin_assignment(conf.ravel(), n_bins=n_bins).reshape(conf.shape),
            "nll": -np.log(np.clip(p_true, eps, 1 - eps)), "brier": ((probs - onehot) ** 2).sum(axis=-1)}


def _group_sums(values: np.ndarray, gid: np.ndarray, k: int | None = None) -> np.ndarray:
    """Sums of ``values`` ``(b, N)`` per group ``gid`` ``(b, N)`` (values in ``[0, k)``, default
    ``k = N``), as ``(b, k)`` (groups holding no sample are 0)."""
    b, n = values.shape
    k = n if k is None else k
    flat = (gid + (np.arange(b) * k)[:, None]).ravel()
    return np.bincount(flat, weights=values.ravel(), minlength=b * k).reshape(b, k)


def _tie_bounds(sorted_conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each position of a sorted confidence (last axis), the first and the last position of its
    tie group."""
    n = sorted_conf.shape[-1]
    pos = np.broadcast_to(np.arange(n), sorted_conf.shape)
    first = np.ones(sorted_conf.shape, dtype=bool)
    first[..., 1:] = sorted_conf[..., 1:] != sorted_conf[..., :-1]
    last = np.ones(sorted_conf.shape, dtype=bool)
    last[..., :-1] = first[..., 1:]
    start = np.maximum.accumulate(np.where(first, pos, 0), axis=-1)
    stop = np.flip(np.minimum.accumulate(np.flip(np.where(last, pos, n - 1), axis=-1), axis=-1), axis=-1)
    return start, stop


def _at(cum: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``cum[r, index[r, j]]`` (``index`` per row) or ``cum[:, index[j]]`` (``index`` shared; a view
    when it is a run of consecutive positions: no tie in the confidence)."""
    if index.ndim == 1:
        if index.size and index[0] + index.size - 1 == index[-1] and np.all(np.diff(index) == 1):
            return cum[:, index[0]:index[0] + index.size]
        return cum[:, index]
    return np.take_along_axis(cum, index, axis=1)


def _prefix(x: np.ndarray) -> np.ndarray:
    """Cumulative sums along the rows with a leading 0: ``out[:, j]`` = sum of the first ``j``."""
    out = np.zeros((x.shape[0], x.shape[1] + 1))
    np.cumsum(x, axis=1, out=out[:, 1:])
    return out


def weighted_metrics(terms: Mapping[str, np.ndarray], counts: np.ndarray, *, n_bins: int = 15
                     ) -> dict[str, np.ndarray]:
    """Every metric of :data:`RELIABILITY_METRICS` on each resample: ``counts`` ``(B, N)`` (how often
    each sample is drawn); ``terms`` from :func:`sample_terms`, per sample ``(N,)`` (shared by the
    resamples: sorted once) or per resample ``(B, N)``. Returns metric -> float64 ``(B,)`` (AUROC
    NaN where a resample holds no correct or no wrong prediction).

    AUROC and AURC over the samples sorted by increasing confidence: sample i (weight w_i) in a tie
    group spanning positions [s, e] has below it the wrong predictions' weight before s and beside
    it those in [s, e] (AUROC: Σ_correct w_i (below + ½ beside) / (W_correct W_wrong)); accepting
    down to its group keeps every sample from s on (AURC: Σ_i w_i · errors(≥ s) / weight(≥ s) / W).
    """
    w = np.asarray(counts, dtype=np.float64)
    if w.ndim != 2 or np.any(w < 0):
        raise ValueError(f"Expected `counts` of shape (B, N) with counts >= 0, got shape {w.shape}")
    b, n = w.shape
    shared = np.ndim(terms["confidence"]) == 1
    conf = np.asarray(terms["confidence"], dtype=np.float64)
    correct = np.asarray(terms["correct"], dtype=bool)
    bins = np.asarray(terms["bin"])
    if conf.shape[-1] != n or (not shared and conf.shape != (b, n)):
        raise ValueError(f"Expected `terms` of shape ({n},) or ({b}, {n}), got {conf.shape}")
    total = w.sum(axis=1)
    out = {}
    gap = correct - conf
    if shared:  # per bin, the weighted sum of (correct − confidence): one matrix product
        g = np.zeros((n, n_bins))
        g[np.arange(n), bins] = gap
        out["ece"] = np.abs(w @ g).sum(axis=1) / total
        for k in ("nll", "brier"):
            out[k] = w @ np.asarray(terms[k], dtype=np.float64) / total
        order = np.argsort(conf, kind="stable")
        ws, cs = w[:, order], correct[order]
        start, stop = _tie_bounds(conf[order])
    else:
        out["ece"] = np.abs(_group_sums(w * gap, bins, n_bins)).sum(axis=1) / total
        for k in ("nll", "brier"):
            out[k] = (w * terms[k]).sum(axis=1) / total
        order = np.argsort(conf, axis=1, kind="stable")
        ws, cs = np.take_along_axis(w, order, axis=1), np.take_along_axis(correct, order, axis=1)
        start, stop = _tie_bounds(np.take_along_axis(conf, order, axis=1))
    wrong = ws * ~cs
    c_wrong, c_all = _prefix(wrong), _prefix(ws)
    below = _at(c_wrong, start)
    beside = _at(c_wrong, stop + 1) - below
    p_tot, n_tot = total - c_wrong[:, -1], c_wrong[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["auroc"] = np.where((p_tot > 0) & (n_tot > 0),
                                ((ws * cs) * (below + 0.5 * beside)).sum(axis=1) / (p_tot * n_tot), np.nan)
        kept = c_all[:, -1:] - _at(c_all, start)
        risk = (c_wrong[:, -1:] - below) / np.where(kept > 0, kept, 1.0)
    out["aurc"] = (ws * risk).sum(axis=1) / total
    return out


def refused_outputs(logits: np.ndarray, fusion: str, member_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(probs (B, N, C), preds (B, N))`` of a static fusion over members weighted by
    ``member_counts`` ``(B, M)``; ``logits`` ``(M, N, C)``. Average: softmax of the weighted mean
    logits; ProbAverage: the weighted mean probabilities; Vote: the weighted vote shares, ties
    broken as :func:`analysis.core.seed_bootstrap.weighted_predictions`."""
    x = np.asarray(logits, dtype=np.float64)
    w = np.asarray(member_counts, dtype=np.float64)
    w = w / w.sum(axis=1, keepdims=True)
    m, n, c = x.shape
    if fusion == "Average":
        probs = M.softmax((w @ x.reshape(m, -1)).reshape(-1, n, c))
    elif fusion == "ProbAverage":
        probs = (w @ M.softmax(x).reshape(m, -1)).reshape(-1, n, c)
    elif fusion == "Vote":
        probs = (w @ np.eye(c)[x.argmax(axis=2)].reshape(m, -1)).reshape(-1, n, c)
    else:
        raise ValueError(f"Expected `fusion` in {SEED_FUSIONS}, got {fusion!r}")
    preds = probs.argmax(axis=2) if fusion != "Vote" else weighted_predictions(x, member_counts, "Vote")
    return probs, preds


def reliability_differences(data, fused: dict, *, config: AnalysisConfig, dynamic: tuple[str, ...],
                            references: tuple[str, ...]) -> pd.DataFrame:
    """``calibration_diff``: one row per (dataset, dynamic arm, reference, fusion, metric) with both
    values, their difference (arm − reference) and its paired intervals (module docstring).

    Parameters
    ----------
    data : the preset's logits (:class:`analysis.core.reader.PresetLogits`).
    fused : fusion outputs keyed ``(dataset, arm, fusion)`` (:func:`analysis.core.fuse.fuse_preset`).
    dynamic : the dynamic arms compared (absent ones are skipped).
    references : the cross-entropy arms they are compared with (absent ones are skipped): the
        pipeline passes ``ce-lr0.01`` and the tuned cross-entropy arm.

    Every fusion of both arms but :data:`SKIPPED_FUSIONS`.
    """
    rows = []
    b, b_seed = config.n_reliability_resamples, min(config.n_reliability_seed_resamples, config.n_reliability_resamples)
    for d_i, ds in enumerate(data.datasets):
        arms = list(dict.fromkeys(a for d, a, _ in fused if d == ds))
        pairs = [(a, r) for a in arms if a in dynamic for r in dict.fromkeys(references) if r in arms and r != a]
        if not pairs or b == 0:
            continue
        needed = {a for p in pairs for a in p}
        cells = [c for c in fused if c[0] == ds and c[1] in needed and c[2] not in SKIPPED_FUSIONS]
        labels = data.arms[(ds, cells[0][1])].test_labels
        terms = {c: sample_terms(labels, fused[c].probs, fused[c].preds, n_bins=config.n_bins) for c in cells}
        point = {c: weighted_metrics(terms[c], np.ones((1, labels.size)), n_bins=config.n_bins) for c in cells}
        draws = {c: {k: np.empty(b) for k in RELIABILITY_METRICS} for c in cells}
        seed_counts = np.empty((b_seed, labels.size), dtype=np.float32)
        rng = np.random.default_rng([config.seed, S_REL, d_i])
        for start, counts in bootstrap_counts(labels.size, rng=rng, n_resamples=b, chunk=250):
            stop = start + counts.shape[0]
            if start < b_seed:
                seed_counts[start:min(stop, b_seed)] = counts[:b_seed - start]
            for c in cells:
                for k, v in weighted_metrics(terms[c], counts, n_bins=config.n_bins).items():
                    draws[c][k][start:stop] = v
        seed = {}
        if b_seed:
            weights = {a: member_count_draws(data.arms[(ds, a)].n_members, b_seed,
                                             np.random.default_rng([config.seed, S_SEED, d_i, hash_str(a)]))
                       for a in needed}
            for c in cells:
                if c[2] not in SEED_FUSIONS:
                    continue
                out = {k: np.empty(b_seed) for k in RELIABILITY_METRICS}
                for s in range(0, b_seed, 25):
                    e = min(s + 25, b_seed)
                    probs, preds = refused_outputs(data.arms[c[:2]].test_logits, c[2], weights[c[1]][s:e])
                    t = sample_terms(labels, probs, preds, n_bins=config.n_bins)
                    for k, v in weighted_metrics(t, seed_counts[s:e], n_bins=config.n_bins).items():
                        out[k][s:e] = v
                # centred: the shift of ensembles of repeated members (against all members, same samples)
                seed[c] = {k: out[k] - np.nanmean(out[k] - draws[c][k][:b_seed]) for k in RELIABILITY_METRICS}
        for arm, ref in pairs:
            for fusion in dict.fromkeys(f for d, a, f in cells if a == arm):
                ca, cr = (ds, arm, fusion), (ds, ref, fusion)
                if cr not in terms:
                    continue
                for k in RELIABILITY_METRICS:
                    m = METRICS[k]
                    d = draws[ca][k] - draws[cr][k]
                    lo, hi = percentile_interval(d[np.isfinite(d)][:, None], confidence=config.confidence) \
                        if np.isfinite(d).any() else ([np.nan], [np.nan])
                    s_lo = s_hi = np.nan
                    if ca in seed and cr in seed:
                        sd = seed[ca][k] - seed[cr][k]
                        if np.isfinite(sd).any():
                            (s_lo,), (s_hi,) = percentile_interval(sd[np.isfinite(sd)][:, None],
                                                                   confidence=config.confidence)
                    va, vr = float(point[ca][k][0]), float(point[cr][k][0])
                    rows.append({"dataset": ds, "arm": arm, "reference": ref, "fusion": fusion, "metric": k,
                                 "direction": m.direction, "confidence_kind": fused[ca].confidence_kind,
                                 "value": va, "reference_value": vr, "diff": va - vr, "ci_low": float(lo[0]),
                                 "ci_high": float(hi[0]), "seed_ci_low": float(s_lo), "seed_ci_high": float(s_hi)})
    from analysis.core.schema import result_frame

    df = result_frame("calibration_diff", rows)
    df["confidence_level"] = config.confidence
    df["n_resamples"] = b
    df["n_seed_resamples"] = b_seed
    return df
