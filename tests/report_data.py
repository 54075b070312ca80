"""What the report tests render: digits-tiny trained, analysed and audited once per test session
(shared by the offline and the engine-parity tests), and the cells of an HTML table by its id."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

PRESET = "digits-tiny"


def digits_tiny_results(base: Path) -> Path:
    """The results root (``<base>/results``) holding ``digits-tiny/`` and ``audit.json``; made on the
    first call of a session, reused afterwards (``base`` is the session's temporary root)."""
    from analysis.audit import evaluate_all
    from analysis.cli import main

    cache, results = base / "cache", base / "results"
    done = results / ".complete"
    if done.is_file():
        return results
    assert main(["train", "--preset", PRESET, "--cache", str(cache), "--quiet"]) == 0
    assert main(["analyze", "--preset", PRESET, "--cache", str(cache), "--out", str(results / PRESET),
                 "--resamples", "2000"]) == 0
    (results / "audit.json").write_text(json.dumps([r.to_dict() for r in evaluate_all()]))
    done.write_text("")
    return results


class _Tables(HTMLParser):
    """Collect the cell texts of the table inside the element with a given id."""

    def __init__(self, target: str):
        super().__init__()
        self.target, self.depth, self.rows, self._cell = target, 0, [], None

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += tag not in ("br", "img", "col", "hr", "meta", "input", "link")
        elif dict(attrs).get("id") == self.target:
            self.depth = 1
        if self.depth and tag == "tr":
            self.rows.append([])
        if self.depth and tag in ("td", "th"):
            self._cell = ""

    def handle_startendtag(self, tag, attrs):  # <col ... />: no content, no depth change
        pass

    def handle_endtag(self, tag):
        if self.depth and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(self._cell.strip())
            self._cell = None
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def table_rows(html: str, label: str) -> list[list[str]]:
    """The rows (header first) of the table inside the element ``id=label``, as cell texts."""
    parser = _Tables(label)
    parser.feed(html)
    return [r for r in parser.rows if r]


def html_table(html: str, label: str) -> pd.DataFrame:
    header, *body = table_rows(html, label)
    return pd.DataFrame(body, columns=header)


def copy_checkout(root: Path, dst: Path) -> Path:
    """Copy the checkout's files (tracked and untracked, not ignored) to ``dst`` and commit them in a
    fresh git repository there, so that a render can run in the copy and its ``git status`` be read
    without touching the checkout's own ``_output/`` or caches. Returns ``dst``."""
    import shutil
    import subprocess

    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = root / rel
        if src.is_file() and not src.is_symlink():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    git = ["git", "-c", "user.name=dynloss tests", "-c", "user.email=tests@dynloss.invalid"]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot", "--no-verify"]):
        subprocess.run([*git, *cmd], cwd=dst, check=True, capture_output=True)
    return dst


def report_figures(results: Path, root: Path) -> dict[str, tuple[object, str]]:
    """Every figure of the book by label, as its cell draws it from the results under ``results``
    (the ``<results>/<preset>`` set): ``(figure, alt text)``. Each page's first chunk (its imports
    and ``ctx``) runs, then each ``fig-`` chunk with ``shown`` returning its two arguments."""
    import ast
    import os

    from analysis.report.engine import load_project
    from analysis.report.qmd import read_qmd

    saved = {k: os.environ.get(k) for k in ("DYNLOSS_PRESET", "DYNLOSS_RESULTS_DIR")}
    os.environ.update(DYNLOSS_PRESET=PRESET, DYNLOSS_RESULTS_DIR=str(results))
    figures: dict[str, tuple[object, str]] = {}
    try:
        for page in load_project(root).chapters:
            chunks = read_qmd(page).chunks
            fig_chunks = [c for c in chunks if c.label and c.label.startswith("fig-")]
            if not fig_chunks:
                continue
            ns: dict = {}
            exec(compile(chunks[0].code, str(page), "exec"), ns)
            ns["shown"] = lambda figure, alt: (figure, alt)
            for chunk in fig_chunks:
                tree = ast.parse(chunk.code)
                last = tree.body.pop()
                exec(compile(tree, chunk.where(), "exec"), ns)
                figures[chunk.label] = eval(compile(ast.Expression(last.value), chunk.where(), "eval"), ns)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return figures


def html_figure_alts(html: str) -> dict[str, str]:
    """The ``alt`` of the image inside each ``fig-`` figure of ``html``, unescaped, by label (the
    figure's id or, in Quarto's pages, the id of the div around it)."""
    import html as html_lib
    import re

    out = {}
    for m in re.finditer(r'id="(fig-[A-Za-z0-9_-]+)"[^>]*>([\s\S]*?)</figure>', html):
        img = re.search(r'<img\b[^>]*?\balt="([^"]*)"', m.group(2))
        if img and m.group(1) not in out:
            out[m.group(1)] = html_lib.unescape(img.group(1))
    return out


def pdf_alts(pdf: Path) -> list[str]:
    """The alternative texts (``/Alt`` entries) of a PDF's objects."""
    from pypdf import PdfReader
    from pypdf.generic import DictionaryObject, IndirectObject

    reader = PdfReader(pdf)
    ids = {(i, gen) for gen, objs in reader.xref.items() for i in objs} | {(i, 0) for i in reader.xref_objStm}
    alts = []
    for i, gen in sorted(ids):
        try:
            obj = reader.get_object(IndirectObject(i, gen, reader))
        except Exception:  # free or broken entries: not ours to judge here
            continue
        if isinstance(obj, DictionaryObject) and "/Alt" in obj:
            alts.append(str(obj["/Alt"]))
    return alts
class _Links(HTMLParser):
    """Collect the ``href`` of every ``<a>`` and the ``src`` of every ``<img>`` of a page."""

    def __init__(self):
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.targets.append(a["href"])
        elif tag == "img" and a.get("src"):
            self.targets.append(a["src"])


def unresolved_links(out: Path) -> list[str]:
    """Every relative link or image of every HTML page under ``out`` (Quarto's ``site_libs`` left
    out) that names no file in ``out``: ``page -> target`` (anchors and queries ignored; a folder
    stands for its ``index.html``, as a web server serves it; web addresses, ``mailto:`` and
    ``data:`` are not files of the output)."""
    import re
    from urllib.parse import unquote, urlsplit

    bad, checked = [], 0
    for page in sorted(out.rglob("*.html")):
        if "site_libs" in page.relative_to(out).parts:
            continue
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for target in parser.targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "//")):
                continue
            path = unquote(urlsplit(target).path)
            if not path:
                continue
            checked += 1
            dest = (page.parent / path).resolve()
            if dest.is_dir():  # a folder link (Quarto's to the book's first page): its index.html
                dest = dest / "index.html"
            if not dest.is_file() or out.resolve() not in dest.parents:
                bad.append(f"{page.relative_to(out)} -> {target}")
    assert checked, f"no relative link in the pages under {out}"
    return bad
