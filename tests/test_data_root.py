"""One data root for every command: train, analyze, audit and report agree from any directory.

The rule (training/paths.py): ``--data-dir`` > ``$DYNLOSS_DATA_DIR`` > the checkout's ``data/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from training import paths

ROOT = Path(__file__).resolve().parents[1]


def _dynloss(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in (paths.DATA_ENV, paths.RESULTS_ENV)}
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "analysis.cli", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=600)


def test_the_rule_prefers_option_then_environment_then_checkout(tmp_path):
    root = paths.resolve_root(environ={})
    assert root.path == ROOT / "data" and root.source == "checkout"
    env = {paths.DATA_ENV: str(tmp_path / "env")}
    root = paths.resolve_root(environ=env)
    assert root.path == tmp_path / "env" and root.source == "$DYNLOSS_DATA_DIR"
    root = paths.resolve_root(tmp_path / "opt", environ=env)
    assert root.path == tmp_path / "opt" and root.source == "--data-dir"
    assert root.cache_dir("p") == tmp_path / "opt" / "cache" / "p"
    assert root.results_dir("p") == tmp_path / "opt" / "results" / "p"
    assert root.audit_file == tmp_path / "opt" / "results" / "audit.json"
    assert root.raw == tmp_path / "opt" / "raw"
    # $DYNLOSS_RESULTS_DIR moves the results root alone
    moved = paths.resolve_root(tmp_path / "opt", environ={**env, paths.RESULTS_ENV: str(tmp_path / "res")})
    assert moved.results_dir("p") == tmp_path / "res" / "p" and moved.cache == tmp_path / "opt" / "cache"
    # tracked inputs never move with the data root
    assert paths.paper_dir() == ROOT / "data" / "paper"


def test_the_checkout_default_does_not_depend_on_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert paths.resolve_root(environ={}).path == ROOT / "data"


@pytest.mark.slow
def test_train_analyze_audit_and_report_from_another_directory_share_one_root(tmp_path):
    """Run from an unrelated working directory with $DYNLOSS_DATA_DIR: every command reads and
    writes under that root, and nothing appears in the working directory."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = tmp_path / "root"
    env = {paths.DATA_ENV: str(root)}
    for args in (("train", "--preset", "digits-tiny", "--quiet"),
                 ("analyze", "--preset", "digits-tiny", "--resamples", "200"),
                 ("audit", "--save")):
        proc = _dynloss(*args, cwd=elsewhere, env=env)
        assert proc.returncode == 0, (args, proc.stderr[-2000:])
    assert list(elsewhere.iterdir()) == []
    assert (root / "cache" / "digits-tiny").is_dir()
    prov = json.loads((root / "results" / "digits-tiny" / "provenance.json").read_text())
    assert Path(prov["cache_root"]) == root / "cache"
    assert json.loads((root / "results" / "audit.json").read_text())[0]["id"] == "sign"
    assert _dynloss("audit", "--save", "--ids", "sign", cwd=elsewhere, env=env).returncode == 2
    # the report finds the same results (fails fast, before rendering, when they are missing)
    proc = _dynloss("report", "--preset", "digits-tiny", "--engine", "offline", "--format", "html",
                    "--output-dir", str(tmp_path / "out"), cwd=elsewhere, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "out" / "index.html").is_file()
    # the --data-dir option gives the same answer as the environment variable
    proc = _dynloss("--data-dir", str(root), "analyze", "--preset", "digits-tiny", "--resamples", "200",
                    "--no-superlearners", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_missing_preset_names_the_data_root_it_looked_in(tmp_path):
    proc = _dynloss("--data-dir", str(tmp_path), "analyze", "--preset", "digits-tiny", cwd=tmp_path)
    assert proc.returncode == 2
    assert str(tmp_path / "cache") in proc.stderr and "dynloss train --preset digits-tiny" in proc.stderr
