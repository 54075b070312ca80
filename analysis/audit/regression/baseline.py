"""Results sets and baseline files as cells: reading, snapshots and comparability checks.

A *results set* is a folder written by ``dynloss analyze`` (``table1.csv``, ``table2.csv``,
``calibration.csv``, ``selective.csv``, ``provenance.json``). A *snapshot* (``dynloss snapshot``)
is one small JSON file holding the cells of a results set (values and intervals, see
:mod:`analysis.audit.regression.compare`), where they came from and the SHA-256 of the files read, meant to be
committed and compared against later. Its layout (format ``dynloss-baseline``, version
:data:`SNAPSHOT_VERSION`)::

    {"format": "dynloss-baseline", "version": 1, "preset": ..., "created_utc": ...,
     "created_by": {"dynloss": ..., "code_revision": ...},
     "source": {"results": ..., "datasets": [...], "n_test": {...}, "cache_sha256": ...,
                "analysis_code_revision": ..., "analysis_created_utc": ..., "seed": ...,
                "confidence": ..., "n_resamples": ..., "versions": {...}},
     "checksums": {"table1.csv": <sha256>, ...},
     "columns": [... CELL_COLUMNS ...],
     "cells": [[...], ...]}          # one row per line; NaN is null

Every problem with the input is an :class:`UnusableInput` with a one-line message naming the
file or the difference (``dynloss compare`` exits with status 2 on it).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.audit.regression.compare import CELL_COLUMNS, CELL_TABLES, KEYS, cell_label, cell_problems, cells_from_tables, check_unique
from training.cache_format import JsonFileError, atomic_write, read_json, sha256_file
from training.provenance import code_revision, versions

SNAPSHOT_FORMAT = "dynloss-baseline"
SNAPSHOT_VERSION = 1
#: the largest baseline file read (a snapshot of fmnist-mini is ~75 KB)
MAX_SNAPSHOT_BYTES = 64 << 20
#: columns of a snapshot's cells holding numbers (null where there is none)
NUMBER_COLUMNS: tuple[str, ...] = tuple(c for c in CELL_COLUMNS if c not in KEYS)
#: files a results set must hold to be compared
REQUIRED_FILES: tuple[str, ...] = (*(f"{t}.csv" for t in CELL_TABLES), "provenance.json")


class UnusableInput(ValueError):
    """Input that cannot be compared (missing files, another preset or dataset set, a bad file)."""


@dataclass(frozen=True)
class CellSet:
    """The cells of one side of a comparison and what is known of where they came from.

    ``meta`` keys: ``kind`` ("results", "snapshot" or "published"), ``source`` (path shown),
    ``preset`` (None for published), ``datasets``, ``n_test`` (dataset -> test samples, may be
    empty), ``cache_sha256``, ``code_revision``, ``seed``, ``confidence``, ``n_resamples``.
    """

    cells: pd.DataFrame
    meta: dict[str, Any]
    skipped: tuple[str, ...] = field(default=())


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UnusableInput(f"{path}: not a readable CSV ({str(e).splitlines()[0]})") from None


def load_results(folder: str | os.PathLike, preset: str | None = None) -> CellSet:
    """The cells of a results folder written by ``dynloss analyze`` (of ``preset``, when given).

    Raises
    ------
    UnusableInput
        When the folder or any of :data:`REQUIRED_FILES` is missing (all are named), the folder is
        not one whole set of ``preset`` (:func:`analysis.core.results_set.check_set`), or a table
        lacks the columns of a cell key.
    """
    from analysis.core.results_set import ResultsSetError, check_set

    folder = Path(folder)
    if not folder.is_dir():
        raise UnusableInput(f"{folder}: no such results folder (made by `dynloss analyze --preset NAME`)")
    missing = [f for f in REQUIRED_FILES if not (folder / f).is_file()]
    if missing:
        raise UnusableInput(f"{folder}: missing {', '.join(missing)} (rerun `dynloss analyze`)")
    try:
        prov = check_set(folder, fix=f"dynloss analyze --preset {preset or 'NAME'}", preset=preset)
    except ResultsSetError as e:
        raise UnusableInput(str(e)) from None
    config = prov.get("config", {}) if isinstance(prov, dict) else {}
    confidence = float(config.get("confidence", 0.95))
    tables = {t: _read_csv(folder / f"{t}.csv") for t in CELL_TABLES}
    for t, df in tables.items():
        need = {"dataset", "fusion"} | ({"arm"} if t != "table2" else set())
        if not need <= set(df.columns):
            raise UnusableInput(f"{folder / (t + '.csv')}: expected columns {sorted(need)}, got {list(df.columns)}")
    try:
        cells = cells_from_tables(tables, confidence=confidence)
    except ValueError as e:
        raise UnusableInput(f"{folder}: {e}") from None
    t1 = tables["table1"]
    n_test = ({str(d): int(n) for d, n in t1.groupby("dataset")["n_test"].first().items()}
              if "n_test" in t1.columns else {})
    meta = {
        "kind": "results", "source": str(folder), "preset": prov.get("preset"),
        "datasets": sorted(str(d) for d in t1["dataset"].unique()), "n_test": n_test,
        "cache_sha256": prov.get("cache_sha256"), "code_revision": prov.get("code_revision"),
        "created_utc": prov.get("created_utc"), "seed": prov.get("seed", config.get("seed")),
        "confidence": confidence, "n_resamples": config.get("n_resamples"),
    }
    return CellSet(cells, meta)


def snapshot(folder: str | os.PathLike, preset: str | None = None) -> dict[str, Any]:
    """The baseline document of a results folder (of ``preset``, when given; layout in the module
    docstring).

    Raises
    ------
    UnusableInput
        As :func:`load_results`, and when a cell has no finite number or an unusable interval
        (:func:`analysis.audit.regression.compare.cell_problems`): such results are no baseline.
    """
    folder = Path(folder)
    results = load_results(folder, preset=preset)
    status, problem = cell_problems(results.cells)
    if (status != "").any():
        i = int((status != "").argmax())
        c = results.cells.iloc[i]
        raise UnusableInput(f"{folder / (c['table'] + '.csv')}: {c['metric']} of {cell_label(c)}: {problem[i]}; "
                            "no baseline is written from results without numbers (rerun `dynloss analyze`)")
    m = results.meta
    prov = _read_json(folder / "provenance.json", "provenance.json of a results set")
    cells = results.cells[list(CELL_COLUMNS)]
    rows = [[None if isinstance(v, float) and math.isnan(v) else _plain(v) for v in row]
            for row in cells.itertuples(index=False, name=None)]
    return {
        "format": SNAPSHOT_FORMAT, "version": SNAPSHOT_VERSION, "preset": m["preset"],
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "created_by": {"dynloss": versions().get("dynloss", "absent"), "code_revision": code_revision()},
        "source": {
            "results": folder.name, "datasets": m["datasets"], "n_test": m["n_test"],
            "cache_sha256": m["cache_sha256"], "analysis_code_revision": m["code_revision"],
            "analysis_created_utc": m["created_utc"], "seed": m["seed"], "confidence": m["confidence"],
            "n_resamples": m["n_resamples"], "versions": prov.get("versions", {}),
        },
        "checksums": {f: sha256_file(folder / f) for f in REQUIRED_FILES},
        "columns": list(CELL_COLUMNS),
        "cells": rows,
    }


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    return v


def dumps_snapshot(doc: dict[str, Any]) -> str:
    """JSON text of a snapshot: the header indented, one cell per line (small, readable diffs)."""
    head = {k: v for k, v in doc.items() if k != "cells"}
    text = json.dumps(head, indent=2, allow_nan=False)
    body = ",\n".join("    " + json.dumps(row, allow_nan=False) for row in doc["cells"])
    return text[:-2] + ',\n  "cells": [\n' + body + "\n  ]\n}\n"


def write_output(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` to the file ``target`` through the project's atomic writer, or to standard
    output when ``target`` is ``-`` (a file named ``-`` is ``./-``)."""
    if str(target) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write(Path(target), text)


