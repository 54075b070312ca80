"""Failures, signals and the lock against a real SLURM (``scripts/slurm_cluster.sh`` starts a
one-node cluster; ``SLURM_CONF`` names its configuration). Skipped, with the reason, where ``sinfo``
cannot reach a controller.

Each test trains digits-tiny with one member per arm (one array task per arm, a few seconds
each; the time limits are generous, for a cluster shared with other work): a ``scancel`` of the running array, with and without accounting; SIGTERM of ``train``
while a second ``train`` is refused, then the resume with ``--slurm-*`` options checked in the
sbatch script; a timeout, then the resume; a GPU request on the CPU-only node.

The cluster under test keeps accounting (slurmdbd). The no-accounting case puts a ``sacct``
first on PATH that prints exactly what slurm's ``sacct`` prints under
``AccountingStorageType=accounting_storage/none`` ("Slurm accounting storage is disabled" on
stderr, exit status 1), and a ``scontrol`` that logs its calls and runs the real one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRESET = "digits-tiny"
ARMS3 = "ce,dyn-0.7,dyn-0.8"


def _cluster_problem() -> str | None:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return "no SLURM client commands (sinfo, sbatch) on PATH"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo timed out"
    if out.returncode != 0:
        return f"sinfo cannot reach a controller (SLURM_CONF={os.environ.get('SLURM_CONF')}): " \
               f"{out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}"
    if not any(s.startswith(("idle", "mix", "alloc")) for s in out.stdout.split()):
        return f"no usable node (sinfo: {out.stdout.split()})"
    return None


_PROBLEM = _cluster_problem()
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=f"no SLURM cluster: {_PROBLEM}")


def _args(cache: Path, arms: str = ARMS3, *extra: str) -> list[str]:
    return [sys.executable, "-m", "analysis.cli", "train", "--preset", PRESET, "--executor", "slurm",
            "--cache", str(cache), "--raw-dir", str(cache.parent / "raw"), "--arms", arms, "--members", "1",
            "--quiet", *extra]


def _env(path_first: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env['PATH']}"
    return env


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _one_line(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _submitted_array(cache: Path, proc: subprocess.Popen, timeout: float = 120) -> str:
    """The array job id the running ``train`` recorded in its lock."""
    lock = cache / PRESET / "_train.lock"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, proc.communicate()
        try:
            array = json.loads(lock.read_text()).get("slurm_array")
        except (OSError, ValueError):
            array = None
        if array:
            return array
        time.sleep(0.3)
    raise AssertionError("train recorded no array job")


def _squeue(array: str, *options: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-r", "-j", array, "-o", "%i %T", *options], capture_output=True,
                         text=True, timeout=30)
    return out.stdout.split("\n") if out.returncode == 0 and out.stdout.strip() else []


def _wait_running(array: str, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if any(line.endswith(" RUNNING") for line in _squeue(array)):
            return
        time.sleep(0.3)
    raise AssertionError(f"no task of array {array} started running within {timeout} s")


def _wait_gone(array: str, timeout: float) -> float:
    t0 = time.monotonic()
    while _squeue(array):
        assert time.monotonic() - t0 < timeout, f"array {array} still queued after {timeout} s: {_squeue(array)}"
        time.sleep(0.3)
    return time.monotonic() - t0


def _kill_wait() -> int:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"^KillWait\s*=\s*(\d+)", out, re.M)
    return int(m[1]) if m else 30


def _no_accounting(tmp_path: Path) -> tuple[Path, Path]:
    """A ``sacct`` that answers as under AccountingStorageType=none, and a logging ``scontrol``."""
    bin_dir = tmp_path / "no-accounting"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    (bin_dir / "sacct").write_text(f'#!/bin/sh\necho "sacct $*" >> {calls}\n'
                                   'echo "Slurm accounting storage is disabled" >&2\nexit 1\n')
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "scontrol $*" >> {calls}\nexec {shutil.which("scontrol")} "$@"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir, calls


def _task_line(line: str, array: str, what: str) -> Path:
    """The log named by a one-line task failure of ``array``."""
    m = re.match(rf"dynloss train: task {array}_\d+ {what} \(log: (\S+_log\.err)\); the rest of array job {array} "
                 rf"was cancelled; complete runs are kept: rerun the same command to train the rest$", line)
    assert m, line
    return Path(m[1])


@pytest.mark.slow
@pytest.mark.parametrize("accounting", [True, False], ids=["sacct", "no-accounting"])
def test_scancel_of_the_running_array_ends_train_with_one_line_naming_the_task_and_its_log(tmp_path, accounting):
    cache = tmp_path / "cache"
    shim, calls = (None, None) if accounting else _no_accounting(tmp_path)
    proc = _start(_args(cache), _env(shim))
    array = _submitted_array(cache, proc)
    _wait_running(array)
    subprocess.run(["scancel", array], check=True, timeout=30)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    assert time.monotonic() - t0 < 120  # no infinite poll, even without accounting
    log = _task_line(_one_line(err), array, "ended CANCELLED without its result")
    assert log.exists()  # a task that had started: its log is there to read
    if not accounting:
        text = calls.read_text()
        assert text.count("sacct ") == 1 and "scontrol -o show job " + array in text  # asked once, then scontrol


@pytest.mark.slow
def test_sigterm_cancels_the_array_a_second_train_is_refused_meanwhile_and_a_rerun_resumes(tmp_path):
    cache = tmp_path / "cache"
    proc = _start(_args(cache), _env())
    array = _submitted_array(cache, proc)
    second = _run(_args(cache), _env())
    assert second.returncode == 3
    line = _one_line(second.stderr)
    assert f"is in use by process {proc.pid} on " in line and f"SLURM array job {array})" in line, line
    _wait_running(array)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert _one_line(err).startswith(f"dynloss train: stopped by SIGTERM; the array job {array} was cancelled")
    _wait_gone(array, timeout=_kill_wait() + 10)  # killed, not left running until KillWait
    # the array is gone: its record in the lock is stale and taken over; SLURM options reach sbatch
    again = _run(_args(cache, ARMS3, "--slurm-time", "00:10:00", "--slurm-mem", "1G", "--slurm-parallelism", "2",
                       "--slurm-extra=--comment=dynloss-test"), _env())
    assert again.returncode == 0, again.stderr
    assert re.search(r"3 runs, \d already complete, \d trained", again.stdout), again.stdout
    scripts = sorted((cache / PRESET / "_slurm_logs").glob("*_submission.sh"), key=lambda p: int(p.name.split("_")[0]))
    assert len(scripts) == 2
    text = scripts[-1].read_text()
    for directive in ("--time=10", "--mem=1G", "--comment=dynloss-test", "--cpus-per-task=1"):
        assert f"#SBATCH {directive}\n" in text, directive
    assert re.search(r"#SBATCH --array=0-\d%2\n", text) or "--array" not in text
    assert (cache / PRESET / "_train.lock").read_text() == ""  # nothing left to check


def _task_handling_usr2(logs: Path) -> str | None:
    """The array task index of a submitit process of ``logs`` on this machine that catches SIGUSR2."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            if (b"submitit.core._submit" not in cmdline or str(logs).encode() not in cmdline
                    or cmdline[0].endswith(b"srun")):  # srun catches signals to forward them
                continue
            caught = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", (proc / "status").read_text(), re.M)[1], 16)
            env = dict(x.split(b"=", 1) for x in (proc / "environ").read_bytes().split(b"\0") if b"=" in x)
        except (OSError, TypeError):
            continue
        if caught & (1 << (signal.SIGUSR2 - 1)) and b"SLURM_ARRAY_TASK_ID" in env:
            return env[b"SLURM_ARRAY_TASK_ID"].decode()
    return None


