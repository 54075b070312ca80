"""Paper Table 2 from every angle: the ``table2-correlation`` verdict over every encoding of the
cross-entropy row, and the regenerated Table 2's intervals on r (test-only and training-seed),
each checked against numpy's corrcoef and plain loops."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from analysis.audit.published import NAMED_ENCODINGS, load_published_table1
from analysis.audit.table_claims import decide, evaluate_table2_correlation
from analysis.core.tables import AccuracyDraws, resampled_pearson, table2


@pytest.fixture(scope="module")
def claim():
    return evaluate_table2_correlation()


def _cells(none_value):
    """Per published cell: (τ, accuracy) by hand, the cross-entropy row at ``none_value`` or left out."""
    out = {}
    for (ds, fu), g in load_published_table1().groupby(["dataset", "fusion"], sort=False):
        pairs = [(none_value if t == "None" else float(t), a) for t, a in zip(g["threshold"], g["accuracy"])
                 if t != "None" or none_value is not None]
        out[f"{ds}/{fu}"] = (np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
    return out


def _perm_p_greater(x, y):
    """Exact one-sided permutation p by a plain loop over every ordering of y."""
    r0 = np.corrcoef(x, y)[0, 1]
    rs = [np.corrcoef(x, np.array(p))[0, 1] for p in itertools.permutations(y)]
    return float(np.mean([r >= r0 - 1e-12 for r in rs]))


def test_leaving_the_ce_row_out_of_paper_table1_gives_strong_r_in_11_of_12_cells(claim):
    r = {k: np.corrcoef(x, y)[0, 1] for k, (x, y) in _cells(None).items()}
    strong = {k: v for k, v in r.items() if v >= 0.7}
    assert len(strong) == 11 and set(r) - set(strong) == {"CIFAR100/Weighted"}
    assert round(min(strong.values()), 2) == 0.92 and round(max(strong.values()), 2) == 0.98
    assert round(r["CIFAR100/Weighted"], 2) == 0.38
    exc = claim.values["encodings"]["None excluded"]
    assert exc["cells_strong"] == 11 and exc["weak_cells"] == {"CIFAR100/Weighted": round(r["CIFAR100/Weighted"], 4)}
    assert exc["strong_r_min"] == round(min(strong.values()), 4) and exc["strong_r_max"] == round(max(strong.values()), 4)
    assert "None excluded (n = 4): r ≥ 0.7 in 11/12 (0.92–0.98), the other CIFAR100/Weighted 0.38" in claim.evidence


@pytest.mark.parametrize("label", list(NAMED_ENCODINGS))
def test_every_encoding_summary_matches_numpy_and_a_plain_permutation_loop(claim, label):
    v = claim.values["encodings"][label]
    cells = _cells(NAMED_ENCODINGS[label])
    r = {k: np.corrcoef(x, y)[0, 1] for k, (x, y) in cells.items()}
    p = {k: _perm_p_greater(x, y) for k, (x, y) in cells.items()}
    assert v["pearson_r"] == pytest.approx({k: round(x, 4) for k, x in r.items()}, abs=1e-12)
    assert v["perm_p_greater"] == pytest.approx({k: round(x, 4) for k, x in p.items()}, abs=1e-12)
    assert v["cells_strong"] == sum(x >= 0.7 for x in r.values())
    assert v["cells_negative"] == sum(x < 0 for x in r.values())
    assert v["cells_perm_significant"] == sum(x < 0.05 for x in p.values())
    assert v["supports"] == (v["cells_strong"] > 6)
    assert v["n_orderings"] == (24 if NAMED_ENCODINGS[label] is None else 120)
    assert f"{label} (n = {v['n_points']}): r ≥ 0.7 in {v['cells_strong']}/12" in claim.evidence


def test_verdict_is_conditional_because_the_ce_limit_contradicts_what_the_other_codings_support(claim):
    v = claim.values
    assert claim.verdict == "conditional"
    assert v["contradicting_encodings"] == ["None=1.0 (CE limit)"]
    assert sorted(v["supporting_encodings"]) == sorted(set(NAMED_ENCODINGS) - {"None=1.0 (CE limit)"})
    assert "contradicted under None=1.0 (CE limit)" in claim.evidence


def test_decide_holds_only_when_every_encoding_is_strong_and_significant_everywhere():
    s = lambda strong, sig: {"cells_strong": strong, "cells_perm_significant": sig, "n_cells": 12}  # noqa: E731
    assert decide({"a": s(12, 12)}) == "holds"
    assert decide({"a": s(12, 11)}) == "conditional"  # one cell not significant
    assert decide({"a": s(5, 5), "b": s(0, 0)}) == "fails"  # a majority weak under every coding
    assert decide({"a": s(6, 6), "b": s(0, 0)}) == "conditional"  # 6 of 12 weak is no majority
    with pytest.raises(ValueError, match="at least one encoding"):
        decide({})


def test_bottom_line_sentence_gives_both_codings_and_the_condition(claim):
    from analysis.report.bottom_line import table2_sentence

    text = table2_sentence(claim.verdict, claim.values)
    assert "r is negative in 10 of 12 cells" in text
    assert "r ≥ 0.7 in 11 of 12 cells (0.92–0.98)" in text and "below 1/24" in text
    assert "**conditional**: supported with the row left out or at τ = 0, 0.5 or −1, contradicted at τ = 1" in text


# ----------------------------------------------------------------------------- regenerated Table 2
ARMS = ["ce", "dyn-0.6", "dyn-0.7", "dyn-0.8", "dyn-0.9"]
TAU = {"dyn-0.6": 0.6, "dyn-0.7": 0.7, "dyn-0.8": 0.8, "dyn-0.9": 0.9}


def _table1(fusions=("Average", "MLP")):
    rng = np.random.default_rng(3)
    rows = [{"dataset": "d", "arm": a, "loss": "ce" if a == "ce" else "dyn", "threshold": TAU.get(a, np.nan),
             "fusion": f, "accuracy": 0.8 + 0.02 * rng.random()} for f in fusions for a in ARMS]
    return pd.DataFrame(rows)


def _draws(t1, *, seed_fusions=("Average",), b=400):
    rng = np.random.default_rng(5)
    cells = [("d", r.arm, r.fusion) for r in t1.itertuples()]
    point = t1["accuracy"].to_numpy()
    test = point + 0.004 * rng.standard_normal((b, len(cells)))
    seed = {c: point[i] + 0.02 * rng.standard_normal(b // 2) for i, c in enumerate(cells) if c[2] in seed_fusions}
    return {"d": AccuracyDraws(cells, test, seed)}


def _loop_interval(x, y, q=(0.025, 0.975)):
    r = [np.corrcoef(x, row)[0, 1] for row in y]
    return tuple(np.quantile(r, q))


def test_resampled_pearson_equals_numpy_corrcoef_row_by_row():
    rng = np.random.default_rng(0)
    x, y = rng.random(5), rng.random((50, 5))
    assert resampled_pearson(x, y) == pytest.approx([np.corrcoef(x, row)[0, 1] for row in y], abs=1e-12)
    with pytest.raises(ValueError, match="Expected `x` \\(k,\\) and `y` \\(B, k\\)"):
        resampled_pearson(x, y[:, :4])


@pytest.mark.parametrize("label,ce_tau", [("published (ce=-1)", -1.0), ("ce-limit (ce=1.0)", 1.0), ("ce excluded", None)])
def test_table2_intervals_on_r_match_a_plain_loop(label, ce_tau):
    t1 = _table1()
    draws = _draws(t1)
    t2 = table2(t1, draws)
    d = draws["d"]
    arms = ARMS[1:] if ce_tau is None else ARMS
    x = np.array([ce_tau if a == "ce" else TAU[a] for a in arms])
    for fusion in ("Average", "MLP"):
        row = t2[(t2["fusion"] == fusion) & (t2["encoding"] == label)].iloc[0]
        idx = [d.cells.index(("d", a, fusion)) for a in arms]
        lo, hi = _loop_interval(x, d.test[:, idx])
        assert (row["r_boot_ci_low"], row["r_boot_ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
        if fusion == "Average":  # two-level draws: each arm's own column of resamples
            lo, hi = _loop_interval(x, np.stack([d.seed[("d", a, fusion)] for a in arms], axis=1))
            assert (row["r_seed_ci_low"], row["r_seed_ci_high"]) == pytest.approx((lo, hi), abs=1e-12)
            # members resampled too: the interval is wider than the test-only one on these draws
            assert row["r_seed_ci_high"] - row["r_seed_ci_low"] > row["r_boot_ci_high"] - row["r_boot_ci_low"]
        else:  # a learned fusion has no two-level draws: NaN, never the test-only interval
            assert np.isnan(row["r_seed_ci_low"]) and np.isnan(row["r_seed_ci_high"])


def test_table2_without_draws_has_no_intervals_on_r():
    t2 = table2(_table1())
    assert t2[["r_boot_ci_low", "r_boot_ci_high", "r_seed_ci_low", "r_seed_ci_high"]].isna().all().all()


def test_table2_report_frame_labels_the_test_only_interval_and_shows_the_seed_one(monkeypatch):
    from analysis.report import frames

    t1 = _table1()
    t2 = table2(t1, _draws(t1))
    monkeypatch.setattr(frames, "load_result", lambda name, ctx: t2)
    out = frames.table2_frame(None)
    assert "test-only bootstrap 95 % CI" in out.columns and "training-seed 95 % CI" in out.columns
    assert not any(c == "bootstrap 95 % CI" for c in out.columns)
    seed = out.set_index(["fusion", "encoding"])["training-seed 95 % CI"]
    assert seed.loc[("MLP", "ce excluded")] == "–" and seed.loc[("Average", "ce excluded")].startswith("[")


def test_table2_schema_says_which_interval_is_test_only():
    from analysis.core.schema import TABLE2_COLUMNS

    assert TABLE2_COLUMNS["r_boot_ci_low"].startswith("test-only")
    assert "training seeds" in TABLE2_COLUMNS["r_seed_ci_low"]
