"""The offline pages' stylesheet: the book's own (``format: html: css``, reports/report.css) read
from the project being rendered, after the engine's page layout; the verdict rules exist once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analysis.report.engine import RenderError, load_project
from analysis.report.engine.html import PAGE_CSS, stylesheet

ROOT = Path(__file__).resolve().parents[1]


def _selectors(css: str) -> list[str]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    return [s.strip() for block in re.findall(r"([^{}]+)\{", css) for s in block.split(",")]


def test_the_checkout_book_names_reports_report_css_as_its_stylesheet():
    assert load_project(ROOT).html_css == (ROOT / "reports" / "report.css",)


def test_the_offline_stylesheet_holds_the_book_stylesheet_after_the_page_layout():
    css = stylesheet(load_project(ROOT).html_css)
    book = (ROOT / "reports" / "report.css").read_text(encoding="utf-8")
    assert css.startswith(PAGE_CSS) and css.endswith(book)


def test_verdict_and_claim_rules_exist_once_in_the_book_stylesheet_not_in_the_engine():
    engine = _selectors(PAGE_CSS)
    book = _selectors((ROOT / "reports" / "report.css").read_text(encoding="utf-8"))
    for selector in (".verdict-holds", ".verdict-fails", ".verdict-conditional", ".claim-id", "a"):
        assert selector not in engine, selector
        assert book.count(selector) == 1, selector


def test_the_stylesheet_is_read_from_the_project_being_rendered(tmp_path):
    (tmp_path / "index.qmd").write_text("# Home\n")
    (tmp_path / "style.css").write_text(".marker-rule { color: red; }\n")
    (tmp_path / "_quarto.yml").write_text("book:\n  chapters: [index.qmd]\nformat:\n  html:\n    css: style.css\n")
    css = stylesheet(load_project(tmp_path).html_css)
    assert ".marker-rule" in css and ".verdict-holds" not in css


def test_a_book_without_a_stylesheet_gets_the_page_layout_only(tmp_path):
    (tmp_path / "index.qmd").write_text("# Home\n")
    (tmp_path / "_quarto.yml").write_text("book:\n  chapters: [index.qmd]\n")
    project = load_project(tmp_path)
    assert project.html_css == () and stylesheet(project.html_css) == PAGE_CSS


def test_a_missing_stylesheet_is_refused_naming_the_key_and_the_file(tmp_path):
    (tmp_path / "index.qmd").write_text("# Home\n")
    (tmp_path / "_quarto.yml").write_text("book:\n  chapters: [index.qmd]\nformat:\n  html:\n    css: [gone.css]\n")
    with pytest.raises(RenderError, match=r"_quarto.yml: format.html.css names missing files \['gone.css'\]"):
        load_project(tmp_path)