def write_snapshot(folder: str | os.PathLike, out: str | os.PathLike, preset: str | None = None) -> dict[str, Any]:
    """Write the snapshot of a results folder (of ``preset``, when given) to ``out`` (atomically;
    ``-``: standard output) and return it."""
    doc = snapshot(folder, preset)
    write_output(out, dumps_snapshot(doc))
    return doc


def _read_json(path: Path, what: str) -> Any:
    try:
        return read_json(path, max_bytes=MAX_SNAPSHOT_BYTES, what=what)
    except JsonFileError as e:
        raise UnusableInput(str(e)) from None


def _check_cells(path: Path, rows: list) -> None:
    """Refuse a cell row that is not a list of the columns' length, a key that is not text, a
    number that is text or a truth value (null, and NaN or Infinity, are numbers the comparison
    fails as 'no number' or 'invalid'), naming the file and the cell."""
    n = len(CELL_COLUMNS)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != n:
            raise UnusableInput(f"{path}: cell {i + 1} is not a list of {n} values ({', '.join(CELL_COLUMNS)})")
        cell = dict(zip(CELL_COLUMNS, row))
        label = f"cell {i + 1} ({cell['table']} {cell['metric']} {cell_label(cell)})"
        for k in KEYS:
            if not isinstance(cell[k], str):
                raise UnusableInput(f"{path}: {label}: {k} {cell[k]!r} is not text")
        for c in NUMBER_COLUMNS:
            if not _number_or_null(cell[c]):
                raise UnusableInput(f"{path}: {label}: {c} {cell[c]!r} is not a number")


def _number_or_null(v: Any) -> bool:
    if v is None or isinstance(v, float):
        return True
    return isinstance(v, int) and not isinstance(v, bool) and abs(v) <= 1e308  # a longer int overflows a float


