"""The report with real Quarto: finding it, its execution cache, and running ``quarto render``.

Quarto renders every page of the book once per format (HTML, then Typst for the PDF) and, by
default, executes the page's cells for each. The book (``_quarto.yml``) turns on Quarto's Jupyter
cache (``execute: cache: true``, the ``jupyter-cache`` package) with the same figure settings in
both formats, so the Typst pass reads the notebook the HTML pass executed: each cell runs once per
render. The cache is keyed by the cells' code only; what else the cells read (the preset's results,
the claim audit, the published tables, the project's code, library versions) is summarised by
:func:`inputs_fingerprint`, and the book's pre-render script (``reports/_pre_render.py``) calls
:func:`refresh_cache`, which empties the cache whenever that fingerprint changed. A render after a
new ``dynloss analyze``, another ``DYNLOSS_PRESET`` or a code change therefore executes afresh; a
render with nothing changed reuses the executed notebooks.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from training import paths

#: the oldest Quarto that renders the book (Typst books arrived in Quarto 1.9)
MIN_QUARTO = (1, 9)

INSTALL_HINT = (
    "install Quarto >= 1.9 from https://quarto.org/docs/get-started/ (installers for Linux, macOS "
    "and Windows) or with `pip install quarto-cli`, then put its `bin` folder on PATH; "
    "or render without it: `dynloss report --engine offline`"
)

#: folder (beside each page's source) where Quarto's Jupyter cache keeps executed notebooks
CACHE_DIR = ".jupyter_cache"
#: file inside the book root's cache folder recording the inputs the cached notebooks were run on
FINGERPRINT_FILE = "dynloss-inputs.json"

_LIBRARIES = ("numpy", "scipy", "pandas", "matplotlib", "seaborn", "statsmodels", "scikit-learn", "torch")


class QuartoError(RuntimeError):
    """Quarto is missing, too old, or the checkout cannot be rendered with it."""


def quarto_available() -> str | None:
    """Path of the ``quarto`` executable on ``PATH``, or ``None``."""
    return shutil.which("quarto")


def quarto_version(exe: str | None = None) -> tuple[int, ...]:
    """Version of ``quarto`` as a tuple of ints (``quarto --version``).

    Raises
    ------
    QuartoError
        When ``quarto`` is not on ``PATH`` or does not report a version.
    """
    exe = exe or quarto_available()
    if exe is None:
        raise QuartoError(f"`quarto` is not on PATH: {INSTALL_HINT}")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    m = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", out.stdout)
    if out.returncode != 0 or m is None:
        raise QuartoError(f"`{exe} --version` did not print a version (exit {out.returncode}): "
                          f"{(out.stdout + out.stderr).strip()[:200]}")
    return tuple(int(g) for g in m.groups() if g is not None)


def check_quarto() -> tuple[str, tuple[int, ...]]:
    """The ``quarto`` executable and its version, checked to be new enough for the book.

    Raises
    ------
    QuartoError
        With the install hint when Quarto is missing or older than :data:`MIN_QUARTO`.
    """
    exe = quarto_available()
    if exe is None:
        raise QuartoError(f"`quarto` is not on PATH: {INSTALL_HINT}")
    version = quarto_version(exe)
    if version[:2] < MIN_QUARTO:
        raise QuartoError(f"{exe} is Quarto {'.'.join(map(str, version))}; the book needs Quarto >= "
                          f"{'.'.join(map(str, MIN_QUARTO))}: {INSTALL_HINT}")
    return exe, version


# --------------------------------------------------------------------------------------------
# execution cache


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tree_digest(folder: Path, pattern: str) -> str:
    """One SHA-256 over the relative names and contents of ``folder``'s files matching ``pattern``."""
    h = hashlib.sha256()
    if folder.is_dir():
        for p in sorted(folder.rglob(pattern)):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(p.relative_to(folder).as_posix().encode() + b"\0" + _sha256_file(p).encode() + b"\n")
    return h.hexdigest()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def inputs_fingerprint(preset: str | None = None) -> dict[str, str]:
    """What the report's cells read besides their own code, summarised (SHA-256 digests).

    The preset and its results folder with every file in it, the saved claim audit, the tracked
    inputs (published tables, authors' records), the code of ``analysis`` and ``training``, and the
    Python and library versions. Equal fingerprints mean a cached notebook is still right.
    """
    preset = preset or paths.preset_name()
    results = paths.results_dir(preset)
    audit = paths.audit_file()
    code = paths.project_dir()
    return {
        "preset": preset,
        "results_dir": str(results),
        "results": _tree_digest(results, "*"),
        "audit": _sha256_file(audit) if audit.is_file() else "absent",
        "paper": _tree_digest(paths.paper_dir(), "*"),
        "authors": _tree_digest(paths.authors_dir(), "*"),
        "analysis": _tree_digest(code / "analysis", "*.py"),
        "training": _tree_digest(code / "training", "*.py"),
        "python": sys.version.split()[0],
        **{f"lib:{name}": _version(name) for name in _LIBRARIES},
    }


