"""Faults a hostile user can cause, each reproduced on digits-tiny: copies, deletions, truncation,
kill -9, SIGTERM, a full disk, a read-only folder, a file where a folder belongs, two processes at
once, bad arguments, out-of-range metric inputs. Every case must end in a clear one-line error, a
repair, or a result that says what it is; never in a wrong number printed with confidence.

One small cache (digits-tiny, arms ce and dyn-0.8, 3 members) is trained once per module and copied
into each test that damages it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from training import cache_format as cf

PRESET = "digits-tiny"
ARMS = ("ce", "dyn-0.8")
ROOT = Path(__file__).resolve().parents[1]
FAST = ["--no-superlearners", "--resamples", "200"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cache = tmp_path_factory.mktemp("faults") / "cache"
    assert main(["train", "--preset", PRESET, "--cache", str(cache), "--arms", ",".join(ARMS), "--quiet"]) == 0
    return cache


@pytest.fixture
def cache(trained, tmp_path):
    dst = tmp_path / "cache"
    shutil.copytree(trained, dst)
    return dst


def _runs(cache: Path, arm: str = "ce") -> Path:
    return cache / PRESET / "digits" / arm


def _sha(cache: Path) -> dict[str, str]:
    return {f"{arm}/{k}": cf.read_meta(p)["arrays_sha256"] for _, arm, k, p in cf.iter_run_dirs(cache, PRESET)
            if (p / cf.RUN_FILE).is_file()}


def _analyze(cache: Path, out: Path, *extra: str) -> int:
    return main(["analyze", "--preset", PRESET, "--cache", str(cache), "--out", str(out), *FAST, *extra])


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------- 1. identity, not layout
def test_an_arm_folder_replaced_by_a_copy_of_another_arm_is_refused(cache, tmp_path, capsys):
    shutil.rmtree(_runs(cache, "dyn-0.8"))
    shutil.copytree(_runs(cache, "ce"), _runs(cache, "dyn-0.8"))
    assert _analyze(cache, tmp_path / "out") == 2
    err = _one_line(capsys.readouterr().err)
    assert "dyn-0.8/member-000: corrupt (run.json says arm 'ce'" in err and "dynloss train --preset" in err
    assert not (tmp_path / "out").exists()


def test_a_member_copied_under_a_second_name_is_not_counted_twice(cache, tmp_path, capsys):
    shutil.copytree(_runs(cache) / "member-000", _runs(cache) / "member-0")
    assert _analyze(cache, tmp_path / "out") == 2
    assert "ce/member-0: unexpected" in _one_line(capsys.readouterr().err)


@pytest.mark.parametrize("damage", ["delete a member", "empty an arm", "delete an arm"])
def test_missing_members_or_arms_are_refused_naming_them(cache, tmp_path, capsys, damage):
    if damage == "delete a member":
        shutil.rmtree(_runs(cache) / "member-001")
    elif damage == "empty an arm":
        for m in _runs(cache).iterdir():
            shutil.rmtree(m)
    else:
        shutil.rmtree(_runs(cache))
    assert _analyze(cache, tmp_path / "out") == 2
    err = _one_line(capsys.readouterr().err)
    assert "ce/member-001: missing" in err and "--allow-partial" in err


def test_stale_runs_are_refused_then_analysed_only_when_allowed_and_labelled(cache, tmp_path, capsys):
    from training.executors import train_preset
    from training.presets import get_preset, with_overrides

    # member 0 of dyn-0.8 retrained with other settings (1 epoch)
    train_preset(with_overrides(get_preset(PRESET), epochs=1), cache_root=cache, arms=("dyn-0.8",), members=1,
                 progress=False)
    assert _analyze(cache, tmp_path / "out") == 2
    err = _one_line(capsys.readouterr().err)
    assert "dyn-0.8/member-000: stale" in err and "--allow-stale" in err
    assert _analyze(cache, tmp_path / "out", "--allow-stale") == 0
    prov = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert prov["cache_state"] == "stale"
    assert [r["member"] for r in prov["cache_status"]["stale_included"]] == [0]
    t1 = pd.read_csv(tmp_path / "out" / "table1.csv")
    assert set(t1.loc[t1["arm"] == "dyn-0.8", "cache_state"]) == {"stale (1 run)"}
    assert set(t1.loc[t1["arm"] == "ce", "cache_state"]) == {"complete"}
    status = pd.read_csv(tmp_path / "out" / "cache_status.csv")
    assert status.loc[status["state"] == "stale", "path"].tolist() == ["digits/dyn-0.8/member-000"]


def test_a_partial_analysis_is_explicit_and_says_so_in_provenance_csvs_and_banner(cache, tmp_path, capsys, monkeypatch):
    shutil.rmtree(_runs(cache) / "member-001")
    assert _analyze(cache, tmp_path / "res" / PRESET, "--allow-partial") == 0
    out = tmp_path / "res" / PRESET
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["cache_state"] == "partial"
    assert [(r["arm"], r["member"], r["state"]) for r in prov["cache_status"]["excluded"]] == [("ce", 1, "missing")]
    t1 = pd.read_csv(out / "table1.csv")
    assert set(t1.loc[t1["arm"] == "ce", "cache_state"]) == {"partial (2 of 3 members)"}
    assert set(t1.loc[t1["arm"] == "ce", "n_members"]) == {2}
    status = pd.read_csv(out / "cache_status.csv")
    assert len(status) == 6 and status["included"].sum() == 5
    monkeypatch.setenv("DYNLOSS_RESULTS_DIR", str(tmp_path / "res"))
    from analysis.report.context import preset_banner, report_context

    banner = preset_banner(report_context(preset=PRESET))
    assert "Warning: partial cache" in banner and "1 of 6 runs of the grid were left out" in banner


def test_a_complete_cache_analyses_with_every_run_marked_complete(cache, tmp_path):
    assert _analyze(cache, tmp_path / "out") == 0
    status = pd.read_csv(tmp_path / "out" / "cache_status.csv")
    assert len(status) == 6 and (status["state"] == "complete").all() and status["included"].all()
    assert json.loads((tmp_path / "out" / "provenance.json").read_text())["cache_state"] == "complete"


# ------------------------------------------------------------------- 2. repair and verify
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-40] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip], ids=["truncated", "checksum"])
def test_train_retrains_only_the_broken_run_and_gets_the_same_bits(cache, capsys, damage):
    before = _sha(cache)
    damage(_runs(cache) / "member-001" / cf.ARRAYS_FILE)
    assert main(["cache", "verify", "--preset", PRESET, "--cache", str(cache)]) == 1
    assert "corrupt digits/ce/member-001 arrays.npz SHA-256" in " ".join(capsys.readouterr().out.split())
    assert main(["train", "--preset", PRESET, "--cache", str(cache), "--arms", ",".join(ARMS), "--quiet"]) == 0
    assert "6 runs, 5 already complete, 1 trained (redone: 1 corrupt)" in capsys.readouterr().out
    assert _sha(cache) == before  # deterministic: the repaired run is bit-identical to the original


def test_a_file_where_a_run_folder_belongs_is_reported_and_replaced(cache, tmp_path, capsys):
    shutil.rmtree(_runs(cache) / "member-002")
    (_runs(cache) / "member-002").write_text("not a run")
    assert _analyze(cache, tmp_path / "out") == 2
    assert "ce/member-002: corrupt (a file, not a run folder" in _one_line(capsys.readouterr().err)
    assert main(["train", "--preset", PRESET, "--cache", str(cache), "--arms", ",".join(ARMS), "--quiet"]) == 0
    assert "1 trained (redone: 1 corrupt)" in capsys.readouterr().out
    assert (_runs(cache) / "member-002").is_dir() and _analyze(cache, tmp_path / "out") == 0


def test_cache_verify_lists_each_state_without_training(cache, capsys):
    from training.executors import train_preset
    from training.presets import get_preset, with_overrides

    (_runs(cache) / "member-000" / cf.RUN_FILE).unlink()  # incomplete
    shutil.rmtree(_runs(cache) / "member-001")  # missing
    _flip(_runs(cache) / "member-002" / cf.ARRAYS_FILE)  # corrupt
    train_preset(with_overrides(get_preset(PRESET), epochs=1), cache_root=cache, arms=("dyn-0.8",), members=1,
                 progress=False)  # stale
    stamp = sorted((p, p.stat().st_mtime_ns) for p in (cache / PRESET).rglob("*"))
    assert main(["cache", "verify", "--preset", PRESET, "--cache", str(cache), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    states = {f"{r['arm']}/{r['member']}": r["state"] for r in report["runs"]}
    assert states == {"ce/0": "incomplete", "ce/1": "missing", "ce/2": "corrupt", "dyn-0.8/0": "stale"}
    assert report["counts"] == {"complete": 2, "missing": 1, "incomplete": 1, "corrupt": 1, "stale": 1}
    assert sorted((p, p.stat().st_mtime_ns) for p in (cache / PRESET).rglob("*")) == stamp  # read only
    assert main(["train", "--preset", PRESET, "--cache", str(cache), "--arms", ",".join(ARMS), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["cache", "verify", "--preset", PRESET, "--cache", str(cache)]) == 0
    assert "6 runs: 6 complete" in capsys.readouterr().out


# ------------------------------------------------------------------- 3. processes
def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (Linux /proc)."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _start_train(cache: Path) -> tuple[subprocess.Popen, set[int]]:
    """``dynloss train --workers 2`` in a subprocess; returns once both workers are running."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "analysis.cli", "train", "--preset", PRESET, "--cache", str(cache),
                             "--workers", "2", "--quiet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        workers = {c for c in _children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text(errors="ignore")}
        if len(workers) >= 2:
            return proc, _children(proc.pid)
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the workers did not start")