def _check_source(path: Path, doc: dict) -> dict:
    """The ``source`` header of a snapshot, refused (naming the file and the field) unless its
    ``datasets`` are text and its ``n_test`` maps datasets to whole numbers."""
    src = doc.get("source", {})
    if not isinstance(src, dict):
        raise UnusableInput(f"{path}: \"source\" is not an object")
    ds, n_test = src.get("datasets") or [], src.get("n_test") or {}
    if not (isinstance(ds, list) and all(isinstance(d, str) for d in ds)):
        raise UnusableInput(f"{path}: \"source\".\"datasets\" {ds!r} is not a list of dataset names")
    if not (isinstance(n_test, dict) and all(isinstance(v, int) and not isinstance(v, bool) for v in n_test.values())):
        raise UnusableInput(f"{path}: \"source\".\"n_test\" {n_test!r} does not map datasets to test-set sizes")
    if not isinstance(doc.get("preset"), (str, type(None))):
        raise UnusableInput(f"{path}: \"preset\" {doc['preset']!r} is not a preset name")
    return src


def read_snapshot(path: str | os.PathLike) -> CellSet:
    """The cells of a snapshot file.

    Raises
    ------
    UnusableInput
        When the file is missing, larger than :data:`MAX_SNAPSHOT_BYTES` or nested too deeply
        (refused before parsing), not JSON, not a dynloss baseline, of a newer format version, or
        a cell is not a row of the expected columns, has a number that is text, or repeats a key
        (one line naming the file and the cell). Cells whose numbers are null, NaN or infinite are
        read: the comparison fails them (:func:`analysis.audit.regression.compare.cell_problems`).
    """
    path = Path(path)
    if not path.is_file():
        raise UnusableInput(f"{path}: no such baseline file (write one with `dynloss snapshot --preset NAME --out FILE`)")
    doc = _read_json(path, "dynloss baseline")
    if not isinstance(doc, dict) or doc.get("format") != SNAPSHOT_FORMAT:
        raise UnusableInput(f"{path}: not a dynloss baseline (expected \"format\": \"{SNAPSHOT_FORMAT}\")")
    version = doc.get("version")
    if not isinstance(version, int) or version > SNAPSHOT_VERSION:
        raise UnusableInput(f"{path}: baseline format version {version!r}; this dynloss reads version {SNAPSHOT_VERSION}")
    if doc.get("columns") != list(CELL_COLUMNS) or not isinstance(doc.get("cells"), list):
        raise UnusableInput(f"{path}: expected \"columns\" {list(CELL_COLUMNS)} and a \"cells\" list")
    _check_cells(path, doc["cells"])
    src = _check_source(path, doc)
    cells = pd.DataFrame(doc["cells"], columns=list(CELL_COLUMNS))
    cells[list(NUMBER_COLUMNS)] = cells[list(NUMBER_COLUMNS)].astype(float)  # null -> NaN
    try:
        check_unique(cells, str(path))
    except ValueError as e:
        raise UnusableInput(str(e)) from None
    meta = {
        "kind": "snapshot", "source": str(path), "preset": doc.get("preset"),
        "datasets": sorted(src.get("datasets") or cells["dataset"].unique().tolist()),
        "n_test": dict(src.get("n_test") or {}), "cache_sha256": src.get("cache_sha256"),
        "code_revision": src.get("analysis_code_revision"), "created_utc": doc.get("created_utc"),
        "seed": src.get("seed"), "confidence": src.get("confidence"), "n_resamples": src.get("n_resamples"),
        "checksums": doc.get("checksums", {}),
    }
    return CellSet(cells, meta)


def load_cellset(path: str | os.PathLike) -> CellSet:
    """A results folder or a snapshot file, whichever ``path`` is."""
    p = Path(path)
    if p.is_dir():
        return load_results(p)
    if p.is_file():
        return read_snapshot(p)
    raise UnusableInput(f"{p}: no such results folder or baseline file")


def check_comparable(baseline: CellSet, results: CellSet) -> list[str]:
    """Refuse two sides of different presets, dataset sets or test-set sizes; return notes.

    Raises
    ------
    UnusableInput
        Naming both sides and what differs.
    """
    b, r = baseline.meta, results.meta
    names = f"(baseline {b['source']}, results {r['source']})"
    if b.get("preset") and r.get("preset") and b["preset"] != r["preset"]:
        raise UnusableInput(f"different presets: baseline is {b['preset']}, results are {r['preset']} {names}")
    if list(b["datasets"]) != list(r["datasets"]):
        raise UnusableInput(f"different datasets: baseline has {', '.join(b['datasets']) or 'none'}, results have "
                            f"{', '.join(r['datasets']) or 'none'} {names}")
    for ds in r["datasets"]:
        nb, nr = b.get("n_test", {}).get(ds), r.get("n_test", {}).get(ds)
        if nb is not None and nr is not None and int(nb) != int(nr):
            raise UnusableInput(f"different test sets: {ds} has {nb} test samples in the baseline, {nr} in the results {names}")
    notes = []
    if b.get("cache_sha256") and b.get("cache_sha256") == r.get("cache_sha256"):
        notes.append("Both sides come from the same cache (cache_sha256 "
                     f"{str(b['cache_sha256'])[:12]}): their bootstrap intervals share the test-set noise and are not "
                     "independent, so only the seeded steps or the code can move a cell; the rule is lenient here.")
    return notes
