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
from analysis.report.context import ReportContext, report_context
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

    assert refresh_cache(book, inputs_fingerprint(report_context())) is False  # first render: nothing to keep
    for c in caches:
        (c / "executed").mkdir(parents=True, exist_ok=True)
    assert refresh_cache(book, inputs_fingerprint(report_context())) is True
    assert all((c / "executed").is_dir() for c in caches)
    recorded = json.loads((book / CACHE_DIR / FINGERPRINT_FILE).read_text())
    assert recorded == inputs_fingerprint(report_context())

    (results / "digits-tiny" / "table1.csv").write_text("a\n2\n")  # a new `dynloss analyze`
    assert refresh_cache(book, inputs_fingerprint(report_context())) is False
    assert not any((c / "executed").exists() for c in caches)

    assert refresh_cache(book, inputs_fingerprint(report_context())) is True
    monkeypatch.setenv("DYNLOSS_PRESET", "fmnist-mini")  # another preset
    assert refresh_cache(book, inputs_fingerprint(report_context())) is False


def _ctx(preset: str):
    from training.paths import resolve_root

    return ReportContext(preset, resolve_root())


def test_fingerprint_covers_the_audit_and_the_code(tmp_path, monkeypatch):
    monkeypatch.setenv("DYNLOSS_RESULTS_DIR", str(tmp_path))
    fp = inputs_fingerprint(_ctx("digits-tiny"))
    assert fp["audit"] == "absent"
    (tmp_path / "audit.json").write_text("[]")
    assert inputs_fingerprint(_ctx("digits-tiny"))["audit"] != "absent"
    assert {"analysis", "training", "paper", "python", "lib:pandas"} <= set(fp)
    assert fp["results_dir"] == str(tmp_path / "digits-tiny")


def test_a_render_must_import_the_checkout_it_renders(tmp_path):
    check_kernel_imports_checkout(ROOT)
    with pytest.raises(QuartoError, match=r"PYTHONPATH="):
        check_kernel_imports_checkout(tmp_path)


def _checkout(root: Path) -> Path:
    """A checkout with a two-page book and what renders leave beside its sources."""
    _book(root)
    (root / "index.qmd").write_text("# Index\n")
    (root / "reports" / "a.qmd").write_text("# A\n")
    (root / "reports" / "report.css").write_text("body {}\n")
    for leftover in (CACHE_DIR + "/executed.ipynb", "a_files/figure-html/f.png", "__pycache__/x.pyc"):
        (root / "reports" / leftover).parent.mkdir(parents=True, exist_ok=True)
        (root / "reports" / leftover).write_text("leftover")
    (root / "reports" / "a.quarto_ipynb").write_text("{}")
    return root


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_the_staged_book_holds_exactly_the_sources_and_keeps_quartos_caches(tmp_path):
    root = _checkout(tmp_path / "checkout")
    stage = quarto.stage_book(root)
    assert stage == root / quarto.STAGE_DIR
    assert _files(stage) - {quarto.STAGE_MANIFEST} == {"_quarto.yml", "index.qmd", "reports/a.qmd",
                                                       "reports/report.css"}
    (stage / "reports" / CACHE_DIR).mkdir()
    (stage / "reports" / CACHE_DIR / "executed.ipynb").write_text("kept")  # Quarto's, between renders

    (root / "reports" / "a.qmd").write_text("# A, edited\n")
    (root / "reports" / "report.css").unlink()
    (root / "reports" / "b.qmd").write_text("# B\n")
    quarto.stage_book(root)
    assert (stage / "reports" / "a.qmd").read_text() == "# A, edited\n"
    assert not (stage / "reports" / "report.css").exists()  # deleted from the sources: deleted here
    assert (stage / "reports" / "b.qmd").read_text() == "# B\n"
    assert (stage / "reports" / CACHE_DIR / "executed.ipynb").read_text() == "kept"
    assert not list(stage.rglob("*.tmp"))


def test_staging_a_checkout_without_the_book_names_what_is_missing(tmp_path):
    (tmp_path / "_quarto.yml").write_text("project:\n  type: book\n")
    with pytest.raises(QuartoError, match=r"index\.qmd: the book's source is missing"):
        quarto.stage_book(tmp_path)


def _fake_quarto(folder: Path, render: str) -> None:
    """A `quarto` that reports 1.11.0 and runs ``render`` (shell) for `quarto render`."""
    folder.mkdir(parents=True, exist_ok=True)
    fake = folder / "quarto"
    fake.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo 1.11.0; exit 0; fi\n' + render + "\n")
    fake.chmod(0o755)


def test_quarto_renders_the_staged_copy_and_its_pages_replace_those_in_the_output(tmp_path, monkeypatch):
    root = _checkout(tmp_path / "checkout")
    out = tmp_path / "out"
    (out / "reports").mkdir(parents=True)
    (out / "index.html").write_text("old")
    (out / "reports" / "stale.html").write_text("old")
    (out / "kept.txt").write_text("not the render's")
    # the render runs in the copy, knows the checkout, and writes the copy's _output
    _fake_quarto(tmp_path / "bin", 'case "$PWD" in */_quarto-book) ;; *) exit 3 ;; esac\n'
                 f'test "$DYNLOSS_BOOK_CHECKOUT" = "{root.resolve()}" || exit 4\n'
                 'mkdir -p _output/reports && echo new > _output/index.html && echo a > _output/reports/a.html')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    assert quarto.run_quarto(root, {}, output_dir=out) == 0
    assert (out / "index.html").read_text() == "new\n"
    assert _files(out / "reports") == {"a.html"}  # the render's folder replaces the old one whole
    assert (out / "kept.txt").read_text() == "not the render's"
    assert not (root / quarto.STAGE_DIR / "_output").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_failed_quarto_render_leaves_the_previous_output(tmp_path, monkeypatch):
    root = _checkout(tmp_path / "checkout")
    (root / "_output").mkdir()
    (root / "_output" / "index.html").write_text("old")
    _fake_quarto(tmp_path / "bin", "mkdir -p _output && echo half > _output/index.html; exit 1")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    assert quarto.run_quarto(root, {}) == 1
    assert (root / "_output" / "index.html").read_text() == "old"


def test_a_second_render_of_the_same_checkout_waits_for_the_first(tmp_path, monkeypatch):
    import threading

    from training.cache_lock import preset_lock

    root = _checkout(tmp_path / "checkout")
    _fake_quarto(tmp_path / "bin", "mkdir -p _output && echo new > _output/index.html")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    codes = []
    with preset_lock(root / quarto.STAGE_DIR):  # a render in progress
        second = threading.Thread(target=lambda: codes.append(quarto.run_quarto(root, {})))
        second.start()
        second.join(timeout=1.0)
        assert second.is_alive() and not (root / "_output").exists()
    second.join(timeout=30)
    assert codes == [0] and (root / "_output" / "index.html").read_text() == "new\n"


def test_an_output_dir_outside_the_book_is_refused_before_anything_is_removed(tmp_path, monkeypatch):
    root = _checkout(tmp_path / "checkout")
    (root / "_quarto.yml").write_text("project:\n  type: book\n  output-dir: ..\nbook:\n  chapters:\n"
                                      "    - index.qmd\n    - reports/a.qmd\n")
    _fake_quarto(tmp_path / "bin", "exit 0")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin")
    with pytest.raises(QuartoError, match=r"_quarto\.yml: project output-dir must be a folder inside the book"):
        quarto.run_quarto(root, {}, output_dir=tmp_path / "out")
    assert (root / "reports" / "a.qmd").is_file() and (root / quarto.STAGE_DIR / "index.qmd").is_file()
