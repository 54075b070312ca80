"""A content-addressed store of super-learner fits: ``dynloss analyze`` refits only what changed.

The learned fusions take most of an analysis (fmnist-mini: ~60 of ~80 s on two cores), yet their
inputs rarely change between runs: a new table, a new report page or another bootstrap size leaves
them alone. Each fit is stored under a key that is the SHA-256 of everything its result depends on:

- the task: training logits, labels, test logits, fit mask (their dtype, shape and bytes), the
  variant, the seed and every field of its :class:`~analysis.core.superlearner.SuperLearnerConfig`;
- the code: the sources of :mod:`analysis.core.superlearner` and
  :mod:`analysis.core.superlearner_batch`, and the installed torch and numpy versions;
- :data:`FORMAT`, the layout of a stored fit.

Same key, same inputs: a stored fit is what fitting again would give, because every fit is
bit-identical whatever else is fitted with it (``tests/test_analysis_superlearner_batch.py``).
A fit is read back only when its file names its own key and its arrays have the task's shape;
anything else (truncated, foreign or corrupt file) is fitted again and overwritten. Files are written
atomically (:func:`training.cache_format.atomic_write`), so two analyses can share a store, and a
store that cannot be written (full disk, read-only) only costs the next run its reuse (a warning).
Deleting the folder is always safe. A fit read back keeps the ``fit_seconds`` of the analysis that
fitted it (``superlearner_gap.csv``), so its tables are the same bytes as that analysis's. With some
stored fits deleted, a rerun refits just those (batched among themselves, or alone) and writes the
same CSV bytes as before, except the refitted fits' ``fit_seconds`` (their own wall time) in
``superlearner_gap.csv``; ``provenance.json`` records the new reused/fitted counts.

Layout: ``<data root>/fits/superlearner/<key>.npz`` (:attr:`training.paths.DataRoot.fits`), numpy arrays only
(read with ``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from analysis.core.superlearner import SuperLearnerResult, SuperLearnerTask

#: layout version of a stored fit (part of every key)
FORMAT = 1
_CODE_MODULES = ("superlearner.py", "superlearner_batch.py")
_SCALARS = ("val_accuracy", "best_epoch", "n_fit_rows", "n_val_rows", "fit_seconds")


def _code_digest() -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _CODE_MODULES:
        h.update(name.encode() + b"\0" + (here / name).read_bytes())
    for dist in ("torch", "numpy"):
        try:
            h.update(f"{dist}=={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}==none".encode())
    return h.hexdigest()


def _array_digest(a: np.ndarray | None) -> bytes:
    if a is None:
        return b"none"
    a = np.ascontiguousarray(a)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B"))
    return h.digest()


def task_keys(tasks: list[SuperLearnerTask]) -> list[str]:
    """The store key of each task (hex SHA-256); arrays shared by several tasks are hashed once."""
    code = _code_digest()
    memo: dict[int, bytes] = {}

    def digest(a: np.ndarray | None) -> bytes:
        if a is None:
            return b"none"
        if id(a) not in memo:
            memo[id(a)] = _array_digest(a)
        return memo[id(a)]

    keys = []
    for t in tasks:
        h = hashlib.sha256(f"format={FORMAT};code={code};".encode())
        h.update(json.dumps({"config": asdict(t.config), "seed": int(t.seed), "variant": t.variant},
                            sort_keys=True).encode())
        for a in (t.train_logits, t.train_labels, t.test_logits, t.fit_mask):
            h.update(digest(a))
        keys.append(h.hexdigest())
    return keys


def _encode(key: str, r: SuperLearnerResult) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, key=np.array(key), kind=np.array(r.kind), variant=np.array(r.variant), preds=r.preds,
             probs=r.probs, logits=r.logits, history=np.asarray(r.history, dtype=np.float64),
             **{k: np.array(getattr(r, k)) for k in _SCALARS})
    return buf.getvalue()


def _decode(path: Path, key: str, task: SuperLearnerTask) -> SuperLearnerResult | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key:
                return None
            r = SuperLearnerResult(
                kind=str(z["kind"]), variant=str(z["variant"]), preds=z["preds"], probs=z["probs"],
                logits=z["logits"], history=z["history"].tolist(),
                val_accuracy=float(z["val_accuracy"]), best_epoch=int(z["best_epoch"]),
                n_fit_rows=int(z["n_fit_rows"]), n_val_rows=int(z["n_val_rows"]),
                fit_seconds=float(z["fit_seconds"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile) as e:  # truncated, corrupt
        warnings.warn(f"{path}: unreadable stored fit ({type(e).__name__}); fitting again", stacklevel=3)
        return None
    n_test, n_classes = task.test_logits.shape[1], task.test_logits.shape[2]
    if r.preds.shape != (n_test,) or r.probs.shape != (n_test, n_classes) or r.logits.shape != (n_test, n_classes):
        warnings.warn(f"{path}: stored fit has the wrong shape; fitting again", stacklevel=3)
        return None
    return r


@dataclass
class FitStore:
    """Where fits are stored, and what this analysis did with them.

    ``read=False`` fits everything again (``dynloss analyze --refit``) and stores the new fits.
    ``reused`` / ``fitted`` count the fits of the last :meth:`fit` calls.
    """

    root: Path  # ``dynloss analyze``: <data root>/fits/superlearner (training.paths.DataRoot.fits)
    read: bool = True
    reused: int = 0
    fitted: int = 0
    write_errors: int = 0

    def fit(self, tasks: list[SuperLearnerTask]) -> list[SuperLearnerResult]:
        """The result of every task: read back when stored, otherwise fitted (all missing fits in
        one batched call of :func:`~analysis.core.superlearner_batch.fit_superlearners`) and stored."""
        keys = task_keys(tasks)
        root = Path(self.root)
        results: list[SuperLearnerResult | None] = [
            _decode(root / f"{k}.npz", k, t) if self.read else None for k, t in zip(keys, tasks)]
        todo = [i for i, r in enumerate(results) if r is None]
        if todo:
            from analysis.core.superlearner_batch import fit_superlearners
            from training.cache_format import atomic_write

            for i, r in zip(todo, fit_superlearners([tasks[i] for i in todo])):
                results[i] = r
                try:
                    atomic_write(root / f"{keys[i]}.npz", _encode(keys[i], r))
                except OSError as e:
                    self.write_errors += 1
                    if self.write_errors == 1:
                        warnings.warn(f"super-learner fits not stored ({e}); the next analysis fits them again",
                                      stacklevel=2)
        self.reused += len(tasks) - len(todo)
        self.fitted += len(todo)
        return results  # type: ignore[return-value]

    def summary(self, shown: Callable[[Path], str] = lambda p: Path(p).name) -> dict:
        """For ``provenance.json``: where the fits are stored (as ``shown`` writes a path, e.g.
        :meth:`training.paths.DataRoot.display`) and how many were reused."""
        return {"store": shown(self.root), "read": self.read, "reused": self.reused, "fitted": self.fitted,
                "write_errors": self.write_errors}
