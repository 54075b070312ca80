"""Offline renderer for the report: the same ``.qmd`` sources Quarto renders, without Quarto.

Steps (:func:`render_report`):

1. read the book from ``_quarto.yml`` (:func:`load_project`);
2. parse every page (:mod:`analysis.report.qmd`) and run all their ``{python}`` chunks in ONE Jupyter
   kernel (nbclient + ipykernel; the namespace is reset between pages), stopping at the first
   error with the page, line and label of the chunk;
3. turn outputs into pandoc markdown: ``text/markdown`` as is, PNG/SVG figures as files,
   HTML as converted by pandoc, captions and labels as pandoc figures/tables, and ``@fig-``/
   ``@tbl-`` cross references as numbered links;
4. write one self-contained HTML file per page (images and CSS embedded, MathML, no CDN) with
   navigation links, and one PDF of the whole report through pandoc's Typst writer and the
   ``typst`` package. Outputs are built in a staging directory and moved into place at the end.

Quarto features this renderer supports (the book uses no other; ``quarto render`` renders the same
sources, see :mod:`analysis.report.quarto`):

- project: ``type: book``, ``output-dir``, ``execute-dir: project`` (cells run in the project root);
  ``render`` lists, ``pre-render`` scripts and ``quarto-required`` concern Quarto only;
- book: ``title``, ``author``, ``output-file``, ``chapters`` (plain paths or ``part``/``chapters``
  groups); a chapter's title from its front matter or its opening ``# Title``, ``{.unnumbered}``
  chapters and sections (also ``{-}``);
- ``execute``: ``echo``, ``eval``, ``include``, ``output`` (``asis`` too), ``warning``, ``error``;
  ``cache`` is Quarto's execution cache and has no offline counterpart (every render executes once);
- chunk options: those in :data:`analysis.report.qmd.KNOWN_OPTIONS` (``label``, ``fig-cap``,
  ``tbl-cap``, ``fig-alt`` besides the ``execute`` ones); ``fig-dpi`` and ``fig-format`` at the top
  level (PNG or SVG);
- markdown: pandoc's (pipe tables, TeX math as MathML and Typst math, fenced code), the
  ``{{< include >}}`` shortcode, ``@fig-``/``@tbl-`` cross references (numbered through the whole
  book: Quarto numbers them per chapter, e.g. "Table 3.2"), links to other pages
  (``[text](page.qmd#anchor)``, relative to the linking page: the page's HTML file, or the anchor
  in the PDF);
- formats: ``html`` with ``toc`` (its ``css`` and ``grid`` style Quarto's own page layout and are not
  used: the offline pages carry their own stylesheet) and ``typst`` with ``toc``, ``papersize``,
  ``section-numbering`` and ``include-in-header`` (Typst rules shared by both engines).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from analysis.report.qmd import Chunk, Markdown, QmdDocument, read_qmd

#: chunk option defaults (Quarto's, except where the project's ``execute:`` says otherwise)
DEFAULT_OPTIONS: dict[str, Any] = {
    "echo": True,
    "eval": True,
    "include": True,
    "output": True,
    "warning": True,
    "error": False,
}

_KIND_NAMES = {"fig": "Figure", "tbl": "Table"}
_XREF = re.compile(r"(?<![\w@.])@(?P<label>(?:fig|tbl)-[A-Za-z0-9_-]+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_QMD_LINK = re.compile(r"\]\((?P<path>[^()\s#]+\.qmd)(?P<anchor>#[^()\s]*)?\)")

_SETUP_CODE = """\
import warnings as _w
_w.simplefilter("default")
try:
    from matplotlib_inline.backend_inline import set_matplotlib_formats as _fmt
    _fmt("{fig_format}")
except Exception:  # matplotlib_inline missing: figures fall back to the kernel default
    pass
