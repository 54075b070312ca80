"""The statistics page's records and the labels of adjusted and unadjusted results
(analysis.report.statistics): every record names code that exists, its stated facts against an
oracle (a plain loop over orderings, scipy, statsmodels), the labels never a bare "n.s." beside an
unadjusted interval that excludes 0, and the page names every method."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis.core.stats import MCNEMAR_EXACT_BELOW, mcnemar_test, permutation_pvalues
from analysis.report import authors, statistics
from analysis.report.qmd import read_qmd

ROOT = Path(__file__).resolve().parents[1]


def test_every_record_names_functions_that_exist_and_has_every_field():
    assert len({s.key for s in statistics.STATISTICS}) == len(statistics.STATISTICS) >= 8
    for s in statistics.STATISTICS:
        assert all(getattr(s, f).strip() for f in ("name", "what", "used_for", "covers", "misses", "sided"))
        assert s.kind in ("interval", "test", "adjustment")
        for name in s.implementation:
            assert callable(statistics.resolve(name)), name


def test_a_malformed_implementation_name_is_refused():
    with pytest.raises(ValueError, match="name"):
        statistics.resolve("nodots")


def test_the_methods_the_issue_lists_each_have_a_record():
    names = " ".join(s.name.lower() for s in statistics.STATISTICS)
    for word in ("paired percentile bootstrap", "two-level bootstrap", "mcnemar", "holm", "permutation",
                 "fisher-z", "t-interval", "wilcoxon"):
        assert word in names, word


def _min_two_sided_p(x: np.ndarray) -> float:
    """Plain loop: the share of orderings of y = x reaching |r| = 1 (the observed |r|)."""
    hits = sum(abs(np.corrcoef(x, np.array(p))[0, 1]) >= 1 - 1e-12 for p in itertools.permutations(x))
    return hits / math.factorial(len(x))


@pytest.mark.parametrize("x, expected", [((1.0, 0.6, 0.7, 0.8, 0.9), 2 / 120), ((0.6, 0.7, 0.8, 0.9), 2 / 24),
                                         ((0.0, 0.6, 0.7, 0.8, 0.9), 1 / 120)])
def test_smallest_permutation_p_stated_on_the_page_equals_a_loop_over_orderings(x, expected):
    x = np.array(x)
    assert _min_two_sided_p(x) == pytest.approx(expected)
    assert permutation_pvalues(x, x)["p_two_sided"] == pytest.approx(expected)
    assert permutation_pvalues(x, x)["p_greater"] == pytest.approx(1 / math.factorial(len(x)))  # one-sided
    text = statistics.BY_KEY["permutation"].misses
    assert "1/n!" in text and "2/120" in text and "2/24" in text and "1/24" in text


def test_fisher_z_half_width_stated_for_five_points_equals_scipy():
    x, y = np.array([-2.0, -1, 0, 1, 2]), np.array([2.0, -1, -2, -1, 2])  # r = 0 exactly
    ci = sps.pearsonr(x, y).confidence_interval(0.95)
    assert ci.high == pytest.approx(-ci.low) == pytest.approx(statistics._FISHER_HALF_WIDTH_N5, abs=1e-12)
    assert f"±{ci.high:.2f}" in statistics.BY_KEY["fisher-z"].misses


def test_mcnemar_is_exact_below_the_stated_number_of_discordant_pairs_as_scipy_and_statsmodels():
    from statsmodels.stats.contingency_tables import mcnemar

    for d in (MCNEMAR_EXACT_BELOW - 1, MCNEMAR_EXACT_BELOW):
        a = np.r_[np.ones(d - 5, bool), np.zeros(5, bool), np.ones(30, bool)]  # n01 = d - 5, n10 = 5
        b = np.r_[np.zeros(d - 5, bool), np.ones(5, bool), np.ones(30, bool)]
        r = mcnemar_test(a, b)
        assert (r["n01"], r["n10"]) == (d - 5, 5)
        exact = d < MCNEMAR_EXACT_BELOW
        assert r["exact"] == float(exact)
        if exact:  # the two-sided binomial test on the discordant pairs
            assert r["pvalue"] == pytest.approx(sps.binomtest(5, d, 0.5).pvalue)
        else:  # chi-square with continuity correction: (|n01 − n10| − 1)² / (n01 + n10), 1 df
            assert r["pvalue"] == pytest.approx(sps.chi2.sf((abs(d - 10) - 1) ** 2 / d, 1))
            assert r["pvalue"] == pytest.approx(mcnemar([[30, d - 5], [5, 0]], exact=False, correction=True).pvalue)
    assert f"< {MCNEMAR_EXACT_BELOW}" in statistics.BY_KEY["mcnemar"].what


@pytest.mark.parametrize("direction, lo, hi, expected", [
    ("n.s.", -0.02, -0.001, "n.s. (Holm); unadjusted CI below 0"),
    ("n.s.", 0.001, 0.02, "n.s. (Holm); unadjusted CI above 0"),
    ("n.s.", -0.01, 0.01, "n.s. (Holm)"),
    ("better", 0.01, 0.02, "better (Holm)"),
    ("worse", -0.02, -0.01, "worse (Holm)"),
])
def test_holm_label_marks_adjustment_and_the_unadjusted_side(direction, lo, hi, expected):
    assert statistics.holm_label(direction, lo, hi) == expected


def test_holm_label_refuses_an_unknown_direction():
    with pytest.raises(ValueError, match="direction"):
        statistics.holm_label("significant", 0.1, 0.2)


def _lr_results() -> tuple[pd.DataFrame, pd.DataFrame]:
    """bootstrap_ci and mcnemar rows where one cell's interval excludes 0 but its Holm p does not reach 5 %."""
    ci, mc = [], []
    cells = {"dyn-0.6": (-0.0101, -0.0149, -0.0051, 0.024), "dyn-0.7": (0.002, -0.003, 0.007, 0.40),
             "dyn-0.8": (-0.03, -0.04, -0.02, 1e-6), "dyn-0.9": (0.001, -0.004, 0.006, 0.70)}
    for ref in ("ce", "ce-lr0.01"):
        for f in ("Average", "Vote", "Weighted", "MLP"):
            for arm, (d, lo, hi, p) in cells.items():
                ci.append({"dataset": "digits", "arm": arm, "fusion": f, "quantity": "diff", "reference": ref,
                           "estimate": d, "ci_low": lo, "ci_high": hi})
                mc.append({"dataset": "digits", "arm": arm, "reference": ref, "fusion": f, "n01": 10, "n10": 20,
                           "pvalue": p})
    mc = pd.DataFrame(mc)
    from analysis.core.stats import holm

    mc["pvalue_holm"] = mc.groupby(["dataset", "reference", "fusion"])["pvalue"].transform(
        lambda p: holm(p.to_numpy())[1])
    return pd.DataFrame(ci), mc


