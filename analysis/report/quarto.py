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

``dynloss report`` renders from a copy of the book's sources (:func:`stage_book`) kept in
``_quarto-book/`` inside the checkout, with the output written to the checkout's ``_output/``.
Quarto walks its whole project folder at least twice per render (before and after the
pre-render script), virtual environment included, and the checkout's ``.venv`` (54k files) made
each walk take about 6 s (quarto-dev/quarto-cli#6771); the copy holds some 30 files. ``quarto
render`` run in the checkout itself renders the same book, walking the checkout.
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
import tempfile
from pathlib import Path

from analysis.report.context import ReportContext
from training import paths
from training.cache_format import atomic_write, read_json, sha256_file

#: the oldest Quarto that renders the book (Typst books arrived in Quarto 1.9)
MIN_QUARTO = (1, 9)

INSTALL_HINT = (
    "install Quarto >= 1.9 from https://quarto.org/docs/get-started/ (installers for Linux, macOS "
    "and Windows) or with `pip install quarto-cli`, then put its `bin` folder on PATH; "
    "or render without it: `dynloss report --engine offline`"
)

#: folder (beside each page's source) where Quarto's Jupyter cache keeps executed notebooks
CACHE_DIR = ".jupyter_cache"
#: folder inside the checkout holding the copy of the book that ``dynloss report`` renders
STAGE_DIR = "_quarto-book"
#: the book's sources, relative to the checkout (a folder stands for its files)
BOOK_SOURCES = ("_quarto.yml", "index.qmd", "reports")
#: set by :func:`run_quarto` for the pre-render script of a staged book: the checkout it copies
CHECKOUT_ENV = "DYNLOSS_BOOK_CHECKOUT"
#: file in the staged book listing the files :func:`stage_book` copied there
STAGE_MANIFEST = ".dynloss-staged.json"
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
    with tempfile.TemporaryDirectory(prefix="dynloss-quarto-") as tmp:  # Quarto leaves a session folder in TMPDIR
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False,
                             env={**os.environ, "TMPDIR": tmp})
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


