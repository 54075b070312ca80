"""A fusion and a metric declared in one place each (one record, one call) reach every consumer:
``dynloss analyze`` (Table 1 with its seed intervals, the calibration table), ``dynloss compare``
(the new cells, judged with the metric's tolerance) and the report's frames. The digits-tiny cache
is the report tests' (:func:`report_data.digits_tiny_results`: trained once per session), analysed
again here with the toy records declared (no super-learners: they do not change with them)."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pandas as pd
import pytest
from report_data import digits_tiny_results
from synthetic import SyntheticSpec, write_synthetic_preset

from analysis.audit.regression.results import compare_results
from analysis.core import metrics as M
from analysis.core import schema
from analysis.core.config import AnalysisConfig
from analysis.core.fusions import FUSION_ORDER, FUSIONS, SEED_CI_FUSIONS, STATIC_FUSIONS, Fusion
from analysis.core.metric_registry import METRICS, Metric, register_metric
from analysis.core.pipeline import analyze_preset
from analysis.core.registry import LiveTuple, Registry

PRESET = "digits-tiny"
CFG = AnalysisConfig(seed=0, n_resamples=300, n_seed_resamples=100, superlearners=False, size_repeats=2)


def _median_fusion(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    med = np.median(np.asarray(logits, dtype=np.float64), axis=0)
    return med.argmax(axis=1), M.softmax(med)


def _median_resampled(logits, labels, *, member_counts, sample_counts) -> np.ndarray:
    """Median of each resample's members, repeated by their counts (materialised: a toy's batched form)."""
    out = np.empty(member_counts.shape[0])
    for b, (w, s) in enumerate(zip(member_counts, sample_counts)):
        preds = _median_fusion(np.repeat(logits, w, axis=0))[0]
        out[b] = np.sum((preds == labels) * s) / s.sum()
    return out


def _max_fusion(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    top = np.asarray(logits, dtype=np.float64).max(axis=0)
    return top.argmax(axis=1), M.softmax(top)


MEDIAN = Fusion("Median", "median of the raw logits", "logits", _median_fusion, resampled=_median_resampled)
MAX = Fusion("Max", "largest raw logit over members", "logits", _max_fusion)  # no batched form: NaN seed CIs
MEAN_CONF = Metric("max_prob_mean", lambda s: float(s.confidence.mean()), "mean confidence",
                   "mean confidence of the predicted class", "higher", tolerance=0.01)


@pytest.fixture
def toys():
    """The toy fusions and metric declared for one test (one record, one call each), undone after it."""
    with FUSIONS.temporarily(MEDIAN), FUSIONS.temporarily(MAX), METRICS.temporarily(MEAN_CONF):
        yield
    assert not {"Median", "Max"} & set(FUSIONS) and "max_prob_mean" not in METRICS  # undone
    assert "Median" not in STATIC_FUSIONS and "max_prob_mean" not in schema.CALIBRATION_COLUMNS


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """The results root of digits-tiny analysed with the toy records declared."""
    cache = digits_tiny_results(tmp_path_factory.getbasetemp() / "digits-tiny").parent / "cache"
    results = tmp_path_factory.mktemp("results")
    with FUSIONS.temporarily(MEDIAN), FUSIONS.temporarily(MAX), METRICS.temporarily(MEAN_CONF):
        analyze_preset(PRESET, cache, results / PRESET, config=CFG)
    return results


@pytest.fixture
def declared(analysed, toys):
    """The toy-records results root, the records declared while the test runs."""
    return analysed


def test_a_declared_fusion_has_table1_rows_and_seed_intervals_when_it_declares_a_batched_form(declared):
    t1 = pd.read_csv(declared / PRESET / "table1.csv")
    med, top = t1[t1["fusion"] == "Median"], t1[t1["fusion"] == "Max"]
    assert len(med) == len(top) == t1["arm"].nunique() >= 6  # one row per arm
    assert med[["ci_low", "ci_high", "seed_ci_low", "seed_ci_high"]].notna().all().all()
    assert med.loc[med["arm"] != "ce", ["diff_seed_ci_low", "diff_seed_ci_high"]].notna().all().all()
    assert med["leak_free"].all()
    # no batched re-fusion declared: test-sample intervals, NaN training-seed intervals by declaration
    assert top[["ci_low", "ci_high"]].notna().all().all()
    assert top[["seed_ci_low", "seed_ci_high", "diff_seed_ci_low", "control_seed_ci_low"]].isna().all().all()


def test_a_declared_fusion_is_temperature_scaled_and_a_declared_metric_has_its_calibration_column(declared):
    cal = pd.read_csv(declared / PRESET / "calibration.csv")
    assert list(cal.columns)[-1] == "max_prob_mean"
    med = cal[(cal["fusion"] == "Median") & (cal["member"] == -1)]
    assert set(med["scaling"]) == {"none", "temperature"} and set(med["confidence_kind"]) == {"max_prob"}
    assert cal["max_prob_mean"].between(0, 1).all() and cal["max_prob_mean"].notna().all()
    sel = pd.read_csv(declared / PRESET / "selective.csv")
    assert "max_prob_mean" not in sel.columns  # declared for the calibration table only


def test_compare_judges_the_new_cells_with_the_metrics_tolerance(declared):
    cmp = compare_results(declared / PRESET, declared / PRESET)
    f = cmp.frame
    assert cmp.ok and set(f["status"]) == {"agree"}
    new = f[f["metric"] == "max_prob_mean"]
    assert set(new["table"]) == {"calibration"} and {"Median", "Max", "Average"} <= set(new["fusion"])
    assert (new["rule"] == "tolerance").all()
    np.testing.assert_allclose(new["allowed"], MEAN_CONF.tolerance, atol=1e-8)
    assert {"accuracy", "diff_vs_ce"} <= set(f.loc[(f["table"] == "table1") & (f["fusion"] == "Median"), "metric"])


def test_the_report_frames_show_the_declared_fusion_and_metric(declared):
    from analysis.report import calibration, table1
    from analysis.report.context import report_context

    ctx = report_context({"DYNLOSS_RESULTS_DIR": str(declared)}, preset=PRESET)
    assert FUSION_ORDER[-2:] == ("Median", "Max") and tuple(SEED_CI_FUSIONS)[-1] == "Median"  # still declared
    grid = table1.grid_frame(ctx)
    frame = calibration.calibration_frame(ctx, fusions=("Average", "Median", "Single"))
    note = table1.fusions_note()
    assert [c for c in grid.columns if c != "arm"][-2:] == ["Median", "Max"]
    assert grid["Median"].notna().all()
    assert "mean confidence" in frame.columns and list(frame.columns)[-1] == "T"
    assert "Median" in set(frame["fusion"])
    assert "`Median` (median of the raw logits)" in note


def test_a_column_the_schema_does_not_declare_is_refused_in_one_line(monkeypatch, tmp_path):
    with pytest.raises(ValueError) as e:
        schema.result_frame("calibration", [{"dataset": "d", "arm": "ce", "undeclared": 1.0}])
    assert len(str(e.value).splitlines()) == 1 and "calibration.csv" in str(e.value) and "'undeclared'" in str(e.value)
    # a metric value written beside the registry's: calibration_tables refuses it, never drops it
    import analysis.core.calibration as C

    real = C.metric_values
    monkeypatch.setattr(C, "metric_values", lambda table, s: {**real(table, s), "stray": 0.0})
    root = tmp_path / "cache"  # synthetic runs under the name fmnist-mini: analysed as stale, on purpose
    spec = SyntheticSpec(datasets=("fashion-mnist",), arms=(("ce", 1.6), ("ce-lr0.01", 1.65)), n_members=2,
                         n_train=60, n_test=80)
    write_synthetic_preset(root, "fmnist-mini", spec)
    with pytest.raises(ValueError, match=r"^calibration\.csv: column\(s\) 'stray' not declared in analysis\.core"):
        analyze_preset("fmnist-mini", root, write=False, config=AnalysisConfig(
            n_resamples=50, n_seed_resamples=0, superlearners=False, size_repeats=1, allow_stale=True,
            allow_partial=True))


def test_a_metric_without_a_schema_description_or_a_fusion_without_a_function_is_refused():
    with pytest.raises(ValueError, match="metric 'bare': needs a `description`"):
        register_metric(Metric("bare", lambda s: 0.0, "bare", "", "lower"))
    with pytest.raises(ValueError, match="fusion 'Nothing': a static fusion needs a callable `function`"):
        FUSIONS.register(Fusion("Nothing", "no rule", "logits"))
    with pytest.raises(ValueError, match="fusion 'Average' is declared twice"):
        FUSIONS.register(FUSIONS["Average"])
    assert "bare" not in METRICS and "Nothing" not in FUSIONS


def test_the_builtin_records_give_the_published_lists():
    from analysis.audit import cache_claims
    from analysis.core.fuse import SUPERLEARNER_FUSIONS
    from analysis.report import table1

    assert isinstance(FUSIONS, Registry) and isinstance(METRICS, Registry) and isinstance(FUSION_ORDER, LiveTuple)
    assert tuple(FUSION_ORDER) == ("Average", "Vote", "Weighted", "MLP", "ProbAverage", "Weighted-OOB", "MLP-OOB")
    assert cache_claims.PAPER_FUSIONS is table1.PAPER_FUSIONS and tuple(table1.PAPER_FUSIONS) == (
        "Average", "Vote", "Weighted", "MLP")
    assert tuple(SEED_CI_FUSIONS) == ("Average", "ProbAverage", "Vote")
    assert tuple(SUPERLEARNER_FUSIONS) == (
        ("Weighted", "Weighted", "in-sample"), ("Weighted-OOB", "Weighted", "out-of-bag"),
        ("MLP", "MLP", "in-sample"), ("MLP-OOB", "MLP", "out-of-bag"))
    assert [FUSIONS[f].temperature_scaled for f in STATIC_FUSIONS] == [True, True, False]


@pytest.mark.parametrize("name", ["analysis.core.registry", "analysis.core.fusions", "analysis.report.calibration"])
def test_docstring_examples_of_the_registries_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
