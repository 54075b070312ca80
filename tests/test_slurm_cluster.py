"""`dynloss train --executor slurm` on a real SLURM: the one-node cluster of scripts/slurm_cluster.sh.

The session fixture :func:`slurm_conf` finds a running cluster (``SLURM_CONF`` set and ``sinfo``
answers), or starts one with the script (as root; stopped again at the end of the session), or
skips with a one-line reason. One training through it per session (``digits-tiny``, the whole
preset with its tuning), compared with one local training: the cache verifies, every ``arrays.npz``
is bit-identical, and each ``run.json`` records the user's command, the SLURM job, array and task
ids and the node. The tests without a cluster check the explicit cluster choice (no silent local
fallback: one line, exit status 3) and the provenance helpers. submitit's local executor path stays
in ``tests/test_training_run.py`` (``cluster="local"``, a library-only choice for tests).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.cli import main
from training import cache_format as cf
from training.cache_state import CacheScan, RunState, repair_command
from training.slurm import SlurmMissingError, slurm_missing, submitter, task_record

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm_cluster.sh"
PRESET = "digits-tiny"
PACKAGES = "slurmctld slurmd slurm-client munge slurmdbd mariadb-server"


# ---------------------------------------------------------------- the cluster and one training
def _script(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def _last_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[-1]


@pytest.fixture(scope="session")
def slurm_conf():
    """The ``slurm.conf`` of a usable cluster, exported as ``SLURM_CONF`` for the session."""
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        pytest.skip(f"no SLURM here: sbatch/sinfo not on PATH (apt-get install {PACKAGES})")
    conf = os.environ.get("SLURM_CONF")
    if conf and slurm_missing() is None:
        yield conf
        return
    if os.geteuid() != 0:
        pytest.skip(f"no running SLURM ({slurm_missing()}) and not root, so scripts/slurm_cluster.sh cannot start one")
    if shutil.which("slurmctld") is None or shutil.which("slurmd") is None:
        pytest.skip(f"no running SLURM ({slurm_missing()}) and no slurmctld/slurmd to start one "
                    f"(apt-get install {PACKAGES})")
    running = _script("status", timeout=120).returncode == 0
    started = running or _script("start").returncode == 0
    if not started:
        pytest.skip(f"scripts/slurm_cluster.sh start failed: {_last_line(_script('status', timeout=120).stderr)}")
    conf = _last_line(_script("status", timeout=120).stdout).removeprefix("export SLURM_CONF=")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", conf)
        yield conf
    if not running:
        _script("stop")


def _train_command(cache: Path, raw: Path, *extra: str) -> list[str]:
    return ["train", "--preset", PRESET, "--cache", str(cache), "--raw-dir", str(raw), "--quiet", *extra]


@pytest.fixture(scope="session")
def slurm_trained(slurm_conf, tmp_path_factory):
    """``(cache, argv, completed process)`` of one ``dynloss train --executor slurm`` in a subprocess
    (so that its ``argv`` is a real command line, as a user's)."""
    base = tmp_path_factory.mktemp("slurm")
    args = _train_command(base / "cache", base / "raw", "--executor", "slurm")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-m", "dynloss", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=900)
    return base / "cache", args, done


@pytest.fixture(scope="session")
def local_trained(tmp_path_factory):
    """The cache of the same preset trained locally (in this process)."""
    base = tmp_path_factory.mktemp("local")
    assert main(_train_command(base / "cache", base / "raw")) == 0
    return base / "cache"


def _arrays(cache: Path) -> dict[str, str]:
    """SHA-256 of every ``arrays.npz`` under ``cache`` (the preset's runs and its tuning runs)."""
    return {str(p.relative_to(cache)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(cache.rglob(cf.ARRAYS_FILE))}


def _metas(cache: Path) -> dict[str, dict]:
    return {str(p.parent.relative_to(cache)): json.loads(p.read_text()) for p in sorted(cache.rglob(cf.RUN_FILE))}


@pytest.mark.slow
def test_train_through_slurm_completes_and_the_cache_verifies(slurm_trained, capsys):
    cache, _, done = slurm_trained
    assert done.returncode == 0, _last_line(done.stderr)
    assert f"dynloss train --preset {PRESET}: 30 runs" in done.stdout
    assert main(["cache", "verify", "--preset", PRESET, "--cache", str(cache)]) == 0
    assert "30 runs: 30 complete" in capsys.readouterr().out
    assert list((cache / PRESET / "_slurm_logs").glob("*_log.out"))  # the tasks' logs, where the README says


@pytest.mark.slow
def test_slurm_arrays_are_bit_identical_to_a_local_run(slurm_trained, local_trained):
    cache, _, done = slurm_trained
    assert done.returncode == 0, _last_line(done.stderr)
    through_slurm, local = _arrays(cache), _arrays(local_trained)
    assert len(local) == 38  # 30 runs of the preset and 8 tuning runs
    assert through_slurm == local


@pytest.mark.slow
def test_run_json_records_the_users_command_and_the_slurm_task(slurm_trained, local_trained):
    cache, args, done = slurm_trained
    assert done.returncode == 0, _last_line(done.stderr)
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True).stdout.split()
    metas = _metas(cache)
    assert len(metas) == 38
    tasks: dict[int, tuple[int, int]] = {}
    for key, m in metas.items():
        assert m["argv"][1:] == args and m["argv"][0].endswith("__main__.py"), key  # not submitit's _submit.py
        assert m["executor"] == "slurm"
        s = m["slurm"]
        assert all(isinstance(s[k], int) for k in ("job_id", "array_job_id", "array_task_id")), (key, s)
        assert s["node"] in nodes, (key, s, nodes)
        assert tasks.setdefault(s["job_id"], (s["array_job_id"], s["array_task_id"])) == \
            (s["array_job_id"], s["array_task_id"])  # one task, one job id
    arrays = {a for a, _ in tasks.values()}
    assert len(arrays) == 2  # the tuning's array job, then the preset's
    for a in arrays:  # task ids 0..n-1 within each array
        assert sorted(t for aa, t in tasks.values() if aa == a) == list(range(sum(aa == a for aa, _ in tasks.values())))
    for key, m in _metas(local_trained).items():
        assert m["executor"] == "local" and m["slurm"] is None, key


@pytest.mark.slow
def test_the_repair_hint_names_the_cache_and_the_slurm_executor(slurm_trained, local_trained, tmp_path, capsys):
    cache, _, done = slurm_trained
    assert done.returncode == 0, _last_line(done.stderr)
    for source, executor in ((cache, " --executor slurm"), (local_trained, "")):
        copy = tmp_path / source.parent.name
        shutil.copytree(source, copy)
        shutil.rmtree(copy / PRESET / "digits" / "ce" / "member-000")
        assert main(["cache", "verify", "--preset", PRESET, "--cache", str(copy)]) == 1
        out = capsys.readouterr().out
        command = re.search(r"retrained by `([^`]+)`", out)[1]  # the grid from _grid.json: --datasets, --arms too
        assert command.startswith(f"dynloss train --preset {PRESET} --cache {shlex.quote(str(copy))}{executor} "), out
        assert "--arms ce --members 3" in command


# ---------------------------------------------------------------- without a cluster
def test_executor_slurm_without_sbatch_is_one_line_with_exit_3(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no sbatch, srun or sinfo
    assert main(["train", "--preset", PRESET, "--executor", "slurm", "--cache", str(tmp_path / "cache")]) == 3
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith(
        "dynloss train: --executor slurm: no SLURM found (sbatch not on PATH); "), captured.err
    assert "--executor local" in lines[0] and not captured.out
    assert not (tmp_path / "cache").exists()  # refused before anything was locked or written


def test_the_library_call_never_falls_back_to_a_local_executor(tmp_path, monkeypatch):
    from training.executors import train_preset

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SlurmMissingError, match=r"no SLURM found \(sbatch not on PATH\)"):
        train_preset(PRESET, executor="slurm", cache_root=tmp_path / "cache", progress=False)
    with pytest.raises(ValueError, match=r"Expected `cluster` in \('slurm', 'local'\), got None"):
        train_preset(PRESET, executor="slurm", cluster=None, cache_root=tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache").exists()


def test_sinfo_that_fails_or_a_missing_slurm_conf_is_named(tmp_path, monkeypatch):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for exe, body in (("sbatch", "exit 0"), ("srun", "exit 0"),
                      ("sinfo", "echo 'sinfo: error: Unable to contact slurm controller' >&2; exit 1")):
        (bin_ / exe).write_text(f"#!/bin/sh\n{body}\n")
        (bin_ / exe).chmod(0o755)
    monkeypatch.delenv("SLURM_CONF", raising=False)
    assert slurm_missing(path=str(bin_)) == "sinfo failed: sinfo: error: Unable to contact slurm controller"
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "nothing.conf"))
    assert slurm_missing(path=str(bin_)) == f"SLURM_CONF names {tmp_path / 'nothing.conf'}, which is no file"


