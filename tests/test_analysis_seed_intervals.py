"""Table 1's training-seed (two-level) intervals and its difference to ce-lr0.01: against explicit
resampled copies, and the properties that tie them to the test-only intervals."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import SyntheticSpec, synthetic_logits, write_synthetic_preset

from analysis.core.config import S_BOOT, S_SEED, AnalysisConfig, hash_str
from analysis.core.fusions import STATIC_FUSIONS
from analysis.core.pipeline import analyze_preset
from analysis.core.reader import load_preset
from analysis.core.seed_bootstrap import (
    candidate_classes,
    resampled_fusion_accuracies,
    weighted_predictions,
)

ARMS = (("ce", 1.4), ("dyn-0.7", 1.8), ("ce-lr0.01", 1.6))
SPEC = SyntheticSpec(arms=ARMS, n_members=4, n_train=120, n_test=90, n_classes=4, seed=3)
B = 40  # two-level resamples of the loop check (materialised copies are slow)


def _analyse(root, spec, **knobs):
    write_synthetic_preset(root, "syn", spec)
    cfg = AnalysisConfig(seed=2, superlearners=False, size_repeats=2, **knobs)
    return analyze_preset("syn", root, write=False, config=cfg)["table1"].set_index(["arm", "fusion"])


@pytest.mark.parametrize("fusion", ["Average", "ProbAverage", "Vote"])
@pytest.mark.parametrize("kind", ["continuous", "integer"])
def test_fusing_over_candidate_classes_scores_like_every_sample_reweighted(fusion, kind):
    """Settled samples, members with tied top classes and (integer logits) exact ties in the
    weighted means and the votes: the same accuracies as fusing every class of every sample."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 500)
    if kind == "continuous":
        logits = synthetic_logits(labels, 5, 4, 2.5, rng, member_sd=0.7)
        logits[1, 20:25, 0] = logits[1, 20:25].max(axis=1)  # a member with a tie at the top
    else:
        logits = rng.integers(0, 3, size=(5, 500, 4)).astype(np.float32)
    logits[:, :20] = logits[0, :20]  # identical members
    cand = candidate_classes(logits, fusion)
    assert 0 < (cand.sum(axis=1) == 1).sum() < 500  # some samples settled, some not
    assert cand[np.arange(500)[:, None], logits.argmax(axis=2).T].all()  # every member's vote stays a candidate
    w = rng.integers(0, 3, size=(60, 5))
    w[:, 2] += 1  # no all-zero weights
    s = rng.integers(0, 3, size=(60, 500)).astype(float)
    ours = resampled_fusion_accuracies(logits, labels, fusion=fusion, member_counts=w, sample_counts=s, chunk=7)
    every = ((weighted_predictions(logits, w, fusion) == labels) * s).sum(axis=1) / s.sum(axis=1)
    np.testing.assert_allclose(ours, every, rtol=0, atol=1e-12)


def test_seed_intervals_equal_a_loop_over_materialised_resamples(tmp_path):
    """Resample b: every arm's members drawn with replacement from its own stream, the test samples
    of the test-only bootstrap's resample b; each arm fused on explicit copies of its drawn members
    and scored on explicit copies of the drawn samples; then centred: minus the mean over b of the
    difference to all members fused, on the same samples."""
    t1 = _analyse(tmp_path, SPEC, n_seed_resamples=B)
    data = load_preset(tmp_path, "syn")
    n, m = SPEC.n_test, SPEC.n_members
    idx = np.random.default_rng([2, S_BOOT, 0]).integers(0, n, size=(B, n))  # the first block of resamples
    acc = {}
    for arm, _ in ARMS:
        a = data.arms[("digits", arm)]
        g = np.random.default_rng([2, S_SEED, 0, hash_str(arm)])
        draws = g.integers(0, m, size=(B, m))
        for fusion in ("Average", "ProbAverage", "Vote"):
            fuse = STATIC_FUSIONS[fusion]
            x = np.array([np.mean(fuse(a.test_logits[draws[b]][:, idx[b]])[0] == a.test_labels[idx[b]])
                          for b in range(B)])
            every = np.array([np.mean(fuse(a.test_logits[:, idx[b]])[0] == a.test_labels[idx[b]]) for b in range(B)])
            acc[arm, fusion] = x - np.mean(x - every)
    for (arm, fusion), x in acc.items():
        row = t1.loc[(arm, fusion)]
        assert (row["seed_ci_low"], row["seed_ci_high"]) == pytest.approx(tuple(np.percentile(x, [2.5, 97.5])))
        for ref, lo, hi in (("ce", "diff_seed_ci_low", "diff_seed_ci_high"),
                            ("ce-lr0.01", "control_seed_ci_low", "control_seed_ci_high")):
            if arm == ref:
                assert np.isnan(row[lo]) and np.isnan(row[hi])
            else:
                assert (row[lo], row[hi]) == pytest.approx(tuple(np.percentile(x - acc[ref, fusion], [2.5, 97.5])))


