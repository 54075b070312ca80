"""Frames, interpretation sentences and figures of the tables, calibration and loss-audit pages:
shaped frames checked against independent pandas computations, sentences on constructed inputs,
figures built on constructed frames and (slow) on digits-tiny results."""

from __future__ import annotations

import itertools

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from analysis.audit.published import load_published_table1
from analysis.report import calibration, calibration_figures, claims, figures, frames, table1
from training.arms import ARM_ORDER

FUSIONS = ["Average", "Vote", "Weighted", "MLP", "Weighted-OOB"]


def _table1(seed: int = 0, arms=(*ARM_ORDER, "focal"), datasets=("fashion-mnist",)) -> pd.DataFrame:
    """A table1 with random accuracies, consistent differences and intervals around them."""
    rng = np.random.default_rng(seed)
    rows = []
    for ds in datasets:
        acc = {(a, f): rng.uniform(0.8, 0.9) for a in arms for f in FUSIONS}
        for a, f in itertools.product(arms, FUSIONS):
            d_ce = np.nan if a == "ce" else acc[(a, f)] - acc[("ce", f)]
            d_co = np.nan if a == "ce-lr0.01" else acc[(a, f)] - acc[("ce-lr0.01", f)]
            rows.append({"dataset": ds, "arm": a, "fusion": f, "accuracy": acc[(a, f)],
                         "ci_low": acc[(a, f)] - 0.01, "ci_high": acc[(a, f)] + 0.01,
                         "diff_vs_ce": d_ce, "diff_ci_low": d_ce - 0.005, "diff_ci_high": d_ce + 0.005,
                         "_d_co": d_co})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _bootstrap_ci(t1: pd.DataFrame) -> pd.DataFrame:
    d = t1.dropna(subset=["_d_co"])
    return pd.DataFrame({"dataset": d["dataset"], "arm": d["arm"], "fusion": d["fusion"], "quantity": "diff",
                         "reference": "ce-lr0.01", "estimate": d["_d_co"], "ci_low": d["_d_co"] - 0.004,
                         "ci_high": d["_d_co"] + 0.004})


# ------------------------------------------------------------------ tables page
def test_the_grid_has_one_row_per_paper_arm_and_the_accuracy_of_each_fusion_in_its_column():
    t1 = _table1()
    grid = table1.accuracy_grid(t1)
    assert grid["arm"].tolist() == list(ARM_ORDER)  # focal left out, ARM_ORDER kept
    assert [c for c in grid.columns if c != "arm"] == [f for f in frames.FUSION_ORDER if f in FUSIONS]
    lookup = {(r.arm, r.fusion): r.accuracy for r in t1.itertuples()}
    for arm, f in itertools.product(ARM_ORDER, FUSIONS):
        assert grid.loc[grid["arm"] == arm, f].item() == lookup[(arm, f)]


def test_differences_to_both_cross_entropy_arms_equal_accuracy_differences_computed_from_table1():
    t1 = _table1(seed=1)
    out = table1.differences(t1.drop(columns="_d_co"), _bootstrap_ci(t1))
    wide = t1[t1["arm"].isin(ARM_ORDER)].pivot(index="fusion", columns="arm", values="accuracy")
    expected = []
    for f, a in itertools.product(wide.index, ARM_ORDER):
        if a != "ce-lr0.01":
            expected.append((f, a, wide.loc[f, a] - wide.loc[f, "ce-lr0.01"],
                             np.nan if a == "ce" else wide.loc[f, a] - wide.loc[f, "ce"]))
    exp = pd.DataFrame(expected, columns=["fusion", "arm", "co", "ce"])
    assert "dataset" not in out.columns  # one dataset: named in the prose instead
    got = out.merge(exp, on=["fusion", "arm"], validate="1:1")
    assert len(got) == len(exp) == len(out)
    np.testing.assert_allclose(got["Δ vs ce-lr0.01"], got["co"], atol=1e-12)
    np.testing.assert_allclose(got["Δ vs ce"], got["ce"], atol=1e-12)
    lo = got["CI vs ce-lr0.01 (test samples)"].str.extract(r"\[(-?[\d.]+),\s").astype(float)[0]
    np.testing.assert_allclose(lo, (got["co"] - 0.004).round(4), atol=5e-5)
    assert "CI vs ce (seeds + test samples)" not in out.columns


