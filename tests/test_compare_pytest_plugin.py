"""The `dynloss_regression` fixture in a user's own pytest run, alone and beside pytest-regressions.

Each run is a separate pytest process (the plugin is named with -p, plugin autoloading off, so
the installed entry point cannot register it twice)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from synthetic import SyntheticSpec, edit_results_table, write_synthetic_preset

from analysis.core.config import AnalysisConfig
from analysis.core.pipeline import analyze_preset

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

USER_TEST = '''
def test_numbers_agree(dynloss_regression):
    dynloss_regression.check({results!r})
'''


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pytest", "-p", "analysis.audit.regression.pytest_plugin", "-p", "no:cacheprovider",
           "-q", "--rootdir", str(folder), "-c", str(folder / "pytest.ini"), *args, str(folder / "test_user.py")]
    return subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_fixture_writes_a_baseline_then_passes_then_names_the_cells_that_moved(tmp_path):
    write_synthetic_preset(tmp_path / "cache", "syn", SyntheticSpec(n_members=2, n_train=60, n_test=200, n_classes=3,
                                                                   arms=(("ce", 1.5), ("dyn-0.7", 1.7))))
    results = tmp_path / "results" / "syn"
    analyze_preset("syn", tmp_path / "cache", results,
                   config=AnalysisConfig(n_resamples=500, superlearners=False, size_repeats=2))
    user = tmp_path / "user"
    user.mkdir()
    (user / "pytest.ini").write_text("[pytest]\n")
    (user / "test_user.py").write_text(USER_TEST.format(results=str(results)))
    baseline = user / "test_user" / "test_numbers_agree.json"  # where pytest-regressions would put it

    first = _pytest(user)
    assert first.returncode == 1 and "dynloss baseline" in first.stdout and baseline.is_file()
    second = _pytest(user)
    assert second.returncode == 0, second.stdout

    def move(t1):
        moved = (t1["arm"] == "dyn-0.7") & (t1["fusion"] == "Vote")
        for c in ("accuracy", "ci_low", "ci_high"):
            t1.loc[moved, c] += 0.3
        return t1

    edit_results_table(results, "table1", move)
    third = _pytest(user)
    assert third.returncode == 1
    assert "table1 accuracy digits/dyn-0.7/Vote" in third.stdout and "allowed ±" in third.stdout

    # beside pytest-regressions: its --force-regen rewrites the disagreeing baseline, then all pass
    regressions = ("-p", "pytest_datadir.plugin", "-p", "pytest_regressions.plugin")
    forced = _pytest(user, *regressions, "--force-regen")
    assert forced.returncode == 1 and "--force-regen" in forced.stdout, forced.stdout
    assert _pytest(user, *regressions).returncode == 0
