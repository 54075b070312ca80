"""Rendering with real Quarto, the parts that need no Quarto: choosing the engine, the install hint,
the execution cache's invalidation, and the .gitignore entries that keep a render's `git status`
clean. (The render itself: tests/test_report_engine_parity.py.)"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from analysis.cli import main
from analysis.report import quarto
from analysis.report.quarto import (
    CACHE_DIR,
    FINGERPRINT_FILE,
    QuartoError,
    check_kernel_imports_checkout,
    inputs_fingerprint,
    quarto_command,
    quarto_env,
    refresh_cache,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_quarto(tmp_path, monkeypatch):
    """A PATH without `quarto` (only the folder of this Python)."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert quarto.quarto_available() is None


def test_engine_quarto_without_quarto_says_how_to_install_it(no_quarto, tmp_path, capsys):
    assert main(["report", "--engine", "quarto", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "`quarto` is not on PATH" in err
    assert "https://quarto.org/docs/get-started/" in err and "pip install quarto-cli" in err
    assert ">= 1.9" in err and "--engine offline" in err


def test_engine_auto_without_quarto_says_it_renders_offline(no_quarto, tmp_path, capsys):
    # no results either: the choice is printed, then the render stops naming the command to run
    assert main(["report", "--engine", "auto", "--preset", "digits-tiny", "--results-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "engine offline (`quarto` is not on PATH)" in err
    assert "dynloss analyze --preset digits-tiny" in err


def test_engine_auto_with_quarto_names_it(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "bin" / "quarto"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    assert main(["report", "--preset", "digits-tiny", "--results-dir", str(tmp_path / "none")]) == 2
    assert f"engine quarto (quarto at {fake})" in capsys.readouterr().err


def test_an_old_quarto_is_refused_with_the_version_needed(tmp_path, monkeypatch):
    fake = tmp_path / "quarto"
    fake.write_text("#!/bin/sh\necho 1.4.557\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(QuartoError, match=r"Quarto 1\.4\.557; the book needs Quarto >= 1\.9"):
        quarto.check_quarto()


def test_quarto_command_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", f"/elsewhere{os.pathsep}{ROOT}")
    monkeypatch.delenv("QUARTO_PYTHON", raising=False)
    assert quarto_command(formats=("pdf",), output_dir=tmp_path) == [
        "quarto", "render", "--to", "typst", "--output-dir", str(tmp_path.resolve())]
    env = quarto_env(ROOT, {"DYNLOSS_PRESET": "digits-tiny"})
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), "/elsewhere"]  # this checkout first, once
    assert env["DYNLOSS_PRESET"] == "digits-tiny"
    assert env["QUARTO_PYTHON"] == sys.executable


def test_gitignore_holds_the_entries_quarto_would_append():
    # Quarto appends these two lines (compared after strip) when they are missing: the render would
    # then leave .gitignore modified; the Jupyter cache folders must be ignored as well
    lines = [line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()]
    for entry in ("/.quarto/", "**/*.quarto_ipynb", ".jupyter_cache/", "_output/"):
        assert entry in lines, entry


def _book(root: Path) -> Path:
    (root / "reports").mkdir(parents=True)
    (root / "_quarto.yml").write_text("project:\n  type: book\nbook:\n  chapters:\n    - index.qmd\n"
                                      "    - reports/a.qmd\n")
    return root


def test_cache_is_kept_while_the_inputs_stay_the_same_and_emptied_when_they_change(tmp_path, monkeypatch):
    results = tmp_path / "results"
    (results / "digits-tiny").mkdir(parents=True)
    (results / "digits-tiny" / "table1.csv").write_text("a\n1\n")
    monkeypatch.setenv("DYNLOSS_RESULTS_DIR", str(results))
    monkeypatch.setenv("DYNLOSS_PRESET", "digits-tiny")
    book = _book(tmp_path / "book")
    caches = [book / CACHE_DIR, book / "reports" / CACHE_DIR]

    assert refresh_cache(book) is False  # first render: nothing to keep
    for c in caches:
        (c / "executed").mkdir(parents=True, exist_ok=True)
    assert refresh_cache(book) is True
    assert all((c / "executed").is_dir() for c in caches)
    recorded = json.loads((book / CACHE_DIR / FINGERPRINT_FILE).read_text())
    assert recorded == inputs_fingerprint()

    (results / "digits-tiny" / "table1.csv").write_text("a\n2\n")  # a new `dynloss analyze`
    assert refresh_cache(book) is False
    assert not any((c / "executed").exists() for c in caches)

    assert refresh_cache(book) is True
    monkeypatch.setenv("DYNLOSS_PRESET", "fmnist-mini")  # another preset
    assert refresh_cache(book) is False


def test_fingerprint_covers_the_audit_and_the_code(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNLOSS_RESULTS_DIR", str(tmp_path))
    fp = inputs_fingerprint("digits-tiny")
    assert fp["audit"] == "absent"
    (tmp_path / "audit.json").write_text("[]")
    assert inputs_fingerprint("digits-tiny")["audit"] != "absent"
    assert {"analysis", "training", "paper", "python", "lib:pandas"} <= set(fp)
    assert fp["results_dir"] == str(tmp_path / "digits-tiny")


def test_a_render_must_import_the_checkout_it_renders(tmp_path):
    check_kernel_imports_checkout(ROOT)
    with pytest.raises(QuartoError, match=r"PYTHONPATH="):
        check_kernel_imports_checkout(tmp_path)
