"""The analyze pipeline end to end on a synthetic cache: regression baselines, independent checks,
the result schema, provenance and the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess

import numpy as np
import pandas as pd
import pytest
from synthetic import SyntheticSpec, write_synthetic_preset

from analysis.core.config import AnalysisConfig
from analysis.core.pipeline import analyze_preset
from analysis.core.tables import parse_arm
from analysis.core.reader import load_preset
from analysis.core.schema import RESULT_FILES

SPEC = SyntheticSpec(n_members=4, n_train=300, n_test=200, n_classes=5, seed=0)
FAST = AnalysisConfig(
    seed=0, n_resamples=10_000, superlearner_epochs=(("Weighted", 3), ("MLP", 2)), size_repeats=5,
)

REQUIRED = ("table1", "table2", "bootstrap_ci", "mcnemar", "calibration", "selective", "ensemble_size",
            "related_losses")


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    write_synthetic_preset(root, "syn", SPEC, nonfinite_members=(("digits", "dyn-0.8", 3),))
    out = tmp_path_factory.mktemp("results") / "syn"
    tables = analyze_preset("syn", root, out, config=FAST)
    return root, out, tables


def _round(df: pd.DataFrame, decimals: int = 6) -> pd.DataFrame:
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == bool:
            df[c] = df[c].astype(int)
        elif df[c].dtype.kind == "f":
            df[c] = df[c].round(decimals)
    return df.reset_index(drop=True)


def test_table1_matches_regression_baseline(analysed, dataframe_regression):
    t1 = analysed[2]["table1"]
    static = t1[t1["fusion"].isin(["Average", "ProbAverage", "Vote"])]
    assert (t1["cache_state"] == "complete").all()
    dataframe_regression.check(_round(static.drop(columns=["loss", "cache_state"])), default_tolerance=dict(atol=1e-9))


def test_table2_matches_regression_baseline(analysed, dataframe_regression):
    t2 = analysed[2]["table2"]
    t2 = t2[t2["fusion"].isin(["Average", "Vote"])]
    dataframe_regression.check(_round(t2.drop(columns=["arms"])), default_tolerance=dict(atol=1e-9))


def test_mcnemar_matches_regression_baseline(analysed, dataframe_regression):
    mc = analysed[2]["mcnemar"]
    mc = mc[mc["fusion"].isin(["Average", "Vote"])]
    dataframe_regression.check(_round(mc), default_tolerance=dict(atol=1e-9))


def test_holm_adjusted_mcnemar_p_values_follow_the_step_down_rule(analysed):
    """Holm by hand: sort the m p-values, multiply the i-th smallest by (m - i), running max, cap 1."""
    mc = analysed[2]["mcnemar"]
    for _, g in mc.groupby(["dataset", "reference", "fusion"]):
        p = g["pvalue"].to_numpy()
        order = np.argsort(p)
        adj = np.minimum(1.0, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
        expected = np.empty_like(adj)
        expected[order] = adj
        np.testing.assert_allclose(g["pvalue_holm"].to_numpy(), expected, rtol=1e-12)
        assert (g["pvalue_holm"] >= g["pvalue"]).all()


def test_mcnemar_counts_agree_with_table1_accuracies(analysed):
    mc = analysed[2]["mcnemar"]
    t1 = analysed[2]["table1"].set_index(["arm", "fusion"])
    for r in mc.itertuples():
        diff = t1.loc[(r.arm, r.fusion), "accuracy"] - t1.loc[(r.reference, r.fusion), "accuracy"]
        assert (r.n01 - r.n10) / SPEC.n_test == pytest.approx(diff)


def test_table1_accuracies_agree_with_an_independent_recomputation(analysed):
    root, _, tables = analysed
    t1 = tables["table1"].set_index(["arm", "fusion"])
    data = load_preset(root, "syn")
    for arm in ("ce", "dyn-0.8"):
        a = data.arms[("digits", arm)]
        # independent path: explicit loops over members and samples
        n = a.test_labels.size
        mean_logits = sum(a.test_logits[k].astype(np.float64) for k in range(a.n_members)) / a.n_members
        acc_avg = sum(int(np.argmax(mean_logits[i]) == a.test_labels[i]) for i in range(n)) / n
        assert t1.loc[(arm, "Average"), "accuracy"] == pytest.approx(acc_avg)
        votes = [np.bincount(a.test_logits[:, i].argmax(1), minlength=5) for i in range(n)]
        acc_vote_lower_bound = np.mean([v[a.test_labels[i]] == v.max() for i, v in enumerate(votes)])
        assert t1.loc[(arm, "Vote"), "accuracy"] <= acc_vote_lower_bound + 1e-12
    # the dropped member is excluded everywhere
    assert t1.loc[("dyn-0.8", "Average"), "n_members"] == 3
    assert len(tables["dropped_members"]) == 1


def test_every_accuracy_has_a_ci_containing_it_and_diffs_are_paired(analysed):
    t1 = analysed[2]["table1"]
    assert (t1["ci_low"] <= t1["accuracy"]).all() and (t1["accuracy"] <= t1["ci_high"]).all()
    ci = analysed[2]["bootstrap_ci"]
    diff = ci[(ci["quantity"] == "diff") & (ci["reference"] == "ce")]
    n_arms = t1["arm"].nunique()
    assert len(diff) == (n_arms - 1) * t1["fusion"].nunique()
    # paired differences are tighter than the sum of the unpaired standard errors
    acc = ci[ci["quantity"] == "accuracy"].set_index(["arm", "fusion"])["se"]
    for r in diff.itertuples():
        assert r.se < acc[(r.arm, r.fusion)] + acc[("ce", r.fusion)]
    assert set(ci["n_resamples"]) == {10_000}


def test_calibration_covers_every_fusion_and_single_members_with_temperature(analysed):
    cal = analysed[2]["calibration"]
    fusions = set(cal["fusion"])
    assert {"Average", "ProbAverage", "Vote", "Weighted", "MLP", "Weighted-OOB", "MLP-OOB", "Single"} <= fusions
    vote = cal[cal["fusion"] == "Vote"]
    assert set(vote["scaling"]) == {"none"} and set(vote["confidence_kind"]) == {"vote_fraction"}
    avg = cal[cal["fusion"] == "Average"]
    assert set(avg["scaling"]) == {"none", "temperature"}
    assert avg[avg["scaling"] == "temperature"]["temperature"].gt(0).all()
    rel = analysed[2]["reliability"]
    assert set(rel["binning"]) == {"width", "mass"}
    per = rel[(rel["fusion"] == "Average") & (rel["arm"] == "ce") & (rel["scaling"] == "none") & (rel["binning"] == "width")]
    assert per["count"].sum() == SPEC.n_test and len(per) == FAST.n_bins


def test_ensemble_size_curves_reach_the_full_ensemble(analysed):
    es = analysed[2]["ensemble_size"]
    t1 = analysed[2]["table1"].set_index(["arm", "fusion"])
    full = es[(es["arm"] == "ce") & (es["n_members"] == 4) & (es["fusion"] == "Average")].iloc[0]
    assert full["n_subsets"] == 1
    assert full["accuracy_mean"] == pytest.approx(t1.loc[("ce", "Average"), "accuracy"])
    assert (es["accuracy_q05"] <= es["accuracy_q95"]).all()


def test_every_written_csv_is_documented_column_by_column(analysed):
    _, out, tables = analysed
    for name in REQUIRED:
        assert (out / f"{name}.csv").is_file(), name
    for name, df in tables.items():
        assert name in RESULT_FILES, name
        assert list(df.columns) == list(RESULT_FILES[name]), name
        written = pd.read_csv(out / f"{name}.csv")
        assert list(written.columns) == list(RESULT_FILES[name]), name


def test_provenance_records_checksums_revision_seeds_and_versions(analysed):
    root, out, _ = analysed
    prov = json.loads((out / "provenance.json").read_text())
    assert len(prov["runs"]) == 6 * SPEC.n_members
    assert all(len(r["arrays_sha256"] or "") == 64 or not r["kept"] for r in prov["runs"])
    assert len(prov["cache_sha256"]) == 64
    assert re.fullmatch(r"unknown|[0-9a-f]{40}(\+dirty)?", prov["code_revision"])
    assert prov["seed"] == 0 and prov["config"]["n_resamples"] == 10_000
    assert {"numpy", "torch", "scipy"} <= set(prov["versions"])
    assert prov["dropped_members"][0]["member"] == 3


def test_analysis_is_reproducible_with_the_same_seed(tmp_path):
    write_synthetic_preset(tmp_path, "syn", SyntheticSpec(arms=(("ce", 1.5), ("dyn-0.7", 1.7)), n_members=3,
                                                         n_train=100, n_test=80, n_classes=3))
    cfg = AnalysisConfig(seed=1, n_resamples=500, superlearners=False, size_repeats=3)
    a = analyze_preset("syn", tmp_path, write=False, config=cfg)
    b = analyze_preset("syn", tmp_path, write=False, config=cfg)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])


def test_parse_arm_reads_threshold_and_learning_rate():
    assert parse_arm("dyn-0.9")["threshold"] == 0.9
    assert parse_arm("soft-0.7")["loss"] == "soft"
    assert parse_arm("ce-lr0.01")["lr_tag"] == "lr0.01" and np.isnan(parse_arm("ce")["threshold"])


def test_cli_writes_results_and_names_the_train_command_when_cache_is_missing(tmp_path, capsys):
    from analysis.cli import main

    assert main(["analyze", "--preset", "absent", "--cache", str(tmp_path)]) == 2
    assert "dynloss train --preset absent" in capsys.readouterr().err
    assert main(["analyze", "--preset", "absent", "--cache", str(tmp_path), "--resamples", "0"]) == 2
    assert "`n_resamples` >= 1, got 0 (--resamples)" in capsys.readouterr().err
    write_synthetic_preset(tmp_path, "small", SyntheticSpec(arms=(("ce", 1.5), ("dyn-0.7", 1.7)), n_members=2,
                                                           n_train=80, n_test=60, n_classes=3))
    out = tmp_path / "out"
    rc = main(["analyze", "--preset", "small", "--cache", str(tmp_path), "--out", str(out), "--resamples", "200",
               "--no-superlearners"])
    assert rc == 0
    assert (out / "provenance.json").is_file() and (out / "table1.csv").is_file()
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporary files
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "table1.csv").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


@pytest.mark.slow
def test_digits_tiny_results_match_regression_baseline(tmp_path_factory, dataframe_regression):
    """Real base learners: digits-tiny cut to 2 members × 2 epochs, trained here, then analysed."""
    from training.executors import train_preset
    from training.presets import get_preset, with_overrides

    root = tmp_path_factory.mktemp("digits-cache")
    preset = with_overrides(get_preset("digits-tiny"), members=2, epochs=2)
    train_preset(preset, cache_root=root, progress=False)
    # runs of a cut-down preset are stale for the registered digits-tiny: analysed as such, on purpose
    tables = analyze_preset("digits-tiny", root, write=False, config=AnalysisConfig(
        seed=0, n_resamples=10_000, superlearners=False, size_repeats=3, allow_stale=True))
    t1 = tables["table1"]
    assert (t1["cache_state"] == "stale (2 runs)").all()
    assert set(t1["arm"]) == {"ce", "ce-lr0.01", "dyn-0.6", "dyn-0.7", "dyn-0.8", "dyn-0.9", "dyn-0.6-lr0.1",
                              "dyn-0.7-lr0.1", "dyn-0.8-lr0.1", "dyn-0.9-lr0.1"}
    assert (t1["accuracy"] > 0.5).all()
    cols = ["dataset", "arm", "fusion", "n_members", "n_test", "accuracy", "ci_low", "ci_high", "diff_vs_ce",
            "diff_ci_low", "diff_ci_high"]
    dataframe_regression.check(_round(t1[cols]), default_tolerance=dict(atol=1e-9))


def test_calibration_and_selective_accuracy_equal_table1_for_every_fusion(analysed):
    t1 = analysed[2]["table1"].set_index(["arm", "fusion"])["accuracy"]
    for name in ("calibration", "selective"):
        df = analysed[2][name]
        ens = df[df["member"] == -1]
        for r in ens.itertuples():
            assert r.accuracy == pytest.approx(t1[(r.arm, r.fusion)]), (name, r.arm, r.fusion)


def test_table2_r_and_intervals_agree_with_numpy_on_table1_accuracies(analysed):
    import math

    t1 = analysed[2]["table1"]
    t2 = analysed[2]["table2"]
    for fusion in ("Average", "Vote", "MLP-OOB"):
        acc = t1[t1["fusion"] == fusion].set_index("arm")["accuracy"]
        dyn = sorted(a for a in acc.index if a.startswith("dyn-") and "-lr" not in a)  # Table 2: lr 0.01 only
        for label, ce_tau in (("published (ce=-1)", -1.0), ("ce-limit (ce=1.0)", 1.0), ("ce excluded", None)):
            arms = dyn if ce_tau is None else ["ce", *dyn]
            x = np.array([ce_tau if a == "ce" else float(a[4:]) for a in arms])
            y = acc[arms].to_numpy()
            r = np.corrcoef(x, y)[0, 1]
            row = t2[(t2["fusion"] == fusion) & (t2["encoding"] == label)].iloc[0]
            assert row["n"] == len(arms) and row["pearson_r"] == pytest.approx(r)
            half = 1.959963984540054 / math.sqrt(len(arms) - 3)
            assert row["pearson_ci_low"] == pytest.approx(math.tanh(math.atanh(r) - half))
            assert row["r_boot_ci_low"] <= row["r_boot_ci_high"]
            # training-seed interval on r: for the fusions re-fused on resampled members only
            if fusion == "MLP-OOB":
                assert np.isnan(row["r_seed_ci_low"]) and np.isnan(row["r_seed_ci_high"])
            else:
                assert row["r_seed_ci_low"] <= row["r_seed_ci_high"]


def test_temperature_is_never_fitted_on_the_samples_it_scores():
    from analysis.core.calibration import cross_fitted_temperature

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(400, 4))
    p_true = np.exp(logits / 2) / np.exp(logits / 2).sum(1, keepdims=True)
    labels = (p_true.cumsum(1) > rng.random((400, 1))).argmax(1)  # calibrated at T = 2
    probs, _ = cross_fitted_temperature(labels, logits, rng=np.random.default_rng(1))
    first = np.random.default_rng(1).permutation(400) < 200  # the halves the function draws
    for half in (first, ~first):
        changed = labels.copy()
        changed[half] = (changed[half] + 1) % 4  # other labels on this half only
        p2, _ = cross_fitted_temperature(changed, logits, rng=np.random.default_rng(1))
        # a sample's scaled probabilities depend only on the labels of the other half
        assert np.array_equal(p2[half], probs[half])
        assert not np.allclose(p2[~half], probs[~half])



def test_code_revision_flags_modified_tracked_files(tmp_path):
    from training.provenance import code_revision
    from analysis.report.context import short_revision

    assert code_revision(tmp_path) == "unknown"
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f.txt").write_text("a")
    subprocess.run(git + ["-C", str(tmp_path), "add", "f.txt"], check=True)
    subprocess.run(git + ["-C", str(tmp_path), "commit", "-qm", "c"], check=True)
    clean = code_revision(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", clean)
    (tmp_path / "f.txt").write_text("b")
    assert code_revision(tmp_path) == clean + "+dirty"
    assert short_revision(clean + "+dirty") == clean[:12] + "+dirty"
