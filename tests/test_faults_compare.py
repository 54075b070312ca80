"""Faults in the regression feature (`dynloss compare`, `dynloss snapshot`, baselines, the report's
"Compared with" section), each reproduced on digits-tiny: a cell without a number never agrees,
damaged or hostile baseline files and option typos are refused in one line, and every output goes
through the atomic writer or standard output."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from synthetic import edit_results_table

from analysis.cli import main
from analysis.audit.regression import baseline as baseline_module

PRESET = "digits-tiny"


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A trained digits-tiny cache analysed once, and a snapshot of its results."""
    root = tmp_path_factory.mktemp("compare-faults")
    cache, out = root / "cache", root / "results" / PRESET
    assert main(["train", "--preset", PRESET, "--cache", str(cache), "--arms", "ce,dyn-0.8", "--quiet"]) == 0
    assert main(["analyze", "--preset", PRESET, "--cache", str(cache), "--out", str(out),
                 "--no-superlearners", "--resamples", "200"]) == 0
    assert main(["snapshot", "--preset", PRESET, "--results", str(out), "--out", str(root / "base.json")]) == 0
    return out, root / "base.json"


@pytest.fixture
def results(made, tmp_path):
    """A writable copy of the results set."""
    dst = tmp_path / "results" / PRESET
    shutil.copytree(made[0], dst)
    return dst


@pytest.fixture
def snap(made, tmp_path):
    """A writable copy of the snapshot, as a parsed document and its path."""
    dst = tmp_path / "base.json"
    shutil.copy(made[1], dst)
    return json.loads(dst.read_text()), dst


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _compare(results, baseline, *extra) -> int:
    return main(["compare", "--results", str(results), "--baseline", str(baseline), *map(str, extra)])


def _set(doc, path, column, rows, value, *, raw=None):
    """Set ``column`` of the given cell rows of a snapshot to ``value`` and write it (``raw``: JSON text
    replacing a marker, for the NaN / Infinity tokens strict JSON lacks)."""
    i = doc["columns"].index(column)
    for r in rows:
        doc["cells"][r][i] = "@@" if raw else value
    text = json.dumps(doc)
    path.write_text(text.replace('"@@"', raw) if raw else text)


def _label(doc, r) -> str:
    cell = dict(zip(doc["columns"], doc["cells"][r]))
    return f"{cell['table']} {cell['metric']} " + "/".join(cell[k] for k in ("dataset", "arm", "fusion") if cell[k])


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"{name} in strict JSON")

    return json.loads(text, parse_constant=refuse)


# ------------------------------------------------------------------ 1. no number is never agreement
@pytest.mark.parametrize("raw", ["null", "NaN"])
def test_baseline_cells_without_a_number_fail_the_comparison_and_are_named(results, snap, raw, capsys):
    doc, path = snap
    _set(doc, path, "value", [0, 5], None, raw=raw)
    assert _compare(results, path) == 1
    out = capsys.readouterr().out
    assert "all compared cells agree" not in out and "2 cell(s) fail the comparison (2 no number)" in out
    for r in (0, 5):
        cell = dict(zip(doc["columns"], doc["cells"][r]))
        assert any(line.startswith("no number") and cell["metric"] in line and f"{cell['arm']}/{cell['fusion']}" in line
                   for line in out.splitlines())


def test_an_all_null_baseline_fails_every_cell(results, snap, capsys):
    doc, path = snap
    _set(doc, path, "value", range(len(doc["cells"])), None)
    assert _compare(results, path) == 1
    assert f"{len(doc['cells'])} cell(s) fail the comparison ({len(doc['cells'])} no number)" in capsys.readouterr().out


def test_a_text_number_in_a_baseline_is_refused_naming_the_file_and_the_cell(results, snap, capsys):
    doc, path = snap
    _set(doc, path, "value", [3], "0.97")
    assert _compare(results, path) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(path) in err and _label(doc, 3) in err and "value '0.97' is not a number" in err


