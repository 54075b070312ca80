"""Results sets and baseline files as cells: reading, snapshots and comparability checks.

A *results set* is a folder written by ``dynloss analyze`` (``table1.csv``, ``table2.csv``,
``calibration.csv``, ``selective.csv``, ``provenance.json``). A *snapshot* (``dynloss snapshot``)
is one small JSON file holding the cells of a results set (values and intervals, see
:mod:`analysis.core.compare`), where they came from and the SHA-256 of the files read, meant to be
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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.core.compare import CELL_COLUMNS, CELL_TABLES, cells_from_tables
from training.cache_format import atomic_write, sha256_file
from training.provenance import code_revision, versions

SNAPSHOT_FORMAT = "dynloss-baseline"
SNAPSHOT_VERSION = 1
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


def snapshot(folder: str | os.PathLike) -> dict[str, Any]:
    """The baseline document of a results folder (layout in the module docstring)."""
    folder = Path(folder)
    results = load_results(folder)
    m = results.meta
    prov = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
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


def write_snapshot(folder: str | os.PathLike, out: str | os.PathLike) -> dict[str, Any]:
    """Write the snapshot of a results folder to ``out`` (atomically) and return it."""
    doc = snapshot(folder)
    atomic_write(Path(out), dumps_snapshot(doc))
    return doc


def read_snapshot(path: str | os.PathLike) -> CellSet:
    """The cells of a snapshot file.

    Raises
    ------
    UnusableInput
        When the file is missing, not JSON, not a dynloss baseline, of a newer format version, or
        its cells do not have the expected columns.
    """
    path = Path(path)
    if not path.is_file():
        raise UnusableInput(f"{path}: no such baseline file (write one with `dynloss snapshot --preset NAME --out FILE`)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UnusableInput(f"{path}: not a dynloss baseline (invalid JSON: {e})") from None
    if not isinstance(doc, dict) or doc.get("format") != SNAPSHOT_FORMAT:
        raise UnusableInput(f"{path}: not a dynloss baseline (expected \"format\": \"{SNAPSHOT_FORMAT}\")")
    version = doc.get("version")
    if not isinstance(version, int) or version > SNAPSHOT_VERSION:
        raise UnusableInput(f"{path}: baseline format version {version!r}; this dynloss reads version {SNAPSHOT_VERSION}")
    if doc.get("columns") != list(CELL_COLUMNS) or not isinstance(doc.get("cells"), list):
        raise UnusableInput(f"{path}: expected \"columns\" {list(CELL_COLUMNS)} and a \"cells\" list")
    try:
        cells = pd.DataFrame(doc["cells"], columns=list(CELL_COLUMNS))
    except ValueError as e:
        raise UnusableInput(f"{path}: malformed cells ({e})") from None
    for c in ("value", "ci_low", "ci_high", "seed_ci_low", "seed_ci_high", "confidence", "resolution"):
        cells[c] = pd.to_numeric(cells[c], errors="coerce").astype(float)
    for c in ("table", "metric", "dataset", "arm", "fusion", "detail"):
        cells[c] = cells[c].fillna("").astype(str)
    src = doc.get("source", {})
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
