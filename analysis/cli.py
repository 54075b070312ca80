"""``dynloss``: the toolkit's command line. Thin: parse arguments, call one library function.

Each command lives in its own module exposing ``register(subparsers)``, which adds a parser and
sets ``func`` (called with the parsed namespace, returning an exit status). Those modules import
only the standard library at module level; the heavy libraries (torch, pandas, scipy) are imported
inside ``func``, after the arguments are parsed, so ``dynloss --help`` is quick.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command name -> (module providing ``register``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": ("analysis.audit.cli", "evaluate every claim of the paper's corrections by computation"),
    "train": ("training.cli", "train base learners of a preset into the cache of ensemble logits"),
    "analyze": ("analysis.core.cli", "fusion, tables, statistics and calibration from a preset's cache"),
    "report": ("analysis.report.cli", "render the corrected-methods report (Quarto, or the offline path)"),
    "snapshot": ("analysis.core.snapshot_cli", "write a small versioned baseline file of a preset's results"),
    "compare": ("analysis.audit.compare_cli", "check a results set against a baseline within its noise"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynloss",
        description=(
            "Audit toolkit for the dynamic-loss ensemble paper. Typical flow: "
            "`dynloss train --preset fmnist-mini`, `dynloss analyze --preset fmnist-mini`, "
            "`dynloss report --preset fmnist-mini`; `dynloss audit` checks the paper's loss claims."
        ),
    )
    parser.add_argument(
        "--data-dir", default=None, metavar="DIR",
        help="data root holding cache/, results/ (with audit.json) and raw/ (default: $DYNLOSS_DATA_DIR, "
             "else the checkout's data/ folder; see training/paths.py)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        importlib.import_module(module).register(sub, name=name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    from training import paths

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir is not None:
        paths.set_data_dir(args.data_dir)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
