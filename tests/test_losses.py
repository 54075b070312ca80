"""The losses of training.losses against closed forms, numpy oracles and torch's own losses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.special import lambertw

from training import losses as L

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _batch(n: int = 32, c: int = 5, scale: float = 3.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = scale * rng.standard_normal((n, c))
    y = rng.integers(0, c, size=n)
    return z, y


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _grad(fn, z: np.ndarray, y: np.ndarray, **kw) -> np.ndarray:
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    fn(zt, torch.tensor(y), reduction="sum", **kw).backward()
    return zt.grad.numpy()


def _onehot(y: np.ndarray, c: int) -> np.ndarray:
    return np.eye(c)[y]


def _w0_scipy(x: np.ndarray) -> np.ndarray:
    """scipy's W0, with the branch point W0(-1/e) = -1 (scipy gives NaN at the float64 -1/e)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(x <= -1 / math.e, -1.0, lambertw(np.maximum(x, -1 / math.e)).real)


# ----------------------------------------------------------------------------- cross-entropy
def test_cross_entropy_matches_torch_and_its_gradient_is_softmax_minus_onehot():
    z, y = _batch()
    zt, yt = torch.tensor(z), torch.tensor(y)
    for red in ("mean", "sum", "none"):
        torch.testing.assert_close(L.cross_entropy(zt, yt, reduction=red), F.cross_entropy(zt, yt, reduction=red))
    np.testing.assert_allclose(_grad(L.cross_entropy, z, y), _softmax(z) - _onehot(y, z.shape[1]), atol=1e-12)


# ----------------------------------------------------------------------------- dynamic loss
def test_dynamic_published_matches_numpy_closed_form():
    z, y = _batch()
    tau = 0.4
    p_t = _softmax(z)[np.arange(len(y)), y]
    assert 0 < (p_t > tau).sum() < len(y)
    for fill in (1.0, 0.5, 3.0):
        expected = np.where(p_t > tau, -math.log(fill), -np.log(0.1 * p_t))
        got = L.dynamic_loss(torch.tensor(z), torch.tensor(y), tau, fill=fill, reduction="none").numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_dynamic_published_gradient_is_ce_below_and_zero_above_threshold():
    z, y = _batch()
    tau = 0.4
    p_t = _softmax(z)[np.arange(len(y)), y]
    g = _grad(L.dynamic_loss, z, y, threshold=tau)
    ce = _softmax(z) - _onehot(y, z.shape[1])
    np.testing.assert_allclose(g[p_t <= tau], ce[p_t <= tau], atol=1e-12)
    assert np.all(g[p_t > tau] == 0.0)


def test_soft_dynamic_gradient_is_a_tenth_of_ce_above_threshold():
    z, y = _batch()
    tau = 0.4
    p_t = _softmax(z)[np.arange(len(y)), y]
    g = _grad(L.dynamic_loss, z, y, threshold=tau, variant="soft")
    ce = _softmax(z) - _onehot(y, z.shape[1])
    np.testing.assert_allclose(g[p_t > tau], 0.1 * ce[p_t > tau], atol=1e-12)
    np.testing.assert_allclose(g[p_t <= tau], ce[p_t <= tau], atol=1e-12)


def test_dynamic_threshold_equal_to_p_t_is_on_the_scaled_side():
    logits = torch.zeros(1, 2, dtype=torch.float64)  # p_t = 0.5 exactly
    got = L.dynamic_loss(logits, torch.tensor([0]), 0.5)
    assert float(got) == pytest.approx(-math.log(0.05))
    assert float(L.dynamic_loss(logits, torch.tensor([0]), 0.4999)) == 0.0


def _keras_dynamic_numpy(z, y, tau, fill=1.0, eps=1e-7):
    p = _softmax(z)
    q = np.where(p > tau, fill, 0.1 * p)
    q = q / q.sum(axis=1, keepdims=True)
    q = np.clip(q, eps, 1 - eps)
    return -np.sum(_onehot(y, z.shape[1]) * np.log(q), axis=1)


@pytest.mark.parametrize("tau,fill", [(0.3, 1.0), (0.6, 1.0), (0.5, 2.0)])
def test_keras_dynamic_matches_numpy_reimplementation(tau, fill):
    z, y = _batch(64, 4)
    got = L.dynamic_loss(torch.tensor(z), torch.tensor(y), tau, variant="keras", fill=fill, reduction="none").numpy()
    np.testing.assert_allclose(got, _keras_dynamic_numpy(z, y, tau, fill), rtol=1e-12, atol=1e-15)


