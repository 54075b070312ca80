"""Writes respect what stands at the path, on digits-tiny: a symbolic link is followed (atomic_write,
results folders) or refused (``train`` never writes a run through a link it did not create); a
folder, device or FIFO is never replaced; a run that cannot be read is an environment error (exit 3),
never overwritten; a read-only complete cache is "nothing to train"; every repair hint is a command
that repairs; a hostile ``_grid.json`` or an empty path is refused in one line.

The trained cache fixture and helpers come from tests/test_faults.py (one small cache per module).
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import shutil
import stat
import time
from pathlib import Path

import pytest

from analysis.cli import main
from training import cache_format as cf

# the trained digits-tiny cache (once per module), its copy per test, and their helpers
from test_faults import ARMS, PRESET, _analyze, _one_line, _runs, cache, trained  # noqa: F401 (fixtures)

ROOT_USER = os.geteuid() == 0


def _train(cache: Path, *extra: str) -> int:
    return main(["train", "--preset", PRESET, "--cache", str(cache), "--arms", ",".join(ARMS), "--quiet", *extra])


def _verify(cache: Path) -> int:
    return main(["cache", "verify", "--preset", PRESET, "--cache", str(cache)])


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# ------------------------------------------------------------------- 1. train and the runs it cannot trust
def test_train_refuses_a_run_folder_that_is_a_symlink_and_leaves_its_target_untouched(cache, capsys):
    link, target = _runs(cache) / "member-001", _runs(cache, "dyn-0.8") / "member-001"
    shutil.rmtree(link)
    link.symlink_to(Path("..") / "dyn-0.8" / "member-001")
    before = _files(target)
    for _ in range(2):  # the refusal repeats: nothing flips
        assert _train(cache) == 2
        err = _one_line(capsys.readouterr().err)
        assert f"{link} is a symbolic link" in err and "replace the link with a real folder" in err
    assert _files(target) == before and link.is_symlink()
    assert cf.read_meta(target)["arm"] == "dyn-0.8"
    assert _verify(cache) == 1
    out = capsys.readouterr().out
    assert re.search(r"corrupt\s+digits/ce/member-001 .*is a symbolic link", out), out


@pytest.mark.parametrize("level", ["arm folder", "arrays.npz"])
def test_train_refuses_a_linked_arm_folder_or_arrays_file_before_training_anything(cache, tmp_path, capsys, level):
    if level == "arm folder":
        moved = tmp_path / "elsewhere"
        shutil.move(_runs(cache), moved)
        link = _runs(cache)
        link.symlink_to(moved)
        shutil.rmtree(moved / "member-002")  # a run to train: still nothing is written through the link
    else:
        link = _runs(cache) / "member-001" / cf.ARRAYS_FILE
        shutil.copy(link, tmp_path / "other.npz")
        link.unlink()
        link.symlink_to(tmp_path / "other.npz")
    assert _train(cache) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"{link} is a symbolic link" in err
    if level == "arm folder":
        assert not (moved / "member-002").exists()


def _deny(monkeypatch, name: str, run: Path) -> None:
    """Reading ``run/name`` fails with EACCES (as chmod 000 would for a user other than root)."""
    def refuse(path, *a, **k):
        if Path(path) == run / name:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, *a, **k)

    attr = "sha256_file" if name == cf.ARRAYS_FILE else "read_json"
    real = getattr(cf, attr)
    monkeypatch.setattr(cf, attr, refuse)


@pytest.mark.parametrize("name", [cf.ARRAYS_FILE, cf.RUN_FILE])
def test_an_unreadable_run_stops_train_verify_and_analyze_with_exit_3_and_is_never_replaced(
        cache, tmp_path, capsys, monkeypatch, name):
    run = _runs(cache) / "member-001"
    before = (_files(run), (run / name).stat().st_mtime_ns)
    _deny(monkeypatch, name, run)
    for command in (lambda: _train(cache), lambda: _verify(cache), lambda: _analyze(cache, tmp_path / "out")):
        assert command() == 3
        err = _one_line(capsys.readouterr().err)
        assert f"{run / name}: cannot be read (Permission denied); it is left as it is" in err
    assert (_files(run), (run / name).stat().st_mtime_ns) == before
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(ROOT_USER, reason="root reads a file whatever its permissions (simulated above)")
def test_an_arrays_file_without_read_permission_is_exit_3_not_corrupt(cache, capsys):
    f = _runs(cache) / "member-001" / cf.ARRAYS_FILE
    f.chmod(0)
    try:
        assert _train(cache) == 3
        assert "cannot be read" in _one_line(capsys.readouterr().err)
    finally:
        f.chmod(0o644)


@pytest.mark.parametrize("content", ["nested 200k deep", "over 4 MB"])
def test_a_run_json_nested_too_deeply_or_too_large_is_corrupt_and_train_repairs_it(cache, capsys, content):
    run = _runs(cache) / "member-001"
    sha = cf.read_meta(run)["arrays_sha256"]
    text = "[" * 200_000 + "]" * 200_000 if content == "nested 200k deep" else " " * (5 << 20) + "{}"
    (run / cf.RUN_FILE).write_text(text)
    assert _verify(cache) == 1
    out = capsys.readouterr().out
    assert "corrupt digits/ce/member-001" in " ".join(out.split())
    assert ("nested too deeply" if content == "nested 200k deep" else "larger than any run.json") in out
    assert _train(cache) == 0
    assert "1 trained (redone: 1 corrupt)" in capsys.readouterr().out
    assert cf.read_meta(run)["arrays_sha256"] == sha


# ------------------------------------------------------------------- 2. the atomic writer
def test_atomic_write_through_a_symlink_updates_its_target_and_keeps_the_link(tmp_path):
    (tmp_path / "real").mkdir()
    target, link = tmp_path / "real" / "baseline.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(Path("real") / "baseline.json")
    cf.atomic_write(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(Path("real") / "baseline.json")
    assert target.read_text() == "new" and not list(tmp_path.rglob(".*.tmp"))
    target.unlink()  # dangling: the target is written when its folder exists
    cf.atomic_write(link, "again")
    assert link.is_symlink() and target.read_text() == "again"
    lost = tmp_path / "lost.json"
    lost.symlink_to(tmp_path / "no-such-folder" / "x.json")
    with pytest.raises(FileNotFoundError, match="whose folder does not exist") as e:
        cf.atomic_write(lost, "x")
    assert e.value.filename == str(lost) and not (tmp_path / "no-such-folder").exists()


def test_atomic_write_refuses_a_fifo_or_a_folder_and_leaves_it_there(tmp_path):
    fifo, folder = tmp_path / "pipe", tmp_path / "folder"
    os.mkfifo(fifo)
    folder.mkdir()
    with pytest.raises(FileExistsError, match="not a regular file") as e:
        cf.atomic_write(fifo, "x")
    assert e.value.errno == errno.EEXIST and e.value.filename == str(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    with pytest.raises(IsADirectoryError) as e:
        cf.atomic_write_json(folder, {})
    assert e.value.errno == errno.EISDIR and folder.is_dir() and not list(folder.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "pipe"]  # no temporary file left


def test_atomic_write_refuses_a_link_to_dev_null_which_stays_a_char_device(tmp_path):
    link = tmp_path / "null.json"
    link.symlink_to("/dev/null")
    with pytest.raises(FileExistsError, match="not a regular file"):
        cf.atomic_write(link, "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode) and link.is_symlink()
    assert not list(tmp_path.glob(".*.tmp")) and not list(Path("/dev").glob(".null.*.tmp"))


def test_analyze_into_a_symlinked_results_folder_keeps_the_link_and_fills_its_target(cache, tmp_path, capsys):
    other = tmp_path / "other-disk" / "sets" / PRESET
    other.mkdir(parents=True)
    out = tmp_path / "results" / PRESET
    out.parent.mkdir()
    out.symlink_to(other)
    for seed in ("0", "1"):  # the second replaces the first set through the link
        assert _analyze(cache, out, "--seed", seed) == 0
        assert out.is_symlink() and os.readlink(out) == str(other)
        assert (other / "provenance.json").is_file()
        assert sorted(p.name for p in out.parent.iterdir()) == [PRESET]  # no hidden temporary beside the link
        assert sorted(p.name for p in other.parent.iterdir()) == [PRESET]
    assert '"seed": 1' in (other / "provenance.json").read_text()
    capsys.readouterr()
    # snapshot --out: through a link to a file (target updated, link kept), refused on a FIFO
    (tmp_path / "real.json").write_text("old")
    (tmp_path / "snap.json").symlink_to(tmp_path / "real.json")
    assert main(["snapshot", "--preset", PRESET, "--results", str(out), "--out", str(tmp_path / "snap.json")]) == 0
    assert (tmp_path / "snap.json").is_symlink() and (tmp_path / "real.json").read_text().startswith("{")
    os.mkfifo(tmp_path / "fifo")
    capsys.readouterr()
    assert main(["snapshot", "--preset", PRESET, "--results", str(out), "--out", str(tmp_path / "fifo")]) == 2
    assert f"{tmp_path / 'fifo'}: not a regular file" in _one_line(capsys.readouterr().err)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo").st_mode)


# ------------------------------------------------------------------- 3. a read-only complete cache
def _read_only_lock(monkeypatch) -> None:
    """Creating ``_train.lock`` fails with EROFS (a read-only mount; root ignores chmod -w)."""
    real = os.open

    def refuse(path, flags, *a, **k):
        if str(path).endswith("_train.lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, flags, *a, **k)

    monkeypatch.setattr(os, "open", refuse)


def test_train_on_a_read_only_complete_cache_trains_nothing_and_exits_0(cache, capsys, monkeypatch):
    before = _files(_runs(cache) / "member-001")
    _read_only_lock(monkeypatch)
    assert _train(cache) == 0
    out = capsys.readouterr().out
    assert "0 trained" in out and "nothing to train (the cache is read-only" in out
    assert _files(_runs(cache) / "member-001") == before
    shutil.rmtree(_runs(cache) / "member-002")  # now something is to be trained: the error stands
    assert _train(cache) == 3
    err = _one_line(capsys.readouterr().err)
    assert "_train.lock: read-only file system" in err
    assert _train(cache, "--force") == 3  # --force means writing, read-only or not
    capsys.readouterr()


# ------------------------------------------------------------------- 4. hints that repair
def test_the_hint_after_deleting_an_extra_arm_is_a_command_that_repairs(cache, tmp_path, capsys):
    assert main(["train", "--preset", PRESET, "--cache", str(cache), "--arms", "focal", "--quiet"]) == 0
    shutil.rmtree(_runs(cache, "focal"))
    assert _analyze(cache, tmp_path / "out") == 2
    err = _one_line(capsys.readouterr().err)
    assert f"delete {cache / PRESET / '_grid.json'} to go back to the preset's grid" in err
    command = re.search(r"Repair with `([^`]+)`", err)[1]
    assert "--arms focal" in command and f"--cache {cache}" in command
    assert f"`dynloss cache verify --preset {PRESET} --cache {cache}` lists every run" in err
    assert main(shlex.split(command)[1:] + ["--quiet"]) == 0
    assert "3 trained" in capsys.readouterr().out
    assert _analyze(cache, tmp_path / "out") == 0
    assert _verify(cache) == 0


@pytest.mark.parametrize("record, message", [
    ('{"runs": {"digits": {"ce": 100000000}}}', "asks for 100000000 members, expected a whole number from 1 to 1000"),
    ('{"runs": {"digits": {"ce": true}}}', "asks for True members"),
    ('{"runs": {"digits": {"nope": 3}}}', "unknown arm 'nope'"),
    ('{"runs": {"nowhere": {"ce": 3}}}', "unknown dataset 'nowhere'"),
    ('{"runs": {"digits": {"ce": 3}}, "pad": "' + "x" * (2 << 20) + '"}', "larger than any grid record"),
    ('[' * 100_000 + ']' * 100_000, "nested too deeply"),
])
def test_a_hostile_grid_record_is_refused_at_once_naming_it(cache, tmp_path, capsys, record, message):
    grid = cache / PRESET / "_grid.json"
    grid.write_text(record)
    t0 = time.monotonic()
    for command in (lambda: _verify(cache), lambda: _analyze(cache, tmp_path / "out"), lambda: _train(cache)):
        assert command() == 2
        err = _one_line(capsys.readouterr().err)
        assert str(grid) in err and message in err and "delete it to go back to the preset's grid" in err
    assert time.monotonic() - t0 < 20 and grid.read_text() == record


def test_a_grid_record_of_many_members_is_accepted_when_train_marked_it(tmp_path):
    from training.cache_state import read_grid, record_grid

    record_grid(tmp_path, {("digits", "ce"): 2000})
    assert read_grid(tmp_path) == {("digits", "ce"): 2000}


def test_an_empty_data_dir_cache_or_raw_dir_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    from training import paths

    monkeypatch.chdir(tmp_path)
    cases = [
        (["--data-dir", "", "train", "--preset", PRESET, "--quiet"], "--data-dir: an empty path names no folder"),
        (["train", "--preset", PRESET, "--cache", "", "--quiet"], "--cache: an empty path names no folder"),
        (["train", "--preset", PRESET, "--raw-dir", "", "--quiet"], "--raw-dir: an empty path names no folder"),
        (["cache", "verify", "--preset", PRESET, "--cache", ""], "--cache: an empty path names no folder"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        assert message in _one_line(capsys.readouterr().err)
    monkeypatch.setenv(paths.DATA_ENV, "")
    assert main(["cache", "verify", "--preset", PRESET]) == 2
    assert "$DYNLOSS_DATA_DIR: an empty path names no folder" in _one_line(capsys.readouterr().err)
    assert not list(tmp_path.iterdir())  # nothing written into the working directory
