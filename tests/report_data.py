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
