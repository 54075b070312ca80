"""Claims from our caches (``lr-confound``, ``stacking-leak``) on hand-made result tables: verdicts
by construction, Holm adjustment and intervals against independent computations, the audit's
preset handling, and a regression baseline of the claims' values."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from report_data import digits_tiny_results
from scipy import stats

from analysis import audit, cli
from analysis.audit.cache_claims import dynamic_vs_references, paired_gaps

PRESET = "digits-tiny"
ARMS = ("dyn-0.6", "dyn-0.7", "dyn-0.8", "dyn-0.9")
FUSIONS = ("Average", "Vote", "Weighted", "MLP")


def _holm_by_hand(p: list[float]) -> list[float]:
    """Holm's step-down: sort ascending, multiply the i-th smallest by (m − i), running maximum, cap at 1."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    adj, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def _write_results(root, *, vs_ce: float, vs_lr: float, p_ce: float, p_lr: list[float], gap_in: float,
                   gap_oob: float, seed: int = 0) -> None:
    """bootstrap_ci, mcnemar and superlearner_gap tables of one dataset, by construction."""
    rng = np.random.default_rng(seed)
    out = root / "results" / PRESET
    out.mkdir(parents=True, exist_ok=True)
    ci, mc, gap = [], [], []
    for f in FUSIONS:
        for k, arm in enumerate(ARMS):
            for ref, d, p in (("ce", vs_ce, p_ce), ("ce-lr0.01", vs_lr, p_lr[k])):
                ci.append({"dataset": "digits", "arm": arm, "fusion": f, "quantity": "diff", "reference": ref,
                           "estimate": d, "ci_low": d - 0.01, "ci_high": d + 0.01, "se": 0.005,
                           "confidence_level": 0.95, "n_resamples": 1000})
                mc.append({"dataset": "digits", "arm": arm, "reference": ref, "fusion": f, "accuracy": 0.9 + d,
                           "reference_accuracy": 0.9, "n01": 30, "n10": 20, "statistic": 1.0, "pvalue": p,
                           "exact": 0.0})
        ci.append({"dataset": "digits", "arm": "ce-lr0.01", "fusion": f, "quantity": "diff", "reference": "ce",
                   "estimate": vs_ce - vs_lr, "ci_low": vs_ce - vs_lr - 0.01, "ci_high": vs_ce - vs_lr + 0.01,
                   "se": 0.005, "confidence_level": 0.95, "n_resamples": 1000})
    for arm in ("ce", "ce-lr0.01", *ARMS):
        for kind in ("Weighted", "MLP"):
            for variant, g in (("in-sample", gap_in), ("out-of-bag", gap_oob)):
                gg = g + 0.004 * rng.standard_normal()
                gap.append({"dataset": "digits", "arm": arm, "fusion": kind if variant == "in-sample" else f"{kind}-OOB",
                            "kind": kind, "variant": variant, "val_accuracy": 0.9 + gg, "test_accuracy": 0.9,
                            "gap": gg, "best_epoch": 5, "epochs": 10, "n_fit_rows": 100, "n_val_rows": 10,
                            "fit_seconds": 0.1})
    mc = pd.DataFrame(mc)
    mc["pvalue_holm"] = mc.groupby(["dataset", "reference", "fusion"])["pvalue"].transform(
        lambda p: _holm_by_hand(p.tolist()))
    pd.DataFrame(ci).to_csv(out / "bootstrap_ci.csv", index=False)
    mc.to_csv(out / "mcnemar.csv", index=False)
    pd.DataFrame(gap).to_csv(out / "superlearner_gap.csv", index=False)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNLOSS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DYNLOSS_RESULTS_DIR", raising=False)
    monkeypatch.delenv("DYNLOSS_PRESET", raising=False)
    monkeypatch.setattr(audit, "CLAIM_MODULES", ("analysis.audit.cache_claims",))
    return tmp_path


def _results():
    return {r.id: r for r in audit.evaluate_all(preset=PRESET)}


def test_hand_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(1)
    for m in (1, 2, 4, 7):
        p = rng.uniform(0, 0.2, m).tolist()
        assert _holm_by_hand(p) == pytest.approx(multipletests(p, method="holm")[1], abs=1e-12)


def test_lr_confound_needs_the_holm_column_of_the_results(data_root):
    _write_results(data_root, vs_ce=0.03, vs_lr=0.0, p_ce=1e-6, p_lr=[0.5] * 4, gap_in=0.0, gap_oob=0.0)
    path = data_root / "results" / PRESET / "mcnemar.csv"
    pd.read_csv(path).drop(columns="pvalue_holm").to_csv(path, index=False)
    with pytest.raises(ValueError, match="pvalue_holm.*rerun `dynloss analyze`"):
        audit.evaluate_all(preset=PRESET)


