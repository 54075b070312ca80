"""``dynloss snapshot``: a small, versioned baseline file of a preset's results, to commit.

``dynloss snapshot --preset NAME --out FILE`` reads ``<data root>/results/NAME`` (or ``--results
DIR``) and writes the cells ``dynloss compare`` uses (values, intervals), their provenance and the
SHA-256 of the files read (layout: :mod:`analysis.audit.regression.baseline`) through the project's atomic
writer; ``--out -`` writes it to standard output (and the summary line to standard error). Exit
status 2 when the results are missing, unreadable or of another preset.
"""

from __future__ import annotations

import argparse

from training.argtypes import one_line_errors, path_arg, preset_arg
from training.logs import get_logger


def register(sub, *, name: str = "snapshot", help: str = "") -> argparse.ArgumentParser:
    p = one_line_errors(sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + "."))
    p.add_argument("--preset", required=True, type=preset_arg, help="preset whose results are snapshot (e.g. fmnist-mini)")
    p.add_argument("--out", required=True, type=path_arg, metavar="FILE", help="baseline file to write (JSON; '-' = standard output)")
    p.add_argument("--results", type=path_arg, default=None, metavar="DIR",
                   help="results folder (default: <data root>/results/<preset>; see dynloss --data-dir)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from analysis.audit.regression.baseline import UnusableInput, write_snapshot

    folder = args.results or args.paths.results_dir(args.preset)
    try:
        doc = write_snapshot(folder, args.out, preset=args.preset)
    except UnusableInput as e:
        get_logger("snapshot").error(f"dynloss snapshot: {e}")
        return 2
    to_stdout = str(args.out) == "-"
    (get_logger("snapshot").info if to_stdout else print)(  # stdout carries the snapshot itself then
        f"dynloss snapshot: {len(doc['cells'])} cells of preset {args.preset} written to "
        f"{'standard output' if to_stdout else args.out}")
    return 0
