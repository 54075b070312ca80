"""The HTML pages: one self-contained file per page (images and CSS embedded, MathML, no CDN), with
a navigation bar and a pager (:func:`write_html`).

The pages embed the book's own stylesheet (``format: html: css`` of ``_quarto.yml``,
``reports/report.css``: verdict colours, claim ids, wrapping links), read from the project being
rendered, after :data:`PAGE_CSS`, which stands in for what Quarto's Bootstrap theme gives its pages,
and carry the book's ``include-before-body`` and ``include-after-body`` files as Quarto's pages do (the
skip link, reports/_skip-link.html, and the script that makes wide tables and maths focusable, named
regions, reports/_a11y.html). The page's title, contents and body are its ``<main>`` landmark; the
navigation bar and the pager are named landmarks around it.
"""

from __future__ import annotations

import html
from pathlib import Path

from analysis.report.engine.pandoc import filter_args, run_pandoc, yaml_block
from analysis.report.engine.project import Page

#: the page layout of the offline pages only. Quarto's pages get theirs from its Bootstrap theme
#: (and these rules would fight it), so they are not in reports/report.css; the rules both engines
#: share (verdicts, claim ids, links) are there and follow these in every offline page.
PAGE_CSS = """
body { max-width: 64rem; margin: 0 auto; padding: 1rem 2rem 4rem; font-family: system-ui, -apple-system,
  "Segoe UI", Roboto, sans-serif; line-height: 1.5; color: #1d1d1f; }
nav.dynloss-nav { display: flex; flex-wrap: wrap; gap: .3rem 1rem; padding: .6rem 0; margin-bottom: 1rem;
  border-bottom: 1px solid #ddd; font-size: .95rem; }
nav.dynloss-nav a { text-decoration: none; color: #0b5cad; }
nav.dynloss-nav a.current { font-weight: 700; color: #1d1d1f; }
nav.dynloss-pager { display: flex; justify-content: space-between; margin-top: 3rem; padding-top: .6rem;
  border-top: 1px solid #ddd; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .88rem; font-variant-numeric: tabular-nums; }
th, td { padding: .25rem .6rem; border-bottom: 1px solid #e3e3e3; vertical-align: top; }
thead th { border-bottom: 2px solid #999; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3rem; }
.table-scroll { overflow-x: auto; }
.table-caption { font-weight: 600; margin: 1rem 0 .3rem; }
.table-caption + .table-scroll > table { margin-top: 0; }
figure { margin: 1.2rem 0; } figure img, img { max-width: 100%; height: auto; }
figcaption { font-size: .92rem; color: #333; }
pre { background: #f6f8fa; padding: .6rem .8rem; overflow-x: auto; font-size: .85rem; }
/* pandoc's default highlighting draws comments, attributes and numbers at 2.8-3.6:1 on the code
   background; these keep its hues at 4.5:1 or more */
code span.co, code span.wa, code span.in, code span.cv, code span.an { color: #3b7280; }
code span.at { color: #5a6b1d; } code span.dv, code span.bn, code span.fl { color: #2e7551; }
code span.pp { color: #8a5a00; } code span.ss { color: #9c4a6e; } code span.al, code span.er { color: #c00000; }
.callout-note, .callout-important, .callout-warning, .callout-tip { border-left: 4px solid #0b5cad;
  background: #f3f7fc; padding: .2rem 1rem; margin: 1rem 0; }
.callout-important, .callout-warning { border-left-color: #c0392b; background: #fcf3f2; }
.cell-warning pre { background: #fff6e0; }
"""


def stylesheet(css_files: tuple[Path, ...] = ()) -> str:
    """The offline pages' stylesheet: :data:`PAGE_CSS`, then each of the book's ``css_files``."""
    return "\n".join([PAGE_CSS, *(p.read_text(encoding="utf-8") for p in css_files)])


def nav_html(pages: list[Page], current: int, pdf_name: str | None) -> tuple[str, str]:
    """The navigation bar (every page, the current one marked, and the PDF) and the pager
    (previous and next page) of page ``current``."""
    links = []
    for i, page in enumerate(pages):
        cls = ' class="current" aria-current="page"' if i == current else ""
        links.append(f'<a href="{page.html_name}"{cls}>{html.escape(page.title)}</a>')
    if pdf_name:
        links.append(f'<a href="{pdf_name}">PDF</a>')
    top = '<nav class="dynloss-nav" aria-label="Chapters">' + "\n".join(links) + "</nav>\n"
    prev_link = (f'<a href="{pages[current - 1].html_name}">&larr; {html.escape(pages[current - 1].title)}</a>'
                 if current > 0 else "<span></span>")
    next_link = (f'<a href="{pages[current + 1].html_name}">{html.escape(pages[current + 1].title)} &rarr;</a>'
                 if current + 1 < len(pages) else "<span></span>")
    bottom = f'<nav class="dynloss-pager" aria-label="Previous and next page">{prev_link}{next_link}</nav>\n'
    return top, bottom


def write_html(pages: list[Page], bodies: list[str], *, work: Path, pdf_name: str | None, subtitle: str,
               book_title: str = "", css_files: tuple[Path, ...] = (), before_body: tuple[Path, ...] = (),
               after_body: tuple[Path, ...] = (), lua_filters: tuple[Path, ...] = ()) -> list[Path]:
    """Write one standalone HTML per page into ``work``; return the paths. Each page's ``<title>``
    is ``<page title> – <book title>``; ``css_files`` are the book's stylesheets
    (:attr:`analysis.report.engine.project.Project.html_css`), embedded after :data:`PAGE_CSS`;
    ``before_body`` and ``after_body`` (``Project.html_before_body``, ``html_after_body``) open and
    close every page's body, around the navigation bar, the ``<main>`` element and the pager;
    ``lua_filters`` the book's Lua filters (:func:`analysis.report.engine.pandoc.filter_args`)."""
    css = work / "dynloss.css"
    css.write_text(stylesheet(css_files), encoding="utf-8")
    paths = []
    for i, (page, body) in enumerate(zip(pages, bodies)):
        top, bottom = nav_html(pages, i, pdf_name)
        # pandoc's template puts the title block and the contents between the two: both in <main>
        (work / f"{page.stem}.nav-top.html").write_text(top + '<main id="content">\n', encoding="utf-8")
        (work / f"{page.stem}.nav-bottom.html").write_text("</main>\n" + bottom, encoding="utf-8")
        md = work / f"{page.stem}.html.md"
        meta = {"title": page.title, "subtitle": subtitle, "lang": "en",
                "pagetitle": f"{page.title} – {book_title}" if book_title else page.title}
        md.write_text(yaml_block(meta) + body, encoding="utf-8")
        out = work / page.html_name
        includes = [*(("--include-before-body", str(p)) for p in before_body),
                    ("--include-before-body", f"{page.stem}.nav-top.html"),
                    ("--include-after-body", f"{page.stem}.nav-bottom.html"),
                    *(("--include-after-body", str(p)) for p in after_body)]
        run_pandoc([
            md.name, "-f", "markdown", "-t", "html5", "--standalone", "--embed-resources", "--mathml",
            "--toc", "--toc-depth=2", "--css", css.name, *(arg for pair in includes for arg in pair),
            "--resource-path", ".", *filter_args(lua_filters), "-o", out.name,
        ], cwd=work)
        paths.append(out)
    return paths
