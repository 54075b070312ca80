"""Metrics against independent oracles (torchmetrics, scikit-learn), invariances over the registry,
and pinned edge cases of the binning convention."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from analysis.core import metrics as M
from analysis.core.metric_registry import METRICS


def _random_probs(rng, n=500, c=5, scale=2.0):
    logits = rng.normal(0, scale, size=(n, c))
    labels = np.where(rng.random(n) < 0.6, logits.argmax(1), rng.integers(0, c, n))
    return labels.astype(np.int64), M.softmax(logits)


@pytest.fixture
def labels_probs():
    return _random_probs(np.random.default_rng(0))


@pytest.mark.parametrize("norm,ours", [("l1", M.expected_calibration_error), ("max", M.maximum_calibration_error)])
@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_equal_width_calibration_error_matches_torchmetrics(labels_probs, norm, ours, n_bins):
    torch = pytest.importorskip("torch")
    from torchmetrics.functional.classification import multiclass_calibration_error

    labels, probs = labels_probs
    # torchmetrics gives confidence exactly 1.0 an extra bin; our convention puts it in the last
    # bin. The two agree when no confidence is exactly 1.0, as here.
    assert probs.max() < 1.0
    ref = multiclass_calibration_error(
        torch.tensor(probs, dtype=torch.float64), torch.tensor(labels), num_classes=probs.shape[1], n_bins=n_bins, norm=norm
    )
    assert ours(labels, probs, n_bins=n_bins) == pytest.approx(float(ref), abs=1e-6)  # torchmetrics bins in float32


def test_nll_is_scikit_learns_log_loss_including_its_clipping(labels_probs):
    from sklearn.metrics import log_loss

    labels, probs = labels_probs
    classes = np.arange(probs.shape[1])
    assert M.nll(labels, probs) == pytest.approx(log_loss(labels, probs, labels=classes), rel=1e-12, abs=0)
    # a true class given probability 0 or 1 is clipped to [eps, 1 - eps], as scikit-learn does
    hard = np.eye(probs.shape[1])[(labels[:4] + np.array([0, 1, 0, 1])) % probs.shape[1]]
    assert np.isfinite(M.nll(labels[:4], hard))
    assert M.nll(labels[:4], hard) == pytest.approx(log_loss(labels[:4], hard, labels=classes), rel=1e-12, abs=0)


def test_brier_nll_and_auroc_match_their_definitions_and_torchmetrics(labels_probs):
    """The wrappers over scikit-learn against independent computations: the Brier and NLL
    definitions in numpy, torch's nll_loss, and torchmetrics' binary AUROC (ties count 1/2)."""
    from torchmetrics.functional.classification import binary_auroc

    labels, probs = labels_probs
    onehot = np.eye(probs.shape[1])[labels]
    assert M.brier_score(labels, probs) == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    from sklearn.metrics import brier_score_loss  # agrees for C > 2 (C = 2 uses the binary form)

    assert probs.shape[1] > 2
    assert M.brier_score(labels, probs) == pytest.approx(brier_score_loss(labels, probs, labels=list(range(probs.shape[1]))))
    ref_nll = torch.nn.functional.nll_loss(torch.log(torch.tensor(probs, dtype=torch.float64)), torch.tensor(labels))
    assert M.nll(labels, probs) == pytest.approx(float(ref_nll))
    correct = probs.argmax(1) == labels
    conf = np.round(probs.max(1), 2)  # rounding creates ties, which both count as 1/2
    pairs = conf[correct][:, None] - conf[~correct][None, :]
    assert M.selective_auroc(correct, conf) == pytest.approx(np.mean((pairs > 0) + 0.5 * (pairs == 0)))
    assert M.selective_auroc(correct, conf) == pytest.approx(
        float(binary_auroc(torch.tensor(conf, dtype=torch.float64), torch.tensor(correct).long())), abs=1e-6)
    assert np.isnan(M.selective_auroc(np.ones(3, bool), np.array([0.1, 0.2, 0.3])))


def test_aurc_equals_mean_selective_risk_over_all_coverages():
    rng = np.random.default_rng(1)
    conf = rng.random(200)
    correct = rng.random(200) < conf
    order = np.argsort(-conf)
    risks = [np.mean(~correct[order[: k + 1]]) for k in range(200)]
    assert M.aurc_loss(correct, conf) == pytest.approx(np.mean(risks))
    curve = M.risk_coverage_curve(correct, conf)
    assert curve["coverage"][-1] == 1.0 and curve["risk"][-1] == pytest.approx(np.mean(~correct))


def test_ece_is_zero_for_perfectly_calibrated_probs():
    labels = np.array([0, 1, 2, 0])
    probs = np.eye(3)[labels]
    assert M.expected_calibration_error(labels, probs) == 0.0
    assert M.expected_calibration_error(labels, probs, binning="mass") == 0.0
    assert M.maximum_calibration_error(labels, probs) == 0.0


def test_confidence_exactly_one_falls_in_the_last_bin():
    assert M.bin_assignment(np.array([1.0, 0.9999, 0.0]), n_bins=15).tolist() == [14, 14, 0]
    # an interior edge belongs to the upper bin (left-closed bins)
    assert M.bin_assignment(np.array([0.5]), n_bins=2).tolist() == [1]


def test_equal_mass_bins_hold_equal_counts():
    conf = np.random.default_rng(2).random(150)
    b = M.bin_assignment(conf, n_bins=15, binning="mass")
    assert np.bincount(b).tolist() == [10] * 15
    assert np.all(np.diff(conf[np.argsort(conf)]) >= 0)
    assert np.all(np.diff(b[np.argsort(conf)]) >= 0)  # bins follow confidence order


def test_reliability_bins_are_tidy_and_consistent_with_ece(labels_probs):
    labels, probs = labels_probs
    conf, correct = probs.max(1), probs.argmax(1) == labels
    rb = M.reliability_bins(conf, correct, n_bins=10)
    assert rb["count"].sum() == labels.size
    nz = rb["count"] > 0
    ece = np.sum(rb["count"][nz] * np.abs(rb["accuracy"][nz] - rb["confidence"][nz])) / labels.size
    assert ece == pytest.approx(M.expected_calibration_error(labels, probs, n_bins=10))


def test_classwise_ece_of_binary_problem_averages_both_columns():
    rng = np.random.default_rng(3)
    p1 = rng.random(300)
    labels = (rng.random(300) < p1).astype(np.int64)
    probs = np.c_[1 - p1, p1]
    both = [M.confidence_calibration_error(probs[:, k], labels == k) for k in (0, 1)]
    assert M.classwise_calibration_error(labels, probs) == pytest.approx(np.mean(both))


def test_fit_temperature_recovers_the_generating_temperature():
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 3, size=(20_000, 4))
    true_t = 2.5
    p = M.softmax(logits / true_t)
    labels = (p.cumsum(1) > rng.random((20_000, 1))).argmax(1)
    assert M.fit_temperature(labels, logits) == pytest.approx(true_t, rel=0.05)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_is_invariant_to_sample_permutation(name, labels_probs):
    labels, probs = labels_probs
    perm = np.random.default_rng(5).permutation(labels.size)
    f = METRICS[name]
    assert f(labels[perm], probs[perm]) == pytest.approx(f(labels, probs), abs=1e-12)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_is_invariant_to_class_relabelling(name, labels_probs):
    labels, probs = labels_probs
    relabel = np.random.default_rng(6).permutation(probs.shape[1])  # old class k -> new class relabel[k]
    new_probs = np.empty_like(probs)
    new_probs[:, relabel] = probs
    f = METRICS[name]
    assert f(relabel[labels], new_probs) == pytest.approx(f(labels, probs), abs=1e-12)


def test_metrics_do_not_mutate_inputs(labels_probs):
    labels, probs = labels_probs
    l0, p0 = labels.copy(), probs.copy()
    for f in METRICS.values():
        f(labels, probs)
    assert np.array_equal(labels, l0) and np.array_equal(probs, p0)


def test_metrics_reject_bad_arguments_with_named_messages(labels_probs):
    labels, probs = labels_probs
    with pytest.raises(ValueError, match="`n_bins` to be an integer larger than 0, but got 0"):
        M.expected_calibration_error(labels, probs, n_bins=0)
    with pytest.raises(ValueError, match="`binning` to be 'width' or 'mass'"):
        M.expected_calibration_error(labels, probs, binning="quantile")
    with pytest.raises(ValueError, match="rows to sum to 1"):
        M.brier_score(labels, probs * 0.5)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        M.nll(labels[:-1], probs)
    with pytest.raises(ValueError, match=r"`labels` in \[0, 5\)"):
        M._check_labels(np.array([0, 7]), 5)
