"""SLURM parameters, task states, failures and the lock's array record, without a cluster.

The SLURM commands are shell scripts put first on PATH: ``sbatch`` keeps the script submitit
writes and answers "Submitted batch job 4242"; ``sacct``, ``scontrol``, ``squeue`` and ``sinfo``
print what the real ones print for the case at hand; ``scancel`` records its arguments. The same
behaviours on a real one-node cluster are in ``tests/test_slurm_jobs_cluster.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest

from analysis.cli import main
from training import slurm_jobs as sj
from training.cache_lock import CacheLockedError, preset_lock
from training.presets import Resources, get_preset

PRESET = "digits-tiny"
#: what slurm 22.05's sacct prints (stderr, exit status 1) when AccountingStorageType=accounting_storage/none
NO_ACCOUNTING = "Slurm accounting storage is disabled"


def _one_line(err: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------------------------- parameters

@pytest.mark.parametrize("value, minutes", [("90", 90), (45, 45), ("01:30:00", 90), ("00:00:30", 1),
                                            ("2-00:00:00", 2880), ("0:10:01", 11)])
def test_time_limits_are_minutes_or_clock_times_rounded_up(value, minutes):
    assert sj.parse_time(value) == minutes


@pytest.mark.parametrize("value", ["", "abc", "1:2", "00:61:00", "0", "00:00:00", "-5", True])
def test_a_bad_time_limit_says_what_was_expected(value):
    with pytest.raises(ValueError, match="expected"):
        sj.parse_time(value)


@pytest.mark.parametrize("value, mem", [("8G", "8G"), ("8gb", "8G"), ("512M", "512M"), ("4000", "4000M"),
                                        (2048, "2048M"), ("1T", "1T")])
def test_memory_is_written_as_sbatch_takes_it(value, mem):
    assert sj.parse_mem(value) == mem


@pytest.mark.parametrize("value", ["8 GiB", "G", "0G", "-1G", "eight", True])
def test_bad_memory_is_refused(value):
    with pytest.raises(ValueError, match="memory size such as 8G"):
        sj.parse_mem(value)


def test_gres_none_asks_for_nothing_and_gpus_are_counted():
    assert sj.parse_gres("none") == "" and sj.parse_gres("NONE") == ""
    assert sj.gpu_count(sj.parse_gres("gpu:a100:2")) == 2
    with pytest.raises(ValueError, match="gres such as gpu:1"):
        sj.parse_gres("gpu 1")


@pytest.mark.parametrize("directive, message", [
    ("--time=5", "--slurm-time"), ("--partition=x", "--slurm-partition"), ("--mem=1G", "--slurm-mem"),
    ("--array=0-3", "submitit writes --array"), ("--output=x", "submitit writes"),
    ("-C a100", "long form"), ("constraint=a100", "long form"),
])
def test_extra_directives_that_would_clash_are_refused_naming_the_option_to_use(directive, message):
    with pytest.raises(ValueError, match=message):
        sj.parse_directive(directive)


def test_the_command_line_overrides_the_file_which_overrides_the_preset(tmp_path):
    path = tmp_path / "slurm.toml"
    path.write_text('time = "02:00:00"\nmem = "16G"\npartition = "gpu"\nextra = ["--constraint=a100", "--exclusive"]\n')
    file_values = sj.read_config(path)
    o = sj.resolve(Resources(cpus=1, mem_gb=2, timeout_min=30, parallelism=8),
                   ("the file", file_values), ("the command line", {"time": 10, "extra": ("--constraint=v100",)}))
    assert (o.time, o.mem, o.partition, o.cpus, o.parallelism) == (10, "16G", "gpu", 1, 8)
    assert o.extra == ("--constraint=v100", "--exclusive")  # merged by name, the later one wins
    assert o.sources["time"] == "the command line" and o.sources["mem"] == "the file"
    assert o.sources["cpus"] == "the preset"


def test_a_json_file_takes_the_same_keys(tmp_path):
    path = tmp_path / "slurm.json"
    path.write_text(json.dumps({"account": "proj", "qos": "low", "cpus": 4, "gres": "none", "parallelism": 16,
                                "extra": "--comment=x"}))
    assert sj.read_config(path) == {"account": "proj", "qos": "low", "cpus": 4, "gres": "", "parallelism": 16,
                                    "extra": ("--comment=x",)}


@pytest.mark.parametrize("text, message", [
    ('tme = 5\n', "unknown key 'tme'; expected some of partition"),
    ('time = "soon"\n', "key 'time': expected minutes or HH:MM:SS"),
    ('cpus = 0\n', "key 'cpus': expected an integer >= 1"),
    ('cpus = true\n', "key 'cpus': expected an integer >= 1"),
    ('extra = "--array=1"\n', "key 'extra':"),
    ('time = \n', "not valid TOML"),
])
def test_a_bad_file_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "slurm.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as e:
        sj.read_config(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_cpu_presets_ask_for_the_threads_they_train_with():
    for name in ("digits-tiny", "fmnist-mini"):
        p = get_preset(name)
        assert p.cpu_threads == 1 and p.resources.cpus == p.cpu_threads and not p.resources.gpus
    paper = get_preset("paper")
    on_cpus = sj.resolve(paper.resources, ("cli", {"gres": ""}))
    assert sj.task_threads(paper, on_cpus) == paper.resources.cpus  # no fixed count: threads = CPUs asked
    assert sj.task_threads(paper, sj.resolve(paper.resources)) is None  # a GPU task: torch's default


# --------------------------------------------------------------------------------- fake commands

def _fake_slurm(tmp_path: Path, monkeypatch, **outputs: str) -> Path:
    """Shell scripts named after SLURM commands, first on PATH; ``outputs[name]`` is the script's
    body (default: succeed silently). Every call is appended to ``calls.txt``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    bodies = {"srun": "exit 0",
              "sbatch": f'cp "$1" {tmp_path}/submitted.sh\necho "Submitted batch job 4242"',
              "sinfo": 'echo "(null)"', "scancel": "exit 0", "squeue": "exit 0",
              "sacct": "exit 0", "scontrol": "exit 0", **outputs}
    for name, body in bodies.items():
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n{textwrap.dedent(body)}\n')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    calls.touch()
    return calls


