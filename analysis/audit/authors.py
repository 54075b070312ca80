"""The authors' own ensemble-evaluation records (``data/authors/``): a validating reader.

The 158 records are JSON files written by the authors' scripts, one pandas ``DataFrame.to_json()``
row each (see ``data/authors/README.md``). :func:`read_authors_records` checks every file against
the record layout and returns one tidy frame, one row per record:

- ``record`` (the timestamp key, equal to the file stem), ``path`` (relative to the records
  folder), ``kind`` (``static`` or ``learned``), ``dataset``, ``fusion``;
- ``tau``: the dynamic-loss threshold, ``None`` for plain cross-entropy (recorded as −1);
- ``pooled``, ``shuffled`` (bool), ``lr``, ``wd`` (float); for static fusions (no training)
  ``lr`` and ``wd`` are the evaluation script's configuration values, not training settings;
- ``epochs_last``, ``epochs_best`` (nullable integers: epochs trained, and the 1-based epoch of
  best validation accuracy whose weights gave the ``*_best`` columns);
- ``{acc,top3,top5,loss}_{test,val}_{last,best}``: metrics at the last and at the best epoch.
  NaN where the record says −1 ("not recorded") and where it holds ``null`` (a non-finite loss);
- ``failed``: True when a recorded loss is non-finite (the evaluation diverged).

Any malformed or unexpected file raises :class:`AuthorsRecordError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import pandas as pd

from training.datasets import paper_datasets
from training.paths import authors_dir

#: the records' folder under ``data/authors/``, and its two kinds
RECORDS_SUBDIR = Path("results") / "ensemble_evals"
KINDS: dict[str, tuple[str, ...]] = {"static": ("Average", "Vote"), "learned": ("Weighted", "MLP")}
DATASETS: tuple[str, ...] = tuple(d.paper_name for d in paper_datasets())  # CIFAR10, CIFAR100, FashionMNIST
THRESHOLDS: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9)
#: the repository and commit the records were copied from
SOURCE_REPOSITORY = "stfxecutables/dynamic_loss"
SOURCE_COMMIT = "b889790020a5e0bd16745dbff86ecf78837a5de1"

METRICS: tuple[str, ...] = ("acc", "top3", "top5", "loss")
SPLITS: tuple[str, ...] = ("test", "val")
EPOCHS: dict[str, str] = {"l": "last", "b": "best"}
#: raw metric field -> tidy column, e.g. ``acc_test_b`` -> ``acc_test_best``
METRIC_FIELDS: dict[str, str] = {f"{m}_{s}_{e}": f"{m}_{s}_{name}"
                                 for e, name in EPOCHS.items() for s in SPLITS for m in METRICS}
RAW_FIELDS: tuple[str, ...] = ("data", "fusion", "pooled", "shuffled", "thresh", *METRIC_FIELDS,
                               "meta_epochs_l", "meta_epochs_b", "lr", "wd")

#: columns of :func:`read_authors_records`, in order
RECORD_COLUMNS: tuple[str, ...] = ("record", "path", "kind", "dataset", "fusion", "tau", "pooled", "shuffled",
                                   "lr", "wd", "epochs_last", "epochs_best", *METRIC_FIELDS.values(), "failed")

_STAMP = re.compile(r"^\d{4}\.\d{2}\.\d{2}--\d{2}-\d{2}-\d{2}\.\d{6}$")
NOT_RECORDED = -1


class AuthorsRecordError(ValueError):
    """A file among the authors' records is malformed or unexpected (the message names it)."""


def records_root(root: str | Path | None = None) -> Path:
    """The records' folder: ``<root>/results/ensemble_evals`` (``root`` defaults to ``data/authors``)."""
    return Path(authors_dir() if root is None else root) / RECORDS_SUBDIR


def record_files(root: str | Path | None = None) -> list[Path]:
    """Every record file, sorted, after checking that the folder holds nothing else.

    Raises
    ------
    AuthorsRecordError
        When the folder is missing, or holds a file or folder that is not a record.
    """
    base = records_root(root)
    if not base.is_dir():
        raise AuthorsRecordError(f"{base}: the authors' records folder is missing (expected {RECORDS_SUBDIR}/"
                                 f"{{static,learned}}/each/*.json under data/authors)")
    files: list[Path] = []
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if path.is_dir():
            if rel.parts[0] in KINDS and rel.parts[1:] in ((), ("each",)):
                continue
            raise AuthorsRecordError(f"{path}: unexpected folder among the authors' records "
                                     f"(expected only {{static,learned}}/each/)")
        if len(rel.parts) != 3 or rel.parts[0] not in KINDS or rel.parts[1] != "each":
            raise AuthorsRecordError(f"{path}: unexpected file among the authors' records "
                                     f"(expected {{static,learned}}/each/<timestamp>.json)")
        if path.suffix != ".json" or not _STAMP.match(path.stem):
            raise AuthorsRecordError(f"{path}: unexpected file name (expected YYYY.MM.DD--HH-MM-SS.ffffff.json)")
        files.append(path)
    if not files:
        raise AuthorsRecordError(f"{base}: no record files found")
    return files


def _bad(path: Path, what: str) -> AuthorsRecordError:
    return AuthorsRecordError(f"{path}: {what}")


def _number(path: Path, field: str, value, *, allow_null: bool = False) -> float:
    if value is None and allow_null:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(path, f"field {field!r} must be a number, got {value!r}")
    return float(value)


def _metric(path: Path, field: str, value) -> float:
    """A metric value: −1 (not recorded) or null (non-finite loss) → NaN; range-checked otherwise."""
    is_loss = field.startswith("loss_")
    x = _number(path, field, value, allow_null=is_loss)
    if math.isnan(x) or x == NOT_RECORDED:
        return math.nan
    if is_loss:
        if x < 0:
            raise _bad(path, f"field {field!r} must be a loss >= 0, -1 or null, got {value!r}")
    elif not 0.0 <= x <= 1.0:
        raise _bad(path, f"field {field!r} must be a fraction in [0, 1] or -1, got {value!r}")
    return x


