"""The `dynloss` logger: progress and diagnostics on stderr under `--log-level`, results on stdout."""

from __future__ import annotations

import io
import logging
import re
import sys

from synthetic import SyntheticSpec, write_synthetic_preset

from analysis.cli import command_in, main
from training.logs import configure, get_logger

SMALL = SyntheticSpec(arms=(("ce", 1.5), ("dyn-0.7", 1.7)), n_members=2, n_train=80, n_test=60, n_classes=3)


def _analyze(tmp_path, *root_options: str) -> int:
    return main([*root_options, "analyze", "--preset", "small", "--cache", str(tmp_path), "--out",
                 str(tmp_path / "out"), "--resamples", "200", "--no-superlearners"])


def test_analyze_reports_each_long_step_with_its_seconds_on_stderr_and_its_result_on_stdout(tmp_path, capsys):
    write_synthetic_preset(tmp_path, "small", SMALL)
    assert _analyze(tmp_path) == 0
    captured = capsys.readouterr()
    steps = [line for line in captured.err.splitlines() if line.startswith("dynloss analyze --preset small: ")]
    assert len(steps) == 5, captured.err
    assert all(re.search(r" in \d+\.\d s \(\d+\.\d s in all\)$", line) for line in steps), steps
    assert "read 4 runs" in steps[0] and "bootstrap (200 resamples)" in steps[2] and "wrote" in steps[-1]
    from analysis.core.schema import RESULT_FILES

    assert "dynloss analyze" not in captured.out
    assert f"wrote {len(RESULT_FILES)} tables and provenance.json" in captured.out


def test_log_level_warning_keeps_errors_and_the_result_but_hides_progress(tmp_path, capsys):
    write_synthetic_preset(tmp_path, "small", SMALL)
    assert _analyze(tmp_path, "--log-level", "warning") == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "wrote 17 tables" in captured.out  # RESULT_FILES, lr_tuning.csv and calibration_diff.csv included
    assert main(["--log-level", "error", "analyze", "--preset", "absent", "--cache", str(tmp_path)]) == 2
    assert "dynloss train --preset absent" in capsys.readouterr().err
    configure("info")


def test_the_command_is_found_after_the_log_level_option():
    assert command_in(["--log-level", "debug", "train"]) == "train"
    assert command_in(["--log", "error", "--data-dir", "d", "audit"]) == "audit"  # abbreviations
    assert command_in(["--log-level=warning", "analyze"]) == "analyze"


def test_an_unknown_log_level_is_one_line_naming_the_choices(capsys):
    try:
        main(["--log-level", "loud", "audit"])
    except SystemExit as e:
        assert e.code == 2
    assert "--log-level" in capsys.readouterr().err


def test_messages_go_to_the_stderr_of_the_moment_once_configured(monkeypatch):
    configure("info")
    configure("info")  # a second call adds no second handler
    logger = get_logger()
    assert len([h for h in logger.handlers if type(h).__name__ == "_StderrHandler"]) == 1
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    get_logger("train").info("one line")
    get_logger("train").debug("hidden at info")
    assert stream.getvalue() == "one line\n"
    assert logger.level == logging.INFO and get_logger("analyze").name == "dynloss.analyze"
