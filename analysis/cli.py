"""``dynloss``: the toolkit's command line. Thin: parse arguments, call one library function.

Each command lives in its own module exposing ``register(subparsers)``, which adds a parser and
sets ``func`` (called with the parsed namespace, returning an exit status). Only the module of the
command being run is imported (the others get a placeholder parser carrying their one-line help),
and the heavy libraries (torch, pandas, scipy) are imported inside ``func``, after the arguments
are parsed, so ``dynloss --help`` and ``dynloss COMMAND --help`` are quick.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Iterable, Sequence

from training.logs import LEVELS as LOG_LEVELS

#: command name -> (module providing ``register``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": ("analysis.audit.cli", "evaluate every claim of the paper's corrections by computation"),
    "train": ("training.cli", "train base learners of a preset into the cache of ensemble logits"),
    "cache": ("training.cache_cli", "check a preset's cache run by run (complete, missing, corrupt, stale), read only"),
    "analyze": ("analysis.core.cli", "fusion, tables, statistics and calibration from a preset's cache"),
    "report": ("analysis.report.cli", "render the corrected-methods report (Quarto, or the offline path)"),
    "snapshot": ("analysis.audit.regression.snapshot_cli", "write a small versioned baseline file of a preset's results"),
    "compare": ("analysis.audit.regression.compare_cli", "check a results set against a baseline within its noise"),
}


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``dynloss`` parser; ``commands``: those whose module is imported and registered (default:
    all), the others get a placeholder parser with their one-line help only."""
    full = set(COMMANDS) if commands is None else set(commands)
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
    parser.add_argument(
        "--log-level", default="info", choices=LOG_LEVELS,
        help="messages on stderr from this level up (default info: progress and status; the command's "
             "output on stdout and the progress bars are not affected)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        if name in full:
            importlib.import_module(module).register(sub, name=name, help=help_text)
        else:
            sub.add_parser(name, help=help_text, description=help_text)
    return parser


#: errno values that mean "the path given is wrong" (exit status 2); other OSErrors are failures of
#: the environment (full disk, read-only folder, permissions: exit status 3)
_BAD_PATH = {errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.ENAMETOOLONG, errno.ELOOP}


def describe_os_error(e: OSError) -> str:
    """One line for an OSError: what failed, on which path, and what to do.

    >>> describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/data/x.csv"))
    '/data/x.csv: no space left on device (free some space, then rerun the same command)'
    """
    hints = {
        errno.ENOSPC: "free some space, then rerun the same command",
        errno.EDQUOT: "free some space, then rerun the same command",
        errno.EROFS: "the file system is read-only: choose a writable folder (dynloss --data-dir DIR)",
        errno.EACCES: "permission denied: choose a folder you can write (dynloss --data-dir DIR)",
        errno.EPERM: "operation not permitted: choose a folder you can write (dynloss --data-dir DIR)",
        errno.ENOTDIR: "a file stands where a folder is expected: move it away",
    }
    what = (e.strerror or str(e)).rstrip(".")
    what = what[:1].lower() + what[1:]
    where = f"{e.filename}: " if e.filename else ""
    hint = hints.get(e.errno or -1)
    return f"{where}{what}" + (f" ({hint})" if hint else "")


def command_in(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not an option or the value of
    ``--data-dir`` or ``--log-level``).

    >>> command_in(["--data-dir", "/tmp/d", "analyze", "--preset", "x"])
    'analyze'
    >>> command_in(["--log-level", "debug", "train"])
    'train'
    >>> command_in(["--help"]) is None
    True
    """
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif len(arg) > 2 and ("--data-dir".startswith(arg) or "--log-level".startswith(arg)):
            skip = True  # argparse accepts abbreviations
        elif not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one command. Failures of the environment and interruptions are reported in one line
    (no traceback): exit status 2 for a bad path, 3 for the environment, 130 for Ctrl-C. An
    exception no command anticipated is one line too (exit status 1; ``DYNLOSS_TRACEBACK=1``
    re-raises it with its traceback)."""
    from training import paths

    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_in(argv)
    parser = build_parser([command] if command else [])
    args = parser.parse_args(argv)
    from training.logs import configure

    log = configure(args.log_level)
    try:  # the one place the data root is resolved; commands read it from args.paths
        args.paths = paths.resolve_root(args.data_dir)
        return int(args.func(args) or 0)
    except OSError as e:
        log.error(f"dynloss {args.command}: {describe_os_error(e)}")
        return 2 if e.errno in _BAD_PATH else 3
    except KeyboardInterrupt:
        log.error(f"dynloss {args.command}: interrupted")
        return 130
    except RecursionError:
        log.error(f"dynloss {args.command}: an input is nested too deeply to read (a damaged or hostile file)")
        return 2
    except MemoryError:
        log.error(f"dynloss {args.command}: out of memory (an input too large for this machine?)")
        return 3
    except Exception as e:  # the backstop: one line, the traceback on request
        if os.environ.get("DYNLOSS_TRACEBACK"):
            raise
        log.error(f"dynloss {args.command}: internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                  f" (please report it; DYNLOSS_TRACEBACK=1 shows the traceback)")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