@pytest.mark.parametrize("column", ["ci_high", "ci_low"])
def test_an_infinite_interval_bound_is_a_failure_not_agreement(results, snap, column, capsys):
    doc, path = snap
    row = next(r for r, c in enumerate(doc["cells"]) if c[doc["columns"].index("ci_low")] is not None)
    _set(doc, path, column, [row], None, raw="Infinity" if column == "ci_high" else "-Infinity")
    assert _compare(results, path) == 1
    out = capsys.readouterr().out
    assert "1 cell(s) fail the comparison (1 invalid)" in out and "is not two finite bounds in order" in out


def test_nan_accuracies_in_the_results_fail_by_default_and_the_opt_out_still_reports_them(results, made, capsys):
    edit_results_table(results, "table1", lambda t: t.assign(accuracy=float("nan")))
    t1 = pd.read_csv(results / "table1.csv")
    assert _compare(results, made[1]) == 1
    out = capsys.readouterr().out
    assert f"{len(t1)} cell(s) fail the comparison ({len(t1)} only in baseline)" in out
    assert _compare(results, made[1], "--fail-on", "tables") == 0  # the documented opt-out
    assert f"not gated by --fail-on table1,table2,calibration,selective: {len(t1)} only in baseline" in \
        capsys.readouterr().out


def test_infinite_accuracies_in_the_results_are_cells_without_a_number(results, made, capsys):
    edit_results_table(results, "table1", lambda t: t.assign(accuracy=float("inf")))
    assert _compare(results, made[1], "--fail-on", "table1") == 1
    assert "results value inf is not a finite number" in capsys.readouterr().out


