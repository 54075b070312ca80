"""Argument types shared by the commands (`training/argtypes.py`): a bad value is refused at
parse time, in one line that names the argument, with exit status 2."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from training.argtypes import int_at_least, nonempty_arg, one_line_errors, path_arg, preset_arg


def _parser() -> argparse.ArgumentParser:
    p = one_line_errors(argparse.ArgumentParser(prog="dynloss demo"))
    p.add_argument("--preset", type=preset_arg)
    p.add_argument("--members", type=int_at_least(1, " (members per arm)"))
    p.add_argument("--out", type=path_arg)
    return p


@pytest.mark.parametrize("argv, needle", [
    (["--preset", "../etc"], "--preset: expected a preset name"),
    (["--preset", ""], "--preset: expected a preset name"),
    (["--members", "0"], "--members: expected an integer >= 1 (members per arm), got 0"),
    (["--members", "two"], "--members: expected an integer, got 'two'"),
    (["--out", " "], "--out: an empty path names no file or folder"),
])
def test_a_bad_value_is_one_line_naming_the_argument_with_exit_2(argv, needle, capsys):
    with pytest.raises(SystemExit) as stop:
        _parser().parse_args(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert needle in err and err.count("\n") == 1 and "usage:" not in err
    assert err.startswith("dynloss demo: ") and err.rstrip().endswith("(see dynloss demo --help)")


def test_good_values_parse_to_their_types():
    args = _parser().parse_args(["--preset", "digits-tiny/", "--members", "3", "--out", "data/results"])
    assert (args.preset, args.members, args.out) == ("digits-tiny", 3, Path("data/results"))
    assert nonempty_arg("x") == "x"