def _train(cache: Path, *extra: str) -> list[str]:
    return ["train", "--preset", PRESET, "--executor", "slurm", "--cache", str(cache), "--arms", "ce,dyn-0.7",
            "--members", "1", "--quiet", *extra]


def test_the_slurm_options_reach_the_sbatch_script(tmp_path, monkeypatch, capsys):
    calls = _fake_slurm(tmp_path, monkeypatch, sacct='echo "4242_0|RUNNING"\necho "4242_1|CANCELLED by 0"')
    config = tmp_path / "slurm.toml"
    config.write_text('account = "proj"\nmem = "3G"\nextra = ["--constraint=a100"]\n')
    code = main(_train(tmp_path / "cache", "--slurm-config", str(config), "--slurm-partition", "short",
                       "--slurm-qos", "low", "--slurm-time", "00:20:00", "--slurm-cpus", "1", "--slurm-mem", "1G",
                       "--slurm-extra=--comment=dynloss", "--slurm-parallelism", "1"))
    script = (tmp_path / "submitted.sh").read_text()
    for line in ("--partition=short", "--account=proj", "--qos=low", "--time=20", "--mem=1G", "--cpus-per-task=1",
                 "--constraint=a100", "--comment=dynloss", "--array=0-1%1", "--job-name=dynloss-digits-tiny"):
        assert f"#SBATCH {line}\n" in script, line
    assert "--gres" not in script
    # the fake sacct says task 1 was cancelled: one line naming it and its log, the array cancelled, exit 3
    assert code == 3
    err = _one_line(capsys.readouterr().err)
    log = tmp_path / "cache" / PRESET / "_slurm_logs" / "4242_1_0_log.err"
    assert err.startswith("dynloss train: task 4242_1 ended CANCELLED without its result") and str(log) in err
    assert "scancel --signal=KILL --full 4242" in calls.read_text() and "scancel 4242\n" in calls.read_text()
    record = json.loads((tmp_path / "cache" / PRESET / "_train.lock").read_text())
    assert record["slurm_array"] == "4242"  # left for the next train to check


