"""Statistics over per-sample correctness and small correlation tables (numpy, scipy, statsmodels).

- :func:`bootstrap_accuracies` — paired bootstrap over test samples for many cells at once: one
  resample-count matrix (drawn in chunks) is shared by every cell, and each cell's resampled
  accuracy is a matrix product of the counts with its correctness vector. Sharing the resamples
  makes differences between cells paired.
- :func:`bootstrap_counts` — those resamples as count blocks, for callers that score other quantities on
  the same resamples (Table 1's seed intervals).
- :func:`percentile_interval` — percentile confidence interval from bootstrap draws.
- :func:`mcnemar_test` — McNemar's test of two classifiers on the same samples (statsmodels).
- :func:`holm` — Holm's step-down adjustment (statsmodels), the one used by McNemar's table and by
  ``dynloss compare --adjust holm``.
- :func:`correlation_summary` — Pearson r with scipy's Fisher-z interval, the exact permutation
  p-value (scipy's permutation test over all n! orderings, 120 for n = 5) and Spearman's rho.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps


#: McNemar's test is the exact binomial test on the discordant pairs below this many of them, else
#: the chi-square test with continuity correction (:func:`mcnemar_test`)
MCNEMAR_EXACT_BELOW: int = 25


def _check_rng(rng: np.random.Generator) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"Expected `rng` to be a numpy.random.Generator, got {type(rng).__name__}")


def _check_correct(correct: np.ndarray) -> np.ndarray:
    correct = np.asarray(correct)
    if correct.ndim == 1:
        correct = correct[None]
    if correct.ndim != 2 or correct.shape[1] == 0:
        raise ValueError(f"Expected `correct` of shape (n_cells, n_samples), got shape {correct.shape}")
    if correct.dtype != bool and not np.isin(correct, (0, 1)).all():
        raise ValueError("Expected `correct` to hold booleans or 0/1 values")
    return correct


def bootstrap_accuracies(
    correct: np.ndarray, *, rng: np.random.Generator, n_resamples: int = 10_000, chunk: int = 500
) -> np.ndarray:
    """Accuracy of every cell on each of ``n_resamples`` paired bootstrap resamples of the samples.

    Parameters
    ----------
    correct : bool array of shape (n_cells, n_samples); all cells share the samples.
    rng : the generator the resample indices are drawn from.
    n_resamples : number of bootstrap resamples (default 10,000).
    chunk : resamples drawn per block (memory ~ ``chunk × n_samples`` counts).

    Returns
    -------
    float64 array of shape (n_resamples, n_cells).

    Examples
    --------
    >>> draws = bootstrap_accuracies(np.array([[True, False]]), rng=np.random.default_rng(0), n_resamples=4)
    >>> draws.shape
    (4, 1)
    """
    _check_rng(rng)
    correct = _check_correct(correct)
    if n_resamples < 1:
        raise ValueError(f"Expected `n_resamples` >= 1, got {n_resamples}")
    k, n = correct.shape
    c = correct.T.astype(np.float32)  # (n, k)
    out = np.empty((n_resamples, k), dtype=np.float64)
    for start, counts in bootstrap_counts(n, rng=rng, n_resamples=n_resamples, chunk=chunk):
        out[start:start + counts.shape[0]] = (counts @ c).astype(np.float64) / n  # sums < 2**24: exact in float32
    return out


def bootstrap_counts(n_samples: int, *, rng: np.random.Generator, n_resamples: int, chunk: int = 500):
    """The resamples of :func:`bootstrap_accuracies`, block by block: yields ``(start, counts)`` with
    ``counts`` float32 ``(b, n_samples)``, how often each sample is drawn in resamples ``start`` to
    ``start + b``. The same ``rng`` state and ``chunk`` give the same rows, so a caller can score
    other quantities on exactly the resamples of a test-only bootstrap.

    >>> [(s, c.shape, c.sum(axis=1).tolist()) for s, c in bootstrap_counts(3, rng=np.random.default_rng(0),
    ...                                                                  n_resamples=3, chunk=2)]
    [(0, (2, 3), [3.0, 3.0]), (2, (1, 3), [3.0])]
    """
    _check_rng(rng)
    if n_resamples < 1:
        raise ValueError(f"Expected `n_resamples` >= 1, got {n_resamples}")
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        idx = rng.integers(0, n_samples, size=(b, n_samples))
        idx += (np.arange(b) * n_samples)[:, None]
        yield start, np.bincount(idx.ravel(), minlength=b * n_samples).reshape(b, n_samples).astype(np.float32)


def percentile_interval(draws: np.ndarray, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap draws along axis 0.

    >>> lo, hi = percentile_interval(np.arange(101.0)[:, None], confidence=0.9)
    >>> round(float(lo[0]), 6), round(float(hi[0]), 6)
    (5.0, 95.0)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"Expected `confidence` in (0, 1), got {confidence}")
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha], axis=0)
    return lo, hi


def mcnemar_test(correct_a: np.ndarray, correct_b: np.ndarray, *, exact: bool | None = None) -> dict[str, float]:
    """McNemar's test that classifiers a and b have the same error rate on paired samples.

    Parameters
    ----------
    correct_a, correct_b : bool arrays of shape (n_samples,).
    exact : binomial test on the discordant pairs; default ``None`` means exact when the number of
        discordant pairs is below :data:`MCNEMAR_EXACT_BELOW` (25), else the chi-square version with
        continuity correction. Either way two-sided.

    Returns
    -------
    dict with ``n01`` (a right, b wrong), ``n10`` (a wrong, b right), ``statistic``, ``pvalue``
    and ``exact`` (1.0 or 0.0).
    """
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"Expected `correct_a` and `correct_b` of equal shape (n_samples,), got {a.shape} and {b.shape}")
    n01 = int(np.sum(a & ~b))
    n10 = int(np.sum(~a & b))
    table = np.array([[int(np.sum(a & b)), n01], [n10, int(np.sum(~a & ~b))]])
    if exact is None:
        exact = (n01 + n10) < MCNEMAR_EXACT_BELOW
    if n01 + n10 == 0:
        return {"n01": 0, "n10": 0, "statistic": 0.0, "pvalue": 1.0, "exact": float(exact)}
    res = mcnemar(table, exact=exact, correction=True)
    return {"n01": n01, "n10": n10, "statistic": float(res.statistic), "pvalue": float(res.pvalue), "exact": float(exact)}


def holm(pvalues: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down procedure: ``(reject, adjusted p)``, by
    ``statsmodels.stats.multitest.multipletests(method="holm")``.

    statsmodels runs ``gc.collect()`` on every call; with the heap frozen (objects alive now are
    skipped by the collector) each collection is quick instead of walking torch and pandas.

    >>> reject, adjusted = holm(np.array([0.01, 0.04, 0.03]), 0.05)
    >>> reject.tolist(), adjusted.round(2).tolist()
    ([True, False, False], [0.03, 0.06, 0.06])
    """
    import gc

    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"Expected `pvalues` as a non-empty 1-d array, got shape {p.shape}")
    gc.freeze()
    try:
        reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
    finally:
        gc.unfreeze()
    return reject, adjusted