def test_keras_dynamic_gradient_matches_finite_differences_and_is_small_but_nonzero_above_threshold():
    z, y = _batch(16, 10, scale=4.0, seed=3)
    tau = 0.7
    g = _grad(L.dynamic_loss, z, y, threshold=tau, variant="keras")
    h = 1e-6
    num = np.zeros_like(z)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            zp, zm = z.copy(), z.copy()
            zp[i, j] += h
            zm[i, j] -= h
            num[i, j] = (_keras_dynamic_numpy(zp, y, tau).sum() - _keras_dynamic_numpy(zm, y, tau).sum()) / (2 * h)
    np.testing.assert_allclose(g, num, atol=1e-6)
    p = _softmax(z)
    p_t = p[np.arange(len(y)), y]
    above = (p_t > tau) & (p_t < 1 - 1e-5)
    assert above.any()
    ce_l1 = 2 * (1 - p_t[above])
    ratio = np.abs(g[above]).sum(axis=1) / ce_l1
    assert np.all(ratio > 0) and np.all(ratio < 0.1)


# ----------------------------------------------------------------------------- related losses
def test_poly1_value_and_true_logit_gradient_match_closed_form():
    z, y = _batch()
    eps = 2.0
    p = _softmax(z)
    p_t = p[np.arange(len(y)), y]
    got = L.poly1_loss(torch.tensor(z), torch.tensor(y), epsilon=eps, reduction="none").numpy()
    np.testing.assert_allclose(got, -np.log(p_t) + eps * (1 - p_t), rtol=1e-12)
    g = _grad(L.poly1_loss, z, y, epsilon=eps)
    np.testing.assert_allclose(g[np.arange(len(y)), y], -(1 - p_t) - eps * p_t * (1 - p_t), atol=1e-12)


def test_polyn_paper_and_blog_forms_agree_for_n1_and_differ_for_n2():
    z, y = _batch()
    zt, yt = torch.tensor(z), torch.tensor(y)
    p_t = _softmax(z)[np.arange(len(y)), y]
    a = L.polyn_loss(zt, yt, epsilons=[1.5], form="paper")
    b = L.polyn_loss(zt, yt, epsilons=[1.5], form="blog")
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, L.poly1_loss(zt, yt, epsilon=1.5))
    paper = L.polyn_loss(zt, yt, epsilons=[1.0, 2.0], reduction="none").numpy()
    blog = L.polyn_loss(zt, yt, epsilons=[1.0, 2.0], form="blog", reduction="none").numpy()
    np.testing.assert_allclose(paper, -np.log(p_t) + (1 - p_t) + 2.0 * (1 - p_t) ** 2, rtol=1e-12)
    np.testing.assert_allclose(blog, -np.log(p_t) + (1 - p_t) + 1.0 * (1 - p_t) ** 2, rtol=1e-12)


@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0, 3.5])
def test_focal_value_and_true_logit_gradient_match_closed_form(gamma):
    z, y = _batch()
    p_t = _softmax(z)[np.arange(len(y)), y]
    got = L.focal_loss(torch.tensor(z), torch.tensor(y), gamma=gamma, reduction="none").numpy()
    np.testing.assert_allclose(got, -((1 - p_t) ** gamma) * np.log(p_t), rtol=1e-10)
    g = _grad(L.focal_loss, z, y, gamma=gamma)
    expected = gamma * p_t * (1 - p_t) ** gamma * np.log(p_t) - (1 - p_t) ** (gamma + 1)
    np.testing.assert_allclose(g[np.arange(len(y)), y], expected, atol=1e-10)


def test_focal_with_gamma_zero_is_cross_entropy():
    z, y = _batch()
    zt, yt = torch.tensor(z), torch.tensor(y)
    torch.testing.assert_close(L.focal_loss(zt, yt, gamma=0.0), L.cross_entropy(zt, yt))


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.3, 1.0])
def test_label_smoothing_matches_torch_cross_entropy_label_smoothing(alpha):
    z, y = _batch()
    zt, yt = torch.tensor(z), torch.tensor(y)
    for red in ("mean", "sum", "none"):
        torch.testing.assert_close(
            L.label_smoothing_loss(zt, yt, alpha=alpha, reduction=red),
            F.cross_entropy(zt, yt, label_smoothing=alpha, reduction=red),
        )


