"""Numbering and links: ``@fig-``/``@tbl-`` labels numbered through the whole book
(:func:`number_labels`), cross references replaced by numbered links (:func:`resolve_crossrefs`),
links to other pages pointed at the rendered page or the PDF's chapter (:func:`resolve_links`).

Ours: Quarto numbers per chapter ("Table 3.2"), the offline engine through the book ("Table 12").
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from analysis.report.engine.project import Page, RenderError

KIND_NAMES = {"fig": "Figure", "tbl": "Table"}
_XREF = re.compile(r"(?<![\w@.])@(?P<label>(?:fig|tbl)-[A-Za-z0-9_-]+)")
_QMD_LINK = re.compile(r"\]\((?P<path>[^()\s#]+\.qmd)(?P<anchor>#[^()\s]*)?\)")
#: a link to a file the report ships beside its pages (``[text](../data/results/x.csv)``: a relative
#: path that is no page, no anchor and no URL; images, ``![..](..)``, are not links)
_FILE_LINK = re.compile(r"(?<!!)\[(?P<text>[^\[\]]*)\]\((?P<path>(?![a-z][a-z0-9+.-]*:|/|#)[^()\s#]+(?<!\.qmd))\)")


@dataclass
class Numbering:
    """The number and page of every figure and table label, and the stem of every page."""

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
        return f"{KIND_NAMES[label.split('-', 1)[0]]} {self.numbers[label]}"


def number_labels(pages: list[Page]) -> Numbering:
    """Number the ``fig-``/``tbl-`` chunk labels of ``pages`` in book order (one count per kind).

    Raises
    ------
    RenderError
        When a label is used twice.
    """
    numbering = Numbering()
    for page in pages:
        numbering.files[page.source.resolve()] = page.stem
        for chunk in page.doc.chunks:
            label = chunk.label
            if label and label.split("-", 1)[0] in KIND_NAMES:
                numbering.add(label, page.html_name)
    return numbering


def resolve_crossrefs(text: str, numbering: Numbering, *, target: str, page: str, warnings: list[str]) -> str:
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


def _outside_code(text: str, edit: Callable[[str], str]) -> str:
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


def resolve_links(text: str, numbering: Numbering, *, target: str, page: Page, warnings: list[str]) -> str:
    """Point markdown links to other pages (``[text](other.qmd#anchor)``, relative to the page's
    source, as Quarto reads them) at the rendered page: ``other.html#anchor`` in HTML (the
    offline pages sit side by side), ``#anchor`` in the one-document PDF (the chapter's heading
    when there is no anchor). Links to files the report ships (``[text](../data/results/x.csv)``,
    :mod:`analysis.report.downloads`) become relative to the output folder, where the offline
    pages are. Links in code stay as they are."""

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

    def shipped(m: re.Match[str]) -> str:
        dest = (page.source.parent / m.group("path")).resolve()
        root = Path(os.path.commonpath([f.parent for f in (*numbering.files, page.source.resolve())]))
        try:  # the book's root: the folder of its pages' sources (index.qmd is there)
            href = dest.relative_to(root).as_posix()
        except ValueError:
            warnings.append(f"{page.html_name}: link to {m.group('path')}, outside the book")
            return m.group(0)
        return f"[{m.group('text')}]({href})"

    return _outside_code(text, lambda line: _QMD_LINK.sub(sub, _FILE_LINK.sub(shipped, line)))
