"""Synthetic caches with structured logits, for tests, benchmarks and trying the pipeline.

Logits of member m on sample i: ``z = s_arm · onehot(y_i) + shared_i + individual_mi`` where the
shared part (Gaussian, per sample) makes members correlated and the individual part makes them
diverse. Rows a member was fitted on get a larger signal (``in_sample_boost``), imitating the
optimism of in-sample predictions that the published super-learners were trained on. Splits follow
the paper's scheme in miniature: member k's fit rows are the first 80 % of a bootstrap resample of
the training rows outside fold k; the last 20 % are its internal validation rows.

Written through :func:`training.cache_format.write_run`, so the files obey the cache contract; the grid
written is recorded in `_grid.json` (:func:`training.cache_state.record_grid`), as `dynloss train` does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.cache_format import run_dir, write_run
from training.cache_state import record_grid

DEFAULT_ARMS: dict[str, float] = {
    "ce": 1.6, "dyn-0.6": 1.7, "dyn-0.7": 1.75, "dyn-0.8": 1.8, "dyn-0.9": 1.85, "ce-lr0.01": 1.65,
}


@dataclass(frozen=True)
class SyntheticSpec:
    """Knobs of a synthetic preset (all sizes small by default: a test runs in seconds)."""

    datasets: tuple[str, ...] = ("digits",)
    arms: tuple[tuple[str, float], ...] = tuple(DEFAULT_ARMS.items())
    n_members: int = 5
    n_train: int = 600
    n_test: int = 400
    n_classes: int = 10
    shared_sd: float = 1.0
    member_sd: float = 1.0
    in_sample_boost: float = 1.5
    seed: int = 0


def member_split(n_train: int, n_members: int, member: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fit and validation rows of one member: fold ``member`` held out, bootstrap, 80/20 cut."""
    folds = np.arange(n_train) % n_members
    pool = np.flatnonzero(folds != member) if n_members > 1 else np.arange(n_train)
    boot = rng.choice(pool, size=pool.size, replace=True)
    cut = int(round(0.8 * boot.size))
    return np.unique(boot[:cut]), np.unique(boot[cut:])


def synthetic_logits(
    labels: np.ndarray, n_members: int, n_classes: int, signal: float, rng: np.random.Generator, *,
    shared_sd: float = 1.0, member_sd: float = 1.0, boost: np.ndarray | None = None,
) -> np.ndarray:
    """Structured float32 logits of shape (n_members, n_samples, n_classes).

    ``boost`` (n_members, n_samples) is added to the signal (e.g. on rows a member was fitted on).
    """
    n = labels.shape[0]
    onehot = np.zeros((n, n_classes), dtype=np.float32)
    onehot[np.arange(n), labels] = 1.0
    shared = rng.normal(0.0, shared_sd, size=(n, n_classes)).astype(np.float32)
    out = rng.normal(0.0, member_sd, size=(n_members, n, n_classes)).astype(np.float32)
    out += shared[None]
    sig = np.full((n_members, n), signal, dtype=np.float32)
    if boost is not None:
        sig += boost.astype(np.float32)
    out += sig[:, :, None] * onehot[None]
    return out


def write_synthetic_preset(
    root: str | os.PathLike, preset: str = "synthetic", spec: SyntheticSpec = SyntheticSpec(), *,
    nonfinite_members: tuple[tuple[str, str, int], ...] = (),
) -> Path:
    """Write a fake preset's caches under ``root/preset`` and return that directory.

    Parameters
    ----------
    root : cache root.
    preset : preset name.
    spec : sizes, arms (name → signal strength) and seed.
    nonfinite_members : ``(dataset, arm, member)`` whose test logits get a NaN (to exercise the
        non-finite policy).
    """
    for d_i, ds in enumerate(spec.datasets):
        rng_ds = np.random.default_rng([spec.seed, d_i])
        train_labels = rng_ds.integers(0, spec.n_classes, spec.n_train).astype(np.int64)
        test_labels = rng_ds.integers(0, spec.n_classes, spec.n_test).astype(np.int64)
        # ids are a permutation so the reader must align by id, not by order
        train_ids = rng_ds.permutation(spec.n_train).astype(np.int64)
        test_ids = np.arange(spec.n_test, dtype=np.int64)[::-1].copy()
        for a_i, (arm, signal) in enumerate(spec.arms):
            rng = np.random.default_rng([spec.seed, d_i, a_i])
            splits = [member_split(spec.n_train, spec.n_members, k, rng) for k in range(spec.n_members)]
            boost = np.zeros((spec.n_members, spec.n_train), dtype=np.float32)
            for k, (fit, _) in enumerate(splits):
                boost[k, fit] = spec.in_sample_boost
            # splits are official row ids; stored row j holds id train_ids[j]
            kw = dict(shared_sd=spec.shared_sd, member_sd=spec.member_sd)
            train = synthetic_logits(train_labels, spec.n_members, spec.n_classes, signal, rng,
                                     boost=boost[:, train_ids], **kw)
            test = synthetic_logits(test_labels, spec.n_members, spec.n_classes, signal, rng, **kw)
            for k, (fit, val) in enumerate(splits):
                t = test[k].copy()
                if (ds, arm, k) in nonfinite_members:
                    t[0, 0] = np.nan
                arrays = {
                    "train_logits": train[k], "test_logits": t,
                    "train_labels": train_labels, "test_labels": test_labels,
                    "train_ids": train_ids, "test_ids": test_ids,
                    "fit_index": fit.astype(np.int64), "val_index": val.astype(np.int64),
                }
                meta = {"preset": preset, "dataset": ds, "arm": arm, "member": k,
                        "seed": int(spec.seed * 1_000_003 + d_i * 1009 + a_i * 101 + k), "synthetic": True}
                write_run(run_dir(root, preset, ds, arm, k), arrays, meta)
    record_grid(Path(root) / preset, {(ds, arm): spec.n_members for ds in spec.datasets for arm, _ in spec.arms})
    return Path(root) / preset


def edit_results_table(folder: Path, name: str, func) -> None:
    """Replace table ``name`` of a results set by ``func(table)`` and re-stamp its checksum in
    ``provenance.json``: a whole set with other numbers (an edit without the re-stamp is a mixed set,
    which every reader refuses)."""
    import json

    import pandas as pd

    from training.cache_format import sha256_file

    path = Path(folder) / f"{name}.csv"
    func(pd.read_csv(path)).to_csv(path, index=False)
    prov = json.loads((Path(folder) / "provenance.json").read_text())
    prov["files"][path.name] = sha256_file(path)
    (Path(folder) / "provenance.json").write_text(json.dumps(prov))