def test_lambert_w0_matches_scipy_on_its_domain():
    x = np.concatenate([np.linspace(-1 / math.e, 10, 3001)[1:], -np.logspace(-12, -0.4343, 300), np.logspace(-10, 12, 300)])
    got = L.lambert_w0(torch.tensor(x, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, lambertw(x).real, rtol=1e-10, atol=1e-12)
    # the branch point itself (scipy returns NaN for the float64 -1/e, which rounds below it)
    assert float(L.lambert_w0(torch.tensor([-1 / math.e], dtype=torch.float64))) == pytest.approx(-1.0)
    assert math.isnan(float(L.lambert_w0(torch.tensor([-0.5], dtype=torch.float64))))


def test_superloss_sigma_and_value_match_scipy_closed_form():
    z, y = _batch()
    tau, lam = 1.2, 0.7
    p_t = _softmax(z)[np.arange(len(y)), y]
    ce = -np.log(p_t)
    beta = (ce - tau) / lam
    sigma = np.exp(-_w0_scipy(0.5 * np.maximum(beta, -2 / math.e)))
    got_sigma = L.superloss_sigma(torch.tensor(ce), tau=tau, lam=lam).numpy()
    np.testing.assert_allclose(got_sigma, sigma, rtol=1e-10)
    got = L.superloss(torch.tensor(z), torch.tensor(y), tau=tau, lam=lam, reduction="none").numpy()
    np.testing.assert_allclose(got, (ce - tau) * sigma + lam * np.log(sigma) ** 2, rtol=1e-10, atol=1e-12)


def test_superloss_treats_sigma_as_constant_in_the_gradient():
    z, y = _batch()
    tau = 1.0
    p = _softmax(z)
    ce = -np.log(p[np.arange(len(y)), y])
    sigma = np.exp(-_w0_scipy(0.5 * np.maximum(ce - tau, -2 / math.e)))
    g = _grad(L.superloss, z, y, tau=tau)
    np.testing.assert_allclose(g, sigma[:, None] * (p - _onehot(y, z.shape[1])), atol=1e-10)


def test_superloss_module_tracks_tau_as_ema_of_batch_mean_loss_and_exposes_sigma():
    z, y = _batch()
    zt, yt = torch.tensor(z), torch.tensor(y)
    ce = F.cross_entropy(zt, yt, reduction="none")
    mod = L.SuperLoss(tau=2.0, ema=True, momentum=0.1)
    out = mod(zt, yt)
    tau1 = 2.0 - 0.1 * (2.0 - float(ce.mean()))
    assert mod.tau == pytest.approx(tau1)
    torch.testing.assert_close(out, L.superloss(zt, yt, tau=tau1))
    torch.testing.assert_close(mod.last_sigma, L.superloss_sigma(ce, tau=tau1))
    mod.eval()
    mod(zt, yt)
    assert mod.tau == pytest.approx(tau1)  # frozen in eval mode
    assert "tau_state" in mod.state_dict()
    const = L.SuperLoss()
    const(zt, yt)
    assert const.tau == pytest.approx(math.log(z.shape[1]))


def test_dm_gradient_l1_norms_equal_emphasis_weights_and_keep_ce_direction():
    z, y = _batch()
    beta, lam = 3.0, 2.0
    p = _softmax(z)
    p_t = p[np.arange(len(y)), y]
    s = beta * p_t**lam * (1 - p_t)
    w = np.exp(s - s.max())
    w /= w.sum()
    np.testing.assert_allclose(L.dm_weights(torch.tensor(z), torch.tensor(y), beta=beta, lam=lam).numpy(), w, rtol=1e-12)
    g = _grad(L.derivative_manipulation_loss, z, y, beta=beta, lam=lam)
    np.testing.assert_allclose(np.abs(g).sum(axis=1), w, rtol=1e-10)
    ce = p - _onehot(y, z.shape[1])
    np.testing.assert_allclose(g, w[:, None] * ce / np.abs(ce).sum(axis=1, keepdims=True), atol=1e-12)


# ----------------------------------------------------------------------------- reductions
_ALL = [
    ("ce", {}),
    ("dynamic", {"threshold": 0.5}),
    ("dynamic", {"threshold": 0.5, "variant": "soft"}),
    ("dynamic", {"threshold": 0.5, "variant": "keras"}),
    ("poly1", {"epsilon": 1.0}),
    ("polyn", {"epsilons": [1.0, -0.5, 0.25]}),
    ("focal", {"gamma": 2.0}),
    ("label_smoothing", {"alpha": 0.1}),
    ("superloss", {"tau": 1.0, "lam": 0.5}),
    ("dm", {"beta": 2.0, "lam": 1.0}),
]


@settings(max_examples=25, deadline=None)
@given(
    logits=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 8), st.integers(2, 6)),
        elements=st.floats(-30, 30, allow_nan=False, allow_infinity=False),
    ),
    data=st.data(),
)
def test_every_loss_is_finite_and_mean_equals_sum_over_n_equals_none_mean(logits, data):
    n, c = logits.shape
    target = torch.tensor(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    z = torch.tensor(logits)
    for name, params in _ALL:
        fn = L.LOSSES[name].loss
        none = fn(z, target, reduction="none", **params)
        total = fn(z, target, reduction="sum", **params)
        mean = fn(z, target, reduction="mean", **params)
        assert none.shape == (n,)
        assert torch.isfinite(none).all(), name
        torch.testing.assert_close(mean, total / n)
        torch.testing.assert_close(mean, none.mean())


@pytest.mark.parametrize("name,params", _ALL, ids=[f"{n}-{p.get('variant', '')}" for n, p in _ALL])
def test_get_loss_builds_a_mean_reduced_callable(name, params):
    z, y = _batch()
    zt, yt = torch.tensor(z), torch.tensor(y)
    loss = L.get_loss(name, **params)
    torch.testing.assert_close(loss(zt, yt), L.LOSSES[name].loss(zt, yt, **params))
    assert set(L.LOSSES) == {"ce", "dynamic", "poly1", "polyn", "focal", "label_smoothing", "superloss", "dm"}


def test_get_loss_superloss_is_a_stateful_module():
    loss = L.get_loss("superloss", ema=True)
    assert isinstance(loss, L.SuperLoss) and loss.ema


# ----------------------------------------------------------------------------- errors
_Z = torch.zeros(3, 4)
_Y = torch.tensor([0, 1, 2])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: L.dynamic_loss(_Z, _Y, 1.5), r"Expected `threshold` in \(0, 1\], got 1.5"),
        (lambda: L.dynamic_loss(_Z, _Y, 0.0), r"Expected `threshold` in \(0, 1\], got 0.0"),
        (lambda: L.dynamic_loss(_Z, _Y, 0.5, variant="hard"), r"Expected `variant` to be one of .*'hard'"),
        (lambda: L.dynamic_loss(_Z, _Y, 0.5, fill=0.0), r"Expected `fill` > 0, got 0.0"),
        (lambda: L.cross_entropy(_Z, _Y, reduction="avg"), r"Expected `reduction` to be one of .*'avg'"),
        (lambda: L.cross_entropy(_Z, torch.tensor([0, 1, 4])), r"Expected `target` in \[0, 3\] for 4 classes, got values in \[0, 4\]"),
        (lambda: L.cross_entropy(_Z, torch.tensor([0, -1, 2])), r"Expected `target` in \[0, 3\]"),
        (lambda: L.cross_entropy(_Z, torch.tensor([0, 1])), r"Expected `target` of shape \(3,\)"),
        (lambda: L.cross_entropy(torch.zeros(3), _Y), r"Expected `logits` of shape \(n_samples, n_classes\)"),
        (lambda: L.cross_entropy(torch.tensor([[0.0, 0.0, 0.0, float("nan")]] * 3), _Y), r"Expected finite `logits`, got 3 non-finite"),
        (lambda: L.cross_entropy(torch.tensor([[0.0, 0.0, 0.0, float("inf")]] * 3), _Y), r"Expected finite `logits`"),
        (lambda: L.cross_entropy(_Z, _Y.float()), r"Expected `target` to hold integer class indices"),
        (lambda: L.superloss(_Z, _Y, lam=0.0), r"Expected `lam` > 0, got 0.0"),
        (lambda: L.SuperLoss(lam=-1.0), r"Expected `lam` > 0, got -1.0"),
        (lambda: L.focal_loss(_Z, _Y, gamma=-0.5), r"Expected `gamma` >= 0, got -0.5"),
        (lambda: L.label_smoothing_loss(_Z, _Y, alpha=1.5), r"Expected `alpha` in \[0, 1\], got 1.5"),
        (lambda: L.polyn_loss(_Z, _Y, epsilons=[]), r"Expected `epsilons` to hold at least one"),
        (lambda: L.polyn_loss(_Z, _Y, epsilons=[1.0], form="taylor"), r"Expected `form` to be one of"),
        (lambda: L.derivative_manipulation_loss(_Z, _Y, beta=-1.0), r"Expected `beta` >= 0"),
        (lambda: L.get_loss("hinge"), r"Expected loss `name` to be one of .*'hinge'"),
        (lambda: L.get_loss("dynamic"), r"Missing required parameter\(s\) \['threshold'\] for loss 'dynamic'"),
        (lambda: L.get_loss("dynamic", threshold=2.0), r"Expected `threshold` in \(0, 1\], got 2.0"),
        (lambda: L.get_loss("focal", gama=2.0), r"Unknown parameter\(s\) \['gama'\] for loss 'focal'"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