def cache_dirs(root: Path) -> list[Path]:
    """The Jupyter cache folders of a book: one beside each folder holding a page."""
    from analysis.report.render import load_project

    folders = {p.parent for p in load_project(root).chapters}
    return sorted(f / CACHE_DIR for f in folders)


def refresh_cache(root: str | Path, fingerprint: dict[str, str] | None = None) -> bool:
    """Empty the book's Jupyter caches unless they were filled from the same inputs.

    Returns ``True`` when the caches were kept (same fingerprint), ``False`` when they were emptied
    (first render, or an input changed). The fingerprint is then written for the next render.
    """
    root = Path(root).resolve()
    fingerprint = fingerprint if fingerprint is not None else inputs_fingerprint()
    record = root / CACHE_DIR / FINGERPRINT_FILE
    try:
        kept = json.loads(record.read_text(encoding="utf-8")) == fingerprint
    except (OSError, ValueError):
        kept = False
    if not kept:
        for folder in cache_dirs(root):
            shutil.rmtree(folder, ignore_errors=True)
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(fingerprint, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return kept


def clear_cache(root: str | Path) -> None:
    """Remove the book's Jupyter caches (the next render executes every cell)."""
    for folder in cache_dirs(Path(root).resolve()):
        shutil.rmtree(folder, ignore_errors=True)


def check_kernel_imports_checkout(root: str | Path) -> None:
    """Refuse to render a checkout whose cells would import ``analysis`` from somewhere else.

    Raises
    ------
    QuartoError
        When the ``analysis`` package this interpreter imports is not the one in ``root``.
    """
    root = Path(root).resolve()
    here = paths.project_dir()
    if here != root:
        raise QuartoError(
            f"the report in {root} would run the cells with the `analysis` package of {here}: "
            f"put the checkout first on the path (`export PYTHONPATH={root}`) or `pip install -e {root}`")


# --------------------------------------------------------------------------------------------
# quarto render


def quarto_command(*, output_dir: Path | None = None, formats: tuple[str, ...] = ()) -> list[str]:
    """The ``quarto render`` command line (``formats`` among ``html``, ``pdf``; empty: both)."""
    cmd = ["quarto", "render"]
    for fmt in formats:
        cmd += ["--to", "typst" if fmt == "pdf" else fmt]
    if output_dir is not None:
        cmd += ["--output-dir", str(Path(output_dir).resolve())]
    return cmd


def quarto_env(root: Path, env: dict[str, str]) -> dict[str, str]:
    """Environment for ``quarto render``: the caller's, the report's variables, this interpreter as
    Quarto's Python (unless ``QUARTO_PYTHON`` is set) and ``root`` first on ``PYTHONPATH`` so that
    the kernel imports this checkout's ``analysis``."""
    out = {"QUARTO_PYTHON": sys.executable, **os.environ, **env}
    pythonpath = [str(root), *[p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(root)]]
    out["PYTHONPATH"] = os.pathsep.join(pythonpath)
    return out


def run_quarto(root: str | Path, env: dict[str, str], *, output_dir: Path | None = None,
               formats: tuple[str, ...] = ()) -> int:
    """Run ``quarto render`` in ``root`` (output streamed); return its exit code.

    Raises
    ------
    QuartoError
        When Quarto is missing or too old (the message says how to install it).
    """
    check_quarto()
    root = Path(root).resolve()
    proc = subprocess.run(quarto_command(output_dir=output_dir, formats=formats), cwd=root,
                          env=quarto_env(root, env), check=False)
    return proc.returncode
