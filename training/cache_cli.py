"""``dynloss cache verify --preset NAME``: every run of a preset's grid with its state, read only.

States (:mod:`training.cache_state`): complete, missing, incomplete, corrupt, stale; plus the
unexpected entries of the cache folder. Exit status 0 when every run is complete and nothing is
unexpected, 1 otherwise (the lines say what, and the ``dynloss train`` command they name repairs
the runs), 2 for bad input, 3 when a run cannot be read (permissions, I/O error).
"""

from __future__ import annotations

import argparse
import json

from training.logs import get_logger

log = get_logger("cache")


def register(sub, *, name: str, help: str) -> None:
    from training.argtypes import one_line_errors, preset_arg

    p = sub.add_parser(name, help=help, description=help)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    v = actions.add_parser("verify", help="list each run's state (complete, missing, incomplete, corrupt, stale)",
                           description="List each run of a preset's grid with its state, without training: "
                                       "complete, missing, incomplete, corrupt (checksum, identity, a copy) or "
                                       "stale (other settings), and unexpected entries of the cache folder.")
    one_line_errors(v)
    v.add_argument("--preset", required=True, type=preset_arg, help="preset name (e.g. digits-tiny, fmnist-mini)")
    v.add_argument("--cache", default=None, help="cache root (default: <data root>/cache; see dynloss --data-dir)")
    v.add_argument("--all", action="store_true", help="list complete runs too (default: only the others)")
    v.add_argument("--no-checksum", dest="checksum", action="store_false",
                   help="skip the SHA-256 of each arrays.npz (faster; truncation then goes unnoticed)")
    v.add_argument("--json", action="store_true", help="one JSON object: grid, counts, runs, unexpected entries")
    v.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from training.cache_format import CacheError, UnreadableError
    from training.cache_state import repair_command, scan

    if args.cache == "":
        log.error("dynloss cache verify: --cache: an empty path names no folder (it would mean the working "
                  "directory); give a folder")
        return 2
    root = Path(args.cache) if args.cache else args.paths.cache
    folder = root / args.preset
    from training.presets import PRESETS

    if args.preset not in PRESETS and not folder.is_dir():
        log.error(f"dynloss cache verify: {folder}: no cache of preset {args.preset!r} (known presets: "
                  f"{', '.join(sorted(PRESETS))})")
        return 2
    try:
        result = scan(root, args.preset, checksum=args.checksum)
    except CacheError as e:
        log.error(f"dynloss cache verify: {e}")
        return 2
    except UnreadableError as e:
        log.error(f"dynloss cache verify: {e}")
        return 3
    if args.json:
        print(json.dumps({
            "preset": args.preset, "folder": str(folder), "grid_source": result.grid_source,
            "grid": {f"{ds}/{arm}": n for (ds, arm), n in sorted(result.grid.items())},
            "counts": result.counts(), "ok": result.ok,
            "runs": [{"dataset": r.dataset, "arm": r.arm, "member": r.member, "path": str(r.path), "state": r.state,
                      "detail": r.detail} for r in result.runs if args.all or r.state != "complete"],
            "unexpected": [{"path": str(u.path), "reason": u.reason} for u in result.unexpected],
        }, indent=2))
    else:
        print(f"{args.preset}: {result.summary()} (grid from {result.grid_source}; {folder})")
        from tabulate import tabulate

        rows = [(r.state, r.key, r.detail) for r in result.runs if args.all or r.state != "complete"]
        rows += [("unexpected", u.path.relative_to(folder).as_posix(), u.reason) for u in result.unexpected]
        if rows:
            print(tabulate(rows, tablefmt="plain", disable_numparse=True))
        fixes = []
        if any(r.state != "complete" for r in result.runs):
            fixes.append(f"every run that is not complete is retrained by {repair_command(result)}")
        if result.unexpected:
            fixes.append("move the unexpected entries out of the cache folder (no tool deletes them)")
        if fixes:
            print("repair: " + "; ".join(fixes))
    return 0 if result.ok else 1
