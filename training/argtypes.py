"""Argument types shared by the commands: each refuses a bad value at parse time, and
:func:`one_line_errors` makes the parser report it in one line (exit status 2, no usage block).

Standard library only: ``dynloss COMMAND --help`` stays quick.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def preset_arg(value: str) -> str:
    """A preset name; a trailing ``/`` (shell tab completion of ``data/results/NAME/``) is dropped.

    >>> preset_arg("digits-tiny/")
    'digits-tiny'
    """
    name = value.rstrip("/\\")
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or name.startswith("-"):
        raise argparse.ArgumentTypeError(f"expected a preset name such as digits-tiny, got {value!r}")
    return name


def int_at_least(low: int, what: str = "") -> Callable[[str], int]:
    """An argparse type: an integer >= ``low`` (``what`` says what it counts, for the message)."""

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
        if n < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}{what}, got {n}")
        return n

    return parse


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Make ``parser`` report a bad argument as one line naming it (exit status 2), not a usage block."""

    def error(message: str):
        print(f"{parser.prog}: {message} (see {parser.prog} --help)", file=sys.stderr)
        sys.exit(2)

    parser.error = error  # type: ignore[method-assign]
    return parser


def nonempty_arg(value: str) -> str:
    """A path or name that is not empty: an empty path would silently mean the working directory."""
    if not value.strip():
        raise argparse.ArgumentTypeError("an empty path names no file or folder (it would mean the working directory)")
    return value


def path_arg(value: str) -> Path:
    """A path that names something (:func:`nonempty_arg`).

    >>> path_arg("data/results")
    PosixPath('data/results')
    """
    return Path(nonempty_arg(value))


def checked(parse: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type from a parser that raises ``ValueError("expected …, got …")``: the parser's
    own message becomes the one-line refusal (argparse would say only "invalid value").

    >>> checked(int)("3")
    3
    """

    def convert(value: str) -> object:
        try:
            return parse(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert
