"""``dynloss analyze``: fusion, tables, statistics and calibration from a preset's cache.

Thin: parses arguments, builds :class:`analysis.core.config.AnalysisConfig` and calls
:func:`analysis.core.pipeline.analyze_preset`, which writes tidy CSVs and ``provenance.json`` to
``data/results/<preset>/`` (columns: :mod:`analysis.core.schema`).
"""

from __future__ import annotations

import argparse

from training.argtypes import int_at_least, one_line_errors, path_arg, preset_arg
from training.logs import get_logger

log = get_logger("analyze")


def _mlp_rows(value: str) -> int:
    from analysis.core.config import MIN_FIT_ROWS

    n = int_at_least(0)(value)
    if 0 < n < MIN_FIT_ROWS:
        raise argparse.ArgumentTypeError(f"expected 0 (all rows) or >= {MIN_FIT_ROWS} (one row to fit, one to choose "
                                         f"the best epoch), got {n}")
    return n


def register(sub, *, name: str = "analyze", help: str = "") -> argparse.ArgumentParser:
    p = one_line_errors(sub.add_parser(name, help=help, description=help))
    p.add_argument("--preset", required=True, type=preset_arg, help="preset name (e.g. digits-tiny, fmnist-mini)")
    p.add_argument("--cache", type=path_arg, default=None, help="cache root (default: <data root>/cache; see dynloss --data-dir)")
    p.add_argument("--out", type=path_arg, default=None, help="results folder (default: <data root>/results/<preset>)")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="root seed of resampling and super-learner fits (default 0)")
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--no-superlearners", action="store_true", help="skip the learned fusions (Weighted, MLP)")
    p.add_argument("--mlp-rows", type=_mlp_rows, default=None,
                   help="cap on training rows of each MLP super-learner fit, a seeded subsample (0 = all rows, "
                        "as published; default: the preset's mlp_rows, 4000 for fmnist-mini, whose 60k rows would "
                        "take about a minute per fit on 2 CPU cores, all rows for every other preset)")
    p.add_argument("--refit", action="store_true",
                   help="fit every super-learner again instead of reading the fits an earlier analysis stored "
                        "for the same inputs and code (<data root>/fits/superlearner; safe to delete)")
    p.add_argument("--nonfinite", choices=("drop", "raise"), default="drop",
                   help="members with NaN/inf logits: drop and report (default) or fail")
    p.add_argument("--allow-partial", action="store_true",
                   help="analyse the complete runs of a cache that misses runs of the grid or holds corrupt runs "
                        "or unexpected entries (default: refuse); provenance.json, cache_status.csv, table1.csv "
                        "and the report banner say so")
    p.add_argument("--allow-stale", action="store_true",
                   help="include runs made with other settings than the preset's (default: refuse); recorded "
                        "like --allow-partial")
    p.set_defaults(func=run)
    return p


#: the option of each AnalysisConfig field it sets (named in the config's errors)
_OPTIONS = {"n_resamples": "--resamples", "seed": "--seed", "superlearner_max_rows": "--mlp-rows"}


def run(args: argparse.Namespace) -> int:
    from analysis.core.config import AnalysisConfig, preset_max_rows
    from analysis.core.fit_store import FitStore
    from analysis.core.pipeline import analyze_preset
    from analysis.core.results_set import ResultsSetError
    from training.cache_format import CacheError

    try:  # the preset's row caps unless --mlp-rows overrides them (analyze_preset resolves them)
        config = AnalysisConfig(
            seed=args.seed, n_resamples=args.resamples, superlearners=not args.no_superlearners,
            superlearner_max_rows=None if args.mlp_rows is None else preset_max_rows(args.preset, args.mlp_rows),
            nonfinite=args.nonfinite, allow_partial=args.allow_partial, allow_stale=args.allow_stale,
        )
    except ValueError as e:
        option = next((o for field, o in _OPTIONS.items() if f"`{field}`" in str(e)), "")
        log.error(f"dynloss analyze: {e}{f' ({option})' if option else ''}")
        return 2
    root = args.paths  # resolved once by the root command (training.paths.resolve_root)
    out = args.out or root.results_dir(args.preset)
    try:
        store = FitStore(root.fits, read=not args.refit)
        tables = analyze_preset(args.preset, args.cache, out, config=config, fit_store=store, root=root)
    except (CacheError, ResultsSetError) as e:
        log.error(f"dynloss analyze: {e}")
        return 2
    except FileNotFoundError as e:
        if e.filename is not None:  # an OSError of the environment: the root command reports it
            raise
        log.error(f"dynloss analyze: {e}")
        return 2
    status = tables["cache_status"]
    if not status["included"].all() or (status["state"] == "stale").any():
        left = status[~status["included"]]
        log.warning(f"dynloss analyze: partial or stale cache analysed as asked: {len(left)} of {len(status)} runs "
                    f"left out, {int(((status['state'] == 'stale') & status['included']).sum())} stale runs included "
                    f"(see cache_status.csv)")
    dropped = tables["dropped_members"]
    for r in dropped.itertuples():
        log.warning(f"dropped member {r.member} of {r.dataset}/{r.arm}: {r.reason} ({r.path})")
    if store.reused or store.fitted:
        print(f"super-learners: {store.fitted} fitted, {store.reused} read back from {root.display(store.root)}")
    print(f"wrote {len(tables)} tables and provenance.json to {out} (one set, checksums in provenance.json)")
    return 0