def _wait_gone(pids: set[int], timeout: float = 20) -> set[int]:
    deadline = time.monotonic() + timeout
    while (alive := {p for p in pids if _alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_die_with_their_parent_on_kill_9(tmp_path):
    proc, family = _start_train(tmp_path / "cache")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not _wait_gone(family), "worker processes survived their parent"
    written = _sha(tmp_path / "cache")
    time.sleep(1.0)
    assert _sha(tmp_path / "cache") == written  # nobody keeps writing runs


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_sigterm_stops_with_one_line_and_leaves_no_partial_run(tmp_path):
    from training.cache_state import scan

    proc, family = _start_train(tmp_path / "cache")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert _one_line(err).startswith("dynloss train: stopped by SIGTERM")
    assert not _wait_gone(family)
    states = {r.state for r in scan(tmp_path / "cache", PRESET).runs}
    assert states <= {"complete", "missing", "incomplete"}  # never a run.json over broken arrays


def test_a_second_train_names_the_process_holding_the_cache_or_waits(cache, capsys):
    from training.cache_lock import preset_lock

    args = ["train", "--preset", PRESET, "--cache", str(cache), "--arms", ",".join(ARMS), "--quiet"]
    with preset_lock(cache / PRESET):
        assert main(args) == 3
        err = _one_line(capsys.readouterr().err)
        assert f"in use by process {os.getpid()}" in err and "--wait" in err
    held = threading.Event()

    def hold():
        with preset_lock(cache / PRESET):
            held.set()
            time.sleep(1.0)

    t = threading.Thread(target=hold)
    t.start()
    held.wait()
    t0 = time.monotonic()
    assert main([*args, "--wait"]) == 0
    t.join()
    assert time.monotonic() - t0 > 0.5
    assert "waiting for process" in capsys.readouterr().err


def test_a_live_writers_temporary_files_are_never_deleted(cache):
    from training.executors import train_preset
    from training.presets import get_preset

    run = _runs(cache) / "member-001"
    (run / cf.RUN_FILE).unlink()
    live = run / f"{cf.temp_prefix(cf.ARRAYS_FILE)}abc123.tmp"  # this process: alive
    dead = run / f".{cf.ARRAYS_FILE}.{_dead_pid()}@{socket.gethostname()}.xyz789.tmp"
    live.write_bytes(b"in progress")
    dead.write_bytes(b"left by a killed writer")
    train_preset(get_preset(PRESET), cache_root=cache, arms=ARMS, progress=False)
    assert live.exists() and not dead.exists()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ------------------------------------------------------------------- 4. bit-identical resume
def test_resuming_in_the_middle_of_a_group_gives_the_uninterrupted_checksums(trained, tmp_path, monkeypatch):
    """The three ce members train in one vmap group; the run is cut after member 0 is written and
    resumed: members 1 and 2 then train as a group of two, and member 2 alone, yet every checksum
    equals the uninterrupted run's."""
    from training.executors import train_preset
    from training.presets import get_preset

    reference = {k: v for k, v in _sha(trained).items() if k.startswith("ce/")}
    real_write = cf.write_run
    calls = []

    def write_then_die(*a, **k):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real_write(*a, **k)

    monkeypatch.setattr(cf, "write_run", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_preset(get_preset(PRESET), cache_root=tmp_path, arms=("ce",), progress=False)
    monkeypatch.setattr(cf, "write_run", real_write)
    assert set(_sha(tmp_path)) == {"ce/0"}
    assert not (tmp_path / PRESET / "_grid.json").exists()  # the grid is recorded once its runs are complete
    assert train_preset(get_preset(PRESET), cache_root=tmp_path, arms=("ce",), progress=False).trained == 2
    assert _sha(tmp_path) == reference
    shutil.rmtree(_runs(tmp_path) / "member-002")
    assert train_preset(get_preset(PRESET), cache_root=tmp_path, arms=("ce",), progress=False).trained == 1
    assert _sha(tmp_path) == reference


# ------------------------------------------------------------------- 5. results as one set
def _fail_on_write(monkeypatch, n: int) -> None:
    """Make the n-th file write of the results set fail with ENOSPC (a disk that fills up)."""
    import analysis.core.results_set as rs

    real_open, count = open, [0]

    def full_disk_open(file, mode="r", *a, **k):
        if "w" in mode:
            count[0] += 1
            if count[0] == n:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(file, mode, *a, **k)

    monkeypatch.setattr(rs, "open", full_disk_open, raising=False)


def test_a_full_disk_part_way_leaves_the_previous_set_whole(cache, tmp_path, capsys, monkeypatch):
    from analysis.core.results_set import check_set

    out = tmp_path / "out"
    assert _analyze(cache, out) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _fail_on_write(monkeypatch, 5)
    capsys.readouterr()
    # --log-level warning: only the error, not the progress of the steps done before the write failed
    assert main(["--log-level", "warning", "analyze", "--preset", PRESET, "--cache", str(cache), "--out", str(out),
                 *FAST, "--seed", "1"]) == 3
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(f"dynloss analyze: {out}: no space left on device")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    check_set(out, fix="x")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("damage", ["mixed", "missing", "foreign", "no file list"])
def test_report_refuses_a_mixed_or_incomplete_set_naming_the_fix(cache, tmp_path, capsys, damage):
    out = tmp_path / "res0" / PRESET
    assert _analyze(cache, out) == 0
    if damage == "mixed":  # one table of another analysis (another seed) beside the others
        assert _analyze(cache, tmp_path / "res1" / PRESET, "--seed", "1") == 0
        shutil.copy(tmp_path / "res1" / PRESET / "table1.csv", out / "table1.csv")
    elif damage == "missing":
        (out / "mcnemar.csv").unlink()
    elif damage == "foreign":
        (out / "old_table.csv").write_text("a\n1\n")
    else:
        prov = json.loads((out / "provenance.json").read_text())
        del prov["files"]
        (out / "provenance.json").write_text(json.dumps(prov))
    capsys.readouterr()
    assert main(["report", "--preset", PRESET, "--results-dir", str(tmp_path / "res0"), "--engine", "offline",
                 "--output-dir", str(tmp_path / "html")]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.endswith(f"run `dynloss analyze --preset {PRESET}`")
    assert not (tmp_path / "html").exists()


def test_analyze_refuses_to_replace_a_folder_holding_other_files(cache, tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert _analyze(cache, tmp_path / "mine") == 2
    assert "notes.txt, which are not result files" in _one_line(capsys.readouterr().err)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_results_without_superlearners_mark_those_sections_absent(cache, tmp_path, monkeypatch):
    assert _analyze(cache, tmp_path / "res" / PRESET) == 0
    monkeypatch.setenv("DYNLOSS_RESULTS_DIR", str(tmp_path / "res"))
    from analysis.report import frames, table1
    from analysis.report.context import report_context
    from analysis.report.markdown import show

    table = show(frames.stacking_frame(report_context(preset=PRESET))).to_markdown()
    assert "absent" in table and "`dynloss analyze --preset digits-tiny`" in table
    assert frames.stacking_note(report_context(preset=PRESET)) == ""
    assert not {"Weighted", "MLP"} & set(table1.grid_frame(report_context(preset=PRESET)).columns)


# ------------------------------------------------------------------- 6. environment errors
@pytest.fixture
def small_tmpfs(tmp_path):
    """A 64 KiB tmpfs where mounting is allowed (root on Linux), else None."""
    target = tmp_path / "tmpfs"
    target.mkdir()
    ok = sys.platform.startswith("linux") and shutil.which("mount") and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)], capture_output=True, check=False).returncode == 0
    yield target if ok else None
    if ok:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def test_a_full_disk_during_training_is_one_line_with_exit_3(tmp_path, capsys, monkeypatch, small_tmpfs):
    if small_tmpfs is not None:
        cache = small_tmpfs / "cache"
    else:
        cache = tmp_path / "cache"
        real_fsync = os.fsync

        def full(fd):
            if os.fstat(fd).st_size > 10_000:  # arrays.npz; small files (the grid record) still fit
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_fsync(fd)

        monkeypatch.setattr(os, "fsync", full)
    assert main(["train", "--preset", PRESET, "--cache", str(cache), "--arms", "ce", "--members", "1", "--quiet"]) == 3
    err = _one_line(capsys.readouterr().err)
    assert "arrays.npz: no space left on device (free some space" in err
    run = cf.run_dir(cache, PRESET, "digits", "ce", 0)
    assert not (run / cf.RUN_FILE).exists() and not list(run.glob(".*.tmp"))


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_read_only_or_forbidden_cache_is_one_line_with_exit_3(tmp_path, capsys, monkeypatch, code):
    real_mkdir = Path.mkdir

    def refuse(self, *a, **k):
        if str(self).startswith(str(tmp_path)):
            raise OSError(code, os.strerror(code), str(self))
        return real_mkdir(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert main(["train", "--preset", PRESET, "--cache", str(tmp_path / "ro"), "--quiet"]) == 3
    err = _one_line(capsys.readouterr().err)
    assert str(tmp_path / "ro") in err and ("read-only" in err or "permission denied" in err)


def test_a_file_where_a_folder_belongs_is_one_line_with_exit_2(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "data"
    blocker.write_text("a file")
    monkeypatch.setenv("DYNLOSS_DATA_DIR", str(tmp_path))  # restored after the test
    assert main(["--data-dir", str(blocker), "train", "--preset", PRESET, "--quiet"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert str(blocker) in err and "a file stands where a folder is expected" in err
    assert main(["analyze", "--preset", "nothing", "--cache", str(tmp_path), "--out", str(blocker)]) == 2
    assert "a file stands where a folder is expected" in _one_line(capsys.readouterr().err)


# ------------------------------------------------------------------- 8. arguments
@pytest.mark.parametrize("args, message", [
    (["--arms", ""], "--arms: expected a comma-separated list"),
    (["--datasets", ""], "--datasets: expected a comma-separated list"),
    (["--arms", "ce,ce"], "--arms: 'ce' is given twice"),
    (["--datasets", "digits,nope"], "--datasets: unknown name 'nope'"),
    (["--workers", "0"], "--workers: expected >= 1 worker process, got 0"),
    (["--workers", "-1"], "--workers: expected >= 1 worker process, got -1"),
    (["--members", "100000"], "--members 100000 is above 1000 per arm (the paper trains 50); pass --many-members"),
])
def test_bad_train_arguments_are_refused_at_once(tmp_path, capsys, args, message):
    t0 = time.monotonic()
    assert main(["train", "--preset", PRESET, "--cache", str(tmp_path), "--quiet", *args]) == 2
    assert message in _one_line(capsys.readouterr().err)
    assert time.monotonic() - t0 < 10 and not list(tmp_path.iterdir())


def test_the_library_refuses_empty_or_repeated_grids():
    from training.presets import expand, get_preset

    for kw in ({"arms": ()}, {"datasets": ()}, {"arms": ("ce", "ce")}):
        with pytest.raises(ValueError, match="Expected"):
            expand(get_preset(PRESET), **kw)


# ------------------------------------------------------------------- 9. metrics validate their inputs
def test_labels_out_of_range_or_not_integers_are_refused_as_scikit_learn_does():
    from sklearn.metrics import log_loss as sk_log_loss

    from analysis.core import metrics as M

    probs = np.array([[0.7, 0.3], [0.2, 0.8]])
    for labels in (np.array([0, -1]), np.array([0, 2])):
        with pytest.raises(ValueError):
            sk_log_loss(labels, probs, labels=[0, 1])
        for f in (M.nll, M.brier_score, M.expected_calibration_error, M.classwise_calibration_error):
            with pytest.raises(ValueError, match="labels"):
                f(labels, probs)
        with pytest.raises(ValueError, match="labels"):
            M.fit_temperature(labels, np.log(probs))
    with pytest.raises(ValueError, match="integer `labels`"):
        M.nll(np.array([0.0, 1.0]), probs)


def test_non_finite_logits_and_invalid_correctness_or_confidence_are_refused():
    from analysis.core import metrics as M

    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="finite `logits`"):
            M.fit_temperature(np.array([0, 1]), np.array([[0.0, 1.0], [bad, 0.0]]))
    conf = np.array([0.9, 0.6, 0.3])
    with pytest.raises(ValueError, match="boolean `correct`"):
        M.confidence_calibration_error(conf, np.array([1.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="boolean `correct`"):
        M.selective_auroc(np.array([1, 2, 0]), conf)
    for f in (M.confidence_calibration_error, M.reliability_bins):
        with pytest.raises(ValueError, match=r"`confidence` in \[0, 1\]"):
            f(np.array([1.2, 0.5, -0.1]), np.array([True, False, True]))
    # 0/1 numbers are accepted as booleans, as scikit-learn accepts {0, 1} targets
    assert M.confidence_calibration_error(conf, np.array([1, 0, 0])) == M.confidence_calibration_error(
        conf, np.array([True, False, False]))
