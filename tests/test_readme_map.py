"""The README's map stays true: every project path it names exists, every symbol it names in a
module is defined there, and the results it lists are the ones `dynloss analyze` writes.

A renamed module or a removed function fails here, with the README line that names it, instead of
misleading the next reader.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

#: folders and files of the checkout a backticked README token may name
_PROJECT_PREFIXES = ("analysis/", "training/", "tests/", "reports/", "scripts/", "benchmarks/", "dynloss/",
                     "data/paper/", "data/authors/", ".ci/")
_PROJECT_FILES = ("Makefile", "pyproject.toml", "_quarto.yml", "index.qmd")
_TICK = re.compile(r"`([^`\n]+)`")
_SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _lines() -> list[str]:
    return README.read_text(encoding="utf-8").splitlines()


def _section(title: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of the README section headed ``## title`` (up to the next ``## ``)."""
    out, inside = [], False
    for i, line in enumerate(_lines(), 1):
        if line.startswith("## "):
            inside = line[3:].strip() == title
            continue
        if inside:
            out.append((i, line))
    assert out, f"README.md has no section '## {title}'"
    return out


def _is_project_path(token: str) -> bool:
    token = token.split("::")[0]
    if "<" in token or " " in token or token.startswith(("data/cache", "data/results")):
        return False
    return token.startswith(_PROJECT_PREFIXES) or token in _PROJECT_FILES


def _exists(token: str) -> bool:
    path = token.split("::")[0].rstrip("/")
    return any(ROOT.glob(path)) if any(c in path for c in "*?[") else (ROOT / path).exists()


@cache
def _top_level_names(path: Path) -> frozenset[str]:
    """Names a module defines at its top level, plus ``Class.attribute`` for its classes' members."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()

    def targets(node: ast.AST) -> list[str]:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return [node.name]
        if isinstance(node, ast.Assign):
            return [t.id for t in node.targets if isinstance(t, ast.Name)]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            return [node.target.id]
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return [(a.asname or a.name).split(".")[0] for a in node.names]
        return []

    for node in tree.body:
        names.update(targets(node))
        if isinstance(node, ast.ClassDef):
            names.update(f"{node.name}.{n}" for child in node.body for n in targets(child))
    return frozenset(names)


def _map_references() -> list[tuple[int, str, str | None]]:
    """``(line, module path, symbol or None)`` named in the map's table rows.

    In a cell, a path is followed by its symbols in parentheses (``path (`sym`)``) or joined by
    ``::``; a bare file name (``baseline.py``) after a path means a file in that path's folder.
    """
    refs = []
    for no, line in _section("Where things are"):
        if not line.startswith("|") or set(line) <= set("|- "):
            continue
        for cell in line.strip("|").split("|"):
            folder: Path | None = None
            current: str | None = None
            for m in _TICK.finditer(cell):
                token = m.group(1)
                before = cell[:m.start()]
                in_parens = before.count("(") > before.count(")")
                if "::" in token and _is_project_path(token):
                    path, symbol = token.split("::", 1)
                    refs.append((no, path, symbol))
                    current, folder = path, Path(path).parent
                elif _is_project_path(token):
                    refs.append((no, token, None))
                    current, folder = token, Path(token) if token.endswith("/") else Path(token).parent
                elif token.endswith(".py") and "/" not in token and folder is not None:
                    current = str(folder / token)
                    refs.append((no, current, None))
                elif in_parens and current and current.endswith(".py") and not current.startswith("tests/") \
                        and _SYMBOL.match(token) and not token.endswith((".json", ".csv", ".py")):
                    refs.append((no, current, token))
    return refs


def test_every_project_path_the_readme_names_exists():
    missing = [f"README.md:{no}: `{token}`" for no, line in enumerate(_lines(), 1)
               for token in _TICK.findall(line) if _is_project_path(token) and not _exists(token)]
    assert missing == []


def test_the_map_names_modules_and_symbols_that_exist():
    refs = _map_references()
    assert len(refs) > 30, "the map's table was not parsed (its format changed?)"
    problems = []
    for no, path, symbol in refs:
        if not _exists(path):
            problems.append(f"README.md:{no}: `{path}` does not exist")
        elif symbol is not None and not path.endswith(".py"):
            problems.append(f"README.md:{no}: `{symbol}` named in `{path}`, which is not a module")
        elif symbol is not None and symbol not in _top_level_names(ROOT / path):
            problems.append(f"README.md:{no}: `{path}` defines no `{symbol}`")
    assert problems == []


def _dotted(path: str) -> str:
    return path.rstrip("/").removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _names_module(text: str, path: str) -> bool:
    dotted = _dotted(path)
    package, _, name = dotted.rpartition(".")
    return dotted in text or re.search(rf"from {re.escape(package)} import [^\n]*\b{re.escape(name)}\b", text) is not None


def test_each_row_is_checked_by_tests_that_import_what_it_names():
    """A row's "checked by" tests import (or name) at least one module of its "computed by" cell."""
    problems, rows = [], 0
    for no, line in _section("Where things are"):
        cells = line.strip().strip("|").split("|")
        if len(cells) != 3 or set(line) <= set("|- ") or "checked by" in line:
            continue
        rows += 1
        modules = {p for n, p, _ in _map_references()
                   if n == no and (p.endswith(".py") or p.endswith("/")) and Path(p).name in cells[1]}
        tests = [t for tok in _TICK.findall(cells[2]) if tok.startswith("tests/") for t in ROOT.glob(tok)]
        if not modules or not tests:
            continue
        texts = " ".join(t.read_text(encoding="utf-8") for t in tests)
        if not any(_names_module(texts, m) for m in modules):
            problems.append(f"README.md:{no}: none of {sorted(t.name for t in tests)} imports "
                            f"{' or '.join(sorted(_dotted(m) for m in modules))}")
    assert rows > 15, "the map's table was not parsed (its format changed?)"
    assert problems == []


def test_the_results_the_readme_lists_are_the_ones_analyze_writes():
    from analysis.core.schema import RESULT_FILES

    text = " ".join(line for _, line in _section("Results"))
    first_paragraph = text.split("Choices worth knowing")[0]
    listed = set(re.findall(r"`([a-z0-9_]+\.csv)`", first_paragraph))
    written = {f if f.endswith(".csv") else f"{f}.csv" for f in RESULT_FILES}
    assert listed - written == set(), "the README lists results that `dynloss analyze` does not write"
    assert written - listed - {"cache_status.csv"} == set(), "results `dynloss analyze` writes that the README omits"


@pytest.mark.parametrize("token, expected", [
    ("analysis/core/tables.py", True), ("data/cache/<preset>/", False), ("dynloss train", False),
    ("Makefile", True), ("tests/test_compare*.py", True),
])
def test_what_counts_as_a_project_path(token, expected):
    assert _is_project_path(token) is expected
