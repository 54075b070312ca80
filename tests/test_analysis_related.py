"""The related-losses table against an independent computation (numpy, scipy, scikit-learn) on a
synthetic cache that holds some of the related arms, not all."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import softmax
from sklearn.metrics import log_loss
from synthetic import SyntheticSpec, write_synthetic_preset

from analysis.core.config import S_TEMP, AnalysisConfig, hash_str
from analysis.core.pipeline import analyze_preset
from analysis.core.reader import load_preset
from analysis.core.related import related_losses_table
from analysis.core.schema import RELATED_LOSSES_COLUMNS

ARMS = (("ce", 1.5), ("ce-lr0.01", 1.6), ("dyn-0.7", 1.8), ("focal", 1.4), ("soft-0.7", 1.7))
SPEC = SyntheticSpec(arms=ARMS, n_members=3, n_train=150, n_test=400, n_classes=4, seed=5)
CFG = AnalysisConfig(seed=4, n_resamples=1000, n_seed_resamples=200, superlearners=False, size_repeats=2)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    write_synthetic_preset(root, "syn", SPEC)
    return root, analyze_preset("syn", root, write=False, config=CFG)


def _ece(conf: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """Equal-width top-label ECE by an explicit loop over bins (confidence 1.0 in the last bin)."""
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        inside = (conf > lo) & (conf <= hi) if b else (conf >= lo) & (conf <= hi)
        if inside.any():
            total += inside.sum() * abs(correct[inside].mean() - conf[inside].mean())
    return total / conf.size


def _aurc(conf: np.ndarray, correct: np.ndarray) -> float:
    """Mean over k = 1..n of the error rate among the k most confident samples (no tied confidences)."""
    order = np.argsort(-conf)
    errors = np.cumsum(~correct[order])
    return float(np.mean(errors / np.arange(1, conf.size + 1)))


def test_rows_are_the_present_related_arms_and_the_control_in_order(analysed):
    rel = analysed[1]["related_losses"]
    assert list(rel.columns) == list(RELATED_LOSSES_COLUMNS)
    assert list(rel["arm"]) == ["ce-lr0.01", "dyn-0.7", "soft-0.7", "focal"]  # missing arms: no row, no error
    assert set(rel["fusion"]) == {"Average"} and (rel["n_members"] == 3).all()
    assert rel.loc[rel["arm"] == "ce-lr0.01", "diff_vs_control"].isna().all()


def test_every_number_agrees_with_an_independent_computation(analysed):
    root, tables = analysed
    rel = tables["related_losses"].set_index("arm")
    data = load_preset(root, "syn")
    names = data.arm_names("digits")
    acc = {}
    for arm in rel.index:
        a = data.arms[("digits", arm)]
        y = a.test_labels
        mean = a.test_logits.astype(np.float64).mean(axis=0)
        correct = mean.argmax(axis=1) == y
        acc[arm] = correct.mean()
        p = softmax(mean, axis=1)
        conf = p.max(axis=1)
        r = rel.loc[arm]
        assert r["accuracy"] == pytest.approx(acc[arm])
        assert r["ece"] == pytest.approx(_ece(conf, correct), abs=1e-12)
        assert r["aurc"] == pytest.approx(_aurc(conf, correct), abs=1e-12)
        singles = [(a.test_logits[k].argmax(axis=1) == y).mean() for k in range(a.n_members)]
        assert (r["member_acc_mean"], r["member_acc_sd"]) == pytest.approx((np.mean(singles), np.std(singles, ddof=1)))
        # temperature: fitted (sklearn's log loss, scipy's scalar search) on one seeded half, applied to the other
        half = np.random.default_rng([CFG.seed, S_TEMP, 0, names.index(arm), hash_str("Average")]).permutation(y.size)
        half = half < y.size // 2
        scaled, temps = np.empty_like(p), []
        for fit in (half, ~half):
            t = minimize_scalar(lambda t, z=mean[fit], yy=y[fit]: log_loss(yy, softmax(z / t, axis=1), labels=range(4)),
                                bounds=(0.05, 20), method="bounded", options={"xatol": 1e-7}).x
            scaled[~fit] = softmax(mean[~fit] / t, axis=1)
            temps.append(t)
        assert r["temperature"] == pytest.approx(np.mean(temps), rel=1e-3)
        assert r["ece_temperature"] == pytest.approx(_ece(scaled.max(axis=1), correct), abs=2e-3)
    for arm in rel.index.drop("ce-lr0.01"):
        assert rel.loc[arm, "diff_vs_control"] == pytest.approx(acc[arm] - acc["ce-lr0.01"])
    # the intervals are table1's (checked there against materialised resamples)
    t1 = tables["table1"].set_index(["arm", "fusion"])
    for arm in rel.index:
        for c in ("control_ci_low", "control_ci_high", "control_seed_ci_low", "control_seed_ci_high"):
            assert rel.loc[arm, c] == t1.loc[(arm, "Average"), c] or np.isnan(rel.loc[arm, c])
        if arm != "ce-lr0.01":
            assert rel.loc[arm, "control_ci_low"] <= rel.loc[arm, "diff_vs_control"] <= rel.loc[arm, "control_ci_high"]


def test_a_cache_without_related_arms_or_control_gives_what_it_has(analysed):
    _, tables = analysed
    t1, cal, sel = tables["table1"], tables["calibration"], tables["selective"]
    none = related_losses_table(t1[t1["arm"] == "ce"], cal, sel)
    assert none.empty and list(none.columns) == list(RELATED_LOSSES_COLUMNS)
    no_control = related_losses_table(t1[t1["arm"] != "ce-lr0.01"], cal, sel)
    assert list(no_control["arm"]) == ["dyn-0.7", "soft-0.7", "focal"]
    vote = related_losses_table(t1, cal, sel, fusion="Vote")
    assert vote["temperature"].isna().all() and vote["ece"].notna().all()  # Vote is not temperature-scaled


def test_super_learners_are_fitted_for_the_paper_arms_only_and_the_choice_is_recorded(tmp_path):
    write_synthetic_preset(tmp_path, "syn", SyntheticSpec(arms=(("ce", 1.5), ("focal", 1.4)), n_members=2,
                                                         n_train=100, n_test=60, n_classes=3))
    cfg = AnalysisConfig(n_resamples=100, n_seed_resamples=20, size_repeats=2,
                         superlearner_epochs=(("Weighted", 1), ("MLP", 1)))
    out = tmp_path / "out"
    tables = analyze_preset("syn", tmp_path, out, config=cfg)
    fusions = tables["table1"].groupby("arm")["fusion"].apply(set)
    assert {"Weighted", "MLP-OOB"} <= fusions["ce"] and fusions["focal"] == {"Average", "ProbAverage", "Vote"}
    assert set(tables["superlearner_gap"]["arm"]) == {"ce"}
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["config"]["superlearner_arms"] == list(cfg.superlearner_arms) and "focal" not in cfg.superlearner_arms
    assert prov["config"]["n_seed_resamples"] == 20
