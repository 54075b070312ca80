"""Faults of results sets, reproduced on digits-tiny: another preset's set under this one's name, a
saved audit of other results, a set made with --no-superlearners, OS and editor litter in the
folder, bad arguments, and SIGTERM during a report. Each ends in one clear line or a result that
says what it is.

One digits-tiny cache (every arm, the report needs the learning-rate control) is trained once per
module and analysed without super-learners; tests copy the set before changing it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.cli import main

PRESET = "digits-tiny"
OTHER = "fmnist-mini"
ROOT = Path(__file__).resolve().parents[1]
FAST = ["--no-superlearners", "--resamples", "200"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A data root with a digits-tiny cache and its results (no super-learners)."""
    root = tmp_path_factory.mktemp("results-faults") / "data"
    environ = dict(os.environ)
    assert main(["--data-dir", str(root), "train", "--preset", PRESET, "--quiet"]) == 0
    assert main(["--data-dir", str(root), "analyze", "--preset", PRESET, *FAST]) == 0
    # --data-dir is a value passed down, never exported: no DYNLOSS_* variable appears or changes, and
    # no variable set before changes (the libraries' first use adds KMP_*/TORCHINDUCTOR_* of their own)
    assert {k: v for k, v in os.environ.items() if k.startswith("DYNLOSS_")} == \
        {k: v for k, v in environ.items() if k.startswith("DYNLOSS_")}
    assert {k: os.environ.get(k) for k in environ} == environ
    return root


@pytest.fixture
def copy(data, tmp_path, monkeypatch):
    """A writable copy of the data root (the cache linked, the results copied), made the data root."""
    from training import paths

    dst = tmp_path / "data"
    (dst / "results").mkdir(parents=True)
    (dst / "cache").symlink_to(data / "cache")
    shutil.copytree(data / "results" / PRESET, dst / "results" / PRESET)
    monkeypatch.delenv(paths.RESULTS_ENV, raising=False)
    monkeypatch.delenv(paths.PRESET_ENV, raising=False)
    monkeypatch.setenv(paths.DATA_ENV, str(dst))
    yield dst


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _as_other_preset(folder: Path) -> None:
    """Rename the preset a set names (as `dynloss analyze --preset fmnist-mini --out <folder>` would)."""
    prov = json.loads((folder / "provenance.json").read_text())
    (folder / "provenance.json").write_text(json.dumps({**prov, "preset": OTHER}))


# ------------------------------------------------------------------- 1. the preset asked for
def test_provenance_names_the_preset_data_root_schema_and_each_runs_checksum(data):
    from analysis.core.results_set import SCHEMA_VERSION

    prov = json.loads((data / "results" / PRESET / "provenance.json").read_text())
    assert prov["preset"] == PRESET and prov["schema_version"] == SCHEMA_VERSION
    assert Path(prov["data_root"]) == data.resolve()
    from training.presets import expand, get_preset

    assert len(prov["runs"]) == len(expand(get_preset(PRESET))) and all(len(r["arrays_sha256"]) == 64 for r in prov["runs"])


