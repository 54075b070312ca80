"""Static fusion rules and the super-learners."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.core.fusion import (
    average_fusion,
    fuse,
    prob_average_fusion,
    vote_counts,
    vote_fusion,
)
from analysis.core.metrics import softmax


def test_average_is_argmax_of_mean_raw_logits():
    logits = np.random.default_rng(0).normal(size=(5, 50, 4))
    preds, probs = average_fusion(logits)
    assert np.array_equal(preds, logits.mean(0).argmax(1))
    assert np.allclose(probs, softmax(logits.mean(0)))


def test_prob_average_differs_from_logit_average_when_scales_differ():
    logits = np.array([[[10.0, 0.0, 9.0]], [[0.0, 1.0, 0.5]]])
    assert average_fusion(logits)[0].tolist() == [0]
    p = softmax(logits).mean(0)
    assert prob_average_fusion(logits)[0].tolist() == [int(p.argmax())]


def test_vote_picks_the_modal_class_and_reports_vote_fractions():
    logits = np.zeros((3, 1, 3))
    logits[0, 0, 2] = logits[1, 0, 2] = 1.0
    logits[2, 0, 0] = 5.0
    preds, probs = vote_fusion(logits)
    assert preds.tolist() == [2]
    assert probs.tolist() == [[1 / 3, 0.0, 2 / 3]]


def test_vote_tie_goes_to_the_larger_mean_logit():
    logits = np.zeros((2, 1, 3))
    logits[0, 0, 0] = 2.0  # votes 0
    logits[1, 0, 1] = 3.0  # votes 1: mean logits 1.0 vs 1.5
    assert vote_fusion(logits)[0].tolist() == [1]


def test_vote_exact_tie_goes_to_the_lowest_class_index():
    logits = np.zeros((2, 1, 3))
    logits[0, 0, 2] = 1.0
    logits[1, 0, 1] = 1.0
    assert vote_fusion(logits)[0].tolist() == [1]


def test_vote_ignores_untied_classes_with_larger_mean_logit():
    # class 1 gets 2 votes; class 0 one vote but a huge logit: the mode still wins
    logits = np.zeros((3, 1, 2))
    logits[0, 0, 0] = 100.0
    logits[1:, 0, 1] = 1.0
    assert vote_fusion(logits)[0].tolist() == [1]
    assert vote_counts(logits).tolist() == [[1, 2]]


def test_fusion_rejects_nonfinite_logits_and_unknown_methods():
    logits = np.zeros((2, 3, 4))
    logits[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite members must be dropped"):
        fuse(logits, "Average")
    with pytest.raises(ValueError, match="Expected `method` in"):
        fuse(np.zeros((2, 3, 4)), "Median")
    with pytest.raises(ValueError, match=r"shape \(n_members, n_samples, n_classes >= 2\)"):
        average_fusion(np.zeros((3, 4)))


def test_fusions_are_equivariant_to_class_relabelling():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(4, 30, 5))
    relabel = rng.permutation(5)
    new = np.empty_like(logits)
    new[:, :, relabel] = logits
    for f in (average_fusion, prob_average_fusion):
        assert np.array_equal(f(new)[0], relabel[f(logits)[0]])


# ----------------------------------------------------------------------------- super-learners
def test_out_of_bag_logits_replace_in_sample_slots_by_the_oob_mean():
    from analysis.core.superlearner import out_of_bag_logits

    logits = np.arange(3 * 2 * 2, dtype=np.float32).reshape(3, 2, 2)
    fit = np.array([[True, True], [False, True], [False, True]])
    out, usable = out_of_bag_logits(logits, fit)
    assert usable.tolist() == [True, False]
    assert np.allclose(out[0, 0], (logits[1, 0] + logits[2, 0]) / 2)
    assert np.array_equal(out[1:, 0], logits[1:, 0])


def test_mlp_has_six_hidden_layers_with_residual_blocks():
    torch = pytest.importorskip("torch")
    from analysis.core.superlearner import _build_model

    model = _build_model("MLP", 20, 4)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [
        (20, 512), (512, 512), (512, 512), (512, 256), (256, 256), (256, 256), (256, 4)]
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.modules()) == 4


def test_superlearner_fit_is_seeded_and_in_sample_validation_is_optimistic():
    pytest.importorskip("torch")
    from synthetic import synthetic_logits

    from analysis.core.superlearner import SuperLearnerConfig, fit_superlearner

    rng = np.random.default_rng(2)
    ytr, yte = rng.integers(0, 4, 2000), rng.integers(0, 4, 500)
    fit = rng.random((4, 2000)) < 0.55
    tr = synthetic_logits(ytr, 4, 4, 1.0, rng, boost=fit * 3.0)
    te = synthetic_logits(yte, 4, 4, 1.0, rng)
    cfg = SuperLearnerConfig(kind="Weighted", epochs=5)
    a = fit_superlearner(tr, ytr, te, config=cfg, seed=3)
    b = fit_superlearner(tr, ytr, te, config=cfg, seed=3)
    assert np.array_equal(a.logits, b.logits) and a.history == b.history
    oob = fit_superlearner(tr, ytr, te, config=cfg, seed=3, variant="out-of-bag", fit_mask=fit)
    test_in = np.mean(a.preds == yte)
    test_oob = np.mean(oob.preds == yte)
    # the in-sample validation rows carry the members' optimism; out-of-bag ones do not
    assert a.val_accuracy - test_in > oob.val_accuracy - test_oob + 0.05
    assert a.best_epoch == int(np.argmax(a.history)) + 1
    with pytest.raises(ValueError, match="needs `fit_mask`"):
        fit_superlearner(tr, ytr, te, config=cfg, seed=3, variant="out-of-bag")
