"""The ``split_stats`` results table: split fractions measured once per (dataset, member) on the
cached splits (the reference arm's where it holds the member), checked against numpy on the cache
files; the methods page reads it from the results set, never from the cache."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from synthetic import SyntheticSpec, write_synthetic_preset

from analysis.core.config import AnalysisConfig
from analysis.core.pipeline import analyze_preset
from analysis.core.schema import SPLIT_STATS_COLUMNS
from training.arms import REFERENCE_ARM
from training.cache_format import run_dir

SPEC = SyntheticSpec(arms=(("ce", 1.5), ("ce-lr0.01", 1.6), ("dyn-0.7", 1.7)), n_members=3, n_train=120,
                     n_test=60, n_classes=3)
CFG = AnalysisConfig(seed=0, n_resamples=200, superlearners=False, size_repeats=2)


def _fractions_by_numpy(root, preset: str, dataset: str, arm: str, member: int) -> dict[str, float]:
    """The fractions recomputed from the run's arrays.npz with numpy set operations on row ids."""
    with np.load(run_dir(root, preset, dataset, arm, member) / "arrays.npz", allow_pickle=False) as a:
        fit, val, n = a["fit_index"], a["val_index"], a["train_ids"].size
    fit_u, val_u = np.unique(fit), np.unique(val)
    return {"fit_distinct_fraction": fit_u.size / n,
            "base_distinct_fraction": np.unique(np.concatenate([fit, val])).size / n,
            "val_distinct_fraction": val_u.size / n,
            "val_overlap_fraction": np.isin(val_u, fit_u).sum() / val_u.size,
            "fit_duplicate_fraction": 1 - fit_u.size / fit.size}


def test_split_stats_are_one_row_per_member_measured_on_the_reference_arm_as_numpy_finds(tmp_path):
    write_synthetic_preset(tmp_path, "syn", SPEC)
    df = analyze_preset("syn", tmp_path, write=False, config=CFG)["split_stats"]
    assert list(df.columns) == list(SPLIT_STATS_COLUMNS)
    assert df["member"].tolist() == [0, 1, 2] and set(df["arm"]) == {REFERENCE_ARM}
    assert (df["n_train"] == SPEC.n_train).all()
    for r in df.itertuples():
        expected = _fractions_by_numpy(tmp_path, "syn", "digits", REFERENCE_ARM, r.member)
        for col, value in expected.items():
            assert getattr(r, col) == pytest.approx(value, abs=1e-12), (r.member, col)


def test_a_member_the_reference_arm_lacks_is_measured_on_the_next_arm_that_holds_it(tmp_path):
    write_synthetic_preset(tmp_path, "syn", SPEC, nonfinite_members=(("digits", REFERENCE_ARM, 1),))
    df = analyze_preset("syn", tmp_path, write=False, config=CFG)["split_stats"].set_index("member")
    assert df["arm"].to_dict() == {0: REFERENCE_ARM, 1: "ce-lr0.01", 2: REFERENCE_ARM}
    expected = _fractions_by_numpy(tmp_path, "syn", "digits", "ce-lr0.01", 1)
    assert df.loc[1, "fit_distinct_fraction"] == pytest.approx(expected["fit_distinct_fraction"], abs=1e-12)


def test_the_methods_page_reads_the_split_fractions_from_the_results_set_without_the_cache(tmp_path):
    from analysis.report import frames
    from analysis.report.context import report_context

    cache = tmp_path / "cache"
    write_synthetic_preset(cache, "syn", SPEC)
    written = analyze_preset("syn", cache, tmp_path / "results" / "syn", config=CFG)["split_stats"]
    shutil.rmtree(cache)  # the report never reads the cache
    ctx = report_context({"DYNLOSS_DATA_DIR": str(tmp_path)}, preset="syn")
    shown = frames.preset_split_frame(ctx)
    # the page shows the file's own numbers, member by member, under short headers; nothing averaged
    assert shown["member"].tolist() == written["member"].tolist()
    for header, column in (("fitted, distinct", "fit_distinct_fraction"), ("resample, distinct", "base_distinct_fraction"),
                           ("validation also fitted", "val_overlap_fraction")):
        np.testing.assert_allclose(shown[header], written[column], rtol=1e-12)
    note = frames.preset_split_note(ctx)  # the columns with one value, stated once
    assert note.strip() == (f"Every row of the table of preset **syn**: dataset digits, n 120, "
                            f"arm measured {written['arm'].iloc[0]}.")