def test_analyze_out_refuses_a_folder_holding_another_presets_set(copy, capsys):
    out = copy / "results" / PRESET
    _as_other_preset(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["analyze", "--preset", PRESET, "--out", str(out), *FAST]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"{out / 'provenance.json'}: the results of preset '{OTHER}'" in err and "choose another --out" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_every_reader_refuses_another_presets_set_in_one_line(copy, tmp_path, capsys):
    shutil.copytree(copy / "results" / PRESET, copy / "results" / OTHER)  # digits-tiny numbers named fmnist-mini
    prov = copy / "results" / OTHER / "provenance.json"
    for argv in (["report", "--preset", OTHER, "--engine", "offline", "--output-dir", str(tmp_path / "html")],
                 ["audit", "--preset", OTHER],
                 ["snapshot", "--preset", OTHER, "--out", str(tmp_path / "snap.json")]):
        assert main(argv) == 2, argv
        err = _one_line(capsys.readouterr().err)
        assert f"{prov}: " in err and f"results of preset '{PRESET}', not '{OTHER}'" in err, (argv, err)
    assert not (tmp_path / "html").exists() and not (tmp_path / "snap.json").exists()


@pytest.mark.parametrize("command", ["snapshot", "compare"])
def test_compare_and_snapshot_refuse_a_mixed_set(copy, tmp_path, capsys, command):
    out = copy / "results" / PRESET
    (out / "table1.csv").write_text((out / "table1.csv").read_text() + "\n")  # one table changed after the set
    argv = (["snapshot", "--preset", PRESET, "--out", str(tmp_path / "s.json")] if command == "snapshot" else
            ["compare", "--results", str(out), "--baseline", str(copy / "results" / PRESET)])
    assert main(argv) == 2
    assert "table1.csv: differs from the checksum in provenance.json" in _one_line(capsys.readouterr().err)


# ------------------------------------------------------------------- 2. a saved audit of other results
def test_a_saved_audit_names_its_results_and_is_evaluated_again_over_others(copy, capsys):
    from analysis.audit import evaluate_all
    from analysis.audit.saved import saved_audit
    from analysis.audit.scope import RESULTS_KEY, results_scope
    from analysis.report import claims
    from analysis.report.context import report_context

    assert main(["audit", "--preset", PRESET, "--save"]) == 0
    saved = {r["id"]: r for r in json.loads((copy / "results" / "audit.json").read_text())}
    first = results_scope(PRESET).provenance_sha256
    assert saved["lr-confound"]["values"][RESULTS_KEY] == first and RESULTS_KEY not in saved["sign"]["values"]
    assert "stacking-leak" not in saved  # not evaluated without super-learners
    assert main(["analyze", "--preset", PRESET, *FAST, "--seed", "1"]) == 0  # other results
    ctx = report_context({**os.environ, "DYNLOSS_PRESET": PRESET})  # the preset the report shows
    kept, fresh, note = saved_audit(results_scope(PRESET))
    # every claim that reads the results (reliability too) is evaluated again; the others are kept
    assert fresh == ["lr-confound", "reliability"] and "sign" in kept and "lr-confound" not in kept
    assert note.startswith("Claims lr-confound, reliability evaluated again: the saved audit (audit.json) was "
                           "computed from other results")
    shown = {r.id: r for r in claims._audit_results(ctx)}
    now = {r.id: r for r in evaluate_all(["lr-confound"], preset=PRESET)}
    assert shown["lr-confound"].evidence == now["lr-confound"].evidence
    assert {k: v for k, v in shown["lr-confound"].values.items() if k != RESULTS_KEY} == now["lr-confound"].values
    assert shown["lr-confound"].values[RESULTS_KEY] == results_scope(PRESET).provenance_sha256 != first
    assert "evaluated again" in claims.audit_note(ctx) and "--no-superlearners" in claims.audit_note(ctx)


@pytest.mark.parametrize("damage", ["not json", "not a list", "no id"])
def test_a_damaged_saved_audit_is_one_note_naming_the_file_and_the_fix(copy, damage):
    from analysis.audit.saved import saved_audit
    from analysis.audit.scope import results_scope

    text = {"not json": "[{", "not a list": "7", "no id": '[{"verdict": "holds"}]'}[damage]
    (copy / "results" / "audit.json").write_text(text)
    kept, fresh, note = saved_audit(results_scope(PRESET))
    assert kept == {} and "sign" in fresh and "lr-confound" in fresh
    assert note.startswith("data/results/audit.json: ") and note.endswith(
        "every claim evaluated again (`dynloss audit --save` rewrites it).") and "\n" not in note


# ------------------------------------------------------------------- 3. sets made with --no-superlearners
def test_a_set_without_superlearners_audits_and_renders_with_those_sections_absent(copy, tmp_path, capsys):
    assert main(["audit", "--preset", PRESET, "--save"]) == 0
    err = capsys.readouterr().err
    assert "Claims stacking-leak not evaluated: the results were made with `dynloss analyze --no-superlearners`" in err
    assert main(["analyze", "--preset", PRESET, *FAST, "--seed", "1"]) == 0  # the saved audit is now stale
    capsys.readouterr()
    assert main(["report", "--preset", PRESET, "--engine", "offline", "--format", "html",
                 "--output-dir", str(tmp_path / "html")]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Claims lr-confound, reliability evaluated again" in err and "stacking-leak not evaluated" in err
    authors = (tmp_path / "html" / "authors.html").read_text()
    assert "lr-confound, reliability evaluated again" in authors and "stacking-leak not evaluated" in authors
    methods = (tmp_path / "html" / "methods-audit.html").read_text()
    assert "absent: these results were made with" in methods


# ------------------------------------------------------------------- 4. litter
LITTER = (".DS_Store", ".ipynb_checkpoints", "Thumbs.db", "desktop.ini", "table1.csv~", ".table1.csv.swp",
          "._table1.csv")


def test_os_and_editor_litter_neither_blocks_analyze_nor_breaks_the_set(copy, capsys):
    from analysis.core.results_set import check_set

    out = copy / "results" / PRESET
    for name in LITTER:
        (out / name).mkdir() if name == ".ipynb_checkpoints" else (out / name).write_text("x")
    check_set(out, fix="x", preset=PRESET)
    assert main(["analyze", "--preset", PRESET, *FAST, "--seed", "2"]) == 0
    check_set(out, fix="x", preset=PRESET)
    assert json.loads((out / "provenance.json").read_text())["seed"] == 2


def test_a_foreign_file_still_blocks_analyze(copy, capsys):
    (copy / "results" / PRESET / "notes.txt").write_text("mine")
    assert main(["analyze", "--preset", PRESET, *FAST]) == 2
    assert "notes.txt, which are not result files" in _one_line(capsys.readouterr().err)


# ------------------------------------------------------------------- 5. arguments
@pytest.mark.parametrize("argv, message", [
    (["analyze", "--preset", PRESET, "--seed", "-5"], "argument --seed: expected an integer >= 0, got -5"),
    (["analyze", "--preset", PRESET, "--mlp-rows", "1"], "argument --mlp-rows: expected 0 (all rows) or >= 2"),
    (["analyze", "--preset", PRESET, "--mlp-rows", "x"], "argument --mlp-rows: expected an integer, got 'x'"),
    (["analyze", "--preset", "a/b"], "argument --preset: expected a preset name such as digits-tiny, got 'a/b'"),
    (["report", "--preset", ".."], "argument --preset: expected a preset name"),
    (["audit", "--width", "0"], "argument --width: expected an integer >= 40, got 0"),
    (["audit", "--preset", "/"], "argument --preset: expected a preset name"),
    (["analyze"], "the following arguments are required: --preset"),
    (["analyze", "--preset", PRESET, "--out", ""], "argument --out: an empty path names no file or folder"),
    (["analyze", "--preset", PRESET, "--cache", " "], "argument --cache: an empty path names no file or folder"),
    (["snapshot", "--preset", PRESET, "--out", ""], "argument --out: an empty path names no file or folder"),
    (["compare", "--results", "", "--baseline", "published"], "argument --results: an empty path names no file"),
    (["train", "--preset", "digits"], "argument --preset: invalid choice: 'digits'"),
    (["cache", "verify", "--preset", "a/b"], "argument --preset: expected a preset name"),
])
def test_bad_arguments_are_one_line_with_exit_2(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        main(["--data-dir", str(tmp_path), *argv])
    assert stop.value.code == 2
    err = _one_line(capsys.readouterr().err)
    command = " ".join(argv[:2]) if argv[0] == "cache" else argv[0]
    assert message in err and err.endswith(f"(see dynloss {command} --help)")


def test_a_trailing_slash_of_tab_completion_is_dropped_from_every_preset():
    from analysis.cli import build_parser

    for argv in (["analyze"], ["report"], ["audit"], ["train"], ["snapshot", "--out", "b.json"],
                 ["cache", "verify"]):
        args = build_parser([argv[0]]).parse_args([*argv, "--preset", f"{PRESET}/"])
        assert args.preset == PRESET


def test_the_library_refuses_a_negative_seed_or_a_one_row_superlearner():
    from analysis.core.config import AnalysisConfig

    with pytest.raises(ValueError, match="`seed` >= 0"):
        AnalysisConfig(seed=-5)
    with pytest.raises(ValueError, match="`superlearner_max_rows` of MLP None or >= 2"):
        AnalysisConfig(superlearner_max_rows=(("MLP", 1),))


# ------------------------------------------------------------------- 5. SIGTERM of a report
def _processes_naming(text: str) -> list[int]:
    found = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and text.encode() in (p / "cmdline").read_bytes():
                found.append(int(p.name))
        except OSError:
            pass
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc for the kernel process")
def test_sigterm_during_a_report_shuts_the_kernel_and_leaves_no_temporary_file(data, tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)}
    env.pop("DYNLOSS_RESULTS_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "analysis", "--data-dir", str(data), "report", "--preset", PRESET,
                             "--engine", "offline", "--format", "html", "--output-dir", str(tmp_path / "html")],
                            cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    kernels: list[int] = []
    while time.monotonic() < deadline and not kernels and proc.poll() is None:
        time.sleep(0.2)
        kernels = [pid for d in tmp.glob("dynloss-kernel-*") for pid in _processes_naming(str(d))]
    assert kernels, "the kernel never started"
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert "Traceback" not in err and all(x.startswith("dynloss report: ") for x in lines), err
    assert lines[-1] == "dynloss report: stopped by SIGTERM (the kernel shut down, temporary files removed)"
    assert list(tmp.iterdir()) == []
    time.sleep(0.5)
    assert not [pid for pid in kernels if Path(f"/proc/{pid}").exists()
                and "Z" not in (Path(f"/proc/{pid}/stat").read_text().split()[2:3] or ["Z"])]


def _processes_with_env(text: str) -> list[int]:
    found = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and p.name != str(os.getpid()) and text.encode() in (p / "environ").read_bytes():
                found.append(int(p.name))
        except OSError:
            pass
    return found


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("quarto") is None, reason="needs Quarto on PATH (installed by .ci/run)")
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc for Quarto's processes")
def test_sigterm_during_a_quarto_report_stops_quarto_and_leaves_no_temporary_file(data, tmp_path):
    from report_data import copy_checkout

    checkout = copy_checkout(ROOT, tmp_path / "checkout")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(checkout)}
    env.pop("DYNLOSS_RESULTS_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "analysis", "--data-dir", str(data), "report", "--preset", PRESET,
                             "--engine", "quarto", "--format", "html", "--root", str(checkout)],
                            cwd=checkout, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120  # until Quarto runs a page's kernel (its processes carry our TMPDIR)
    while time.monotonic() < deadline and proc.poll() is None and len(_processes_with_env(str(tmp))) < 3:
        time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()[1]
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    # (Quarto's own progress shares the stream and may leave its line unfinished)
    assert err.splitlines()[-1].endswith("dynloss report: stopped by SIGTERM (the kernel shut down, temporary files "
                                         "removed)") and "Traceback" not in err, err
    time.sleep(1.0)
    assert list(tmp.iterdir()) == []
    left = [pid for pid in _processes_with_env(str(tmp))
            if "Z" not in (Path(f"/proc/{pid}/stat").read_text().split()[2:3] or ["Z"])]
    assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left]
