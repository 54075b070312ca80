"""The offline engine: the report's ``.qmd`` sources rendered without Quarto, one job per module.

Steps (:func:`render_report`, in :mod:`~analysis.report.engine.render`):

1. read the book from ``_quarto.yml`` (:mod:`~analysis.report.engine.project`: :func:`load_project`);
2. parse every page (:mod:`analysis.report.qmd`), number its figures and tables
   (:mod:`~analysis.report.engine.crossref`) and run all their ``{python}`` chunks in ONE Jupyter
   kernel (:mod:`~analysis.report.engine.kernel`: nbclient + ipykernel; the namespace is reset
   between pages), stopping at the first error with the page, line and label of the chunk;
3. turn outputs into pandoc markdown (:mod:`~analysis.report.engine.outputs`): ``text/markdown`` as
   is, PNG/SVG figures as files, HTML as converted by pandoc, captions and labels as pandoc
   figures/tables, and ``@fig-``/``@tbl-`` cross references as numbered links;
4. write one self-contained HTML file per page (:mod:`~analysis.report.engine.html`: images and CSS
   embedded, MathML, no CDN) with navigation links, and one PDF of the whole report
   (:mod:`~analysis.report.engine.pdf`: pandoc's Typst writer and the ``typst`` package). Outputs
   are built in a staging directory and moved into place at the end.

Quarto features this renderer supports (the book uses no other; ``quarto render`` renders the same
sources, see :mod:`analysis.report.quarto`):

- project: ``type: book``, ``output-dir``, ``execute-dir: project`` (cells run in the project root);
  ``render`` lists, ``pre-render`` scripts and ``quarto-required`` concern Quarto only;
  ``post-render`` Python scripts run once the pages are in place (as Quarto runs them: in the
  project root, ``QUARTO_PROJECT_OUTPUT_DIR`` naming the output folder);
- book: ``title``, ``author``, ``output-file``, ``chapters`` (plain paths or ``part``/``chapters``
  groups); a chapter's title from its front matter or its opening ``# Title``, ``{.unnumbered}``
  chapters and sections (also ``{-}``);
- ``execute``: ``echo``, ``eval``, ``include``, ``output`` (``asis`` too), ``warning``, ``error``;
  ``cache`` is Quarto's execution cache and has no offline counterpart (every render executes once);
- chunk options: those in :data:`analysis.report.qmd.KNOWN_OPTIONS` (``label``, ``fig-cap``,
  ``tbl-cap``, ``fig-alt`` besides the ``execute`` ones); ``fig-dpi`` and ``fig-format`` at the top
  level (PNG or SVG);
- ``filters``: the book's Lua filters (paths; ``at:`` is Quarto's stage and is ignored), applied by
  pandoc to every page and the PDF, then the engine's own ``fig-alt.lua`` (an image's ``fig-alt``
  as the HTML ``alt`` and Typst's ``image(alt: …)``, as Quarto writes it);
- markdown: pandoc's (pipe tables, TeX math as MathML and Typst math, fenced code), the
  ``{{< include >}}`` shortcode, ``@fig-``/``@tbl-`` cross references (numbered through the whole
  book: Quarto numbers them per chapter, e.g. "Table 3.2"), links to other pages
  (``[text](page.qmd#anchor)``, relative to the linking page: the page's HTML file, or the anchor
  in the PDF);
- formats: ``html`` with ``toc`` and ``css`` (the book's stylesheet, ``reports/report.css``, embedded
  in every offline page after the engine's own page layout), ``include-before-body`` and
  ``include-after-body`` (the skip link and the accessibility script, ``reports/_skip-link.html``,
  ``reports/_a11y.html``; ``grid`` styles Quarto's page layout and is not used) and ``typst`` with ``toc``, ``papersize``, ``section-numbering`` and
  ``include-in-header`` (Typst rules shared by both engines).
"""

from analysis.report.engine.project import Page, Project, RenderError, load_project
from analysis.report.engine.render import RenderResult, render_report

__all__ = ["Page", "Project", "RenderError", "RenderResult", "load_project", "render_report"]
