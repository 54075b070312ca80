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