def test_differences_prefer_table1_control_columns_and_show_seed_intervals_when_present():
    t1 = _table1(seed=2)
    t1 = t1.assign(diff_vs_control=t1["_d_co"], control_ci_low=t1["_d_co"] - 0.002,
                   control_ci_high=t1["_d_co"] + 0.002, diff_seed_ci_low=t1["diff_vs_ce"] - 0.02,
                   diff_seed_ci_high=t1["diff_vs_ce"] + 0.02, control_seed_ci_low=t1["_d_co"] - 0.03,
                   control_seed_ci_high=t1["_d_co"] + 0.03)
    out = table1.differences(t1, ci=None)
    assert {"CI vs ce (seeds + test samples)", "CI vs ce-lr0.01 (seeds + test samples)"} <= set(out.columns)
    r = out[(out["arm"] == "dyn-0.7") & (out["fusion"] == "Vote")].iloc[0]
    src = t1[(t1["arm"] == "dyn-0.7") & (t1["fusion"] == "Vote")].iloc[0]
    assert r["CI vs ce-lr0.01 (test samples)"] == f"[{src._d_co - 0.002:.4f},\u00a0{src._d_co + 0.002:.4f}]"
    assert r["CI vs ce (seeds + test samples)"] == f"[{src.diff_vs_ce - 0.02:.4f},\u00a0{src.diff_vs_ce + 0.02:.4f}]"


def test_published_differences_are_each_dynamic_row_minus_its_none_row():
    pub = load_published_table1()
    got = table1.published_differences(pub)
    wide = pub.pivot_table(index=["dataset", "fusion"], columns="threshold", values="accuracy")
    for tau in ("0.6", "0.7", "0.8", "0.9"):
        exp = (wide[tau] - wide["None"]).rename("exp").reset_index()
        m = got[got["τ"] == float(tau)].merge(exp, on=["dataset", "fusion"], validate="1:1")
        assert len(m) == len(exp) == 12
        np.testing.assert_allclose(m["Δ"], m["exp"], atol=1e-12)


def test_delta_comparison_sets_each_source_against_its_own_cross_entropy():
    t1 = _table1(seed=3, datasets=("fashion-mnist", "digits"))
    out = table1.delta_comparison(t1.drop(columns="_d_co"), load_published_table1(), _bootstrap_ci(t1))
    assert set(out["fusion"]) == {"Average", "Vote", "Weighted", "MLP"} and len(out) == 2 * 4 * 4
    pub = load_published_table1().set_index(["dataset", "fusion", "threshold"])["accuracy"]
    assert "dataset" in out.columns  # two datasets: kept
    fm = out[out["dataset"] == "fashion-mnist"]
    for r in fm.itertuples(index=False):
        exp = pub[("FashionMNIST", r.fusion, r.τ)] - pub[("FashionMNIST", r.fusion, "None")]
        assert r[3] == pytest.approx(exp, abs=1e-12)
    assert out.loc[out["dataset"] == "digits", "paper Δ vs None"].isna().all()
    acc = t1.set_index(["dataset", "arm", "fusion"])["accuracy"]
    for r in out.itertuples(index=False):
        arm = f"dyn-{r.τ}"
        assert r[4] == pytest.approx(acc[(r.dataset, arm, r.fusion)] - acc[(r.dataset, "ce", r.fusion)])
        assert r[6] == pytest.approx(acc[(r.dataset, arm, r.fusion)] - acc[(r.dataset, "ce-lr0.01", r.fusion)])


def test_threshold_points_give_cross_entropy_arms_no_tau_and_leave_other_arms_out():
    pts = table1.threshold_points(_table1(seed=4), ("Vote", "Average"))
    assert set(pts["arm"]) == set(ARM_ORDER)
    assert pts.loc[pts["arm"].isin(["ce", "ce-lr0.01"]), "tau"].isna().all()
    assert pts.set_index(["fusion", "arm"]).loc[("Vote", "dyn-0.8"), "tau"] == 0.8
    assert list(dict.fromkeys(pts["fusion"])) == ["Vote", "Average"]


def test_accuracy_figure_draws_cross_entropy_as_bands_and_dynamic_arms_as_unjoined_points():
    fig = figures.accuracy_vs_threshold_figure(table1.threshold_points(_table1(seed=5), ("Average", "Vote")))
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["Average", "Vote"]
    for ax in axes:
        assert len(ax.patches) == 2  # one CI band per cross-entropy arm
        joined = [ln for ln in ax.get_lines() if ln.get_linestyle() != "None" and len(set(np.ravel(ln.get_ydata()))) > 1]
        assert not joined, "a line joins arms at different accuracies"
        points = [ln for ln in ax.get_lines() if ln.get_linestyle() == "None" and ln.get_marker() not in ("", "None", "_")]
        assert sorted(float(ln.get_xdata()[0]) for ln in points) == [0.6, 0.7, 0.8, 0.9]


