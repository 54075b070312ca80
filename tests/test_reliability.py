"""The reliability comparison: the calibration and selective-prediction metrics on resamples
against scikit-learn and plain loops over materialised resamples, calibration_diff's intervals
against a loop over explicit copies, the verdict rule on hand-made tables, and the claim on an
analysed digits-tiny set."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from report_data import digits_tiny_results
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from synthetic import SyntheticSpec, synthetic_logits, write_synthetic_preset

from analysis import audit
from analysis.core import metrics as M
from analysis.core.config import S_REL, S_SEED, AnalysisConfig, hash_str
from analysis.core.fusions import FUSIONS as FUSION_RECORDS
from analysis.core.fusions import STATIC_FUSIONS
from analysis.core.metric_registry import METRICS, Scores
from analysis.core.pipeline import analyze_preset
from analysis.core.reader import load_preset
from analysis.core.reliability import (
    RELIABILITY_METRICS,
    refused_outputs,
    sample_terms,
    weighted_metrics,
)

PRESET = "digits-tiny"


# ----------------------------------------------------------------------------- plain oracles
def _ece_loop(conf: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """Equal-width top-label ECE by a loop over bins (the last bin holds 1.0)."""
    total = 0.0
    for k in range(n_bins):
        lo, hi = k / n_bins, (k + 1) / n_bins
        inside = (conf >= lo) & ((conf < hi) if k < n_bins - 1 else (conf <= hi))
        if inside.any():
            total += inside.sum() * abs(correct[inside].mean() - conf[inside].mean())
    return total / conf.size


def _aurc_loop(conf: np.ndarray, correct: np.ndarray) -> float:
    """Mean selective risk over coverages k/n, a tie group accepted whole (its members share the risk
    of accepting the group)."""
    n, risks = conf.size, []
    for i in range(n):
        kept = conf >= np.sort(conf)[::-1][i]  # the i-th largest confidence and every tie of it
        risks.append(1.0 - correct[kept].mean())
    return float(np.mean(risks))


def _oracle(labels: np.ndarray, probs: np.ndarray, preds: np.ndarray) -> dict[str, float]:
    conf = probs[np.arange(labels.size), preds]
    correct = preds == labels
    c = probs.shape[1]
    onehot = np.eye(c)[labels]
    return {"ece": _ece_loop(conf, correct), "nll": log_loss(labels, probs, labels=np.arange(c)),
            "brier": c * np.mean([brier_score_loss(onehot[:, k], probs[:, k]) for k in range(c)]),
            "auroc": roc_auc_score(correct, conf), "aurc": _aurc_loop(conf, correct)}


def _probs(rng, n=150, c=4, *, rounded=False):
    labels = rng.integers(0, c, n)
    probs = M.softmax(rng.normal(size=(n, c)) * 2 + 2 * np.eye(c)[labels])
    if rounded:  # ties in the confidence (and exact 0/1 bins edges)
        probs = np.round(probs * 5) / 5 + 1e-9
        probs /= probs.sum(axis=1, keepdims=True)
    return labels, probs


@pytest.mark.parametrize("rounded", [False, True])
def test_full_sample_metrics_equal_scikit_learn_loops_and_the_registry(rounded):
    rng = np.random.default_rng(0)
    labels, probs = _probs(rng, rounded=rounded)
    preds = probs.argmax(axis=1)
    ours = weighted_metrics(sample_terms(labels, probs, preds), np.ones((1, labels.size)))
    oracle = _oracle(labels, probs, preds)
    scores = Scores(labels, probs, preds)
    for k in RELIABILITY_METRICS:
        assert ours[k][0] == pytest.approx(oracle[k], abs=1e-12), k
        assert ours[k][0] == pytest.approx(METRICS[k].function(scores), abs=1e-12), k


@pytest.mark.parametrize("rounded", [False, True])
def test_resampled_metrics_equal_the_metrics_of_materialised_resamples(rounded):
    rng = np.random.default_rng(1)
    labels, probs = _probs(rng, rounded=rounded)
    preds = probs.argmax(axis=1)
    idx = rng.integers(0, labels.size, size=(12, labels.size))
    counts = np.stack([np.bincount(i, minlength=labels.size) for i in idx])
    ours = weighted_metrics(sample_terms(labels, probs, preds), counts)
    for b, i in enumerate(idx):
        oracle = _oracle(labels[i], probs[i], preds[i])
        for k in RELIABILITY_METRICS:
            assert ours[k][b] == pytest.approx(oracle[k], abs=1e-12), (k, b)


def test_per_resample_terms_give_what_shared_terms_give():
    rng = np.random.default_rng(2)
    labels, probs = _probs(rng, rounded=True)
    preds = probs.argmax(axis=1)
    counts = rng.integers(0, 3, size=(6, labels.size))
    shared = weighted_metrics(sample_terms(labels, probs, preds), counts)
    each = weighted_metrics(sample_terms(labels, np.broadcast_to(probs, (6, *probs.shape)),
                                         np.broadcast_to(preds, (6, labels.size))), counts)
    for k in RELIABILITY_METRICS:
        np.testing.assert_allclose(each[k], shared[k], rtol=0, atol=1e-12)


def test_auroc_is_nan_when_a_resample_holds_no_wrong_prediction():
    labels = np.array([0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.9, 0.1]])
    out = weighted_metrics(sample_terms(labels, probs, probs.argmax(1)), np.array([[1, 1, 0], [1, 1, 1]]))
    assert np.isnan(out["auroc"][0]) and out["auroc"][1] == pytest.approx(roc_auc_score([1, 1, 0], [0.9, 0.8, 0.9]))


@pytest.mark.parametrize("fusion", ["Average", "ProbAverage", "Vote"])
def test_refused_outputs_equal_fusing_explicit_copies_of_the_drawn_members(fusion):
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 80)
    logits = synthetic_logits(labels, 5, 4, 1.5, rng)
    draws = rng.integers(0, 5, size=(7, 5))
    counts = np.stack([np.bincount(d, minlength=5) for d in draws])
    probs, preds = refused_outputs(logits, fusion, counts)
    for b, d in enumerate(draws):
        p_ref, pr_ref = STATIC_FUSIONS[fusion](logits[d])[::-1]
        np.testing.assert_allclose(probs[b], p_ref, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(preds[b], pr_ref)


# ----------------------------------------------------------------------------- calibration_diff
ARMS = (("ce", 1.4), ("dyn-0.7", 1.8), ("ce-lr0.01", 1.6))
SPEC = SyntheticSpec(arms=ARMS, n_members=4, n_train=120, n_test=90, n_classes=4, seed=5)
B, B_SEED = 60, 20


def test_differences_and_both_intervals_equal_a_loop_over_materialised_resamples(tmp_path):
    """Resample b: the test samples of the S_REL stream's resample b (shared by the arms); the
    two-level draws also take each arm's members from its S_SEED stream, fuse explicit copies of
    them, and are centred (minus the mean difference to all members on the same samples)."""
    write_synthetic_preset(tmp_path, "syn", SPEC)
    cfg = AnalysisConfig(seed=2, superlearners=False, size_repeats=2, n_resamples=200, n_seed_resamples=0,
                         n_reliability_resamples=B, n_reliability_seed_resamples=B_SEED)
    diff = analyze_preset("syn", tmp_path, write=False, config=cfg)["calibration_diff"]
    # no tuning in this preset: the one reference is ce-lr0.01; every fusion but ProbAverage
    assert set(diff["arm"]) == {"dyn-0.7"} and set(diff["reference"]) == {"ce-lr0.01"}
    assert set(diff["fusion"]) == {"Average", "Vote"}
    data = load_preset(tmp_path, "syn")
    n, m = SPEC.n_test, SPEC.n_members
    idx = np.random.default_rng([2, S_REL, 0]).integers(0, n, size=(B, n))  # the first block of resamples
    for fusion in ("Average", "Vote"):
        test_only, seeded = {}, {}
        for arm, _ in ARMS:
            a = data.arms[("digits", arm)]
            fuse = STATIC_FUSIONS[fusion]
            preds, probs = fuse(a.test_logits)
            test_only[arm] = {k: np.array([_oracle(a.test_labels[i], probs[i], preds[i])[k] for i in idx])
                              for k in RELIABILITY_METRICS}
            draws = np.random.default_rng([2, S_SEED, 0, hash_str(arm)]).integers(0, m, size=(B_SEED, m))
            x = {k: [] for k in RELIABILITY_METRICS}
            for b in range(B_SEED):
                pr, p = fuse(a.test_logits[draws[b]])
                o = _oracle(a.test_labels[idx[b]], p[idx[b]], pr[idx[b]])
                for k in RELIABILITY_METRICS:
                    x[k].append(o[k])
            seeded[arm] = {k: np.array(v) - np.mean(np.array(v) - test_only[arm][k][:B_SEED]) for k, v in x.items()}
        for ref in ("ce-lr0.01",):
            for k in RELIABILITY_METRICS:
                row = diff[(diff["fusion"] == fusion) & (diff["reference"] == ref) & (diff["metric"] == k)].iloc[0]
                d = test_only["dyn-0.7"][k] - test_only[ref][k]
                assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(np.percentile(d, [2.5, 97.5])), abs=1e-9)
                s = seeded["dyn-0.7"][k] - seeded[ref][k]
                assert (row["seed_ci_low"], row["seed_ci_high"]) == pytest.approx(
                    tuple(np.percentile(s, [2.5, 97.5])), abs=1e-9), (fusion, ref, k)
                assert row["diff"] == pytest.approx(row["value"] - row["reference_value"], abs=1e-15)


def test_differences_equal_the_calibration_and_selective_tables(tmp_path):
    write_synthetic_preset(tmp_path, "syn", SPEC)
    cfg = AnalysisConfig(seed=2, superlearners=False, size_repeats=2, n_resamples=200, n_seed_resamples=0,
                         n_reliability_resamples=20, n_reliability_seed_resamples=0)
    t = analyze_preset("syn", tmp_path, write=False, config=cfg)
    diff = t["calibration_diff"]
    assert diff["seed_ci_low"].isna().all()  # no two-level resamples asked for
    cal = t["calibration"][(t["calibration"]["scaling"] == "none") & (t["calibration"]["member"] == -1)]
    sel = t["selective"][t["selective"]["member"] == -1]
    for r in diff.itertuples():
        src = sel if r.metric in ("auroc", "aurc") else cal
        v = src.set_index(["arm", "fusion"])[r.metric]
        assert r.value == pytest.approx(v[(r.arm, r.fusion)], abs=1e-12)
        assert r.reference_value == pytest.approx(v[(r.reference, r.fusion)], abs=1e-12)


# ----------------------------------------------------------------------------- the verdict rule
def _diff_rows(outcomes: dict[tuple[str, str], str], *, reference: str = "ce-lr0.01", seeded: bool = True):
    """calibration_diff rows of dyn-0.7 against ``reference``: per (fusion, metric) an interval on the
    better side, the worse side or across 0 (by construction)."""
    rows = []
    for (fusion, metric), o in outcomes.items():
        higher = METRICS[metric].direction == "higher"
        gain = {"better": 0.02, "worse": -0.02, "n.s.": 0.0}[o]
        d = gain if higher else -gain
        lo, hi = d - 0.01, d + 0.01
        rows.append({"dataset": "digits", "arm": "dyn-0.7", "reference": reference, "fusion": fusion,
                     "metric": metric, "direction": METRICS[metric].direction, "confidence_kind": "max_prob",
                     "value": 0.5 + d, "reference_value": 0.5, "diff": d, "ci_low": lo, "ci_high": hi,
                     "seed_ci_low": lo if seeded and fusion in SEEDED else np.nan,
                     "seed_ci_high": hi if seeded and fusion in SEEDED else np.nan,
                     "confidence_level": 0.95, "n_resamples": 100, "n_seed_resamples": 50})
    return rows


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNLOSS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DYNLOSS_RESULTS_DIR", raising=False)
    monkeypatch.delenv("DYNLOSS_PRESET", raising=False)
    monkeypatch.setattr(audit, "CLAIM_MODULES", ("analysis.audit.reliability_claims",))
    (tmp_path / "results" / PRESET).mkdir(parents=True)
    return tmp_path


def _verdict(root, rows, tuning=None):
    folder = root / "results" / PRESET
    pd.DataFrame(rows).to_csv(folder / "calibration_diff.csv", index=False)
    if tuning is not None:
        tuning.to_csv(folder / "lr_tuning.csv", index=False)
    (r,) = audit.evaluate_all(preset=PRESET)
    assert r.id == "reliability" and r.source == "our caches"
    return r


FUSIONS = ("Average", "Vote", "Weighted", "MLP")
SEEDED = ("Average", "ProbAverage", "Vote")  # the fusions with a two-level interval


def _every(outcome: str) -> dict:
    return {(f, k): outcome for f in FUSIONS for k in RELIABILITY_METRICS}


def test_better_in_every_cell_holds_and_worse_everywhere_fails(data_root):
    assert _verdict(data_root, _diff_rows(_every("better"))).verdict == "holds"
    assert _verdict(data_root, _diff_rows(_every("worse"))).verdict == "fails"
    assert _verdict(data_root, _diff_rows(_every("n.s."))).verdict == "fails"  # never better


def test_more_worse_cells_than_better_ones_fail_even_with_some_better(data_root):
    cells = _every("n.s.")
    cells.update({("Average", "ece"): "better", ("Average", "brier"): "worse", ("Vote", "brier"): "worse"})
    r = _verdict(data_root, _diff_rows(cells))
    assert (r.values["n_better"], r.values["n_worse"], r.verdict) == (1, 2, "fails")
    cells[("MLP", "aurc")] = "better"  # as many better as worse: conditional
    assert _verdict(data_root, _diff_rows(cells)).verdict == "conditional"


def test_one_worse_cell_among_better_ones_makes_it_conditional(data_root):
    cells = _every("better")
    cells[("Average", "ece")] = "worse"
    r = _verdict(data_root, _diff_rows(cells))
    assert r.verdict == "conditional"
    # Vote's NLL (of vote fractions) is not counted: 4 fusions × 5 metrics − 1
    assert r.values["n_cells"] == 19 and r.values["n_better"] == 18 and r.values["n_worse"] == 1
    assert r.values["per_metric"]["ece"] == {"n_cells": 4, "n_better": 3, "n_worse": 1, "n_ns": 0,
                                             "mean_gain": pytest.approx(0.01)}


def test_the_nll_of_vote_fractions_and_fusions_outside_the_paper_are_not_counted(data_root):
    cells = _every("better")
    cells[("Vote", "nll")] = "worse"
    cells[("MLP-OOB", "ece")] = "worse"
    r = _verdict(data_root, _diff_rows(cells))
    assert r.verdict == "holds" and r.values["n_worse"] == 0


def test_the_two_level_interval_decides_where_there_is_one(data_root):
    rows = _diff_rows(_every("better"))
    for r in rows:  # the test-only interval is clear of 0, the two-level one is not
        if r["fusion"] in ("Average", "Vote"):
            r["seed_ci_low"], r["seed_ci_high"] = -abs(r["diff"]), abs(r["diff"])
    r = _verdict(data_root, rows)
    assert r.values["n_better"] == 10 and r.values["n_ns"] == 9 and r.values["n_worse"] == 0
    assert r.values["intervals"] == {"two-level": 9, "test-only": 10}
    assert r.verdict == "holds"  # 10 of 19 is at least half
    rows[-1]["ci_low"], rows[-1]["ci_high"] = -0.05, 0.05  # one learned cell less: 9 of 19
    assert _verdict(data_root, rows).verdict == "conditional"


def test_the_tuned_cross_entropy_arm_is_a_reference_beside_the_control(data_root):
    from training.arms import LR_GRID, at_lr

    tuning = pd.DataFrame([{"dataset": "digits", "base_arm": b, "lr": lr, "arm": at_lr(b, lr), "members": 2,
                            "held_out_accuracy": 0.8, "held_out_sd": 0.01, "held_out_rows": 60,
                            "chosen": float(lr == chosen)} for b, chosen in (("ce", 0.001), ("dyn-0.7", 0.01))
                           for lr in LR_GRID])
    rows = _diff_rows(_every("better")) + _diff_rows(_every("worse"), reference="ce-lr0.001") \
        + _diff_rows(_every("worse"), reference="ce")  # ce (lr 0.1) is neither: not counted
    r = _verdict(data_root, rows, tuning)
    assert r.values["tuned_reference"] == {"digits": "ce-lr0.001"}
    assert r.values["per_reference"]["control"]["n_better"] == 19
    assert r.values["per_reference"]["tuned"]["n_worse"] == 19
    assert r.verdict == "conditional"  # better than one reference as often as worse than the other
    assert "ce-lr0.001" in r.evidence


def test_the_claim_quotes_the_paper():
    from analysis.audit.reliability_claims import evaluate_reliability

    assert "more indicative of classifier prediction reliability" in evaluate_reliability.spec.claim


# ----------------------------------------------------------------------------- on an analysed set
def test_the_claim_on_analysed_digits_tiny_counts_the_cells_of_its_table(data_root, tmp_path_factory):
    from analysis.audit.reliability_claims import cell_outcomes

    shutil.rmtree(data_root / "results" / PRESET)
    shutil.copytree(digits_tiny_results(tmp_path_factory.getbasetemp() / "digits-tiny") / PRESET,
                    data_root / "results" / PRESET)
    diff = pd.read_csv(data_root / "results" / PRESET / "calibration_diff.csv")
    assert set(diff["metric"]) == set(RELIABILITY_METRICS)
    assert {"dyn-0.6", "dyn-0.7", "dyn-0.8", "dyn-0.9"} <= set(diff["arm"])
    tuning = pd.read_csv(data_root / "results" / PRESET / "lr_tuning.csv")
    tuned = tuning[(tuning["base_arm"] == "ce") & (tuning["chosen"] == 1)]["arm"].tolist()
    assert set(diff["reference"]) == {"ce-lr0.01", *tuned}
    learned = diff["fusion"].map(lambda f: FUSION_RECORDS[f].learned)
    assert diff.loc[~learned, "seed_ci_low"].notna().all() and diff.loc[learned, "seed_ci_low"].isna().all()
    assert learned.any()
    (r,) = audit.evaluate_all(preset=PRESET)
    # recount by hand: against ce-lr0.01 and the chosen cross-entropy arm of lr_tuning.csv, the
    # paper's fusions, no NLL of vote fractions
    assert len(tuned) == 1 and r.values["tuned_reference"] == {"digits": tuned[0]}
    sel = diff[diff["reference"].isin({"ce-lr0.01", *tuned}) & diff["fusion"].isin(FUSIONS)
               & ~((diff["fusion"] == "Vote") & (diff["metric"] == "nll"))]
    c = cell_outcomes(sel)
    assert r.values["n_cells"] == len(c) == len(r.values["cells"])
    assert r.values["n_better"] == int((c["outcome"] == "better").sum())
    assert r.values["n_worse"] == int((c["outcome"] == "worse").sum())
    from analysis.audit.reliability_claims import reliability_verdict

    assert r.verdict == reliability_verdict(len(c), r.values["n_better"], r.values["n_worse"])


def test_the_page_table_shows_each_difference_over_the_interval_that_decides_it(data_root, tmp_path_factory):
    from analysis.audit.reliability_claims import cell_outcomes
    from analysis.report.calibration import reliability_diff_table
    from analysis.report.context import report_context

    shutil.rmtree(data_root / "results" / PRESET)
    shutil.copytree(digits_tiny_results(tmp_path_factory.getbasetemp() / "digits-tiny") / PRESET,
                    data_root / "results" / PRESET)
    diff = cell_outcomes(pd.read_csv(data_root / "results" / PRESET / "calibration_diff.csv"))
    ctx = report_context({"DYNLOSS_DATA_DIR": str(data_root)}, preset=PRESET)
    table = reliability_diff_table(ctx, table="selective", fusions=("Average", "Weighted-OOB")).frame
    assert list(table.columns[-2:]) == ["Δ AUROC", "Δ AURC"]
    shown = diff[diff["fusion"].isin(["Average", "Weighted-OOB"]) & (diff["metric"] == "auroc")]
    assert len(table) == len(shown)
    assert set(table["interval"]) == {"two-level", "test-only"}
    for r in shown.itertuples():
        ref = table["reference"].str.split(" ").str[0] == r.reference  # "ce (tuned)", "ce-lr0.01"
        cells = table.loc[(table["arm"] == r.arm) & ref & (table["fusion"] == r.fusion), "Δ AUROC"]
        assert len(cells) == 1, (r, table.to_string())
        (cell,) = cells
        text = cell.replace("−", "-").replace("±", "+")
        assert f"{r.diff:+.4f}" in text and f"[{r.low:+.4f}, {r.high:+.4f}]" in text
        assert text.startswith("**") == (r.outcome != "n.s.")
