"""Split invariants: sizes, stratification, seeding, the same split for every arm of a member."""

from __future__ import annotations

import numpy as np
import pytest

from training.grid import bootstrap_seed, make_run_spec, partition_seed, run_seed
from training.splits import (
    expected_fit_distinct_fraction,
    fold_train_indices,
    member_split,
    split_stats,
)


@pytest.fixture
def labels():
    return np.repeat(np.arange(5, dtype=np.int64), 200)  # 1000 samples, 5 balanced classes


def test_member_split_sizes_follow_fold_and_80_20(labels):
    s = member_split(labels, k=50, member=3, partition_seed=1, bootstrap_seed=2)
    assert s.fit_index.dtype == np.int64 and s.val_index.dtype == np.int64
    assert s.fit_index.size + s.val_index.size == 980  # 98 % of 1000
    assert s.fit_index.size == round(0.8 * 980)


def test_fold_train_part_is_stratified_and_excludes_its_fold(labels):
    k = 50
    parts = [fold_train_indices(labels, k=k, fold=i, seed=7) for i in range(k)]
    for p in parts[:5]:
        assert np.array_equal(np.bincount(labels[p]), np.full(5, 196))
    # each sample is left out of exactly one fold's training part
    left_out = np.zeros(labels.size, int)
    for p in parts:
        mask = np.ones(labels.size, bool)
        mask[p] = False
        left_out += mask
    assert np.all(left_out == 1)


def test_member_split_draws_only_from_its_fold(labels):
    fold = fold_train_indices(labels, k=50, fold=4, seed=11)
    s = member_split(labels, k=50, member=4, partition_seed=11, bootstrap_seed=3)
    assert np.isin(s.fit_index, fold).all() and np.isin(s.val_index, fold).all()


def test_member_split_is_seeded(labels):
    a = member_split(labels, k=50, member=0, partition_seed=1, bootstrap_seed=2)
    b = member_split(labels, k=50, member=0, partition_seed=1, bootstrap_seed=2)
    c = member_split(labels, k=50, member=0, partition_seed=1, bootstrap_seed=3)
    assert np.array_equal(a.fit_index, b.fit_index) and np.array_equal(a.val_index, b.val_index)
    assert not np.array_equal(a.fit_index, c.fit_index)


def test_split_seed_is_shared_by_all_arms_of_a_member_but_run_seed_is_not():
    specs = [make_run_spec("p", "digits", arm, 2, root_seed=5) for arm in ("ce", "dyn-0.6", "ce-lr0.01")]
    assert len({(s.partition_seed, s.bootstrap_seed) for s in specs}) == 1
    assert len({s.seed for s in specs}) == 3
    assert bootstrap_seed(5, "digits", 2) != bootstrap_seed(5, "digits", 3)
    assert partition_seed(5, "digits") != partition_seed(5, "cifar10")
    assert run_seed(5, "digits", 2, "ce") == specs[0].seed


def test_split_stats_measures_distinct_fraction_and_overlap():
    st = split_stats(np.array([0, 0, 1, 2]), np.array([2, 3]), 10)
    assert st["fit_distinct_fraction"] == pytest.approx(0.3)
    assert st["base_distinct_fraction"] == pytest.approx(0.4)
    assert st["val_overlap_fraction"] == pytest.approx(0.5)
    assert st["fit_duplicate_fraction"] == pytest.approx(0.25)


def test_measured_distinct_fraction_matches_theory_not_49_4_percent():
    labels = np.repeat(np.arange(10, dtype=np.int64), 2000)
    s = member_split(labels, k=50, member=0, partition_seed=0, bootstrap_seed=0)
    frac = split_stats(s.fit_index, s.val_index, labels.size)["fit_distinct_fraction"]
    assert frac == pytest.approx(expected_fit_distinct_fraction(labels.size), abs=0.01)
    assert abs(frac - 0.494) > 0.03


def test_split_claim_fails_with_values():
    from analysis.audit import evaluate_all, module_claims

    assert [s.id for s in module_claims("analysis.audit.split_claims")] == ["split-49.4"]
    (r,) = evaluate_all(["split-49.4"])
    assert r.id == "split-49.4" and r.verdict == "fails"
    assert r.values["theory_fit_distinct_fraction"] == pytest.approx(0.5397, abs=1e-3)
    assert r.values["measured_fit_distinct_fraction"] == pytest.approx(0.5397, abs=5e-3)
    assert 0 < r.values["fit_val_overlap_fraction"] < 1


def test_member_split_rejects_too_small_classes():
    with pytest.raises(ValueError, match="at least k=50"):
        member_split(np.arange(40) % 2, k=50, member=0, partition_seed=0, bootstrap_seed=0)
