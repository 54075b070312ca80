"""Written results read back bit for bit: CSV floats in their shortest round-trip form, and
accuracies (and so their intervals) computed in float64, not float32."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.core.pipeline import write_results
from analysis.core.stats import bootstrap_accuracies


def test_written_floats_read_back_bit_equal(tmp_path):
    values = np.array([0.1 + 0.2, 1 / 3, 0.8435, 2 / 3 * 1e-300, 1e300 / 7, -0.0, np.nan, 123456789.123456789,
                       np.nextafter(1.0, 2.0), 5e-324])
    frame = pd.DataFrame({"name": [f"r{i}" for i in range(values.size)], "x": values, "n": np.arange(values.size)})
    write_results({"table1": frame}, tmp_path / "out")
    back = pd.read_csv(tmp_path / "out" / "table1.csv")["x"].to_numpy()
    finite = ~np.isnan(values)
    assert np.isnan(back[~finite]).all() and back[finite].view(np.int64).tolist() == values[finite].view(np.int64).tolist()
    text = (tmp_path / "out" / "table1.csv").read_text()
    assert "0.30000000000000004" in text and ",0.8435," in text  # shortest form, no padding digits


def test_bootstrap_accuracies_are_exact_fractions_in_float64():
    rng = np.random.default_rng(0)
    correct = rng.random((2, 2000)) < 0.8435
    draws = bootstrap_accuracies(correct, rng=np.random.default_rng(1), n_resamples=50)
    hits = np.rint(draws * 2000)
    assert np.array_equal(draws, hits / 2000)  # k / n in float64, not float32's nearest value
    assert draws.dtype == np.float64


def test_a_set_of_another_schema_version_is_refused_naming_both_versions(tmp_path):
    import json

    import pytest

    from analysis.core.results_set import SCHEMA_VERSION, ResultsSetError, check_set

    from synthetic import SyntheticSpec, write_synthetic_preset

    from analysis.core.config import AnalysisConfig
    from analysis.core.pipeline import analyze_preset

    write_synthetic_preset(tmp_path, "syn", SyntheticSpec(arms=(("ce", 1.5), ("dyn-0.7", 1.7)), n_members=2,
                                                         n_train=80, n_test=60, n_classes=3))
    analyze_preset("syn", tmp_path, tmp_path / "out", config=AnalysisConfig(n_resamples=100, superlearners=False))
    check_set(tmp_path / "out", fix="dynloss analyze --preset syn")  # whole as written
    prov_path = tmp_path / "out" / "provenance.json"
    prov = json.loads(prov_path.read_text())
    assert prov["schema_version"] == SCHEMA_VERSION  # written with every set
    prov_path.write_text(json.dumps({**prov, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(ResultsSetError, match=rf"schema_version {SCHEMA_VERSION + 1}, expected {SCHEMA_VERSION}"):
        check_set(tmp_path / "out", fix="dynloss analyze --preset syn")