#: a PDF page's body: what lies between the top and bottom 7.5 % of the page, where the running
#: header and the page number are (Quarto's book: header at 45–57 pt, number at 790–801 pt of 842)
PDF_MARGIN_SHARE = 0.075
#: fewer body words than this and a page counts as blank (or holding only its header and footer)
PDF_MIN_BODY_WORDS = 10


def pdf_body_words(pdf: Path) -> list[int]:
    """The number of words in the body of each page of ``pdf`` (``pdftotext -bbox``, poppler)."""
    import re
    import subprocess

    xhtml = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True,
                           check=True).stdout
    counts = []
    for page in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', xhtml, re.S):
        height = float(page.group(2))
        top, bottom = PDF_MARGIN_SHARE * height, (1 - PDF_MARGIN_SHARE) * height
        words = re.findall(r'<word xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">', page.group(3))
        counts.append(sum(1 for y0, y1 in words if float(y0) >= top and float(y1) <= bottom))
    return counts


def thin_pdf_pages(pdf: Path) -> dict[int, int]:
    """``{page number (from 1): body words}`` of the pages after the first (the cover: title and
    author only) with fewer than :data:`PDF_MIN_BODY_WORDS` words of body."""
    return {i: n for i, n in enumerate(pdf_body_words(pdf), 1) if i > 1 and n < PDF_MIN_BODY_WORDS}
#: why the Quarto half of the report tests skips
NO_QUARTO = ("`quarto` is not on PATH: install Quarto >= 1.9 (README, 'The report with Quarto') to render "
             "the book with Quarto and compare it with the offline engine")


def git_status(repo: Path) -> str:
    import subprocess

    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo,
                          capture_output=True, text=True, check=True).stdout


def book_env(book: Path, results: Path) -> dict[str, str]:
    """The environment both engines render the copy ``book`` in: digits-tiny's ``results``."""
    from analysis.report.quarto import quarto_env

    return quarto_env(book, {"DYNLOSS_PRESET": PRESET, "DYNLOSS_RESULTS_DIR": str(results)})
