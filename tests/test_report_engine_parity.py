"""The two engines render the same book alike: digits-tiny through the offline renderer and through
`quarto render`, compared table by table, figure by figure, and in the PDFs' text.

The Quarto half needs `quarto` (>= 1.9) on PATH and skips, saying so, without it. Slow: one
training + analysis and the two renders, the session's (tests/conftest.py: ``book``, ``offline``,
``quarto``; tests/test_report_browser.py opens the same renders in a browser).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from report_data import (PDF_MIN_BODY_WORDS, PRESET, book_env, git_status,
                         html_figure_alts, pdf_alts, report_figures, table_rows, thin_pdf_pages, unresolved_links)

from analysis.report.qmd import read_qmd
from analysis.report.engine import load_project

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

#: decimal numbers as the tables print them (3 or 4 digits: accuracies, intervals, p-values, r)
_NUMBER = re.compile(r"-?\d+\.\d{3,4}(?![\d.])")


def _labels(kind: str) -> list[str]:
    return [c.label for page in load_project(ROOT).chapters for c in read_qmd(page).chunks
            if c.label and c.label.startswith(f"{kind}-")]


def _pages(out: Path) -> dict[str, str]:
    """HTML text of every page, by page stem (Quarto keeps the source folders, offline does not)."""
    return {p.stem: p.read_text(encoding="utf-8") for p in sorted(out.rglob("*.html"))
            if "site_libs" not in p.parts}


def _all_html(out: Path) -> str:
    return "\n".join(_pages(out).values())


def _warnings_from_the_book(log: str) -> list[str]:
    """A Quarto log's warning lines, without the two that come from the tools, not from the book:
    ipykernel's note on its TCP transport (Quarto starts kernels that way) and an installation
    without Quarto's typst-gather helper."""
    tools = ("Kernel is running over TCP without encryption", "typst-gather")
    return [line for line in log.splitlines()
            if re.search(r"\bWARN(ING)?\b", line) and not any(t in line for t in tools)]


def _pdf_text(pdf: Path) -> str:
    """The PDF's text, with Typst's minus sign (U+2212) read as ``-``."""
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    else:
        from pypdf import PdfReader

        text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
    return text.replace("\u2212", "-")


def _cells(rows: list[list[str]]) -> list[list[str]]:
    return [[" ".join(cell.split()) for cell in row] for row in rows]


def test_quarto_renders_every_page_and_the_pdf(quarto):
    out, *_ = quarto
    stems = [p.stem for p in load_project(ROOT).chapters]
    assert sorted(_pages(out)) == sorted(stems)
    assert (out / "dynloss-report.pdf").read_bytes().startswith(b"%PDF")


def test_quarto_executes_each_page_once_for_both_formats(quarto):
    _, log, *_ = quarto
    n_pages = len(load_project(ROOT).chapters)
    assert log.count("Executing '") == n_pages  # the HTML pass
    assert log.count("(Notebook read from cache)") == n_pages  # the Typst pass reuses it


def test_quarto_prints_no_warning_about_the_books_sources(quarto):
    out, log, *_ = quarto
    assert _warnings_from_the_book(log) == []
    html = _all_html(out)
    assert "cell-output-stderr" not in html and "Traceback" not in html


def test_a_render_leaves_git_status_clean(quarto):
    *_, before, after = quarto
    assert before == "" and after == ""


def test_no_unresolved_cross_reference_in_either_engine(offline, quarto):
    for out in (offline, quarto[0]):
        html = _all_html(out)
        assert "?@" not in html and not re.search(r"\?(fig|tbl)-", html)
    for text in (_pdf_text(offline / "dynloss-report.pdf"), _pdf_text(quarto[0] / "dynloss-report.pdf")):
        assert "?@" not in text and not re.search(r"\?(fig|tbl)-", text)


def test_every_link_on_every_page_resolves_to_a_file_in_the_output_of_both_engines(offline, quarto):
    assert unresolved_links(offline) == []
    assert unresolved_links(quarto[0]) == []
    shipped = {p.relative_to(offline / "data").as_posix() for p in (offline / "data").rglob("*") if p.is_file()}
    assert shipped == {p.relative_to(quarto[0] / "data").as_posix() for p in (quarto[0] / "data").rglob("*")
                       if p.is_file()}


