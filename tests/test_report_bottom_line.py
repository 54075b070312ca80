"""The bottom line of the first page: its numbers against independent pandas computations over the
results tables, the interval it names, the paper's metadata and the preset's scale."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from report_data import PRESET, digits_tiny_results

from analysis.report import bottom_line as bl
from training.presets import get_preset


def _table1(arms=("ce", "ce-lr0.01", "dyn-0.6", "dyn-0.9"), *, seed=0, extra: bool = False) -> pd.DataFrame:
    """A table1-like frame: accuracies per arm for two fusions, Δ against ce with an interval, and
    (``extra``) the control columns of the two-level bootstrap."""
    rng = np.random.default_rng(seed)
    rows = []
    for fusion in ("Average", "Vote"):
        acc = {a: 0.80 + 0.05 * rng.random() for a in arms}
        for a in arms:
            d = np.nan if a == "ce" else acc[a] - acc["ce"]
            row = {"dataset": "toy", "arm": a, "fusion": fusion, "accuracy": acc[a], "diff_vs_ce": d,
                   "diff_ci_low": d - 0.01, "diff_ci_high": d + 0.01}
            if extra:
                dc = np.nan if a == "ce-lr0.01" else acc[a] - acc["ce-lr0.01"]
                row.update(diff_vs_control=dc, control_ci_low=dc - 0.004, control_ci_high=dc + 0.004,
                           control_seed_ci_low=dc - 0.02, control_seed_ci_high=dc + 0.02)
            rows.append(row)
    return pd.DataFrame(rows)


def _bootstrap_ci(t1: pd.DataFrame) -> pd.DataFrame:
    """The ``quantity == diff`` rows against ce-lr0.01 that ``dynloss analyze`` writes, from ``t1``."""
    ctrl = t1[t1["arm"] == "ce-lr0.01"].set_index("fusion")["accuracy"]
    d = t1[t1["arm"] != "ce-lr0.01"].copy()
    d["estimate"] = d["accuracy"] - d["fusion"].map(ctrl)
    return pd.DataFrame({"dataset": d["dataset"], "arm": d["arm"], "fusion": d["fusion"], "quantity": "diff",
                         "reference": "ce-lr0.01", "estimate": d["estimate"], "ci_low": d["estimate"] - 0.003,
                         "ci_high": d["estimate"] + 0.003})


def test_lr_frame_falls_back_to_bootstrap_ci_and_says_the_interval_is_over_test_samples():
    t1 = _table1()
    frame = bl.lr_frame(t1, _bootstrap_ci(t1), fusion="Average")
    assert frame["arm"].tolist() == ["dyn-0.6", "dyn-0.9"]  # dynamic arms only
    avg = t1[t1["fusion"] == "Average"].set_index("arm")["accuracy"]
    np.testing.assert_allclose(frame["diff_vs_control"], [avg["dyn-0.6"] - avg["ce-lr0.01"],
                                                          avg["dyn-0.9"] - avg["ce-lr0.01"]])
    np.testing.assert_allclose(frame["diff_vs_ce"], [avg["dyn-0.6"] - avg["ce"], avg["dyn-0.9"] - avg["ce"]])
    np.testing.assert_allclose(frame["control_high"] - frame["control_low"], 0.006)
    assert set(frame["interval"]) == {bl.INTERVAL_SAMPLES}
    assert "over test samples only" in bl.lr_sentence(frame)


def test_lr_frame_prefers_the_two_level_interval_over_test_samples_and_training_seeds():
    t1 = _table1(extra=True)
    frame = bl.lr_frame(t1, _bootstrap_ci(t1))
    np.testing.assert_allclose(frame["control_high"] - frame["control_low"], 0.04)  # the seed interval's width
    assert set(frame["interval"]) == {bl.INTERVAL_SEEDS}
    assert "over test samples and training seeds" in bl.lr_sentence(frame)
    # without the seed interval the table1 interval over test samples is used, not bootstrap_ci's
    t1 = t1.drop(columns=["control_seed_ci_low", "control_seed_ci_high"])
    frame = bl.lr_frame(t1, _bootstrap_ci(t1))
    np.testing.assert_allclose(frame["control_high"] - frame["control_low"], 0.008)
    assert set(frame["interval"]) == {bl.INTERVAL_SAMPLES}


def test_lr_frame_without_a_control_difference_is_an_error_naming_the_arm():
    t1 = _table1()
    with pytest.raises(ValueError, match="toy/dyn-0.6/Average"):
        bl.lr_frame(t1, None)


def test_lr_sentence_counts_the_intervals_on_each_side_of_zero():
    frame = pd.DataFrame({"dataset": "toy", "arm": ["dyn-0.6", "dyn-0.7", "dyn-0.8"],
                          "diff_vs_control": [0.01, -0.01, 0.0], "control_low": [0.005, -0.02, -0.01],
                          "control_high": [0.02, -0.001, 0.01], "interval": bl.INTERVAL_SAMPLES,
                          "diff_vs_ce": [0.03, 0.02, 0.01], "ce_low": [0.01, 0.01, -0.01],
                          "ce_high": [0.05, 0.03, 0.03]})
    text = bl.lr_sentence(frame)
    assert "1 of their 95\u00a0% intervals (over test samples only) lie above 0 and 1 below" in text
    assert "2 of 3 intervals above 0 and 0 below" in text
    assert "+0.0100 to +0.0300" in text  # Δ against ce
    assert "comes with the learning rate" not in text  # no conclusion: an interval excludes 0


def test_scale_sentence_takes_its_numbers_from_the_presets():
    ours, paper = get_preset("fmnist-mini"), get_preset("paper")
    text = bl.scale_sentence("fmnist-mini")
    for p in (ours, paper):
        assert f"{p.model.label} base learners, {p.epochs} epochs, {p.members} members per arm" in text
    assert "WideResNet-16-8" in text and "MLP(128)" in text
    assert "trains the paper's setting" in bl.scale_sentence("paper")


def test_paper_metadata_names_authors_and_repository_and_no_invented_title(tmp_path):
    paper = bl.load_paper()
    assert paper["repository"] == "https://github.com/stfxecutables/dynamic_loss"
    assert "Berger" in paper["authors"]
    text = bl.paper_sentence(paper)
    assert "<https://github.com/stfxecutables/dynamic_loss>" in text
    assert paper.get("title") is None and "*" not in text.replace("**", "")  # no title printed
    bad = tmp_path / "paper.json"
    bad.write_text(json.dumps({"what": "x", "authors": "y"}))
    with pytest.raises(ValueError, match=r"paper\.json.*repository"):
        bl.load_paper(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        bl.load_paper(bad)


def test_verdicts_sentence_counts_and_names_the_failing_claims():
    claims = pd.DataFrame({"id": ["a", "b", "c", "d"], "verdict": ["holds", "fails", "fails", "conditional"]})
    text = bl.verdicts_sentence(claims)
    assert "4 claims audited: 1 hold, 2 fail, 1 conditional" in text
    assert "`b`, `c`" in text and "`a`" not in text


@pytest.mark.slow
def test_bottom_line_numbers_equal_pandas_over_the_digits_tiny_csvs(tmp_path_factory, monkeypatch):
    results = digits_tiny_results(tmp_path_factory.getbasetemp() / "digits-tiny")
    monkeypatch.setenv("DYNLOSS_RESULTS_DIR", str(results))
    monkeypatch.setenv("DYNLOSS_PRESET", PRESET)
    from analysis.report import claims
    from analysis.report.context import report_context

    ctx = report_context()  # what a page reads once
    t1 = pd.read_csv(results / PRESET / "table1.csv")
    ci = pd.read_csv(results / PRESET / "bootstrap_ci.csv")
    text = bl.bottom_line_markdown(ctx)
    # independent: Δ from table1's accuracies, intervals from bootstrap_ci's rows (or table1's own)
    avg = t1[t1["fusion"] == "Average"].set_index(["dataset", "arm"])["accuracy"]
    ctrl = ci[(ci["quantity"] == "diff") & (ci["reference"] == "ce-lr0.01") & (ci["fusion"] == "Average")]
    dyn = [a for a in t1["arm"].unique() if a.startswith("dyn-") and "-lr" not in a]  # the lr-0.01 arms
    assert dyn
    for dataset in t1["dataset"].unique():
        for arm in dyn:
            diff = avg[(dataset, arm)] - avg[(dataset, "ce-lr0.01")]
            row = ctrl[(ctrl["dataset"] == dataset) & (ctrl["arm"] == arm)].iloc[0]
            if "control_seed_ci_low" in t1.columns:
                r = t1[(t1["dataset"] == dataset) & (t1["arm"] == arm) & (t1["fusion"] == "Average")].iloc[0]
                low, high = r["control_seed_ci_low"], r["control_seed_ci_high"]
            else:
                low, high = row["ci_low"], row["ci_high"]
            assert f"`{arm}` {diff:+.4f} [{low:+.4f}, {high:+.4f}]" in text
        d_ce = avg.loc[dataset].loc[dyn] - avg[(dataset, "ce")]
        lo, hi = d_ce.min(), d_ce.max()
        assert (f"differ by {lo:+.4f} to {hi:+.4f}" if round(lo, 4) != round(hi, 4) else f"{lo:+.4f}") in text
    interval = bl.INTERVAL_SEEDS if "control_seed_ci_low" in t1.columns else bl.INTERVAL_SAMPLES
    assert f"intervals ({interval})" in text
    audit = claims.claims_frame(ctx)
    n = audit["verdict"].value_counts()
    assert (f"{len(audit)} claims audited: {n.get('holds', 0)} hold, {n.get('fails', 0)} fail, "
            f"{n.get('conditional', 0)} conditional") in text
    assert re.search(r"\*\*Scale\.\*\* Preset `digits-tiny`: MLP\(32\) base learners, 8 epochs, 3 members", text)


def test_the_gradient_finding_is_said_in_words_exactly_only_when_the_numbers_are():
    text = bl.gradient_sentence({"grad_ratio_below_min": 1.0, "grad_ratio_below_max": 1.0},
                                {"published": {"max_grad_l1": 0.0}})
    assert "gradient equals cross-entropy's: their ratio is exactly 1" in text
    assert "above τ it is exactly zero" in text and "not a factor" in text
    off = bl.gradient_sentence({"grad_ratio_below_min": 0.98, "grad_ratio_below_max": 1.0},
                               {"published": {"max_grad_l1": 0.25}})
    assert "exactly" not in off and "0.98 to 1" in off and "largest norm is 0.25, not zero" in off


def test_kind_sentence_names_the_claims_of_those_kinds_by_verdict():
    claims = pd.DataFrame({"id": ["a", "b", "c", "d"], "verdict": ["holds", "fails", "holds", "conditional"],
                           "kind": ["exact mathematics", "exact mathematics", "the authors' code", "proxy preset"]})
    assert bl.kind_sentence(claims, ("exact mathematics",)) == "hold: `a`; fail: `b`"
    assert bl.kind_sentence(claims, ("the authors' code", "proxy preset")) == "hold: `c`; conditional: `d`"
    assert bl.kind_sentence(claims, ("the authors' records",)) == ""
    assert "By kind of evidence: exact mathematics: 2; the authors' code: 1; proxy preset: 1." in (
        bl.verdicts_sentence(claims))


def test_the_bottom_line_leads_with_what_holds_exactly_then_the_authors_then_the_proxy(tmp_path, monkeypatch):
    from analysis.audit import PROXY, ClaimResult
    from analysis.report.context import ReportContext
    from training.paths import DataRoot

    def result(i, kind, verdict="holds", values=None):
        return ClaimResult(id=i, claim="c", verdict=verdict, evidence="e", kind=kind, overturn="o",
                           preset="fmnist-mini" if kind == PROXY else "", values=values or {})

    results = (
        result("scale-2.3", "exact mathematics", "fails", {"grad_ratio_below_min": 1.0, "grad_ratio_below_max": 1.0}),
        result("zero-above", "exact mathematics", "conditional", {"published": {"max_grad_l1": 0.0}}),
        result("table2-correlation", "the authors' records", "fails",
               {"cells_match_3dp": 12, "n_cells": 12, "encoding_none_value": -1.0}),
        result("protocol-lr", "the authors' code", "fails"),
        result("lr-confound", PROXY, "fails"),
    )
    ctx = ReportContext("fmnist-mini", DataRoot(tmp_path))
    ctx.memo["audit"] = (results, "")
    t1 = _table1(extra=True)
    monkeypatch.setattr(bl, "load_result", lambda name, c: {"table1": t1, "bootstrap_ci": _bootstrap_ci(t1)}[name])
    text = bl.bottom_line_markdown(ctx)
    order = [text.index(s) for s in (
        "**Paper.**", "**What holds exactly (exact mathematics, whatever is trained).** Below the threshold τ the "
        "published dynamic loss's gradient equals cross-entropy's: their ratio is exactly 1",
        "Claims decided so: fail: `scale-2.3`; conditional: `zero-above`.",
        "**What the authors' records and code show.** Claims decided from their records",
        "From their code (at the cited commit): fail: `protocol-lr`.", "  - **Paper Table 2.**",
        "**What proxy preset `fmnist-mini` shows.** Claims decided so: fail: `lr-confound`. A run at the paper's "
        "scale could overturn them.", "  - **Scale.**", "  - **Learning rate.**", "**Verdicts.**")]
    assert order == sorted(order)
    assert "5 claims audited: 0 hold, 4 fail, 1 conditional" in text