def test_lr_confound_fails_when_the_gain_over_ce_vanishes_against_ce_lr001(data_root):
    _write_results(data_root, vs_ce=0.03, vs_lr=0.0005, p_ce=1e-6, p_lr=[0.02, 0.3, 0.5, 0.9], gap_in=0.0,
                   gap_oob=0.0)
    r = _results()["lr-confound"]
    assert r.verdict == "fails" and r.source == "our caches"
    v = r.values
    assert v["per_reference"]["ce"]["n_better"] == 16 and v["per_reference"]["ce-lr0.01"]["n_better"] == 0
    assert v["preset"] == PRESET and "digits-tiny" in r.evidence and "paper preset" in r.evidence
    # p = 0.02 is significant alone, not after Holm over the four arms (4 × 0.02 = 0.08): the claim
    # decides on the results' Holm-adjusted p
    adjusted = {(c["fusion"], c["arm"]): c["p_holm"] for c in v["cells"] if c["reference"] == "ce-lr0.01"}
    for f in FUSIONS:
        assert [adjusted[(f, a)] for a in ARMS] == pytest.approx(_holm_by_hand([0.02, 0.3, 0.5, 0.9]))


def test_lr_confound_holds_when_every_arm_beats_ce_at_the_same_learning_rate(data_root):
    _write_results(data_root, vs_ce=0.03, vs_lr=0.02, p_ce=1e-6, p_lr=[1e-4] * 4, gap_in=0.0, gap_oob=0.0)
    assert _results()["lr-confound"].verdict == "holds"


def test_lr_confound_is_conditional_when_some_arms_beat_the_control(data_root):
    _write_results(data_root, vs_ce=0.03, vs_lr=0.01, p_ce=1e-6, p_lr=[1e-4, 0.4, 0.5, 0.9], gap_in=0.0, gap_oob=0.0)
    assert _results()["lr-confound"].verdict == "conditional"


def _write_tuning(root, chosen: dict[str, float]) -> None:
    """lr_tuning.csv choosing ``chosen[base]`` for ce and dyn-0.7 (scores by construction)."""
    from training.arms import LR_GRID, at_lr

    rows = [{"dataset": "digits", "base_arm": b, "lr": lr, "arm": at_lr(b, lr), "members": 2,
             "held_out_accuracy": 0.9 if lr == chosen[b] else 0.8, "held_out_sd": 0.01, "held_out_rows": 600,
             "chosen": float(lr == chosen[b])} for b in ("ce", "dyn-0.7") for lr in LR_GRID]
    pd.DataFrame(rows).to_csv(root / "results" / PRESET / "lr_tuning.csv", index=False)


def test_lr_confound_is_decided_by_the_tuned_protocol_with_the_others_beside_it(data_root):
    # only dyn-0.7 beats ce-lr0.01: the same-rate control over all τ is conditional, the tuned
    # comparison (dyn-0.7 at its lr 0.01 against ce at its lr 0.01) holds
    _write_results(data_root, vs_ce=0.03, vs_lr=0.01, p_ce=1e-6, p_lr=[0.5, 1e-6, 0.5, 0.5], gap_in=0.0,
                   gap_oob=0.0)
    _write_tuning(data_root, {"ce": 0.01, "dyn-0.7": 0.01})
    r = _results()["lr-confound"]
    v = r.values
    assert r.verdict == "holds" and v["decided_by"] == "tuned"
    assert v["protocols"]["tuned"]["pairs"] == ["dyn-0.7 vs ce-lr0.01"] and v["protocols"]["tuned"]["n_better"] == 4
    assert v["protocols"]["control"]["verdict"] == "conditional" and v["protocols"]["code"]["verdict"] == "holds"
    assert v["tuned_lr"] == {"digits/ce": 0.01, "digits/dyn-0.7": 0.01}
    assert r.evidence.index("tuned (") < r.evidence.index("code (") < r.evidence.index("control (")
    # a single tuned pair is tested alone: its Holm-adjusted p is its own p
    tuned = [c for c in v["protocol_cells"] if c["protocol"] == "tuned"]
    assert all(c["p_holm"] == pytest.approx(1e-6) for c in tuned)


def test_without_tuning_the_same_rate_control_decides_and_says_so(data_root):
    _write_results(data_root, vs_ce=0.03, vs_lr=0.01, p_ce=1e-6, p_lr=[0.5, 1e-6, 0.5, 0.5], gap_in=0.0,
                   gap_oob=0.0)
    r = _results()["lr-confound"]
    assert r.verdict == "conditional" and r.values["decided_by"] == "control"
    assert "No learning-rate tuning in these results" in r.evidence