def test_a_gpu_request_on_nodes_without_gpus_is_one_line_before_submitting(tmp_path, monkeypatch, capsys):
    calls = _fake_slurm(tmp_path, monkeypatch)
    assert main(_train(tmp_path / "cache", "--slurm-gres", "gpu:1")) == 3
    err = _one_line(capsys.readouterr().err)
    assert "asks for gres gpu:1 per task (the command line) but no node of the cluster has a GPU" in err
    assert "--slurm-gres none" in err and "sbatch" not in calls.read_text()


def test_sbatch_refusing_the_array_is_one_line_with_its_message(tmp_path, monkeypatch, capsys):
    _fake_slurm(tmp_path, monkeypatch, sbatch='echo "sbatch: error: Batch job submission failed: Invalid account '
                                              'or account/partition combination specified" >&2\nexit 1')
    assert main(_train(tmp_path / "cache", "--slurm-account", "nobody")) == 3
    err = _one_line(capsys.readouterr().err)
    assert err == ("dynloss train: sbatch refused the array job: Batch job submission failed: Invalid account "
                   "or account/partition combination specified")


def test_slurm_options_without_the_slurm_executor_are_refused(tmp_path, capsys):
    args = ["train", "--preset", PRESET, "--cache", str(tmp_path), "--slurm-mem", "2G", "--slurm-config", "x.toml"]
    assert main(args) == 2
    assert _one_line(capsys.readouterr().err) == ("dynloss train: --slurm-mem, --slurm-config: SLURM parameters "
                                                  "apply to --executor slurm only")


def test_a_bad_option_value_is_one_line_naming_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(_train(tmp_path, "--slurm-time", "soon"))
    assert e.value.code == 2
    assert "argument --slurm-time: expected minutes or HH:MM:SS" in _one_line(capsys.readouterr().err)


def test_a_missing_config_file_is_one_line(tmp_path, capsys):
    assert main(_train(tmp_path, "--slurm-config", str(tmp_path / "none.toml"))) == 2
    assert _one_line(capsys.readouterr().err).endswith("none.toml: No such file or directory")


# -------------------------------------------------------------------------------------- states

def _runner(outputs: dict[str, tuple[int, str, str]], seen: list[str]):
    def run(cmd):
        seen.append(cmd[0])
        code, out, err = outputs[cmd[0]]
        return subprocess.CompletedProcess(cmd, code, out, err)

    return run


def test_states_come_from_sacct_with_pending_ranges_expanded():
    seen: list[str] = []
    out = "77_0|COMPLETED\n77_1|RUNNING\n77_[2-4%2]|PENDING\n77_5|CANCELLED by 0\n"
    states = sj.TaskStates(_runner({"sacct": (0, out, "")}, seen)).read("77", 6)
    assert states == {0: "COMPLETED", 1: "RUNNING", 2: "PENDING", 3: "PENDING", 4: "PENDING", 5: "CANCELLED"}
    assert seen == ["sacct"]


def test_without_accounting_states_come_from_scontrol_and_sacct_is_not_asked_again():
    seen: list[str] = []
    scontrol = ("JobId=80 ArrayJobId=77 ArrayTaskId=2-4%2 JobState=PENDING Reason=Resources\n"
                "JobId=78 ArrayJobId=77 ArrayTaskId=0 JobState=CANCELLED Reason=None\n"
                "JobId=79 ArrayJobId=77 ArrayTaskId=1 JobState=RUNNING Reason=None\n")
    reader = sj.TaskStates(_runner({"sacct": (1, "", NO_ACCOUNTING + "\n"), "scontrol": (0, scontrol, "")}, seen))
    expected = {0: "CANCELLED", 1: "RUNNING", 2: "PENDING", 3: "PENDING", 4: "PENDING", 5: "GONE"}
    assert reader.read("77", 6) == expected and reader.source == "scontrol"
    assert reader.read("77", 6) == expected
    assert seen == ["sacct", "scontrol", "scontrol"]