# ------------------------------------------------------------------ calibration page
def test_sparse_bins_are_those_under_the_larger_of_the_count_and_the_share_rules():
    rel = pd.DataFrame({"dataset": "d", "arm": "ce", "fusion": "Average", "scaling": "none",
                        "count": [10, 29, 30, 49, 50, 9832]})
    got = calibration.mark_sparse_bins(rel)  # n = 10000 → max(30, 50) = 50
    assert got["sparse"].tolist() == [True, True, True, True, False, False]
    small = rel.assign(count=[10, 29, 30, 31, 100, 200])  # n = 400 → max(30, 2) = 30
    assert calibration.mark_sparse_bins(small)["sparse"].tolist() == [True, True, False, False, False, False]


def test_difference_to_reference_matches_a_pivot():
    rng = np.random.default_rng(6)
    df = pd.DataFrame([(ds, a, k, rng.random()) for ds in ("a", "b") for a in ARM_ORDER for k in range(5)],
                      columns=["dataset", "arm", "n_members", "accuracy"])
    got = calibration.difference_to_reference(df, on=("dataset", "n_members"), value="accuracy")
    wide = df.pivot_table(index=["dataset", "n_members"], columns="arm", values="accuracy")
    exp = wide.sub(wide["ce-lr0.01"], axis=0).drop(columns="ce-lr0.01").stack().rename("exp").reset_index()
    m = got.merge(exp, on=["dataset", "n_members", "arm"], validate="1:1")
    assert len(m) == len(exp) == len(got)
    np.testing.assert_allclose(m["difference"], m["exp"])
    with pytest.raises(ValueError, match="reference arm 'ce-lr0.01'"):
        calibration.difference_to_reference(df[df["arm"] != "ce-lr0.01"], on=("dataset", "n_members"),
                                            value="accuracy")


def test_reliability_gaps_are_count_weighted_means():
    rel = pd.DataFrame({"dataset": "d", "arm": "ce", "scaling": "none", "count": [0, 100, 300],
                        "confidence": [np.nan, 0.5, 0.9], "accuracy": [np.nan, 0.4, 0.8]})
    g = calibration.reliability_gaps(rel).iloc[0]
    assert g["confidence"] == pytest.approx(0.8) and g["accuracy"] == pytest.approx(0.7)
    assert g["gap"] == pytest.approx(0.1)


def _summary(gap_ce, gap_dyn, t_ce, t_dyn, auroc_dyn=0.90, aurc_dyn=0.020):
    return pd.DataFrame({"dataset": "d", "arm": ["ce-lr0.01", "dyn-0.7"], "gap": [gap_ce, gap_dyn],
                         "temperature": [t_ce, t_dyn], "auroc": [0.89, auroc_dyn], "aurc": [0.021, aurc_dyn]})


def test_interpretation_calls_positive_gaps_over_confident_and_negative_under_confident():
    text = calibration.interpretation(_summary(0.03, -0.08, 1.25, 0.70))
    gap_line, t_line, sel_line = text.strip().split("\n")
    assert "(**over-confident**) for ce-lr0.01 (+0.030)" in gap_line
    assert "(**under-confident**) for dyn-0.7 (−0.080)" in gap_line
    assert "above 1" in t_line and "ce-lr0.01 (T = 1.25)" in t_line.split("below")[0]
    assert "dyn-0.7 (T = 0.70)" in t_line.split("below")[1]
    assert "in line with the sign of the gap for 2 of the 2 arms" in t_line
    assert "dyn-0.7 (AUROC +0.010, AURC −0.0010)" in sel_line
    assert "AUROC is higher for 1 of 1 dynamic arms and AURC lower (better) for 1 of 1" in sel_line


def test_interpretation_reports_disagreement_small_gaps_and_worse_selective_scores():
    text = calibration.interpretation(_summary(-0.02, 0.001, 1.10, 1.01, auroc_dyn=0.85, aurc_dyn=0.03))
    gap_line, t_line, sel_line = text.strip().split("\n")
    assert "over-confident" not in gap_line and "under-confident**) for ce-lr0.01 (−0.020)" in gap_line
    assert "agree within ±0.005 for dyn-0.7" in gap_line
    assert "within 0.02 of 1 for dyn-0.7" in t_line and "for 0 of the 1 arms" in t_line
    assert "AUROC is higher for 0 of 1" in sel_line and "AURC lower (better) for 0 of 1" in sel_line


