"""``dynloss analyze``: from a preset's cache to one set of tidy tables, orchestrated.

:func:`analyze_preset` is the one entry point (the ``dynloss analyze`` command calls it). It loads
the cache (:mod:`analysis.core.reader`), fuses every arm (:mod:`analysis.core.fuse`), builds the
tables and writes them as one set with their provenance. Each table comes from one module, as a
long-form DataFrame whose columns :mod:`analysis.core.schema` describes:

- ``table1``, ``bootstrap_ci``, ``mcnemar``, ``table2``, ``member_accuracy``:
  :mod:`analysis.core.tables`;
- ``calibration``, ``reliability``, ``selective``, ``risk_coverage``: :mod:`analysis.core.calibration`;
- ``ensemble_size``: :mod:`analysis.core.ensemble_size`;
- ``calibration_diff``: :mod:`analysis.core.reliability` (intervals on the calibration and
  selective-prediction differences of the dynamic arms from the cross-entropy arms);
- ``related_losses``: :mod:`analysis.core.related` (over table1, calibration and selective);
- ``superlearner_gap``: :mod:`analysis.core.fuse`;
- ``split_stats``: :mod:`analysis.core.splits` (the members' cached splits);
- ``dropped_members``, ``cache_status``: the reader's record of the cache, here.

Conventions: ``ce`` is the reference arm, ``ce-lr0.01`` the learning-rate control
(:mod:`training.arms`); every knob and seed is in :class:`analysis.core.config.AnalysisConfig`.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from analysis.core.calibration import calibration_tables
from analysis.core.config import AnalysisConfig
from analysis.core.ensemble_size import ensemble_size_curves
from analysis.core.fit_store import FitStore
from analysis.core.fuse import fuse_preset
from analysis.core.reader import PresetLogits, load_preset
from analysis.core.related import related_losses_table
from analysis.core.reliability import reliability_differences
from analysis.core.splits import split_stats_table
from analysis.core.tables import (
    accuracy_tables,
    lr_tuning_table,
    mcnemar_table,
    member_accuracy_table,
    table2,
)
from training.arms import ARMS, CONTROL_ARM, get_arm
from training.logs import Progress, get_logger
from training.paths import DataRoot, resolve_root
from training.provenance import code_revision, versions


def is_dynamic(arm: str) -> bool:
    """True for the published dynamic-loss arms at their usual rate (family ``dyn``)."""
    return arm in ARMS and ARMS[arm].family == "dyn"


def _tuning_choices(cache_root: Path, preset: str):
    """The recorded learning-rate choice of a registered preset that tunes (None otherwise), checked
    (:func:`training.tuning.read_selection`); a choice whose arms the cache lacks is not this cache's."""
    from training.presets import PRESET_NAMES, get_preset
    from training.tuning import read_selection

    return read_selection(cache_root, get_preset(preset)) if preset in PRESET_NAMES else None


