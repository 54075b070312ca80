"""Statistics against scipy / statsmodels oracles."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from analysis.core import stats as S


def test_bootstrap_percentile_ci_agrees_with_scipy_bootstrap():
    rng = np.random.default_rng(0)
    correct = rng.random(2_000) < 0.8
    draws = S.bootstrap_accuracies(correct[None], rng=np.random.default_rng(1), n_resamples=10_000)
    lo, hi = S.percentile_interval(draws, confidence=0.95)
    ref = sps.bootstrap((correct.astype(float),), np.mean, n_resamples=10_000, method="percentile",
                        confidence_level=0.95, rng=np.random.default_rng(2))
    # independent Monte-Carlo runs: agree to a small fraction of the CI width
    width = hi[0] - lo[0]
    assert lo[0] == pytest.approx(ref.confidence_interval.low, abs=0.05 * width)
    assert hi[0] == pytest.approx(ref.confidence_interval.high, abs=0.05 * width)
    assert draws[:, 0].std() == pytest.approx(ref.standard_error, rel=0.05)


def test_bootstrap_draws_are_paired_across_cells():
    rng = np.random.default_rng(3)
    a = rng.random(500) < 0.7
    draws = S.bootstrap_accuracies(np.stack([a, a, ~a]), rng=np.random.default_rng(4), n_resamples=200)
    assert np.array_equal(draws[:, 0], draws[:, 1])  # same resamples for every cell
    assert np.allclose(draws[:, 0] + draws[:, 2], 1.0)


def test_bootstrap_is_reproducible_with_the_same_seed_and_chunking_free():
    c = np.random.default_rng(5).random((3, 300)) < 0.5
    d1 = S.bootstrap_accuracies(c, rng=np.random.default_rng(7), n_resamples=1000, chunk=1000)
    d2 = S.bootstrap_accuracies(c, rng=np.random.default_rng(7), n_resamples=1000, chunk=1000)
    assert np.array_equal(d1, d2)
    # the block size only bounds memory: other chunkings give the same draws
    for chunk in (333, 7):
        assert np.array_equal(S.bootstrap_accuracies(c, rng=np.random.default_rng(7), n_resamples=1000, chunk=chunk), d1)
    # each draw equals the mean of a resample: check one directly
    rng = np.random.default_rng(7)
    idx = rng.integers(0, 300, size=(1000, 300))[0]
    assert d1[0, 1] == pytest.approx(c[1, idx].mean())


def test_bootstrap_requires_an_explicit_generator():
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        S.bootstrap_accuracies(np.ones((1, 3), bool), rng=0)


def test_mcnemar_matches_statsmodels_and_switches_to_exact_when_few_discordant():
    from statsmodels.stats.contingency_tables import mcnemar

    rng = np.random.default_rng(8)
    a = rng.random(1000) < 0.8
    b = np.where(rng.random(1000) < 0.1, ~a, a)
    r = S.mcnemar_test(a, b)
    table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
    assert r["exact"] == 0.0
    assert r["pvalue"] == pytest.approx(mcnemar(table, exact=False, correction=True).pvalue)
    few = b.copy()
    few[:] = a
    few[:10] = ~a[:10]
    r2 = S.mcnemar_test(a, few)
    assert r2["exact"] == 1.0 and r2["n01"] + r2["n10"] == 10
    assert r2["pvalue"] == pytest.approx(sps.binomtest(min(r2["n01"], r2["n10"]), 10).pvalue)
    assert S.mcnemar_test(a, a)["pvalue"] == 1.0


def test_correlation_summary_matches_scipy():
    x = np.array([-1.0, 0.6, 0.7, 0.8, 0.9])
    y = np.array([0.884, 0.9029, 0.9091, 0.9098, 0.9148])
    s = S.correlation_summary(x, y)
    assert s["pearson_r"] == pytest.approx(sps.pearsonr(x, y).statistic)
    assert s["spearman_rho"] == pytest.approx(sps.spearmanr(x, y).statistic)
    z, half = math.atanh(s["pearson_r"]), 1.959963984540054 / math.sqrt(2)
    assert (s["pearson_ci_low"], s["pearson_ci_high"]) == pytest.approx((math.tanh(z - half), math.tanh(z + half)))
    assert s["n_orderings"] == 120


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_permutation_p_equals_a_plain_enumeration_of_all_orderings(seed):
    """Oracle: every one of the 5! orderings enumerated with itertools and np.corrcoef."""
    import itertools

    rng = np.random.default_rng(seed)
    x = rng.random(5)
    y = x + rng.normal(0, 0.3, 5)
    r_obs = np.corrcoef(x, y)[0, 1]
    rs = np.array([np.corrcoef(x, y[list(p)])[0, 1] for p in itertools.permutations(range(5))])
    ours = S.permutation_pvalues(x, y)
    assert ours["n_orderings"] == 120
    assert ours["p_greater"] == pytest.approx(np.mean(rs >= r_obs - 1e-12))
    assert ours["p_two_sided"] == pytest.approx(np.mean(np.abs(rs) >= abs(r_obs) - 1e-12))


def test_fisher_z_interval_is_tanh_of_atanh_r_plus_minus_z_over_sqrt_n_minus_3():
    from scipy.stats import norm

    x = np.array([0.6, 0.7, 0.8, 0.9, 1.0])
    y = np.array([0.80, 0.82, 0.81, 0.85, 0.86])
    out = S.correlation_summary(x, y, confidence=0.9)
    r = np.corrcoef(x, y)[0, 1]
    half = norm.ppf(0.95) / np.sqrt(5 - 3)
    assert out["pearson_ci_low"] == pytest.approx(np.tanh(np.arctanh(r) - half))
    assert out["pearson_ci_high"] == pytest.approx(np.tanh(np.arctanh(r) + half))


def test_smallest_permutation_p_with_five_points_is_one_in_120():
    x = np.arange(5.0)
    assert S.permutation_pvalues(x, x)["p_greater"] == pytest.approx(1 / 120)
    assert S.permutation_pvalues(x, x)["p_two_sided"] == pytest.approx(2 / 120)