def test_a_one_task_array_is_a_plain_job():
    seen: list[str] = []
    assert sj.TaskStates(_runner({"sacct": (0, "90|RUNNING\n", "")}, seen)).read("90", 1) == {0: "RUNNING"}
    reader = sj.TaskStates(_runner({"sacct": (1, "", NO_ACCOUNTING), "scontrol": (0, "JobId=90 JobState=TIMEOUT\n",
                                                                                    "")}, seen))
    assert reader.read("90", 1) == {0: "TIMEOUT"}


def test_expired_records_without_accounting_are_gone():
    seen: list[str] = []
    reader = sj.TaskStates(_runner({"sacct": (1, "", NO_ACCOUNTING),
                                    "scontrol": (1, "", "slurm_load_jobs error: Invalid job id specified\n")}, seen))
    assert reader.read("77", 2) == {0: "GONE", 1: "GONE"}


# ----------------------------------------------------------------------------------------- lock

def test_a_second_train_refuses_while_the_recorded_array_is_queued_and_takes_over_once_it_is_gone(
        tmp_path, monkeypatch):
    _fake_slurm(tmp_path, monkeypatch, squeue='test -e "$ALIVE" && echo 4242_1 || exit 0')
    monkeypatch.setenv("ALIVE", str(tmp_path / "alive"))
    (tmp_path / "alive").touch()
    folder = tmp_path / "cache" / PRESET
    with preset_lock(folder) as lock:
        lock.record(slurm_array="4242")  # the holder dies before its array ends
    with pytest.raises(CacheLockedError, match=r"in use by SLURM array job 4242 \(submitted by process \d+ on .*"
                                               r"still in the queue \(squeue\).*scancel 4242"):
        with preset_lock(folder):
            pass
    (tmp_path / "alive").unlink()  # the array has ended: the stale record is taken over
    with preset_lock(folder) as lock:
        assert "slurm_array" not in lock.info
    assert (folder / "_train.lock").read_text() == ""  # released with nothing left to check


def test_wait_waits_for_a_recorded_array_to_leave_the_queue(tmp_path, monkeypatch):
    _fake_slurm(tmp_path, monkeypatch, squeue='test -e "$ALIVE" && echo 4242_1 || exit 0')
    monkeypatch.setenv("ALIVE", str(tmp_path / "alive"))
    (tmp_path / "alive").touch()
    folder = tmp_path / "cache" / PRESET
    with preset_lock(folder) as lock:
        lock.record(slurm_array="4242")
    timer = threading.Timer(1.0, (tmp_path / "alive").unlink)
    timer.start()
    said: list[str] = []
    t0 = time.monotonic()
    with preset_lock(folder, wait=True, on_wait=said.append):
        assert time.monotonic() - t0 >= 1.0
    timer.join()
    assert len(said) == 1 and said[0].startswith("waiting for SLURM array job 4242 (submitted by process")


def test_a_recorded_array_that_cannot_be_checked_is_not_taken_over(tmp_path, monkeypatch):
    _fake_slurm(tmp_path, monkeypatch, squeue='echo "squeue: error: Unable to contact slurm controller" >&2\nexit 1')
    folder = tmp_path / "cache" / PRESET
    with preset_lock(folder) as lock:
        lock.record(slurm_array="4242")
    with pytest.raises(CacheLockedError, match="squeue cannot tell here whether it still runs"):
        with preset_lock(folder):
            pass


def test_a_controller_that_does_not_answer_concludes_nothing():
    seen: list[str] = []
    reader = sj.TaskStates(_runner({"sacct": (1, "", NO_ACCOUNTING),
                                    "scontrol": (1, "", "slurm_load_jobs error: Unable to contact slurm controller "
                                                        "(connect failure)\n")}, seen))
    assert reader.read("77", 2) is None  # not "gone": the tasks may still run