%config InlineBackend.print_figure_kwargs = {{"bbox_inches": "tight", "dpi": {fig_dpi}}}
del _w
"""

_CSS = """
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
a { overflow-wrap: anywhere; }
figure { margin: 1.2rem 0; } figure img, img { max-width: 100%; height: auto; }
figcaption { font-size: .92rem; color: #333; }
pre { background: #f6f8fa; padding: .6rem .8rem; overflow-x: auto; font-size: .85rem; }
.callout-note, .callout-important, .callout-warning, .callout-tip { border-left: 4px solid #0b5cad;
  background: #f3f7fc; padding: .2rem 1rem; margin: 1rem 0; }
.callout-important, .callout-warning { border-left-color: #c0392b; background: #fcf3f2; }
.cell-warning pre { background: #fff6e0; }
.verdict-holds { color: #1e7b34; font-weight: 600; } .verdict-fails { color: #b02a1f; font-weight: 600; }
.verdict-conditional { color: #9a6700; font-weight: 600; }
.verdict-holds, .verdict-fails, .verdict-conditional { white-space: nowrap; }
.claim-id { display: block; font-size: .8em; color: #555; margin-top: .15rem; }
"""

#: page set-up of the offline PDF (Quarto's book template has its own); the rules for tables and
#: figures come from the book's ``format: typst: include-in-header`` files, shared with Quarto
_TYPST_HEADER = """\
#set page(margin: (x: 1.8cm, y: 2cm))
#set text(size: 10pt)
#show raw: set text(size: 8pt)
"""


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


@dataclass
class RenderResult:
    """Paths written, warnings raised by cells, and the time of each stage (seconds)."""

    html: list[Path] = field(default_factory=list)
    pdf: Path | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# project


def load_project(root: str | Path) -> Project:
    """Read the book definition from ``<root>/_quarto.yml``.

    Raises
    ------
    RenderError
        When the file is missing or lists no chapters.
    """
    root = Path(root).resolve()
    cfg_path = root / "_quarto.yml"
    if not cfg_path.is_file():
        raise RenderError(f"No Quarto project at {root}: expected {cfg_path}")
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
    book = cfg.get("book") or {}
    chapters = [root / str(c) for c in _flatten_chapters(book.get("chapters") or [])]
    if not chapters:
        raise RenderError(f"{cfg_path}: `book: chapters:` lists no pages")
    project = cfg.get("project") or {}
    typst = ((cfg.get("format") or {}).get("typst") or {})
    headers = typst.get("include-in-header") or []
    headers = [headers] if isinstance(headers, str) else list(headers)
    missing = [h for h in headers if not (root / str(h)).is_file()]
    if missing:
        raise RenderError(f"{cfg_path}: format.typst.include-in-header names missing files {missing}")
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
        typst_headers=tuple(root / str(h) for h in headers),
        fig_format=fig_format,
        fig_dpi=int(cfg.get("fig-dpi", 150)),
        papersize=str(typst.get("papersize", "a4")),
        section_numbering=str(typst.get("section-numbering", "1.1")),
    )


def _flatten_chapters(items: list[Any]) -> list[str]:
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            if "href" in item:
                out.append(str(item["href"]))
            out.extend(_flatten_chapters(item.get("chapters") or []))
    return out


# --------------------------------------------------------------------------------------------
# kernel


def _kernel_spec_dir(tmp: Path) -> tuple[Path, str]:
    """Write a kernelspec that runs ipykernel in *this* interpreter (no global install needed)."""
    name = "dynloss-python"
    kdir = tmp / "kernels" / name
    kdir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (dynloss report)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (kdir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return tmp / "kernels", name


def _effective_options(chunk: Chunk, defaults: dict[str, Any]) -> dict[str, Any]:
    opts = {**DEFAULT_OPTIONS, **defaults, **chunk.options}
    if opts.get("include") is False:
        opts["echo"] = False
        opts["output"] = False
    return opts


def execute_pages(
    pages: list[Page],
    *,
    defaults: dict[str, Any],
    env: dict[str, str],
    cwd: Path,
    timeout: int = 600,
    fig_format: str = "png",
    fig_dpi: int = 150,
) -> list[list[list[dict[str, Any]]]]:
    """Run every evaluated chunk of every page in one kernel; return outputs per page per chunk.

    Raises
    ------
    RenderError
        On the first chunk that raises (unless the chunk has ``error: true``), naming the page,
        line and label, with the exception message and traceback.
    """
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.v4.new_notebook()
    plan: list[tuple[int, int, Chunk | None]] = []  # (page, chunk index, chunk) per notebook cell
    nb.cells.append(nbformat.v4.new_code_cell(_SETUP_CODE.format(fig_format=fig_format, fig_dpi=int(fig_dpi))))
    plan.append((-1, -1, None))
    for p, page in enumerate(pages):
        if p > 0:
            nb.cells.append(nbformat.v4.new_code_cell("%reset -f"))
            plan.append((p, -1, None))
        for c, chunk in enumerate(page.doc.chunks):
            if chunk.lang != "python" or not _effective_options(chunk, defaults)["eval"]:
                continue
            cell = nbformat.v4.new_code_cell(chunk.code)
            if _effective_options(chunk, defaults)["error"]:
                cell.metadata["tags"] = ["raises-exception"]
            nb.cells.append(cell)
            plan.append((p, c, chunk))

    outputs: list[list[list[dict[str, Any]]]] = [[[] for _ in page.doc.chunks] for page in pages]
    # everything the kernel writes (connection file, sockets, its own temporary files) goes into one
    # folder, removed with the kernel in `finally` (`dynloss report` turns SIGTERM into an exception)
    with tempfile.TemporaryDirectory(prefix="dynloss-kernel-") as tmp:
        kernel_dirs, name = _kernel_spec_dir(Path(tmp))
        ksm = KernelSpecManager(kernel_dirs=[str(kernel_dirs)])
        km = KernelManager(kernel_name=name, kernel_spec_manager=ksm, transport="ipc",
                           ip=str(Path(tmp) / "kernel-ipc"), connection_file=str(Path(tmp) / "kernel.json"))
        client = NotebookClient(
            nb, km=km, kernel_name=name, timeout=timeout, allow_errors=False,
            resources={"metadata": {"path": str(cwd)}},
        )
        (Path(tmp) / "tmp").mkdir()
        kernel_env = {**os.environ, **env, "TMPDIR": str(Path(tmp) / "tmp")}
        try:
            with client.setup_kernel(env=kernel_env, cwd=str(cwd)):
                for index, cell in enumerate(nb.cells):
                    p, c, chunk = plan[index]
                    try:
                        client.execute_cell(cell, index)
                    except CellExecutionError as e:
                        where = chunk.where() if chunk is not None else "the renderer's set-up cell"
                        raise RenderError(f"Chunk at {where} failed:\n{_strip_ansi(str(e))}") from None
                    if chunk is not None:
                        outputs[p][c] = [dict(o) for o in cell.get("outputs", [])]
        finally:
            # the client does not own a kernel manager it was given: stop the kernel here
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    return outputs


def _strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


# --------------------------------------------------------------------------------------------
# outputs -> markdown


@dataclass
class _Numbering:
    numbers: dict[str, int] = field(default_factory=dict)
    pages: dict[str, str] = field(default_factory=dict)
    #: resolved source path of each page -> its stem (for links between pages)
    files: dict[Path, str] = field(default_factory=dict)

    def add(self, label: str, page: str) -> None:
        kind = label.split("-", 1)[0]
        if label in self.numbers:
            raise RenderError(f"Duplicate label {label!r} (pages {self.pages[label]} and {page})")
        self.numbers[label] = 1 + sum(1 for k in self.numbers if k.split("-", 1)[0] == kind)
        self.pages[label] = page

    def name(self, label: str) -> str:
        return f"{_KIND_NAMES[label.split('-', 1)[0]]} {self.numbers[label]}"


def _number_labels(pages: list[Page]) -> _Numbering:
    numbering = _Numbering()
    for page in pages:
        numbering.files[page.source.resolve()] = page.stem
        for chunk in page.doc.chunks:
            label = chunk.label
            if label and label.split("-", 1)[0] in _KIND_NAMES:
                numbering.add(label, page.html_name)
    return numbering


def resolve_crossrefs(text: str, numbering: _Numbering, *, target: str, page: str, warnings: list[str]) -> str:
    """Replace ``@fig-x`` / ``@tbl-x`` with numbered links (cross-page links for HTML)."""

    def sub(m: re.Match[str]) -> str:
        label = m.group("label")
        if label not in numbering.numbers:
            warnings.append(f"{page}: unresolved cross reference @{label}")
            return f"**?{label}**"
        href = f"#{label}"
        if target == "html" and numbering.pages[label] != page:
            href = f"{numbering.pages[label]}#{label}"
        return f"[{numbering.name(label)}]({href})"

    return _outside_code(text, lambda line: _XREF.sub(sub, line))


def _outside_code(text: str, edit) -> str:
    """``text`` with ``edit`` applied to each line outside fenced code blocks."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        s = line.strip()
        if s.startswith("```") or s.startswith("~~~"):
            ticks = s[:3]
            fence = None if fence == ticks else (fence or ticks)
            out.append(line)
        else:
            out.append(line if fence else edit(line))
    return "".join(out)


def chapter_id(stem: str) -> str:
    """The anchor of a page's chapter heading in the PDF (a link to a page without ``#anchor``)."""
    return f"chapter-{stem}"


def resolve_links(text: str, numbering: _Numbering, *, target: str, page: Page, warnings: list[str]) -> str:
    """Point markdown links to other pages (``[text](other.qmd#anchor)``, relative to the page's
    source, as Quarto reads them) at the rendered page: ``other.html#anchor`` in HTML (the
    offline pages sit side by side), ``#anchor`` in the one-document PDF (the chapter's heading
    when there is no anchor). Links in code stay as they are."""

    def sub(m: re.Match[str]) -> str:
        dest = (page.source.parent / m.group("path")).resolve()
        stem = numbering.files.get(dest)
        if stem is None:
            warnings.append(f"{page.html_name}: link to {m.group('path')}, which is not a page of the book")
            return m.group(0)
        anchor = m.group("anchor") or ""
        if target == "html":
            href = anchor if (stem == page.stem and anchor) else f"{stem}.html{anchor}"
        else:
            href = anchor or f"#{chapter_id(stem)}"
        return f"]({href})"

    return _outside_code(text, lambda line: _QMD_LINK.sub(sub, line))


def _html_to_markdown(fragment: str) -> str:
    import pypandoc

    return pypandoc.convert_text(fragment, "markdown-raw_html-native_divs-native_spans", format="html")


def _code_block(text: str, classes: str = "") -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    attr = f" {{{classes}}}" if classes else ""
    return f"{fence}{attr}\n{text.rstrip()}\n{fence}\n"


def chunk_markdown(
    chunk: Chunk,
    outputs: list[dict[str, Any]],
    *,
    options: dict[str, Any],
    target: str,
    numbering: _Numbering,
    figure_dir: Path,
    figure_prefix: str,
    warnings: list[str],
) -> str:
    """Pandoc markdown for one executed chunk (code if echoed, then its outputs)."""
    if not options.get("include", True):
        return ""
    parts: list[str] = []
    if options.get("echo"):
        parts.append(_code_block(chunk.code, ".python .cell-code"))
    output_opt = options.get("output", True)
    label = chunk.label
    kind = label.split("-", 1)[0] if label else None
    n_fig = 0
    body: list[str] = []
    if output_opt is not False:
        for out in outputs:
            otype = out.get("output_type")
            if otype == "stream":
                text = out.get("text", "")
                if out.get("name") == "stderr":
                    if options.get("warning", True) and text.strip():
                        warnings.append(f"{chunk.where()}: {text.strip()}")
                        body.append(f"::: {{.cell-warning}}\n{_code_block(text)}:::\n")
                elif output_opt == "asis":
                    body.append(text)
                elif text.strip():
                    body.append(_code_block(text))
            elif otype == "error":
                body.append(_code_block(_strip_ansi("\n".join(out.get("traceback", []))), ".error"))
            elif otype in ("display_data", "execute_result"):
                data = out.get("data", {})
                if "image/png" in data or "image/svg+xml" in data:
                    n_fig += 1
                    ext = "png" if "image/png" in data else "svg"
                    fname = f"{figure_prefix}-{n_fig}.{ext}"
                    path = figure_dir / fname
                    if ext == "png":
                        path.write_bytes(base64.b64decode(data["image/png"]))
                    else:
                        svg = data["image/svg+xml"]
                        path.write_text(svg if isinstance(svg, str) else "".join(svg), encoding="utf-8")
                    body.append(_figure_markdown(f"figures/{fname}", options, label if n_fig == 1 else None,
                                                 numbering, target))
                elif "text/markdown" in data:
                    body.append(_as_text(data["text/markdown"]))
                elif "text/html" in data:
                    body.append(_html_to_markdown(_as_text(data["text/html"])))
                elif "text/plain" in data:
                    body.append(_code_block(_as_text(data["text/plain"])))
    if kind == "tbl":
        caption = str(options.get("tbl-cap", "")).strip()
        table_md = "\n".join(b.rstrip() + "\n" for b in body)
        if target == "html":
            # the caption sits above the table's scrolling box, so that it wraps at the page's
            # width however wide the table is (as Quarto's figcaption does)
            if label in numbering.numbers:
                caption = f"{numbering.name(label)}: {caption}" if caption else numbering.name(label)
            head = f"::: {{.table-caption}}\n{caption}\n:::\n\n" if caption else ""
            parts.append(f":::: {{#{label} .table-wrap}}\n{head}::: {{.table-scroll}}\n{table_md}\n:::\n::::\n")
        else:
            if caption:
                table_md = f"{table_md}\n: {caption}\n"
            parts.append(f"::: {{#{label} .table-wrap}}\n{table_md}\n:::\n")
    elif label and kind != "fig":
        parts.append(f"::: {{#{label}}}\n" + "\n".join(body) + "\n:::\n")
    else:
        parts.extend(body)
    return "\n".join(p.rstrip() + "\n" for p in parts if p.strip())


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else "".join(value)


def _figure_markdown(src: str, options: dict[str, Any], label: str | None, numbering: _Numbering, target: str) -> str:
    caption = str(options.get("fig-cap", "")).strip()
    alt = str(options.get("fig-alt", "")).strip()
    attrs: list[str] = []
    if label and label.startswith("fig-"):
        attrs.append(f"#{label}")
        if target == "html" and label in numbering.numbers:
            caption = f"{numbering.name(label)}: {caption}" if caption else numbering.name(label)
    if target == "typst":
        attrs.append('width="100%"')
    if alt:
        attrs.append(f'fig-alt="{html.escape(alt, quote=True)}"')
    attr = f"{{{' '.join(attrs)}}}" if attrs else ""
    if not caption:
        # a lone image with no caption must not become a numbered figure
        return f"![]({src}){attr}\\\n"
    return f"![{caption}]({src}){attr}\n"


def page_markdown(
    page: Page,
    outputs: list[list[dict[str, Any]]],
    *,
    defaults: dict[str, Any],
    target: str,
    numbering: _Numbering,
    figure_dir: Path,
    warnings: list[str],
) -> str:
    """The page body as pandoc markdown for ``target`` (``"html"`` or ``"typst"``)."""
    parts: list[str] = []
    ci = 0
    for block in page.doc.blocks:
        if isinstance(block, Markdown):
            text = resolve_crossrefs(block.text, numbering, target=target, page=page.html_name, warnings=warnings)
            parts.append(resolve_links(text, numbering, target=target, page=page, warnings=warnings))
            continue
        options = _effective_options(block, defaults)
        prefix = f"{page.stem}-{block.label or f'chunk{ci + 1}'}"
        sink = warnings if target == "html" else []
        md = chunk_markdown(block, outputs[ci], options=options, target=target, numbering=numbering,
                            figure_dir=figure_dir, figure_prefix=prefix, warnings=sink)
        parts.append("\n" + resolve_links(md, numbering, target=target, page=page, warnings=sink) + "\n")
        ci += 1
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# pandoc / typst


def _pandoc(args: list[str], *, cwd: Path) -> None:
    import subprocess

    import pypandoc

    exe = pypandoc.get_pandoc_path()
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RenderError(f"pandoc {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")


def _nav_html(pages: list[Page], current: int, pdf_name: str | None) -> tuple[str, str]:
    links = []
    for i, page in enumerate(pages):
        cls = ' class="current" aria-current="page"' if i == current else ""
        links.append(f'<a href="{page.html_name}"{cls}>{html.escape(page.title)}</a>')
    if pdf_name:
        links.append(f'<a href="{pdf_name}">PDF</a>')
    top = '<nav class="dynloss-nav">' + "\n".join(links) + "</nav>\n"
    prev_link = (f'<a href="{pages[current - 1].html_name}">&larr; {html.escape(pages[current - 1].title)}</a>'
                 if current > 0 else "<span></span>")
    next_link = (f'<a href="{pages[current + 1].html_name}">{html.escape(pages[current + 1].title)} &rarr;</a>'
                 if current + 1 < len(pages) else "<span></span>")
    bottom = f'<nav class="dynloss-pager">{prev_link}{next_link}</nav>\n'
    return top, bottom


def _yaml_block(meta: dict[str, Any]) -> str:
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n\n"


def write_html(pages: list[Page], bodies: list[str], *, work: Path, pdf_name: str | None, subtitle: str,
               book_title: str = "") -> list[Path]:
    """Write one standalone HTML per page into ``work``; return the paths. Each page's ``<title>``
    is ``<page title> – <book title>``."""
    css = work / "dynloss.css"
    css.write_text(_CSS, encoding="utf-8")
    paths = []
    for i, (page, body) in enumerate(zip(pages, bodies)):
        top, bottom = _nav_html(pages, i, pdf_name)
        (work / f"{page.stem}.nav-top.html").write_text(top, encoding="utf-8")
        (work / f"{page.stem}.nav-bottom.html").write_text(bottom, encoding="utf-8")
        md = work / f"{page.stem}.html.md"
        meta = {"title": page.title, "subtitle": subtitle, "lang": "en",
                "pagetitle": f"{page.title} – {book_title}" if book_title else page.title}
        md.write_text(_yaml_block(meta) + body, encoding="utf-8")
        out = work / page.html_name
        _pandoc([
            md.name, "-f", "markdown", "-t", "html5", "--standalone", "--embed-resources", "--mathml",
            "--toc", "--toc-depth=2", "--css", css.name, "--include-before-body", f"{page.stem}.nav-top.html",
            "--include-after-body", f"{page.stem}.nav-bottom.html", "--resource-path", ".", "-o", out.name,
        ], cwd=work)
        paths.append(out)
    return paths


def write_pdf(pages: list[Page], bodies: list[str], *, work: Path, title: str, subtitle: str, name: str,
              author: str = "", headers: tuple[Path, ...] = (), papersize: str = "a4",
              section_numbering: str = "1.1") -> Path:
    """Write the whole report as one PDF (pandoc → Typst → ``typst.compile``); ``headers`` are Typst
    files included after the page set-up (the book's ``include-in-header``)."""
    import typst

    chunks = []
    for page, body in zip(pages, bodies):
        attrs = f"#{chapter_id(page.stem)}" + (" .unnumbered" if page.doc.unnumbered else "")
        chunks.append(f"# {page.title} {{{attrs}}}\n\n{body}\n")
    md = work / f"{name}.typ.md"
    meta = {"title": title, "subtitle": subtitle, "lang": "en", **({"author": author} if author else {})}
    md.write_text(_yaml_block(meta) + "\n".join(chunks), encoding="utf-8")
    header = work / "typst-header.typ"
    header.write_text(_TYPST_HEADER, encoding="utf-8")
    typ = work / f"{name}.typ"
    includes = [arg for h in headers for arg in ("--include-in-header", str(h))]
    _pandoc([md.name, "-f", "markdown", "-t", "typst", "--standalone", "--toc", "--toc-depth=2",
             "-V", f"papersize={papersize}", "-V", f"section-numbering={section_numbering}",
             "--include-in-header", header.name, *includes, "-o", typ.name], cwd=work)
    pdf = work / f"{name}.pdf"
    try:
        typst.compile(str(typ), output=str(pdf), root=str(work))
    except Exception as e:  # typst raises its own error type with the diagnostics
        raise RenderError(f"typst could not compile {typ}: {e}") from e
    return pdf


# --------------------------------------------------------------------------------------------
# entry point


def render_report(
    root: str | Path,
    *,
    env: dict[str, str] | None = None,
    output_dir: str | Path | None = None,
    formats: tuple[str, ...] = ("html", "pdf"),
    subtitle: str = "",
    timeout: int = 600,
) -> RenderResult:
    """Render the book defined by ``<root>/_quarto.yml`` offline.

    Parameters
    ----------
    root : path
        Project root (holding ``_quarto.yml``).
    env : dict, optional
        Extra environment for the kernel (e.g. ``{"DYNLOSS_PRESET": "digits-tiny"}``).
    output_dir : path, optional
        Where the HTML pages and the PDF go; default: the project's ``output-dir``.
    formats : tuple of {"html", "pdf"}
    subtitle : str
        Shown under each page title (e.g. the preset).

    Raises
    ------
    RenderError
        A chunk failed (e.g. results are missing: the message names the command that makes
        them), or pandoc / typst failed. Nothing is written to ``output_dir`` in that case.
    """
    unknown = set(formats) - {"html", "pdf"}
    if unknown:
        raise ValueError(f"Expected `formats` among ('html', 'pdf'), got {sorted(unknown)}")
    t0 = time.perf_counter()
    project = load_project(root)
    out_dir = Path(output_dir).resolve() if output_dir is not None else project.output_dir
    pages = [Page(source=p, doc=read_qmd(p), stem=p.stem) for p in project.chapters]
    stems = [p.stem for p in pages]
    if len(set(stems)) != len(stems):
        raise RenderError(f"Two pages would write the same HTML file: {stems}")
    result = RenderResult()
    numbering = _number_labels(pages)
    result.labels = list(numbering.numbers)
    t1 = time.perf_counter()
    outputs = execute_pages(pages, defaults=project.execute, env=dict(env or {}), cwd=project.root, timeout=timeout,
                            fig_format=project.fig_format, fig_dpi=project.fig_dpi)
    t2 = time.perf_counter()
    result.timings.update(parse=t1 - t0, execute=t2 - t1)

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".render-", dir=out_dir) as tmp:
        work = Path(tmp)
        (work / "figures").mkdir()
        pdf_name = f"{project.output_file}.pdf" if "pdf" in formats else None
        if "html" in formats:
            bodies = [page_markdown(page, outputs[i], defaults=project.execute, target="html",
                                    numbering=numbering, figure_dir=work / "figures", warnings=result.warnings)
                      for i, page in enumerate(pages)]
            html_paths = write_html(pages, bodies, work=work, pdf_name=pdf_name, subtitle=subtitle,
                                    book_title=project.title)
        t3 = time.perf_counter()
        if "pdf" in formats:
            sink: list[str] = [] if "html" in formats else result.warnings
            bodies = [page_markdown(page, outputs[i], defaults=project.execute, target="typst",
                                    numbering=numbering, figure_dir=work / "figures", warnings=sink)
                      for i, page in enumerate(pages)]
            pdf_path = write_pdf(pages, bodies, work=work, title=project.title, subtitle=subtitle,
                                 author=project.author, headers=project.typst_headers,
                                 papersize=project.papersize, section_numbering=project.section_numbering,
                                 name=project.output_file)
        t4 = time.perf_counter()
        # move into place only once everything succeeded (same filesystem: atomic renames)
        if "html" in formats:
            for p in html_paths:
                dest = out_dir / p.name
                os.replace(p, dest)
                result.html.append(dest)
        if "pdf" in formats:
            dest = out_dir / pdf_path.name
            os.replace(pdf_path, dest)
            result.pdf = dest
        result.timings.update(html=t3 - t2, pdf=t4 - t3)
    result.timings["total"] = time.perf_counter() - t0
    return result