def test_interpretation_names_each_dataset_and_rejects_missing_columns():
    two = pd.concat([_summary(0.03, -0.08, 1.2, 0.7), _summary(0.03, -0.08, 1.2, 0.7).assign(dataset="e")])
    text = calibration.interpretation(two)
    assert text.count("**d**:") == 3 and text.count("**e**:") == 3
    with pytest.raises(ValueError, match="'aurc'"):
        calibration.interpretation(two.drop(columns="aurc"))


def _rel_frame():
    rows = []
    for arm, scaling, b in itertools.product(ARM_ORDER, ("none", "temperature"), range(5)):
        conf = 0.3 + 0.15 * b
        rows.append({"dataset": "d", "arm": arm, "fusion": "Average", "scaling": scaling, "bin": b,
                     "confidence": conf, "accuracy": conf - 0.05 + 0.02 * b, "count": [5, 100, 200, 300, 2000][b]})
    return calibration.mark_sparse_bins(pd.DataFrame(rows))


def test_reliability_figure_greys_sparse_bins_without_joining_them():
    fig = calibration_figures.reliability_figure(_rel_frame())
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == list(ARM_ORDER)
    for ax in axes:
        curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]
        assert len(curves) == 2 and all(len(ln.get_xdata()) == 4 for ln in curves)  # the 5-sample bin left out
        grey = [c for c in ax.collections if len(c.get_offsets())]
        assert len(grey) == 2 and all(len(c.get_offsets()) == 1 for c in grey)


# ------------------------------------------------------------------ loss-audit page
def test_emphasis_ratio_is_one_below_tau_and_a_tenth_or_zero_above():
    curves = claims.emphasis_curves_frame(threshold=0.7, n_points=101)
    ratio = frames.emphasis_ratio_frame(curves).set_index(["curve", "p_t"])["ratio"]
    below = ratio[ratio.index.get_level_values("p_t") < 0.69]
    above = ratio[ratio.index.get_level_values("p_t") > 0.71]
    assert np.allclose(below, 1.0, atol=1e-5)
    assert np.allclose(above.loc["dynamic, soft"], 0.1, atol=1e-5)
    assert np.allclose(above.loc["dynamic, published (PyTorch)"], 0.0)
    keras = above.loc["dynamic, Keras original"]
    assert keras.between(0.06, 0.1 + 1e-6).all()


# ------------------------------------------------------------------ one look for every figure
def test_every_paper_arm_has_its_own_colour_marker_and_line_style():
    styles = [figures.arm_style(a) for a in ARM_ORDER]
    assert len({mcolors.to_hex(s.color) for s in styles}) == len(ARM_ORDER)
    assert len({s.marker for s in styles}) == len(ARM_ORDER)
    assert len({str(s.linestyle) for s in styles}) == len(ARM_ORDER)
    okabe = {mcolors.to_hex(c) for c in figures.OKABE_ITO.values()}
    assert all(mcolors.to_hex(s.color) in okabe for s in styles)
    assert figures.arm_style("focal").color not in {s.color for s in styles}


def _page_figures():
    t1 = _table1(seed=7)
    curves = claims.emphasis_curves_frame(threshold=0.7, n_points=51)
    rc = pd.DataFrame([("d", a, c / 10, c / 100 + i / 1000) for i, a in enumerate(ARM_ORDER) for c in range(1, 11)],
                      columns=["dataset", "arm", "coverage_target", "risk"])
    return {
        "accuracy": figures.accuracy_vs_threshold_figure(table1.threshold_points(t1, ("Average", "Vote"))),
        "emphasis": figures.emphasis_figure(curves, frames.emphasis_ratio_frame(curves), threshold=0.7),
        "table2": figures.table2_encoding_figure(claims.table2_search_frame(), claims.table2_encoding_long()),
        "reliability": calibration_figures.reliability_figure(_rel_frame()),
        "risk": calibration_figures.reference_difference_figure(
            rc, calibration.difference_to_reference(rc, on=("dataset", "coverage_target"), value="risk"),
            x="coverage_target", y="risk", reference="ce-lr0.01", xlabel="coverage", ylabel="risk",
            also_absolute=("ce",)),
    }


def test_figures_are_full_width_with_no_text_below_eight_points():
    for name, fig in _page_figures().items():
        assert fig.get_figwidth() == figures.FULL_WIDTH, name
        # (the Table 2 encodings need 0.42 in per cell: 7 in for 12 cells, printed 5.8 in high)
        assert fig.get_figheight() <= 7.0, name
        fig.canvas.draw()  # tick labels exist once drawn
        sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip() and t.get_visible()]
        # ≥ 8 pt printed PRINT_WIDTH wide
        assert sizes and min(sizes) * figures.PRINT_WIDTH / figures.FULL_WIDTH >= figures.MIN_PRINT_PT, (name, min(sizes))