def test_a_tuned_cross_entropy_at_another_rate_is_the_tuned_reference(data_root):
    _write_results(data_root, vs_ce=0.03, vs_lr=0.01, p_ce=1e-6, p_lr=[1e-6] * 4, gap_in=0.0, gap_oob=0.0)
    folder = data_root / "results" / PRESET
    ci, mc = pd.read_csv(folder / "bootstrap_ci.csv"), pd.read_csv(folder / "mcnemar.csv")
    # ce at lr 0.001 chosen: dyn-0.7 is worse than it in every fusion
    extra_ci = [{"dataset": "digits", "arm": "dyn-0.7", "fusion": f, "quantity": "diff", "reference": "ce-lr0.001",
                 "estimate": -0.02, "ci_low": -0.03, "ci_high": -0.01, "se": 0.005, "confidence_level": 0.95,
                 "n_resamples": 1000} for f in FUSIONS]
    extra_mc = [{"dataset": "digits", "arm": "dyn-0.7", "reference": "ce-lr0.001", "fusion": f, "accuracy": 0.88,
                 "reference_accuracy": 0.9, "n01": 10, "n10": 40, "statistic": 1.0, "pvalue": 1e-5, "exact": 0.0,
                 "pvalue_holm": 1e-5} for f in FUSIONS]
    pd.concat([ci, pd.DataFrame(extra_ci)]).to_csv(folder / "bootstrap_ci.csv", index=False)
    pd.concat([mc, pd.DataFrame(extra_mc)]).to_csv(folder / "mcnemar.csv", index=False)
    _write_tuning(data_root, {"ce": 0.001, "dyn-0.7": 0.01})
    r = _results()["lr-confound"]
    assert r.values["protocols"]["tuned"]["pairs"] == ["dyn-0.7 vs ce-lr0.001"]
    assert r.values["protocols"]["tuned"]["n_worse"] == 4 and r.verdict == "fails"
    assert r.values["protocols"]["control"]["verdict"] == "holds"  # what the tuned control overturns


def test_differences_and_intervals_are_those_of_the_results(data_root):
    _write_results(data_root, vs_ce=0.03, vs_lr=0.001, p_ce=1e-6, p_lr=[0.2] * 4, gap_in=0.0, gap_oob=0.0)
    folder = data_root / "results" / PRESET
    ci, mc = pd.read_csv(folder / "bootstrap_ci.csv"), pd.read_csv(folder / "mcnemar.csv")
    t = dynamic_vs_references(ci, mc)
    assert len(t) == 2 * len(ARMS) * len(FUSIONS)
    merged = t.merge(ci, on=["arm", "reference", "fusion"], suffixes=("", "_ci"))
    assert np.allclose(merged["diff"], merged["estimate"]) and np.allclose(merged["ci_low"], merged["ci_low_ci"])


def test_stacking_leak_fails_when_in_sample_validation_is_optimistic_and_out_of_bag_is_not(data_root):
    _write_results(data_root, vs_ce=0.0, vs_lr=0.0, p_ce=0.5, p_lr=[0.5] * 4, gap_in=0.04, gap_oob=0.0)
    r = _results()["stacking-leak"]
    assert r.verdict == "fails"
    p = paired_gaps(pd.read_csv(data_root / "results" / PRESET / "superlearner_gap.csv"))
    x = p["gap_in_sample"].to_numpy()
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    assert r.values["gap_in_sample"] == pytest.approx([x.mean(), x.mean() - half, x.mean() + half], abs=1e-6)
    assert set(r.values["authors_gap_by_dataset"]) == {"CIFAR10", "CIFAR100", "FashionMNIST"}


def test_stacking_leak_holds_when_neither_validation_is_optimistic(data_root):
    _write_results(data_root, vs_ce=0.0, vs_lr=0.0, p_ce=0.5, p_lr=[0.5] * 4, gap_in=0.0, gap_oob=0.0, seed=3)
    assert _results()["stacking-leak"].verdict == "holds"


def test_cache_claims_are_left_out_until_the_preset_is_analysed(data_root):
    assert audit.evaluate_all(preset=PRESET) == []
    with pytest.raises(ValueError, match=re.escape(f"dynloss analyze --preset {PRESET}")):
        audit.evaluate_all(["lr-confound"], preset=PRESET)


def test_audit_names_the_preset_it_read_or_looked_for(data_root, capsys, tmp_path_factory):
    assert cli.main(["audit", "--json", "--preset", "nosuch"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == []
    assert "no analysed results of preset 'nosuch'" in captured.err and "left out" in captured.err
    # tables written by hand are no results set (no provenance.json): refused, naming the file
    _write_results(data_root, vs_ce=0.03, vs_lr=0.0, p_ce=1e-6, p_lr=[0.5] * 4, gap_in=0.04, gap_oob=0.0)
    assert cli.main(["audit", "--json", "--preset", PRESET]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{data_root / 'results' / PRESET / 'provenance.json'}: missing" in err
    # a whole set made by `dynloss analyze`: its claims, naming the preset read
    shutil.rmtree(data_root / "results" / PRESET)
    shutil.copytree(digits_tiny_results(tmp_path_factory.getbasetemp() / "digits-tiny") / PRESET,
                    data_root / "results" / PRESET)
    capsys.readouterr()  # what training and analysing the set printed, the first time in a session
    assert cli.main(["audit", "--json", "--preset", PRESET]) == 0
    captured = capsys.readouterr()
    assert [o["id"] for o in json.loads(captured.out)] == ["lr-confound", "stacking-leak"]
    assert f"results of preset '{PRESET}'" in captured.err


def test_cache_claims_values_match_regression_baseline(data_root, data_regression):
    _write_results(data_root, vs_ce=0.03, vs_lr=0.0005, p_ce=1e-6, p_lr=[0.02, 0.3, 0.5, 0.9], gap_in=0.04,
                   gap_oob=0.01)
    res = _results()
    data_regression.check({i: res[i].to_dict() for i in ("lr-confound", "stacking-leak")})
