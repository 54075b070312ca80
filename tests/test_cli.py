"""`dynloss --help` documents every command, and each command has its own help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import cli

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out
    assert "not built yet" not in out


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_has_its_own_help(capsys, command):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0
    assert f"dynloss {command}" in capsys.readouterr().out


def test_command_is_found_after_the_data_dir_option():
    assert cli.command_in(["--data-dir", "/tmp/d", "analyze", "--preset", "x"]) == "analyze"
    assert cli.command_in(["--data", "train", "audit"]) == "audit"  # an abbreviated --data-dir takes "train"
    assert cli.command_in(["--data-dir=/tmp/d", "report"]) == "report"
    assert cli.command_in(["--help"]) is None and cli.command_in(["bogus"]) is None


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["analyze", "--help"], ["audit", "--help"]])
def test_help_does_not_import_torch_or_pandas(argv):
    """`dynloss --help` imports only the command asked for, and commands import heavy libraries in `func`."""
    code = ("import sys\nfrom analysis import cli\ntry:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print('heavy:', *(m for m in ('torch', 'pandas', 'scipy') if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, check=True)
    assert proc.stdout.splitlines()[-1].strip() == "heavy:", proc.stdout