def test_a_text_value_in_a_results_table_is_refused_in_one_line(results, made, capsys):
    edit_results_table(results, "table1", lambda t: t.assign(ci_low="low"))
    assert _compare(results, made[1]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "table1.csv column ci_low: 'low' is not a number" in err and str(results) in err


def test_a_snapshot_of_results_without_numbers_is_refused(results, tmp_path, capsys):
    edit_results_table(results, "table1", lambda t: t.assign(accuracy=float("inf")))
    out = tmp_path / "new.json"
    assert main(["snapshot", "--preset", PRESET, "--results", str(results), "--out", str(out)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert "table1.csv: accuracy of digits/ce/" in err and "value inf is not a finite number" in err
    assert not out.exists()


# ------------------------------------------------------------------ 2. strict JSON, hostile files
def test_json_output_with_infinite_values_is_strict_json(results, snap, tmp_path, capsys):
    doc, path = snap
    _set(doc, path, "value", [0], None, raw="Infinity")
    _set(doc, path, "ci_high", [1], None, raw="Infinity")
    js = tmp_path / "cmp.json"
    assert _compare(results, path, "--json", js) == 1
    capsys.readouterr()
    assert _compare(results, path, "--json", "-") == 1
    for parsed in (_strict(js.read_text()), _strict(capsys.readouterr().out)):
        cells = {c["status"]: c for c in parsed["cells"]}
        assert cells["no number"]["baseline"] is None and cells["invalid"]["problem"]
        assert parsed["ok"] is False


def test_an_oversize_baseline_is_refused_before_it_is_read(results, tmp_path, capsys):
    big = tmp_path / "huge.json"
    with open(big, "wb") as f:
        f.truncate(3 << 30)  # sparse: 3 GB of nothing, as a damaged or hostile baseline
    t0 = time.perf_counter()
    assert _compare(results, big) == 2
    err = _one_line(capsys.readouterr().err)
    assert time.perf_counter() - t0 < 20 and str(big) in err and "not read" in err and "3,221,225,472 bytes" in err


def test_a_deeply_nested_baseline_is_refused_in_one_line(results, tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    assert _compare(results, deep) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(deep) in err and "nested too deeply" in err


def test_a_malformed_source_header_is_refused_naming_the_field(results, snap, capsys):
    doc, path = snap
    path.write_text(json.dumps({**doc, "source": {**doc["source"], "n_test": {"digits": "450"}}}))
    assert _compare(results, path) == 2
    assert '"n_test"' in _one_line(capsys.readouterr().err)


# ------------------------------------------------------------------ 3. options
@pytest.mark.parametrize("opts, named", [
    (["--tolerance", "acuracy=0.5"], "--tolerance 'acuracy=0.5': unknown metric (expected one of accuracy, "),
    (["--tolerance", "accuracy=abc"], "--tolerance 'accuracy=abc': 'abc' is not a number"),
    (["--tolerance", "accuracy=-0.1"], "--tolerance 'accuracy=-0.1': expected a finite number >= 0"),
    (["--tolerance", "accuracy=nan"], "--tolerance 'accuracy=nan': expected a finite number >= 0"),
    (["--tolerance", "accuracy=inf"], "--tolerance 'accuracy=inf': expected a finite number >= 0"),
    (["--tolerance", "=0.1"], "expected METRIC=VALUE"),
    (["--level", "0"], "`level` in (0, 1), got 0.0"),
    (["--level", "1"], "`level` in (0, 1), got 1.0"),
    (["--level", "nan"], "`level` in (0, 1), got nan"),
    (["--fail-on", "table1,tabel2"], "got tabel2"),
    (["--fail-on", ","], "Expected fail_on among"),
    (["--csv", "-", "--json", "-"], "would both write to standard output"),
])
def test_option_typos_are_refused_in_one_line_naming_them(made, opts, named, capsys):
    assert _compare(made[0], made[1], *opts) == 2
    assert named in _one_line(capsys.readouterr().err)


def test_snapshot_out_dash_writes_the_baseline_to_standard_output(made, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["snapshot", "--preset", PRESET, "--results", str(made[0]), "--out", "-"]) == 0
    captured = capsys.readouterr()
    doc = _strict(captured.out)
    assert doc["format"] == "dynloss-baseline" and doc["cells"] == json.loads(made[1].read_text())["cells"]
    assert "written to standard output" in captured.err and not (tmp_path / "-").exists()


# ------------------------------------------------------------------ 4. outputs through the atomic writer
def test_every_output_file_goes_through_the_atomic_writer(made, tmp_path, monkeypatch):
    written = []
    real = baseline_module.atomic_write
    monkeypatch.setattr(baseline_module, "atomic_write", lambda path, data: (written.append(Path(path)), real(path, data)))
    outs = [tmp_path / n for n in ("s.json", "c.csv", "c.json")]
    assert main(["snapshot", "--preset", PRESET, "--results", str(made[0]), "--out", str(outs[0])]) == 0
    assert _compare(made[0], outs[0], "--csv", outs[1], "--json", outs[2]) == 0
    assert written == outs and all(p.stat().st_size > 0 for p in outs)


# ------------------------------------------------------------------ the report's "Compared with" section
def test_report_section_counts_an_all_null_baseline_as_failures(made, snap, monkeypatch):
    from analysis.report.compare import compared_with_section
    from analysis.report.context import report_context

    doc, path = snap
    _set(doc, path, "value", range(len(doc["cells"])), None)
    monkeypatch.setenv("DYNLOSS_RESULTS_DIR", str(made[0].parent))
    monkeypatch.setenv("DYNLOSS_BASELINE", str(path))
    md = compared_with_section(report_context(preset=PRESET))
    n = len(doc["cells"])
    assert f"Failing cells: **{n}** ({n} no number)" in md and "outside noise: **0**" not in md.lower()
    assert md.count("| no number") == n


def test_report_section_shows_a_damaged_baseline_as_one_line_in_an_error_box(made, tmp_path, monkeypatch):
    from analysis.report.compare import BaselineError, comparison, compared_with_section
    from analysis.report.context import report_context

    bad = tmp_path / "damaged.json"
    bad.write_text('{"format": "dynloss-baseline", "version": 1, "cells": [')
    monkeypatch.setenv("DYNLOSS_RESULTS_DIR", str(made[0].parent))
    monkeypatch.setenv("DYNLOSS_BASELINE", str(bad))
    with pytest.raises(BaselineError, match=r"^DYNLOSS_BASELINE=.*damaged\.json: .*not valid JSON") as e:
        comparison(report_context(preset=PRESET))
    assert "\n" not in str(e.value)
    md = compared_with_section(report_context(preset=PRESET))
    assert "::: {.callout-important}" in md and f"No comparison: {e.value}" in md