def provenance(data: PresetLogits, *, root: DataRoot, config: AnalysisConfig, seconds: float,
               fits: dict | None = None) -> dict:
    """The preset, data root, schema version, input checksums (per run and aggregate), code
    revision, config (seeds) and versions: what a reader checks a set against
    (:func:`analysis.core.results_set.check_set`)."""
    from analysis.core.results_set import SCHEMA_VERSION

    runs = sorted(data.runs, key=lambda r: (r["dataset"], r["arm"], r["member"]))
    agg = hashlib.sha256("\n".join(f"{r['dataset']}/{r['arm']}/{r['member']}:{r['arrays_sha256']}" for r in runs).encode())
    status = data.status.to_dict() if data.status is not None else {"state": "complete"}
    return {"schema_version": SCHEMA_VERSION, "preset": data.preset, "data_root": str(root.path),
            "cache_root": data.root, "runs": runs, "cache_sha256": agg.hexdigest(),
            "cache_state": status["state"], "cache_status": status,
            "dropped_members": data.dropped(), "code_revision": code_revision(), "config": asdict(config),
            "seed": config.seed, "versions": versions(), "seconds": round(seconds, 2),
            "superlearner_fits": fits or {"store": None},
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def cache_status_table(data: PresetLogits) -> pd.DataFrame:
    """One row per run of the preset's grid: its state in the cache and whether it was analysed."""
    from analysis.core.schema import CACHE_STATUS_COLUMNS

    rows = list(data.status.runs) if data.status is not None else [
        {"dataset": r["dataset"], "arm": r["arm"], "member": r["member"], "path": r["path"], "state": "complete",
         "included": True, "detail": ""} for r in data.runs]
    return pd.DataFrame(rows).reindex(columns=list(CACHE_STATUS_COLUMNS))


def write_results(tables: dict[str, pd.DataFrame], out_dir: str | os.PathLike, prov: dict | None = None) -> list[Path]:
    """Write the tables (``<name>.csv``) and ``provenance.json`` as one set.

    Everything goes to a temporary folder beside ``out_dir``; ``provenance.json``, written last,
    lists every file with its SHA-256 (``files``); the folder then replaces ``out_dir`` in one
    rename (:func:`analysis.core.results_set.swap_in`). A failure part way (full disk) leaves the
    previous set whole. ``out_dir`` must be new, empty or a results set (only result files).
    """
    from analysis.core.results_set import write_set

    return write_set(
        {f"{name}.csv": (lambda f, df=df: f.write(df.to_csv(index=False).encode()))
         for name, df in tables.items()},
        out_dir, prov,
    )


def analyze_preset(
    preset: str, cache_root: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None, *,
    seed: int = 0, config: AnalysisConfig | None = None, write: bool = True, fit_store: FitStore | None = None,
    root: DataRoot | None = None,
) -> dict[str, pd.DataFrame]:
    """Run the whole analysis of a preset's cache and (optionally) write its tidy CSVs.

    Parameters
    ----------
    preset : preset name (its runs live in ``cache_root/preset``).
    cache_root : cache root (default ``root.cache``).
    out_dir : results folder (default ``root.results_dir(preset)``).
    seed : root seed (ignored when ``config`` is given).
    config : all knobs; default ``AnalysisConfig(seed=seed)``. What it leaves to the preset (the
        super-learners' row caps) is the preset's (:meth:`AnalysisConfig.for_preset`), as in
        ``dynloss analyze``; provenance.json records the values used.
    write : write the CSVs and ``provenance.json``.
    fit_store : read and store super-learner fits there (:mod:`analysis.core.fit_store`; default:
        fit every one, store none). ``dynloss analyze`` passes the data root's store.
    root : the data root (:class:`training.paths.DataRoot`; ``dynloss analyze`` passes the one its
        command line resolved). None resolves it here, from the environment, once
        (:func:`training.paths.resolve_root`): a Python call is its own boundary.

    Returns
    -------
    dict name → DataFrame: table1, table2, bootstrap_ci, mcnemar, calibration, reliability,
    selective, risk_coverage, related_losses, ensemble_size, member_accuracy, superlearner_gap,
    dropped_members, cache_status, split_stats (columns: :mod:`analysis.core.schema`).

    Raises
    ------
    FileNotFoundError
        When the preset has no cache (the message names ``dynloss train --preset NAME``).
    """
    from analysis.core.schema import DROPPED_COLUMNS

    config = (config or AnalysisConfig(seed=seed)).for_preset(preset)
    t0 = time.perf_counter()
    root = root if root is not None else resolve_root()
    cache_root = Path(cache_root) if cache_root is not None else root.cache
    out = Path(out_dir) if out_dir is not None else root.results_dir(preset)
    if write:  # a results folder that cannot take the set fails now, not after minutes of fitting
        from analysis.core.results_set import check_target

        check_target(out, preset)
    progress = Progress(get_logger("analyze"), f"dynloss analyze --preset {preset}")
    data = load_preset(cache_root, preset, nonfinite=config.nonfinite, allow_partial=config.allow_partial,
                       allow_stale=config.allow_stale)
    progress(f"read {len(data.runs)} runs ({len(data.arms)} dataset/arm pairs) from {cache_root / preset}")
    choices = _tuning_choices(cache_root, preset)
    if choices and config.superlearner_arms is not None:  # the tuned arms get the learned fusions too
        from dataclasses import replace

        from training.tuning import chosen_arms

        config = replace(config, superlearner_arms=tuple(dict.fromkeys(config.superlearner_arms + chosen_arms(choices))))
    fused, gap = fuse_preset(data, config=config, fit_store=fit_store)
    progress("fused every arm (static fusions and super-learners)")
    members = member_accuracy_table(data, n_bins=config.n_bins)
    t1, ci, draws = accuracy_tables(data, fused, members, config=config)
    progress(f"Table 1 with its bootstrap ({config.n_resamples} resamples) and training-seed intervals")
    calibration = calibration_tables(data, fused, config=config)
    from training.tuning import chosen_arms

    tuned = chosen_arms(choices) if choices else ()
    dynamic = tuple(dict.fromkeys([a for ds in data.datasets for a in data.arm_names(ds) if is_dynamic(a)]
                                  + [a for a in tuned if get_arm(a).loss == "dynamic"]))
    tuned_ce = tuple(a for a in tuned if get_arm(a).family == "ce")
    calibration_diff = reliability_differences(data, fused, config=config, dynamic=dynamic,
                                               references=(CONTROL_ARM, *tuned_ce))
    tables = {
        "table1": t1,
        "table2": table2(t1, draws, encodings=dict(config.table2_encodings), confidence=config.confidence),
        "bootstrap_ci": ci,
        "mcnemar": mcnemar_table(data, fused),
        **calibration,
        "related_losses": related_losses_table(t1, calibration["calibration"], calibration["selective"]),
        "ensemble_size": ensemble_size_curves(data, config=config),
        "member_accuracy": members,
        "superlearner_gap": gap,
        "dropped_members": pd.DataFrame(data.dropped(), columns=list(DROPPED_COLUMNS)),
        "cache_status": cache_status_table(data),
        "split_stats": split_stats_table(data),
        "lr_tuning": lr_tuning_table(choices),
        "calibration_diff": calibration_diff,
    }
    progress("calibration, selective prediction (and the intervals of the dynamic arms' differences), Table 2, "
             "McNemar, ensemble size")
    if write:
        write_results(tables, out, provenance(data, root=root, config=config, seconds=time.perf_counter() - t0,
                                               fits=fit_store.summary(root.display) if fit_store is not None
                                               else None))
        progress("wrote the results set")
    return tables
