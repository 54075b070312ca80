"""Per-sample loss gradients and emphasis curves (analysis.audit.gradients)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.audit.gradients import (
    DEFAULT_CURVE_SPECS,
    CurveSpec,
    emphasis_curves,
    logits_for_true_prob,
    loss_gradients,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


P = np.round(np.arange(1, 100, 2) / 100.0, 2)  # 0.01, 0.03, ..., 0.99


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_ce_gradient_on_logits_is_softmax_minus_onehot_and_on_probs_is_minus_inverse_p_t():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((20, 6))
    y = rng.integers(0, 6, size=20)
    p = _softmax(z)
    onehot = np.eye(6)[y]
    np.testing.assert_allclose(loss_gradients(z, y), p - onehot, atol=1e-12)
    np.testing.assert_allclose(loss_gradients(z, y, reduction="mean"), (p - onehot) / 20, atol=1e-12)
    np.testing.assert_allclose(loss_gradients(z, y, wrt="probs"), -onehot / p, rtol=1e-12)


def test_dynamic_gradient_on_probs_is_zero_above_threshold_and_ce_below():
    rng = np.random.default_rng(1)
    z = 3 * rng.standard_normal((40, 4))
    y = rng.integers(0, 4, size=40)
    p = _softmax(z)
    p_t = p[np.arange(40), y]
    g = loss_gradients(z, y, "dynamic", wrt="probs", threshold=0.5)
    ce = -np.eye(4)[y] / p
    np.testing.assert_allclose(g[p_t <= 0.5], ce[p_t <= 0.5], rtol=1e-12)
    assert np.all(g[p_t > 0.5] == 0.0)


def test_logits_for_true_prob_spread_remaining_mass_uniformly():
    z = logits_for_true_prob(P, n_classes=7)
    p = _softmax(z)
    np.testing.assert_allclose(p[:, 0], P, rtol=1e-12)
    np.testing.assert_allclose(p[:, 1:], np.repeat(((1 - P) / 6)[:, None], 6, axis=1), rtol=1e-12)


def test_emphasis_curves_match_closed_forms_for_every_default_loss():
    c = 10
    df = emphasis_curves(P, n_classes=c)
    assert set(df.columns) >= {"loss", "variant", "params", "n_classes", "p_t", "emphasis", "grad_l1"}
    assert len(df) == len(P) * len(DEFAULT_CURVE_SPECS)
    curve = {key: g["emphasis"].to_numpy() for key, g in df.groupby(["loss", "variant"], sort=False)}
    q = 1 - P
    tau = 0.7
    np.testing.assert_array_equal(df.loc[df.loss == "ce", "p_t"].to_numpy(), P)
    np.testing.assert_allclose(curve[("ce", "-")], q, rtol=1e-12)
    np.testing.assert_allclose(curve[("dynamic", "published")], np.where(P > tau, 0.0, q), rtol=1e-12)
    np.testing.assert_allclose(curve[("dynamic", "soft")], np.where(P > tau, 0.1 * q, q), rtol=1e-12)
    np.testing.assert_allclose(curve[("poly1", "-")], q + P * q, rtol=1e-12)
    # Poly-N with epsilons [1, 1]: d/dz_t of (1-p) + (1-p)^2 = -p q - 2 q * p q
    np.testing.assert_allclose(curve[("polyn", "paper")], q + P * q + 2 * P * q**2, rtol=1e-12)
    np.testing.assert_allclose(curve[("polyn", "blog")], q + P * q + P * q**2, rtol=1e-12)
    np.testing.assert_allclose(curve[("focal", "-")], np.abs(2 * P * q**2 * np.log(P) - q**3), rtol=1e-10)
    alpha = 0.1
    np.testing.assert_allclose(curve[("label_smoothing", "-")], np.abs(P - (1 - alpha) - alpha / c), atol=1e-12)
    from scipy.special import lambertw

    beta = (-np.log(P) - math.log(c)) / 1.0
    x = 0.5 * np.maximum(beta, -2 / math.e)
    with np.errstate(invalid="ignore"):  # scipy gives NaN at the float64 -1/e; W0(-1/e) = -1
        w0 = np.where(x <= -1 / math.e, -1.0, lambertw(np.maximum(x, -1 / math.e)).real)
    sigma = np.exp(-w0)
    np.testing.assert_allclose(curve[("superloss", "-")], sigma * q, rtol=1e-10)
    s = 2.0 * P * q
    w = np.exp(s - s.max())
    w /= w.sum()
    np.testing.assert_allclose(curve[("dm", "-")], w / 2, rtol=1e-10)  # |dL/dz_t| = w * q / (2 q)


def test_keras_emphasis_above_threshold_is_about_a_tenth_of_p_t_times_ce():
    df = emphasis_curves(P, n_classes=10, specs=[CurveSpec("dynamic", "keras", {"threshold": 0.7, "variant": "keras"})])
    above = P > 0.7
    e = df["emphasis"].to_numpy()
    np.testing.assert_allclose(e[~above], 1 - P[~above], rtol=1e-12)
    ratio = e[above] / (0.1 * P[above] * (1 - P[above]))
    assert np.all((ratio > 0.95) & (ratio <= 1.0))
    # closed form: above tau (the other classes below it) q_t = 1 / (1 + 0.1 (1 - p_t)), so
    # L = log(1 + 0.1 s) with s = 1 - p_t and ds/dz_t = -p_t s: |dL/dz_t| = 0.1 p_t s / (1 + 0.1 s)
    s = 1 - P[above]
    np.testing.assert_allclose(e[above], 0.1 * P[above] * s / (1 + 0.1 * s), rtol=1e-10)


def test_docstring_examples_hold():
    import doctest

    import analysis.audit.gradients

    result = doctest.testmod(analysis.audit.gradients, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_emphasis_curves_are_stable(dataframe_regression):
    df = emphasis_curves(P, n_classes=10)
    dataframe_regression.check(df, default_tolerance={"atol": 1e-12, "rtol": 1e-10})


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: loss_gradients(np.zeros((2, 3)), np.array([0, 1]), "hinge"), r"Expected `loss` to be one of"),
        (lambda: loss_gradients(np.zeros((2, 3)), np.array([0, 1]), wrt="labels"), r"Expected `wrt` to be one of"),
        (lambda: loss_gradients(np.zeros((2, 3)), np.array([0, 1]), reduction="none"), r"Expected `reduction` to be one of"),
        (lambda: loss_gradients(np.zeros((2, 3)), np.array([0]), "ce"), r"Expected `labels` of shape \(2,\)"),
        (lambda: loss_gradients(np.zeros((2, 3)), np.array([0, 1]), "superloss"), r"Expected a constant `tau`"),
        (lambda: loss_gradients(np.zeros((2, 3)), np.array([0, 1]), "dynamic", threshold=1.5), r"Expected `threshold` in \(0, 1\]"),
        (lambda: logits_for_true_prob(np.array([0.5, 1.0]), n_classes=3), r"Expected `p_t` in the open interval \(0, 1\)"),
        (lambda: logits_for_true_prob(np.array([0.5]), n_classes=1), r"Expected `n_classes` to be an integer >= 2"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
