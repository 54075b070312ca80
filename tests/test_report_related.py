"""The related-losses page helpers on analysed synthetic caches: with every related arm, and with
the paper's arms only (the page then says how to train the others)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex
from matplotlib.text import Text
from synthetic import SyntheticSpec, write_synthetic_preset

from analysis.core.config import AnalysisConfig
from analysis.core.pipeline import analyze_preset
from analysis.report import related
from analysis.report.context import report_context
from training.arms import ARMS, CONTROL_ARM, DEFAULT_ARMS, RELATED_ARMS

CFG = AnalysisConfig(n_resamples=300, n_seed_resamples=100, superlearners=False, size_repeats=2)
PDF_TEXT_WIDTH_IN = 6.3  # A4 with the Typst book's margins: figures wider than this are scaled down


def _results(root, name, arms):
    spec = SyntheticSpec(arms=tuple((a, 1.4 + 0.05 * i) for i, a in enumerate(arms)), n_members=3, n_train=90,
                         n_test=240, n_classes=4)
    write_synthetic_preset(root / "cache", name, spec)
    analyze_preset(name, root / "cache", root / "results" / name, config=CFG)


@pytest.fixture(scope="module")
def results_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("related")
    _results(root, "full", tuple(dict.fromkeys((*DEFAULT_ARMS, *RELATED_ARMS))))
    _results(root, "base", DEFAULT_ARMS)
    return root / "results"


@pytest.fixture(autouse=True)
def _results_dir(results_root, monkeypatch):
    monkeypatch.setenv("DYNLOSS_RESULTS_DIR", str(results_root))


def test_the_table_names_columns_in_words_and_matches_the_results():
    rel = related.related_results(report_context(preset="full"))
    table = related.related_table(report_context(preset="full"))
    calibration = related.related_table(report_context(preset="full"), part="calibration")
    assert list(calibration.columns) == ["loss", "ECE", "ECE after temperature scaling", "temperature", "AURC"]
    np.testing.assert_array_equal(calibration["temperature"], rel["temperature"])
    assert list(table["loss"]) == [ARMS[a].label for a in (CONTROL_ARM, *RELATED_ARMS)]
    assert "dataset" not in table.columns  # one dataset
    assert "Δ vs ce-lr0.01" in table.columns and (table["members"] == 3).all()
    np.testing.assert_array_equal(table["accuracy"], rel["accuracy"])
    row = rel.iloc[1]
    assert table["95 % CI, seeds and test samples"].iloc[1] == (
        f"[{row['control_seed_ci_low']:+.4f}, {row['control_seed_ci_high']:+.4f}]")
    assert table["95 % CI, test samples"].iloc[0] == "–"  # the control itself
    assert table["single members: accuracy mean ± sd"].iloc[0] == (
        f"{rel['member_acc_mean'].iloc[0]:.4f} ± {rel['member_acc_sd'].iloc[0]:.4f}")


def test_the_figure_draws_both_intervals_distinctly_a_zero_line_and_a_legend_outside():
    rel = related.related_results(report_context(preset="full"))
    fig = related.related_figure(rel)
    ax = fig.axes[0]
    colours = {to_hex(c.get_colors()[0]) for c in ax.collections if isinstance(c, LineCollection)}
    assert {related.TEST_ONLY[1].lower(), related.SEED[1].lower()} <= colours
    assert any(np.allclose(line.get_xdata(), 0) for line in ax.get_lines())  # the control at Δ = 0
    assert len(ax.get_yticklabels()) == len(RELATED_ARMS)
    legend = fig.legends[0]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
    scale = min(1.0, PDF_TEXT_WIDTH_IN / fig.get_figwidth())
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text()]
    assert min(sizes) * scale >= 6, min(sizes) * scale


def test_the_note_reads_the_seed_intervals_and_the_calibration():
    rel = related.related_results(report_context(preset="full"))
    note = related.related_note(report_context(preset="full"))
    arms = rel[rel["arm"] != CONTROL_ARM]
    out = arms[(arms["control_seed_ci_low"] > 0) | (arms["control_seed_ci_high"] < 0)]
    if out.empty:
        assert "every seed interval of Δ holds 0" in note
    else:
        assert all(label in note for label in out["label"])
    assert f"ECE {rel.loc[rel['arm'] == CONTROL_ARM, 'ece'].iloc[0]:.4f}" in note
    assert "dynloss train" not in note  # every related arm is there
    assert 2 <= note.count(". ") + 1 <= 4


def test_a_preset_without_the_related_arms_says_how_to_train_them():
    note = related.related_note(report_context(preset="base"))
    assert "dynloss train --preset base --arms" in note and "`superloss`" in note
    table = related.related_table(report_context(preset="base"))
    assert list(table["loss"]) == [ARMS[CONTROL_ARM].label, ARMS["dyn-0.7"].label]  # what the paper's grid has
    related.related_figure(related.related_results(report_context(preset="base")))  # draws without error