def test_task_record_reads_the_slurm_variables_and_is_none_outside_a_job():
    env = {"SLURM_JOB_ID": "12", "SLURM_ARRAY_JOB_ID": "11", "SLURM_ARRAY_TASK_ID": "1", "SLURMD_NODENAME": "n1",
           "SLURM_SUBMIT_HOST": "login", "SLURM_CLUSTER_NAME": "c"}
    assert task_record(env) == {"job_id": 12, "array_job_id": 11, "array_task_id": 1, "node": "n1",
                                "submit_host": "login", "cluster": "c"}
    plain = task_record({"SLURM_JOB_ID": "7"})  # a job that is no array
    assert plain["array_job_id"] is None and plain["array_task_id"] is None and plain["node"]
    assert task_record({}) is None
    assert submitter(["dynloss", "train"])["argv"] == ["dynloss", "train"]


def test_repair_command_adds_the_executor_a_run_recorded(tmp_path):
    def scan(*executors):
        runs = [RunState("digits", "ce", k, tmp_path / f"m{k}", "missing" if e is None else "complete", executor=e)
                for k, e in enumerate(executors)]
        return CacheScan(preset=PRESET, root=tmp_path, grid={("digits", "ce"): len(runs)}, grid_source="preset",
                         runs=runs)

    assert repair_command(scan(None, "slurm")) == \
        f"`dynloss train --preset {PRESET} --cache {shlex.quote(str(tmp_path))} --executor slurm`"
    assert "--executor" not in repair_command(scan(None, "local"))
    assert "--executor" not in repair_command(scan(None, None))


def test_slurm_cluster_script_refuses_bad_commands_and_reports_an_unconfigured_folder(tmp_path):
    bad = _script("restart", str(tmp_path))
    assert bad.returncode == 2 and "usage: slurm_cluster.sh start|stop|status [DIR] (got 'restart')" in bad.stderr
    none = _script("status", str(tmp_path / "none"))
    assert none.returncode == 1 and f"no cluster configured under {tmp_path / 'none'}" in none.stderr
    stop = _script("stop", str(tmp_path / "none"))
    assert stop.returncode == 0 and "nothing started under" in stop.stderr