@pytest.mark.slow
def test_a_timed_out_task_ends_train_with_one_line_and_its_runs_resume(tmp_path):
    cache = tmp_path / "cache"
    proc = _start(_args(cache, "ce,dyn-0.7", "--slurm-time", "1", "--members", "3"), _env())
    array = _submitted_array(cache, proc)
    _wait_running(array)
    # what slurm sends before the time limit (sbatch --signal=USR2@90), as submitit's own tests do: to
    # the job step of one task, once submitit has set its handler there (after loading the task's
    # pickle, which imports torch); the tasks run on this machine, a one-node cluster
    t0 = time.monotonic()
    while (task := _task_handling_usr2(cache / PRESET / "_slurm_logs")) is None:
        assert time.monotonic() - t0 < 300, "no task set its SIGUSR2 handler"
        time.sleep(0.3)
    subprocess.run(["scancel", "--signal=USR2", f"{array}_{task}"], check=True, timeout=30)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    assert _task_line(_one_line(err), array, r"timed out \(--slurm-time 1 min\)").exists()
    _wait_gone(array, timeout=_kill_wait() + 10)
    again = _run(_args(cache, "ce,dyn-0.7", "--members", "3"), _env())
    assert again.returncode == 0 and "6 runs," in again.stdout, again.stderr


def test_a_gpu_request_on_a_node_without_gpus_is_one_line(tmp_path):
    gres = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True, timeout=30).stdout
    if "gpu" in gres:
        pytest.skip(f"this cluster has GPUs ({gres.strip()})")
    out = _run([sys.executable, "-m", "analysis.cli", "train", "--preset", "paper", "--executor", "slurm",
                "--cache", str(tmp_path / "cache"), "--quiet"], _env(), timeout=120)
    assert out.returncode == 3
    assert _one_line(out.stderr) == (
        "dynloss train: --preset paper asks for gres gpu:1 per task (the preset) but no node of the cluster has a "
        f"GPU (sinfo -o %G: {', '.join(sorted(set(gres.split())))}); pass --slurm-gres none to train on CPUs")
    assert not list((tmp_path / "cache").rglob("*_submission.sh"))
