"""``dynloss``: the toolkit's command line. Thin: parse arguments, call one library function.

Each command lives in its own module exposing ``register(subparsers)``, which adds a parser and
sets ``func`` (called with the parsed namespace, returning an exit status). Modules are imported
only when the command runs, so ``dynloss audit`` does not pay for torch-heavy imports it skips.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: command name -> (module providing ``register``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": ("analysis.audit.cli", "evaluate every claim of the paper's corrections by computation"),
    "train": ("training.cli", "train base learners of a preset into the cache of ensemble logits"),
    "analyze": ("analysis.analyze_cli", "fusion, tables, statistics and calibration from a preset's cache"),
    "report": ("analysis.report_cli", "render the corrected-methods report (Quarto, or the offline path)"),
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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            p = sub.add_parser(name, help=f"{help_text} (not built yet)")
            p.set_defaults(func=_not_built(name))
            continue
        mod.register(sub, name=name, help=help_text)
    return parser


def _not_built(name: str):
    def run(_args: argparse.Namespace) -> int:
        print(f"dynloss {name}: this command is not built yet in this revision.", file=sys.stderr)
        return 2

    return run


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
