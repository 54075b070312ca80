"""The book the offline engine renders, as ``_quarto.yml`` defines it: its pages, output names and
format settings (:func:`load_project`), and the error every step of the engine raises.

Read from ``_quarto.yml`` (Quarto's keys; the engine's docstring, :mod:`analysis.report.engine`,
lists those it honours): ``book: title, author, output-file, chapters``, ``project: output-dir``,
``execute``, ``filters`` (paths of Lua filters), ``fig-format``, ``fig-dpi``, ``format: html: css,
include-before-body, include-after-body``, ``format: typst: include-in-header, papersize,
section-numbering`` and ``project: post-render`` (Python scripts).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from analysis.report.qmd import QmdDocument, read_qmd


class RenderError(RuntimeError):
    """The report cannot be rendered; the message says which page/chunk and what to do."""


@dataclass(frozen=True)
class Page:
    """One page of the report: its source, parsed document and output name."""

    source: Path
    doc: QmdDocument
    stem: str

    @property
    def html_name(self) -> str:
        return f"{self.stem}.html"

    @property
    def title(self) -> str:
        return self.doc.title


@dataclass(frozen=True)
class Project:
    """What the offline renderer reads from ``_quarto.yml``."""

    root: Path
    chapters: list[Path]
    output_dir: Path
    title: str
    output_file: str
    execute: dict[str, Any]
    author: str = ""
    typst_headers: tuple[Path, ...] = ()
    fig_format: str = "png"
    fig_dpi: int = 150
    papersize: str = "a4"
    section_numbering: str = "1.1"
    #: the book's stylesheets (``format: html: css``), which the offline pages embed too
    html_css: tuple[Path, ...] = ()
    #: the book's Lua filters (``filters:``), which pandoc applies to every page and the PDF
    lua_filters: tuple[Path, ...] = ()
    #: the book's post-render scripts (``project: post-render``), run once the pages are in place
    post_render: tuple[Path, ...] = ()
    #: HTML the pages carry at the start and the end of their body (``format: html:
    #: include-before-body``, ``include-after-body``): the skip link, the accessibility script
    html_before_body: tuple[Path, ...] = ()
    html_after_body: tuple[Path, ...] = ()


def _file_list(value: Any) -> list[str]:
    """A ``_quarto.yml`` value that names one file or a list of files."""
    if not value:
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]


def load_project(root: str | Path) -> Project:
    """Read the book definition from ``<root>/_quarto.yml``.

    Raises
    ------
    RenderError
        When the file is missing, lists no chapters, or names stylesheets, HTML includes or Typst
        headers that are missing.
    """
    root = Path(root).resolve()
    cfg_path = root / "_quarto.yml"
    if not cfg_path.is_file():
        raise RenderError(f"No Quarto project at {root}: expected {cfg_path}")
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    book = cfg.get("book") or {}
    chapters = [root / c for c in flatten_chapters(book.get("chapters") or [])]
    if not chapters:
        raise RenderError(f"{cfg_path}: `book: chapters:` lists no pages")
    project = cfg.get("project") or {}
    formats = cfg.get("format") or {}
    typst = formats.get("typst") or {}
    html_format = formats.get("html") or {}
    headers = _file_list(typst.get("include-in-header"))
    missing = [h for h in headers if not (root / h).is_file()]
    if missing:
        raise RenderError(f"{cfg_path}: format.typst.include-in-header names missing files {missing}")
    html_files = {}
    for key in ("css", "include-before-body", "include-after-body"):
        html_files[key] = _file_list(html_format.get(key) if isinstance(html_format, dict) else None)
        missing = [c for c in html_files[key] if not (root / c).is_file()]
        if missing:
            raise RenderError(f"{cfg_path}: format.html.{key} names missing files {missing}")
    filters = [f.get("path") if isinstance(f, dict) else f for f in (cfg.get("filters") or [])]
    bad = [f for f in filters if not isinstance(f, str) or not f.endswith(".lua") or not (root / f).is_file()]
    if bad:
        raise RenderError(f"{cfg_path}: filters names {bad}; expected paths of existing .lua files")
    scripts = _file_list(project.get("post-render"))
    missing = [x for x in scripts if not (root / x).is_file() or not x.endswith(".py")]
    if missing:
        raise RenderError(f"{cfg_path}: project.post-render names missing or non-Python scripts {missing}")
    fig_format = str(cfg.get("fig-format", "png"))
    if fig_format not in ("png", "svg"):
        raise RenderError(f"{cfg_path}: fig-format {fig_format!r} is not rendered offline; expected png or svg")
    author = book.get("author", "")
    return Project(
        root=root,
        chapters=chapters,
        output_dir=root / str(project.get("output-dir", "_output")),
        title=str(book.get("title", "Report")),
        output_file=str(book.get("output-file", "report")),
        execute=dict(cfg.get("execute") or {}),
        author=", ".join(map(str, author)) if isinstance(author, list) else str(author),
        typst_headers=tuple(root / h for h in headers),
        fig_format=fig_format,
        fig_dpi=int(cfg.get("fig-dpi", 150)),
        papersize=str(typst.get("papersize", "a4")),
        section_numbering=str(typst.get("section-numbering", "1.1")),
        html_css=tuple(root / c for c in html_files["css"]),
        html_before_body=tuple(root / c for c in html_files["include-before-body"]),
        html_after_body=tuple(root / c for c in html_files["include-after-body"]),
        lua_filters=tuple(root / f for f in filters),
        post_render=tuple(root / x for x in scripts),
    )


def flatten_chapters(items: list[Any]) -> list[str]:
    """The page paths of ``book: chapters``, in order (plain paths, ``href`` entries and the
    ``chapters`` of ``part`` groups)."""
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            if "href" in item:
                out.append(str(item["href"]))
            out.extend(flatten_chapters(item.get("chapters") or []))
    return out


def read_pages(project: Project) -> list[Page]:
    """Every chapter of ``project`` parsed (:func:`analysis.report.qmd.read_qmd`), in book order.

    Raises
    ------
    RenderError
        When two pages would write the same HTML file.
    """
    pages = [Page(source=p, doc=read_qmd(p), stem=p.stem) for p in project.chapters]
    stems = [p.stem for p in pages]
    if len(set(stems)) != len(stems):
        raise RenderError(f"Two pages would write the same HTML file: {stems}")
    return pages
