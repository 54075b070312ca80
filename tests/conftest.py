"""Shared test fixtures."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from report_data import NO_QUARTO, book_env, copy_checkout, digits_tiny_results, git_status


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests with one torch thread (small tensors; the CI machine has 2 cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# The digits-tiny book rendered by both engines, once per session: compared engine against engine
# (tests/test_report_engine_parity.py) and opened in a browser (tests/test_report_browser.py).
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def report_results(tmp_path_factory) -> Path:
    """digits-tiny trained, analysed and audited (tests/report_data.py)."""
    return digits_tiny_results(tmp_path_factory.getbasetemp() / "digits-tiny")


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> Path:
    """A committed copy of this checkout: both engines render it as a user would, so that they show
    the same code revision and the checkout's own ``_output/`` and caches are left alone."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("the engines render a git copy of the checkout: needs git and a git checkout")
    return copy_checkout(ROOT, tmp_path_factory.mktemp("checkout"))


@pytest.fixture(scope="session")
def offline(book, report_results, tmp_path_factory) -> Path:
    """``dynloss report --engine offline`` of the copy: its output folder."""
    out = tmp_path_factory.mktemp("offline") / "_output"
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", "report", "--engine", "offline",
                           "--output-dir", str(out)], cwd=book, env=book_env(book, report_results),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return out


@pytest.fixture(scope="session")
def quarto(book, report_results):
    """``quarto render`` in the copy, as a user runs it: (output folder, log, git status before and
    after)."""
    from analysis.report.quarto import quarto_command

    if shutil.which("quarto") is None:
        pytest.skip(NO_QUARTO)
    before = git_status(book)
    proc = subprocess.run(quarto_command(), cwd=book, env=book_env(book, report_results), capture_output=True,
                          text=True, check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return book / "_output", log, before, git_status(book)