def test_authors_learning_rate_table_never_shows_a_bare_ns_beside_an_interval_excluding_zero(monkeypatch):
    ci, mc = _lr_results()
    monkeypatch.setattr(authors, "load_result", lambda name, ctx: {"bootstrap_ci": ci, "mcnemar": mc}[name])
    t = authors.lr_confound_table(None)
    label, interval = t["at 5 % (Holm)"], t["95 % CI, test samples only (unadjusted)"]
    bounds = interval.str.extract(r"\[([-+\d.]+), ([-+\d.]+)\]").astype(float)
    assert not statistics.bare_ns_next_to_excluding_interval(label, bounds[0], bounds[1]).any()
    six = t[t["arm"] == "dyn-0.6"]
    # Holm over 4 arms: 0.024 is the second smallest p, adjusted 3 × 0.024 = 0.072 ≥ 0.05
    np.testing.assert_allclose(six["Holm p (adjusted)"], 3 * 0.024)
    assert (six["at 5 % (Holm)"] == "n.s. (Holm); unadjusted CI below 0").all()
    assert (t.loc[t["arm"] == "dyn-0.8", "at 5 % (Holm)"] == "worse (Holm)").all()
    assert {"McNemar p (two-sided, unadjusted)", "Holm p (adjusted)"} <= set(t.columns)


def test_applied_note_counts_equal_pandas_over_the_tables():
    ci, mc = _lr_results()
    mc["exact"] = (mc["n01"] + mc["n10"] < MCNEMAR_EXACT_BELOW).astype(float)
    mc.loc[mc.index[:5], "exact"] = 1.0
    note = statistics.applied_note(None, mc, None, None)
    assert note["mcnemar"].startswith(f"Here: {len(mc)} tests, {int((mc['exact'] == 1).sum())} of them exact")
    fams = mc.groupby(["dataset", "reference", "fusion"]).size()
    assert f"{len(fams)} families" in note["holm"] and f"of {int(fams.iloc[0])} tests each" in note["holm"]
    assert f"adjusted p below 0.05 in {int((mc['pvalue_holm'] < 0.05).sum())} tests" in note["holm"]
    assert f"unadjusted in {int((mc['pvalue'] < 0.05).sum())}" in note["holm"]


def test_the_page_is_a_chapter_and_its_cells_call_the_records():
    import yaml

    book = yaml.safe_load((ROOT / "_quarto.yml").read_text())
    assert "reports/statistics.qmd" in book["book"]["chapters"]
    assert "reports/statistics.qmd" in book["project"]["render"]
    code = "\n".join(c.code for c in read_qmd(ROOT / "reports" / "statistics.qmd").chunks)
    assert "statistics.methods_frame()" in code and "statistics.methods_markdown(ctx)" in code


def test_the_page_sections_name_every_method_with_an_anchor():
    md = statistics.methods_markdown(None)
    for s in statistics.STATISTICS:
        assert f"## {s.name} {{#sec-stat-{s.key}}}" in md
    assert len(re.findall(r"^## ", md, flags=re.M)) == len(statistics.STATISTICS)


def test_readme_statistics_subsection_lists_every_record():
    readme = (ROOT / "README.md").read_text()
    section = " ".join(readme.split("### Statistics", 1)[1].split("\n#", 1)[0].split())
    assert "reports/statistics.qmd" in section and "analysis/report/statistics.py" in section
    for s in statistics.STATISTICS:
        assert s.name in section, s.name
    assert f"exact below {MCNEMAR_EXACT_BELOW} discordant pairs" in section
