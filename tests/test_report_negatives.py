"""The negatives in words (analysis.report.negatives) against pandas computations over result
CSVs: synthetic ``table1.csv``, ``calibration.csv`` and ``bootstrap_ci.csv`` written and read
back, each count and number of the sentences recomputed independently."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis.report import negatives
from training.arms import ARM_ORDER

FUSIONS = ["Average", "ProbAverage", "Vote", "Weighted", "Weighted-OOB", "MLP", "MLP-OOB"]
LEARNED = ["Weighted", "Weighted-OOB", "MLP", "MLP-OOB"]
DYNAMIC = ["dyn-0.6", "dyn-0.7", "dyn-0.8", "dyn-0.9"]
DATASETS = ["fashion-mnist", "digits"]


def _csv(df: pd.DataFrame, tmp_path, name: str) -> pd.DataFrame:
    path = tmp_path / f"{name}.csv"
    df.to_csv(path, index=False)
    return pd.read_csv(path)


def _table1(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for ds in DATASETS:
        for arm in [*ARM_ORDER, "focal", "dyn-0.7-lr0.1"]:
            for f in FUSIONS:
                if arm in ("focal", "dyn-0.7-lr0.1") and f in LEARNED:
                    continue  # arms without super-learners, as in the results
                rows.append({"dataset": ds, "arm": arm, "fusion": f, "accuracy": rng.uniform(0.80, 0.90)})
    t = pd.DataFrame(rows)
    # most learned fusions below Average, one cell above in one arm of the first dataset
    avg = t[t["fusion"] == "Average"].set_index(["dataset", "arm"])["accuracy"]
    learned = t["fusion"].isin(LEARNED)
    t.loc[learned, "accuracy"] = [avg[(d, a)] - rng.uniform(0.001, 0.05) for d, a in zip(t.loc[learned, "dataset"],
                                                                                       t.loc[learned, "arm"])]
    up = (t["dataset"] == "digits") & (t["arm"] == "dyn-0.7") & (t["fusion"] == "MLP-OOB")
    t.loc[up, "accuracy"] = avg[("digits", "dyn-0.7")] + 0.004
    return t


def test_learned_vs_average_equals_pandas_pivot_and_sentence_counts_cells_and_arms(tmp_path):
    t1 = _csv(_table1(np.random.default_rng(0)), tmp_path, "table1")
    got = negatives.learned_vs_average(t1)
    wide = t1[t1["arm"].isin(ARM_ORDER)].pivot(index=["dataset", "arm"], columns="fusion", values="accuracy")
    exp = wide[LEARNED].sub(wide["Average"], axis=0).stack().rename("exp").reset_index()
    m = got.merge(exp, on=["dataset", "arm", "fusion"], validate="1:1")
    assert len(m) == len(got) == len(exp) == 2 * 6 * 4
    np.testing.assert_allclose(m["diff"], m["exp"], atol=1e-12)
    text = negatives.learned_vs_average_sentence(got)
    for ds in DATASETS:
        e = exp[exp["dataset"] == ds]
        below = int((e["exp"] < 0).sum())
        all_below = int(e.groupby("arm")["exp"].apply(lambda d: (d < 0).all()).sum())
        every = "every arm" if all_below == 6 else f"{all_below} of 6 arms"
        assert f"On {ds}, {below} of {len(e)} (arm, learned fusion) cells score below plain Average" in text
        assert f"in {every} all learned fusions do" in text
        lo, hi = (f"{v:+.4f}".replace("-", "\u2212") for v in (e["exp"].min(), e["exp"].max()))
        assert f"differences {lo} to {hi}" in text
    assert "On digits, 23 of 24" in text and "5 of 6 arms" in text  # the one cell above Average


def _calibration(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for ds in DATASETS:
        for arm in [*ARM_ORDER, "focal"]:
            for f in ("Average", "Vote"):
                for member in (-1, 0):
                    for scaling in ("none", "temperature"):
                        rows.append({"dataset": ds, "arm": arm, "fusion": f, "member": member, "scaling": scaling,
                                     "ece": rng.uniform(0.005, 0.1), "nll": rng.uniform(0.3, 0.5),
                                     "brier": rng.uniform(0.15, 0.25)})
    return pd.DataFrame(rows)


def test_calibration_against_the_control_equals_pandas_and_the_sentence_counts_higher_ece(tmp_path):
    cal = _csv(_calibration(np.random.default_rng(1)), tmp_path, "calibration")
    got = negatives.calibration_vs_control(cal)
    sel = cal[(cal["fusion"] == "Average") & (cal["member"] == -1)]
    ref = sel[sel["arm"] == "ce-lr0.01"].set_index(["dataset", "scaling"])
    dyn = sel[sel["arm"].isin(DYNAMIC)]
    for metric in ("ece", "nll", "brier"):
        exp = dyn[metric].to_numpy() - ref.loc[list(zip(dyn["dataset"], dyn["scaling"])), metric].to_numpy()
        g = got[got["metric"] == metric].merge(dyn[["dataset", "scaling", "arm"]].assign(exp=exp),
                                               on=["dataset", "scaling", "arm"], validate="1:1")
        assert len(g) == len(dyn) == 2 * 2 * 4
        np.testing.assert_allclose(g["diff"], g["exp"], atol=1e-12)
    text = negatives.calibration_sentence(got)
    for ds in DATASETS:
        pre = dyn[(dyn["dataset"] == ds) & (dyn["scaling"] == "none")]
        r = ref.loc[(ds, "none")]
        n_ece = int((pre["ece"] > r["ece"]).sum())
        assert (f"On {ds}, before temperature scaling, {n_ece} of 4 dynamic arms have a higher ECE than "
                f"`ce-lr0.01` ({r['ece']:.4f})") in text
        for a in DYNAMIC:
            assert f"`{a}` {pre.loc[pre['arm'] == a, 'ece'].iloc[0]:.4f}" in text
        n_nll, n_brier = int((pre["nll"] > r["nll"]).sum()), int((pre["brier"] > r["brier"]).sum())
        post = dyn[(dyn["dataset"] == ds) & (dyn["scaling"] == "temperature")]
        n_post = int((post["ece"] > ref.loc[(ds, "temperature"), "ece"]).sum())
        assert (f"NLL higher in {n_nll} of 4; Brier score higher in {n_brier} of 4; after temperature scaling ECE "
                f"higher in {n_post} of 4") in text


def test_calibration_without_the_control_is_refused_naming_it():
    cal = _calibration(np.random.default_rng(2))
    with pytest.raises(ValueError, match="ce-lr0.01"):
        negatives.calibration_vs_control(cal[cal["arm"] != "ce-lr0.01"])


def _bootstrap_ci(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for ds in DATASETS:
        for arm in [*ARM_ORDER, "focal"]:
            for f in FUSIONS:
                rows.append({"dataset": ds, "arm": arm, "fusion": f, "quantity": "accuracy", "reference": np.nan,
                             "estimate": rng.uniform(0.8, 0.9), "ci_low": 0.0, "ci_high": 1.0})
                for ref in ("ce", "ce-lr0.01"):
                    if ref == arm:
                        continue
                    d = rng.normal(0, 0.01)
                    half = rng.uniform(0.002, 0.008)
                    rows.append({"dataset": ds, "arm": arm, "fusion": f, "quantity": "diff", "reference": ref,
                                 "estimate": d, "ci_low": d - half, "ci_high": d + half})
    return pd.DataFrame(rows)


def test_leak_free_fusions_against_the_control_equal_the_csv_rows_and_the_sentence_counts_sides(tmp_path):
    ci = _csv(_bootstrap_ci(np.random.default_rng(3)), tmp_path, "bootstrap_ci")
    got = negatives.leak_free_vs_control(ci)
    exp = ci[(ci["quantity"] == "diff") & (ci["reference"] == "ce-lr0.01") & ci["arm"].isin(DYNAMIC)
             & ci["fusion"].isin(["Weighted-OOB", "MLP-OOB"])]
    m = got.merge(exp, on=["dataset", "arm", "fusion"], validate="1:1")
    assert len(m) == len(got) == len(exp) == 2 * 4 * 2
    np.testing.assert_allclose(m["diff"], m["estimate"], atol=0)
    text = negatives.leak_free_sentence(got)
    for (ds, f), e in exp.groupby(["dataset", "fusion"]):
        below, above = int((e["ci_high"] < 0).sum()), int((e["ci_low"] > 0).sum())
        assert (f"On {ds}, leak-free {f} of the 4 dynamic arms minus {f} of `ce-lr0.01`: {below} of 4 intervals "
                f"below 0, {above} above") in text
        for r in e.itertuples():
            num = (f"{v:+.4f}".replace("-", "\u2212") for v in (r.estimate, r.ci_low, r.ci_high))
            assert "`{}` {} [{}, {}]".format(r.arm, *num) in text
    assert "over test samples only" in text
    assert not re.search(r"\bfocal\b|\bce\b`", text)


def test_sentences_are_empty_when_the_results_hold_no_such_cells():
    t1 = _table1(np.random.default_rng(4))
    assert negatives.learned_vs_average_sentence(negatives.learned_vs_average(t1[~t1["fusion"].isin(LEARNED)])) == ""
    ci = _bootstrap_ci(np.random.default_rng(5))
    assert negatives.leak_free_sentence(negatives.leak_free_vs_control(ci[ci["fusion"] == "Average"])) == ""


def test_calibration_note_says_so_when_the_preset_has_no_control(monkeypatch):
    from types import SimpleNamespace

    cal = _calibration(np.random.default_rng(6))
    monkeypatch.setattr(negatives, "load_result", lambda name, ctx: cal[cal["arm"] != "ce-lr0.01"])
    assert negatives.calibration_note(SimpleNamespace(preset="p")) == (
        "**Calibration.** Not compared: preset p has no `ce-lr0.01` arm.\n")
