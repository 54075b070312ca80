"""The PDF: the whole report as one document, pandoc's Typst writer then the ``typst`` package
(:func:`write_pdf`). Tables' and figures' rules come from the book's ``format: typst:
include-in-header`` files (``reports/report.typ``), which Quarto's Typst book reads too.
"""

from __future__ import annotations

from pathlib import Path

from analysis.report.engine.crossref import chapter_id
from analysis.report.engine.pandoc import filter_args, run_pandoc, yaml_block
from analysis.report.engine.project import Page, RenderError

#: page set-up of the offline PDF (Quarto's book template has its own); the rules for tables and
#: figures come from the book's ``format: typst: include-in-header`` files, shared with Quarto
_TYPST_HEADER = """\
#set page(margin: (x: 1.8cm, y: 2cm))
#set text(size: 10pt)
#show raw: set text(size: 8pt)
"""


def write_pdf(pages: list[Page], bodies: list[str], *, work: Path, title: str, subtitle: str, name: str,
              author: str = "", headers: tuple[Path, ...] = (), papersize: str = "a4",
              section_numbering: str = "1.1", lua_filters: tuple[Path, ...] = ()) -> Path:
    """Write the whole report as one PDF (pandoc → Typst → ``typst.compile``); ``headers`` are Typst
    files included after the page set-up (the book's ``include-in-header``); ``lua_filters`` the
    book's Lua filters (:func:`analysis.report.engine.pandoc.filter_args`).

    Raises
    ------
    RenderError
        When pandoc or typst fails (the message holds their diagnostics).
    """
    import typst

    chunks = []
    for page, body in zip(pages, bodies):
        attrs = f"#{chapter_id(page.stem)}" + (" .unnumbered" if page.doc.unnumbered else "")
        chunks.append(f"# {page.title} {{{attrs}}}\n\n{body}\n")
    md = work / f"{name}.typ.md"
    meta = {"title": title, "subtitle": subtitle, "lang": "en", **({"author": author} if author else {})}
    md.write_text(yaml_block(meta) + "\n".join(chunks), encoding="utf-8")
    header = work / "typst-header.typ"
    header.write_text(_TYPST_HEADER, encoding="utf-8")
    typ = work / f"{name}.typ"
    includes = [arg for h in headers for arg in ("--include-in-header", str(h))]
    run_pandoc([md.name, "-f", "markdown", "-t", "typst", "--standalone", "--toc", "--toc-depth=2",
                "-V", f"papersize={papersize}", "-V", f"section-numbering={section_numbering}",
                "--include-in-header", header.name, *includes, *filter_args(lua_filters), "-o", typ.name], cwd=work)
    pdf = work / f"{name}.pdf"
    try:
        typst.compile(str(typ), output=str(pdf), root=str(work))
    except Exception as e:  # typst raises its own error type with the diagnostics
        raise RenderError(f"typst could not compile {typ}: {e}") from e
    return pdf