def test_both_engines_show_the_same_tables_and_figures_under_the_same_labels(offline, quarto):
    ids = {}
    for name, out in (("offline", offline), ("quarto", quarto[0])):
        html = _all_html(out)
        # (Quarto also gives each caption an id: `<label>-caption-<uuid>`)
        ids[name] = {i for i in re.findall(r'id="((?:fig|tbl)-[A-Za-z0-9_-]+)"', html) if "-caption-" not in i}
        for label in _labels("fig"):
            m = re.search(rf'id="{label}"[\s\S]*?</figure>', html)
            assert m and "<img" in m.group(0), f"{name}: {label} has no image"
    assert ids["offline"] == ids["quarto"] == set(_labels("fig")) | set(_labels("tbl"))


def test_both_engines_give_every_figure_the_same_computed_alt_text_in_html_and_pdf(offline, quarto, report_results,
                                                                                   book):
    drawn = {label: alt for label, (_, alt) in report_figures(report_results, book).items()}
    assert sorted(drawn) == sorted(_labels("fig"))
    for name, out in (("offline", offline), ("quarto", quarto[0])):
        assert html_figure_alts(_all_html(out)) == drawn, name
        assert sorted(pdf_alts(out / "dynloss-report.pdf")) == sorted(drawn.values()), name


def test_cross_references_link_to_the_same_labels(offline, quarto):
    targets = {}
    for name, out in (("offline", offline), ("quarto", quarto[0])):
        targets[name] = set(re.findall(r'href="[^"]*#((?:fig|tbl)-[A-Za-z0-9_-]+)"', _all_html(out)))
    assert targets["offline"] == targets["quarto"]
    assert {"fig-emphasis", "fig-table2-encoding", "tbl-table2-encoding"} <= targets["offline"]


def test_every_results_table_shows_the_same_cells_in_both_engines(offline, quarto):
    pages = {"offline": _pages(offline), "quarto": _pages(quarto[0])}
    compared = 0
    for label in _labels("tbl"):
        shown = {}
        for name, by_stem in pages.items():
            html = next(h for h in by_stem.values() if f'id="{label}"' in h)
            shown[name] = table_rows(html, label)
        assert _cells(shown["offline"]) == _cells(shown["quarto"]), label
        assert len(shown["offline"]) > 1, label
        compared += sum(len(_NUMBER.findall(" ".join(r))) for r in shown["offline"])
    assert compared > 500  # the tables are full of numbers, all compared


def test_the_pdfs_carry_the_same_numbers(offline, quarto):
    numbers = {name: Counter(_NUMBER.findall(_pdf_text(out / "dynloss-report.pdf")))
               for name, out in (("offline", offline), ("quarto", quarto[0]))}
    assert numbers["offline"] == numbers["quarto"]
    assert sum(numbers["offline"].values()) > 500


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs pdftotext (poppler-utils) to read the pages")
def test_no_pdf_page_is_blank_or_holds_only_its_header_in_either_engine(offline, quarto):
    # Quarto's book template starts chapters on odd pages (reports/report.typ turns that off); a page
    # with fewer words of body than PDF_MIN_BODY_WORDS is blank or shows only the running header
    for name, out in (("offline", offline), ("quarto", quarto[0])):
        thin = thin_pdf_pages(out / "dynloss-report.pdf")
        assert thin == {}, f"{name}: pages with fewer than {PDF_MIN_BODY_WORDS} body words (page: words): {thin}"


@pytest.fixture(scope="module")
def quarto_cli(book, report_results, quarto, tmp_path_factory):
    """``dynloss report --engine quarto`` in the same copy (after ``quarto``): it renders a staged
    copy of the book (analysis.report.quarto.stage_book). (output folder, log, git status after)"""
    out = tmp_path_factory.mktemp("quarto-cli") / "_output"
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", "report", "--engine", "quarto", "--preset", PRESET,
                           "--output-dir", str(out)], cwd=book, env=book_env(book, report_results),
                          capture_output=True, text=True, check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    return out, log, git_status(book)


def test_dynloss_report_with_quarto_shows_what_quarto_render_shows(quarto, quarto_cli):
    out, log, status = quarto_cli
    assert sorted(_pages(out)) == sorted(_pages(quarto[0]))
    pages = {"render": _pages(quarto[0]), "cli": _pages(out)}
    for label in _labels("tbl"):
        shown = {name: table_rows(next(h for h in by_stem.values() if f'id="{label}"' in h), label)
                 for name, by_stem in pages.items()}
        assert _cells(shown["render"]) == _cells(shown["cli"]), label
    assert (Counter(_NUMBER.findall(_pdf_text(out / "dynloss-report.pdf")))
            == Counter(_NUMBER.findall(_pdf_text(quarto[0] / "dynloss-report.pdf"))))
    assert _warnings_from_the_book(log) == []
    assert status == ""  # the staged copy is ignored by git
    assert "_quarto-book" not in _all_html(out)