def _tree_digest(folder: Path, pattern: str) -> str:
    """One SHA-256 over the relative names and contents of ``folder``'s files matching ``pattern``."""
    h = hashlib.sha256()
    if folder.is_dir():
        for p in sorted(folder.rglob(pattern)):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(p.relative_to(folder).as_posix().encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return h.hexdigest()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def inputs_fingerprint(ctx: ReportContext) -> dict[str, str]:
    """What the report's cells read besides their own code, summarised (SHA-256 digests).

    The preset and its results folder with every file in it, the saved claim audit, the tracked
    inputs (published tables, authors' records), the code of ``analysis`` and ``training``, and the
    Python and library versions. Equal fingerprints mean a cached notebook is still right.
    """
    preset, results, audit = ctx.preset, ctx.results, ctx.root.audit_file
    code = paths.project_dir()
    return {
        "preset": preset,
        "results_dir": str(results),
        "results": _tree_digest(results, "*"),
        "audit": sha256_file(audit) if audit.is_file() else "absent",
        "paper": _tree_digest(paths.paper_dir(), "*"),
        "authors": _tree_digest(paths.authors_dir(), "*"),
        "analysis": _tree_digest(code / "analysis", "*.py"),
        "training": _tree_digest(code / "training", "*.py"),
        "python": sys.version.split()[0],
        **{f"lib:{name}": _version(name) for name in _LIBRARIES},
    }


def cache_dirs(root: Path) -> list[Path]:
    """The Jupyter cache folders of a book: one beside each folder holding a page."""
    from analysis.report.engine import load_project

    folders = {p.parent for p in load_project(root).chapters}
    return sorted(f / CACHE_DIR for f in folders)


def refresh_cache(root: str | Path, fingerprint: dict[str, str]) -> bool:
    """Empty the book's Jupyter caches unless they were filled from the same inputs.

    Returns ``True`` when the caches were kept (same fingerprint), ``False`` when they were emptied
    (first render, or an input changed). The fingerprint is then written for the next render.
    """
    root = Path(root).resolve()
    record = root / CACHE_DIR / FINGERPRINT_FILE
    try:
        kept = read_json(record, max_bytes=2**20, what="render fingerprint") == fingerprint
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


def _book_files(root: Path) -> dict[str, Path]:
    """The book's source files by path relative to ``root``: :data:`BOOK_SOURCES`, without what
    renders leave beside them (hidden files and folders such as the Jupyter cache, ``*_files``
    figure folders, intermediate ``*.quarto_ipynb`` notebooks, ``__pycache__``)."""
    files: dict[str, Path] = {}
    for name in BOOK_SOURCES:
        src = root / name
        if src.is_file():
            files[name] = src
            continue
        if not src.is_dir():
            raise QuartoError(f"{src}: the book's source is missing (expected {', '.join(BOOK_SOURCES)} in {root})")
        for p in sorted(src.rglob("*")):
            rel = p.relative_to(root)
            if p.is_file() and not any(part.startswith(".") or part.endswith("_files") or part == "__pycache__"
                                       for part in rel.parts) and not p.name.endswith(".quarto_ipynb"):
                files[rel.as_posix()] = p
    return files


def stage_book(root: str | Path) -> Path:
    """Make ``root/_quarto-book`` hold exactly the book's current sources; return it.

    Files whose bytes changed are replaced through :func:`training.cache_format.atomic_write` (a
    killed copy leaves no half file); sources deleted since the last call are deleted from the
    copy (the copied names are listed in ``.dynloss-staged.json``). What Quarto keeps there between
    renders (``.quarto/``, the Jupyter caches) is left alone.
    """
    root = Path(root).resolve()
    stage = root / STAGE_DIR
    files = _book_files(root)
    for rel, src in files.items():
        dst = stage / rel
        data = src.read_bytes()
        if not (dst.is_file() and dst.read_bytes() == data):
            atomic_write(dst, data)
    manifest = stage / STAGE_MANIFEST
    try:
        before = set(read_json(manifest, max_bytes=16 * 2**20, what="staged book manifest"))
    except (OSError, ValueError, TypeError):
        before = set()
    for rel in sorted(before - set(files)):
        (stage / rel).unlink(missing_ok=True)
    atomic_write(manifest, json.dumps(sorted(files), indent=0) + "\n")
    return stage


def run_quarto(root: str | Path, env: dict[str, str], *, output_dir: Path | None = None,
               formats: tuple[str, ...] = ()) -> int:
    """Render the book of checkout ``root`` with ``quarto render`` (output streamed); return its
    exit code. Quarto runs on the copy :func:`stage_book` keeps in ``root/_quarto-book`` and
    writes into ``output_dir`` (default: the book's output folder in ``root``, ``_output/``).
    A second render of the same checkout waits until the first is done (an advisory lock in the
    copy's folder, released by the kernel however its holder exits).

    Raises
    ------
    QuartoError
        When Quarto is missing or too old (the message says how to install it), or the book's
        sources are missing.
    """
    from analysis.report.engine import load_project
    from training.cache_lock import preset_lock
    from training.logs import get_logger

    check_quarto()
    root = Path(root).resolve()
    out = Path(output_dir).resolve() if output_dir is not None else load_project(root).output_dir
    # one render at a time per checkout: a second waits (the copy, its caches and its output are shared)
    with preset_lock(root / STAGE_DIR, wait=True, on_wait=lambda msg: get_logger("report").info(f"dynloss report: {msg}")):
        stage = stage_book(root)
        rendered = load_project(stage).output_dir.resolve()
        if stage not in rendered.parents:  # it is emptied before the render: never the copy or above it
            raise QuartoError(f"{root / '_quarto.yml'}: project output-dir must be a folder inside the book "
                              f"(such as _output), got {rendered}")
        shutil.rmtree(rendered, ignore_errors=True)
        # Quarto writes into the copy's own output folder (an output folder outside the project
        # makes it warn that it may not clean up there); the pages then move to `out` together
        with tempfile.TemporaryDirectory(prefix="dynloss-quarto-") as tmp:  # Quarto's and the kernel's temporaries
            proc = subprocess.Popen(quarto_command(formats=formats), cwd=stage,
                                    env={**quarto_env(root, env), CHECKOUT_ENV: str(root), "TMPDIR": tmp})
            try:
                proc.wait()
            finally:  # interrupted (SIGTERM, Ctrl-C): stop Quarto and its kernel before the folder goes
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
        if proc.returncode == 0:
            _move_into(rendered, out)
    return proc.returncode


def _move_into(src: Path, dst: Path) -> None:
    """Move each entry of folder ``src`` into folder ``dst``, replacing an entry of the same name
    (renamed into place where both are on one file system, else copied beside it first)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        incoming = dst / f".{entry.name}.{os.getpid()}.new"
        try:
            os.replace(entry, incoming)
        except OSError:  # another file system
            (shutil.copytree if entry.is_dir() else shutil.copy2)(entry, incoming)
        old = dst / f".{entry.name}.{os.getpid()}.old"
        if target.exists() or target.is_symlink():
            os.replace(target, old)
        os.replace(incoming, target)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        elif old.exists() or old.is_symlink():
            old.unlink()
    shutil.rmtree(src, ignore_errors=True)