def test_identical_members_give_the_test_only_interval_and_diverse_members_a_wider_one(tmp_path):
    same = _analyse(tmp_path / "same", SyntheticSpec(arms=ARMS, n_members=4, n_train=120, n_test=300,
                                                     member_sd=0.0), n_resamples=2000, n_seed_resamples=2000)
    for c in ("ci", "diff_ci", "control_ci"):
        lo, hi = ("seed_ci_low", "seed_ci_high") if c == "ci" else (c.replace("ci", "seed_ci_low"),
                                                                    c.replace("ci", "seed_ci_high"))
        # equal up to the float32 rounding of the test-only draws (k / n in float32)
        np.testing.assert_allclose(same[lo].to_numpy(), same[f"{c}_low"].to_numpy(), rtol=0, atol=1e-6)
        np.testing.assert_allclose(same[hi].to_numpy(), same[f"{c}_high"].to_numpy(), rtol=0, atol=1e-6)
    diverse = _analyse(tmp_path / "diverse", SyntheticSpec(arms=ARMS, n_members=4, n_train=120, n_test=300,
                                                           shared_sd=0.3, member_sd=2.5), n_seed_resamples=2000)
    for col in ("ci", "diff_ci", "control_ci"):
        lo, hi = diverse[f"{col}_low"], diverse[f"{col}_high"]
        s_lo = diverse["seed_ci_low" if col == "ci" else col.replace("ci", "seed_ci_low")]
        s_hi = diverse["seed_ci_high" if col == "ci" else col.replace("ci", "seed_ci_high")]
        ok = lo.notna()
        assert ((s_hi - s_lo)[ok] > (hi - lo)[ok]).all(), col
        assert ((s_lo <= lo) & (hi <= s_hi))[ok].all(), col


def test_difference_to_the_control_is_the_bootstrap_ci_row_against_ce_lr001(tmp_path):
    write_synthetic_preset(tmp_path, "syn", SPEC)
    tables = analyze_preset("syn", tmp_path, write=False, config=AnalysisConfig(
        seed=1, n_resamples=500, n_seed_resamples=0, superlearners=False, size_repeats=2))
    t1 = tables["table1"].set_index(["arm", "fusion"])
    ci = tables["bootstrap_ci"]
    rows = ci[(ci["quantity"] == "diff") & (ci["reference"] == "ce-lr0.01")].set_index(["arm", "fusion"])
    assert len(rows) == 2 * 3
    for key, r in rows.iterrows():
        assert t1.loc[key, "diff_vs_control"] == r["estimate"]
        assert (t1.loc[key, "control_ci_low"], t1.loc[key, "control_ci_high"]) == (r["ci_low"], r["ci_high"])
        assert t1.loc[key, "diff_vs_control"] == pytest.approx(
            t1.loc[key, "accuracy"] - t1.loc[("ce-lr0.01", key[1]), "accuracy"])
    assert t1.loc[("ce-lr0.01", slice(None)), "diff_vs_control"].isna().all()
    assert t1[["seed_ci_low", "diff_seed_ci_low", "control_seed_ci_high"]].isna().all().all()  # turned off