def parse_record(path: str | Path, kind: str) -> dict:
    """Validate one record file and return its tidy row (see the module docstring).

    Raises
    ------
    AuthorsRecordError
        Naming ``path`` and the first problem found.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"not a readable JSON record ({e})") from None
    if not isinstance(raw, dict):
        raise _bad(path, f"expected a JSON object of fields, got {type(raw).__name__}")
    missing = [f for f in RAW_FIELDS if f not in raw]
    extra = sorted(set(raw) - set(RAW_FIELDS))
    if missing or extra:
        raise _bad(path, f"unexpected fields (missing {missing}, extra {extra})")
    values = {}
    for field in RAW_FIELDS:
        cell = raw[field]
        if not isinstance(cell, dict) or list(cell) != [path.stem]:
            raise _bad(path, f"field {field!r} must map the record key {path.stem!r} (the file name) to a value, "
                             f"got {cell!r}")
        values[field] = cell[path.stem]
    fusions = KINDS[kind]
    if values["data"] not in DATASETS:
        raise _bad(path, f"field 'data' must be one of {DATASETS}, got {values['data']!r}")
    if values["fusion"] not in fusions:
        raise _bad(path, f"field 'fusion' of a {kind} record must be one of {fusions}, got {values['fusion']!r}")
    for field in ("pooled", "shuffled"):
        if not isinstance(values[field], bool):
            raise _bad(path, f"field {field!r} must be true or false, got {values[field]!r}")
    thresh = _number(path, "thresh", values["thresh"])
    if thresh != NOT_RECORDED and thresh not in THRESHOLDS:
        raise _bad(path, f"field 'thresh' must be -1 or one of {THRESHOLDS}, got {values['thresh']!r}")
    epochs = {}
    for e, name in EPOCHS.items():
        v = values[f"meta_epochs_{e}"]
        if isinstance(v, bool) or not isinstance(v, int) or (v < 1 and v != NOT_RECORDED):
            raise _bad(path, f"field 'meta_epochs_{e}' must be a positive integer or -1, got {v!r}")
        epochs[f"epochs_{name}"] = pd.NA if v == NOT_RECORDED else v
    if kind == "learned" and (epochs["epochs_last"] is pd.NA or epochs["epochs_best"] is pd.NA
                              or epochs["epochs_best"] > epochs["epochs_last"]):
        raise _bad(path, f"a learned record needs 1 <= meta_epochs_b <= meta_epochs_l, got "
                         f"{values['meta_epochs_b']!r} and {values['meta_epochs_l']!r}")
    lr, wd = _number(path, "lr", values["lr"]), _number(path, "wd", values["wd"])
    if not (lr > 0 and wd >= 0):
        raise _bad(path, f"fields 'lr' and 'wd' must be > 0 and >= 0, got {lr!r} and {wd!r}")
    metrics = {col: _metric(path, field, values[field]) for field, col in METRIC_FIELDS.items()}
    if math.isnan(metrics["acc_test_best"]):
        raise _bad(path, "field 'acc_test_b' (test accuracy at the kept epoch) must be recorded")
    failed = any(values[f] is None for f in METRIC_FIELDS if f.startswith("loss_"))
    return {"record": path.stem, "path": f"{kind}/each/{path.name}", "kind": kind, "dataset": values["data"],
            "fusion": values["fusion"], "tau": None if thresh == NOT_RECORDED else thresh,
            "pooled": values["pooled"], "shuffled": values["shuffled"], "lr": lr, "wd": wd, **epochs,
            **metrics, "failed": failed}


def read_authors_records(root: str | Path | None = None) -> pd.DataFrame:
    """Every record under ``root`` (default ``data/authors``) as one validated tidy frame.

    Parameters
    ----------
    root : folder holding ``results/ensemble_evals/{static,learned}/each/*.json``.

    Returns
    -------
    DataFrame with :data:`RECORD_COLUMNS`, sorted by ``kind`` (static first), then ``record``.

    Raises
    ------
    AuthorsRecordError
        When a file is malformed or unexpected (the message names it), or two files share a key.

    Examples
    --------
    >>> df = read_authors_records()
    >>> len(df), sorted(df["kind"].unique())
    (158, ['learned', 'static'])
    """
    rows = [parse_record(path, path.relative_to(records_root(root)).parts[0]) for path in record_files(root)]
    df = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    dupes = df.loc[df["record"].duplicated(keep=False), "path"].tolist()
    if dupes:
        raise AuthorsRecordError(f"{records_root(root)}: records with the same key in {dupes}")
    df["tau"] = df["tau"].astype(object).where(df["tau"].notna(), None)
    for col in ("epochs_last", "epochs_best"):
        df[col] = df[col].astype("Int64")
    order = df["kind"].map({"static": 0, "learned": 1})
    return df.assign(_o=order).sort_values(["_o", "record"]).drop(columns="_o").reset_index(drop=True)


def records_digest(root: str | Path | None = None) -> str:
    """SHA-256 over the record files (relative path and bytes, in sorted order): one checksum of the set."""
    h = hashlib.sha256()
    base = records_root(root)
    for path in record_files(root):
        h.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def tau_label(tau) -> str:
    """``"None"`` for cross-entropy, else the threshold as printed in Table 1 (``0.6``).

    >>> tau_label(None), tau_label(0.8)
    ('None', '0.8')
    """
    return "None" if tau is None or (isinstance(tau, float) and math.isnan(tau)) else f"{float(tau):g}"
