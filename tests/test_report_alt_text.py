"""Figure alt texts (analysis/report/alt_text.py): what each says is checked against the numbers it
was computed from (an arm named "above the control" is above it), and the block that carries it
reaches the image's ``alt`` in HTML and ``image(alt: …)`` in Typst through the book's Lua filter and
the offline engine's."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.report import alt_text
from analysis.report.engine.pandoc import filter_args

ROOT = Path(__file__).resolve().parents[1]
BOOK_FILTER = ROOT / "reports" / "fig-alt.lua"
CONTROL = "ce-lr0.01"
DYN = ["dyn-0.6", "dyn-0.7", "dyn-0.8", "dyn-0.9"]


def _named(text: str, side: str, *, reference: str = CONTROL) -> list[list[str]]:
    """The arm names listed after each "above <reference>:" (side="above") or "below:" in ``text``."""
    pattern = rf"above {re.escape(reference)}: ([^;]*)" if side == "above" else r"; below: ([^;.]*(?:\.\d[^;.]*)*)"
    return [[m for m in re.findall(r"(dyn-0\.\d|ce-lr0\.01|ce)\b", group)] for group in re.findall(pattern, text)]


def _pandoc(md: str, to: str) -> str:
    import pypandoc

    proc = subprocess.run([pypandoc.get_pandoc_path(), "-f", "markdown", "-t", to, *filter_args((BOOK_FILTER,))],
                          input=md, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ---------------------------------------------------------------- the carrier block


def test_alt_block_reaches_the_html_alt_and_the_typst_image_through_both_filters():
    alt = 'Dyn-0.6 lies "above" ce-lr0.01 by +0.010; range 0.9 \\ 1.0'
    md = "![A caption](fig.png){#fig-x}\n" + alt_text.alt_block(alt) + "\nText after.\n"
    html = _pandoc(md, "html")
    assert 'alt="Dyn-0.6 lies &quot;above&quot; ce-lr0.01 by +0.010; range 0.9 \\ 1.0"' in html
    assert "fig-alt" not in html and "A caption" in html and "Text after." in html
    typ = _pandoc(md.replace("{#fig-x}", '{#fig-x width="100%"}'), "typst")
    assert '#image("fig.png", width: 100%, alt: "Dyn-0.6 lies \\"above\\" ce-lr0.01 by +0.010; range 0.9 \\\\ 1.0")' in typ
    assert "<fig-x>" in typ


def test_alt_block_inside_a_quarto_cell_div_reaches_the_image_before_it():
    md = "::: {.cell}\n![Cap](fig.png){#fig-x}\n" + alt_text.alt_block("the alt") + ":::\n"
    assert 'alt="the alt"' in _pandoc(md, "html")


def test_an_alt_block_after_no_image_is_an_error():
    import pypandoc

    md = "Just text.\n" + alt_text.alt_block("lost")
    proc = subprocess.run([pypandoc.get_pandoc_path(), "-f", "markdown", "-t", "html", "--lua-filter", str(BOOK_FILTER)],
                          input=md, capture_output=True, text=True)
    assert proc.returncode != 0 and "follows no image" in proc.stderr


def test_shown_refuses_an_empty_alt_and_collapses_whitespace():
    with pytest.raises(ValueError, match="non-empty `alt`"):
        alt_text.shown(object(), "  ")
    assert alt_text.shown(object(), "a\n  b").alt == "a b"


def test_shown_displays_the_figure_then_prints_the_block(capsys, monkeypatch):
    seen = []
    monkeypatch.setattr("IPython.display.display", lambda obj: seen.append(obj))
    fig = object()
    alt_text.shown(fig, "x")._ipython_display_()
    assert seen == [fig] and capsys.readouterr().out == alt_text.alt_block("x") + "\n"


# ---------------------------------------------------------------- each text against its numbers


def test_split_by_sign_puts_each_arm_on_the_side_of_its_value():
    above, below, level = alt_text.split_by_sign(pd.Series({"dyn-0.9": 0.2, "dyn-0.6": 0.1, "ce": -0.1,
                                                            "dyn-0.7": 0.0, "dyn-0.8": np.nan}))
    assert (above, below, level) == (["dyn-0.6", "dyn-0.9"], ["ce"], ["dyn-0.7"])


def _threshold_frame(rng: np.random.Generator, fusions=("Average", "Vote")) -> pd.DataFrame:
    rows = []
    for fu in fusions:
        for arm in ["ce", CONTROL, *DYN]:
            acc = rng.uniform(0.8, 0.95)
            rows.append({"dataset": "digits", "fusion": fu, "arm": arm,
                         "tau": float(arm[4:]) if arm.startswith("dyn") else np.nan,
                         "accuracy": acc, "ci_low": acc - 0.01, "ci_high": acc + 0.01})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(5))
def test_accuracy_tau_alt_names_the_arms_above_and_below_the_control_in_every_panel(seed):
    acc = _threshold_frame(np.random.default_rng(seed))
    text = alt_text.accuracy_tau_alt(acc)
    above, below = _named(text, "above"), _named(text, "below")
    assert len(above) == len(below) == 2
    for k, (fu, sub) in enumerate(acc.groupby("fusion", sort=False)):
        a = sub.set_index("arm")["accuracy"]
        assert set(above[k]) == {d for d in DYN if a[d] > a[CONTROL]}, fu
        assert set(below[k]) == {d for d in DYN if a[d] < a[CONTROL]}, fu
        assert f"{fu}: {CONTROL} {a[CONTROL]:.3f}, ce {a['ce']:.3f}" in text
        assert f"dynamic arms {a[DYN].min():.3f} to {a[DYN].max():.3f}".replace("-", "−") in text


def test_accuracy_tau_alt_gives_each_named_arm_its_signed_difference():
    acc = _threshold_frame(np.random.default_rng(9), fusions=("Average",))
    a = acc.set_index("arm")["accuracy"]
    text = alt_text.accuracy_tau_alt(acc)
    for d in DYN:
        diff = a[d] - a[CONTROL]
        assert f"{d} ({'+' if diff > 0 else '−'}{abs(diff):.3f})" in text


@pytest.mark.parametrize("seed", range(4))
def test_reference_difference_alt_sides_at_the_last_x_match_the_differences(seed):
    rng = np.random.default_rng(seed)
    xs = np.arange(1, 6)
    absolute = pd.DataFrame([{"dataset": "digits", "arm": arm, "n_members": x, "accuracy": rng.uniform(0.8, 0.9)}
                             for arm in ["ce", CONTROL, *DYN] for x in xs])
    ref = absolute[absolute["arm"] == CONTROL].set_index("n_members")["accuracy"]
    diff = absolute[absolute["arm"] != CONTROL].assign(
        difference=lambda d: d["accuracy"] - d["n_members"].map(ref))[["dataset", "n_members", "arm", "difference"]]
    text = alt_text.ensemble_size_alt(absolute, diff)
    last = diff[(diff["n_members"] == 5) & diff["arm"].isin(DYN)].set_index("arm")["difference"]
    assert "at members 5," in text
    assert set(_named(text, "above")[0]) == set(last.index[last > 0])
    assert set(_named(text, "below")[0]) == set(last.index[last < 0])
    d = diff[diff["arm"].isin(DYN)]["difference"]
    assert f"ranges from {alt_text._signed(d.min())} to {alt_text._signed(d.max())}" in text
    assert f"{CONTROL} from {alt_text._num(ref[1])} at members 1 to {alt_text._num(ref[5])} at 5" in text


def test_risk_coverage_alt_gives_the_band_range_of_the_spread_it_is_drawn_from():
    from analysis.report.calibration import difference_spread

    rng = np.random.default_rng(3)
    cov = np.round(np.arange(0.01, 1.001, 0.01), 2)
    rc = pd.DataFrame([{"dataset": "digits", "arm": arm, "coverage_target": c, "risk": rng.uniform(0, 0.1) * c}
                       for arm in ["ce", CONTROL, *DYN] for c in cov])
    ref = rc[rc["arm"] == CONTROL].set_index("coverage_target")["risk"]
    diff = rc[rc["arm"] != CONTROL].assign(difference=lambda d: d["risk"] - d["coverage_target"].map(ref))
    spread = difference_spread(diff[diff["arm"] != "ce"], x="coverage_target")
    text = alt_text.risk_coverage_alt(rc, diff, spread)
    assert (f"from {alt_text._signed(spread['low'].min())} to {alt_text._signed(spread['high'].max())}, mean from "
            f"{alt_text._signed(spread['mean'].min())}") in text
    assert "ce (" not in text.split("Right:")[1]  # ce is drawn absolute, not among the differences


def test_difference_spread_smooths_each_arm_then_spans_the_arms():
    from analysis.report.calibration import difference_spread

    d = pd.DataFrame({"dataset": "d", "arm": ["a"] * 5 + ["b"] * 5, "c": list(range(5)) * 2,
                      "difference": [0, 0, 5, 0, 0, 1, 1, 1, 1, 1]})
    out = difference_spread(d, x="c", window=3).set_index("c")
    # a smoothed: [0, 5/3, 5/3, 5/3, 0]; b stays 1
    assert np.allclose(out["high"], [1, 5 / 3, 5 / 3, 5 / 3, 1])
    assert np.allclose(out["low"], [0, 1, 1, 1, 0])
    assert np.allclose(out["mean"], (out["high"] + out["low"]) / 2)
    with pytest.raises(ValueError, match="`window`"):
        difference_spread(d, x="c", window=0)


def test_reliability_alt_counts_over_confident_bins_with_confidence_above_accuracy():
    rng = np.random.default_rng(1)
    rows = []
    for arm in [CONTROL, "dyn-0.7"]:
        for scaling in ("none", "temperature"):
            for b in range(8):
                conf = 0.5 + b / 16
                rows.append({"dataset": "digits", "arm": arm, "scaling": scaling, "confidence": conf,
                             "accuracy": conf + rng.normal(0, 0.05), "sparse": b == 0})
    rel = pd.DataFrame(rows)
    text = alt_text.reliability_alt(rel)
    for arm in (CONTROL, "dyn-0.7"):
        g = rel[(rel["arm"] == arm) & (rel["scaling"] == "none") & ~rel["sparse"]]
        gap = g["confidence"] - g["accuracy"]
        worst = gap.loc[gap.abs().idxmax()]
        after = rel[(rel["arm"] == arm) & (rel["scaling"] == "temperature") & ~rel["sparse"]]
        assert (f"{arm} over-confident in {int((gap > 0).sum())} of {len(g)} bins, largest gap "
                f"{alt_text._signed(worst)}") in text
        assert f"after scaling at most {(after['confidence'] - after['accuracy']).abs().max():.3f} from 0" in text
    assert "confidence minus accuracy (above 0: over-confident)" in text


def test_related_alt_names_the_losses_whose_seed_interval_excludes_zero():
    rel = pd.DataFrame({"dataset": "fmnist", "arm": [CONTROL, "poly1", "focal", "ls-0.1"],
                        "label": ["cross-entropy", "Poly-1", "focal", "label smoothing"],
                        "diff_vs_control": [np.nan, 0.004, -0.006, 0.001],
                        "control_seed_ci_low": [np.nan, 0.001, -0.009, -0.002],
                        "control_seed_ci_high": [np.nan, 0.007, -0.002, 0.003]})
    text = alt_text.related_alt(rel)
    assert "3 losses; estimates from −0.006 (focal) to +0.004 (Poly-1)" in text
    assert "seed interval above 0: Poly-1; below 0: focal" in text


def test_validation_alt_counts_the_fits_above_the_diagonal():
    vt = pd.DataFrame({"dataset": ["A", "A", "A", "B"], "fusion": "MLP", "variant": "ordered",
                       "test_best": [0.9, 0.8, 0.7, 0.5], "val_best": [0.95, 0.75, 0.72, 0.6],
                       "failed": [False, False, False, True]})
    text = alt_text.validation_alt(vt)
    assert "A: 3 fits, 2 above the line, validation minus test from −0.050 to +0.050" in text
    assert "B:" not in text  # its only fit failed and is not drawn


def test_table2_encoding_alt_on_the_published_tables_names_the_encoding_that_reproduces_them():
    from analysis.report import claims

    search, audit = claims.table2_search_frame(), claims.table2_encoding_long()
    text = alt_text.table2_encoding_alt(search, audit)
    dev = (audit["pearson_r"] - audit["published_r"]).abs().groupby(audit["encoding"]).max()
    assert f"Closest to the published values: {dev.idxmin()}." in text
    best = search.dropna(subset=["none_value"]).sort_values("max_abs_diff").iloc[0]
    assert f"is at τ = {alt_text._num(best['none_value'], 2)}" in text
    for enc, d in dev.items():
        assert f"{enc}: r from " in text and f"at most {d:.3f} from the published r" in text


def test_emphasis_alt_reads_the_ratio_to_cross_entropy_below_and_above_tau():
    from analysis.report import claims, frames

    curves = claims.emphasis_curves_frame(threshold=0.7)
    ratio = frames.emphasis_ratio_frame(curves)
    text = alt_text.emphasis_alt(curves, ratio, threshold=0.7)
    published = ratio[ratio["curve"] == "dynamic, published (PyTorch)"]
    assert np.allclose(published[published["p_t"] < 0.7]["ratio"], 1)
    assert np.allclose(published[published["p_t"] > 0.7]["ratio"], 0)
    assert "“dynamic, published (PyTorch)” 1 below τ and 0 above it" in text
    assert "“dynamic, soft” 1 below τ and 0.1 above it" in text
    focal = curves[curves["curve"] == "focal (γ=2)"]
    assert f"“focal (γ=2)” at p_t = {focal.loc[focal['emphasis'].idxmax(), 'p_t']:.2f}" in text