def permutation_pvalues(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Exact permutation p-values of Pearson r over all n! orderings of ``y`` (n ≤ 8), from
    :func:`scipy.stats.permutation_test` (``permutation_type="pairings"``, every ordering enumerated).

    Returns ``p_two_sided`` (share of orderings with |r| ≥ |r_obs|), ``p_greater`` (r ≥ r_obs) and
    ``n_orderings``.

    >>> permutation_pvalues(np.arange(5.0), np.arange(5.0))["p_greater"]  # 1/120
    0.008333333333333333
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 3:
        raise ValueError(f"Expected `x` and `y` of equal shape (n >= 3,), got {x.shape} and {y.shape}")
    if x.size > 8:
        raise ValueError(f"Exact enumeration supports n <= 8 (n! orderings), got n = {x.size}")

    def r(yp: np.ndarray, axis: int = -1) -> np.ndarray:
        yc = yp - yp.mean(axis=axis, keepdims=True)
        xc = x - x.mean()
        return (yc @ xc) / (np.linalg.norm(yc, axis=axis) * np.linalg.norm(xc))

    kw = dict(permutation_type="pairings", n_resamples=np.inf, vectorized=True, alternative="greater")
    greater = sps.permutation_test((y,), r, **kw)
    two_sided = sps.permutation_test((y,), lambda yp, axis=-1: np.abs(r(yp, axis)), **kw)
    return {"p_two_sided": float(two_sided.pvalue), "p_greater": float(greater.pvalue),
            "n_orderings": math.factorial(x.size)}


def correlation_summary(x: np.ndarray, y: np.ndarray, *, confidence: float = 0.95) -> dict[str, float]:
    """Pearson r (Fisher-z CI, exact permutation p) and Spearman rho of paired values.

    Returns a dict: ``n``, ``pearson_r``, ``pearson_ci_low``, ``pearson_ci_high``, ``pearson_p``
    (t-test, two-sided), ``perm_p_two_sided``, ``perm_p_greater``, ``n_orderings``,
    ``spearman_rho``, ``spearman_p``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 3:
        raise ValueError(f"Expected `x` and `y` of equal shape (n >= 3,), got {x.shape} and {y.shape}")
    n = x.size
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        nan = float("nan")
        return {"n": n, "pearson_r": nan, "pearson_ci_low": nan, "pearson_ci_high": nan, "pearson_p": nan,
                "perm_p_two_sided": nan, "perm_p_greater": nan, "n_orderings": math.factorial(n) if n <= 8 else 0,
                "spearman_rho": nan, "spearman_p": nan}
    pr = sps.pearsonr(x, y)
    if n > 3 and abs(pr.statistic) < 1:
        ci = pr.confidence_interval(confidence_level=confidence)  # Fisher z transform
        lo, hi = float(ci.low), float(ci.high)
    else:  # the Fisher-z interval needs n > 3 and |r| < 1
        lo, hi = (float(pr.statistic),) * 2 if n > 3 else (float("nan"),) * 2
    sp = sps.spearmanr(x, y)
    out = {"n": n, "pearson_r": float(pr.statistic), "pearson_ci_low": lo, "pearson_ci_high": hi,
           "pearson_p": float(pr.pvalue)}
    if n <= 8:
        perm = permutation_pvalues(x, y)
        out.update(perm_p_two_sided=perm["p_two_sided"], perm_p_greater=perm["p_greater"], n_orderings=perm["n_orderings"])
    else:
        out.update(perm_p_two_sided=float("nan"), perm_p_greater=float("nan"), n_orderings=0)
    out.update(spearman_rho=float(sp.statistic), spearman_p=float(sp.pvalue))
    return out
