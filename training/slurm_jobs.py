"""SLURM array jobs of ``dynloss train --executor slurm``: what is asked of sbatch, how the tasks'
states are read, how ``train`` waits for them and how it cancels them.

- **Parameters** (:class:`SlurmOptions`): partition, account, qos, time, memory, CPUs, gres, extra
  ``#SBATCH`` directives and array parallelism. Each comes from the command line
  (``--slurm-KEY``), else from a TOML or JSON file (``--slurm-config``, :func:`read_config`, the
  same keys), else from the preset's :class:`training.presets.Resources` (:func:`resolve`). Every
  value is checked where it enters (:data:`PARSERS`): a bad one is one line naming the option or
  the file's key. A GPU request is checked against the nodes (``sinfo -o %G``) before anything is
  submitted (:func:`check_gres`).
- **States** (:class:`TaskStates`): ``sacct`` while it works; where it fails (``Slurm accounting
  storage is disabled``) ``scontrol show job``, whose records last ``MinJobAge`` after a task ends;
  a task that is in neither has ended without a result.
- **Waiting** (:func:`wait_for_array`): a task is done when submitit's result file is there; a
  task that failed (its exception), was cancelled, timed out or vanished ends the wait with
  :class:`TaskFailed`, one line naming ``ARRAY_TASK`` and its log, after the rest of the array is
  cancelled (:func:`cancel_array`: ``scancel --signal=KILL --full`` then ``scancel``, since
  submitit's tasks ignore SIGTERM until ``KillWait``). Any other exception in the wait (Ctrl-C,
  SIGTERM turned into an exception) cancels the array too, then propagates with a note saying so.
- :func:`array_alive` (``squeue``) is what the cache lock asks about an array it recorded.

Standard library only at import (``dynloss train --help`` stays quick); submitit and tqdm are
imported by the functions that need them.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class SlurmError(RuntimeError):
    """SLURM refused or lost the work (sbatch's message, no GPU on any node, a task that ended
    without its result): one line, exit status 3 in ``dynloss train``."""


class TaskFailed(SlurmError):
    """A task of the array failed, was cancelled or timed out (the rest was cancelled)."""

    def __init__(self, message: str, *, job_id: str, log: Path | None):
        super().__init__(message)
        self.job_id = job_id
        self.log = log


# --------------------------------------------------------------------------------------- parameters

#: sbatch options that have a ``--slurm-*`` option of their own (refused in ``extra``)
_OWN_OPTION = {"partition": "partition", "p": "partition", "account": "account", "A": "account", "qos": "qos",
               "q": "qos", "time": "time", "t": "time", "mem": "mem", "cpus-per-task": "cpus", "c": "cpus",
               "gres": "gres", "gpus": "gres", "gpus-per-node": "gres", "G": "gres"}
#: sbatch options submitit writes itself (an ``extra`` one would break the array or its logs)
_SUBMITIT_OWNS = ("array", "a", "output", "o", "error", "e", "open-mode", "job-name", "J", "signal", "wrap",
                  "parsable")
_DIRECTIVE = re.compile(r"^--([A-Za-z][A-Za-z0-9-]*)(?:=(.+))?$")
_GRES = re.compile(r"^[A-Za-z][\w.-]*(?::[\w.-]+)*$")
_MEM = re.compile(r"^(\d+)\s*([KMGT]?)B?$", re.IGNORECASE)
_TIME = re.compile(r"^(?:(\d+)-)?(\d+):(\d{1,2}):(\d{1,2})$")


def parse_time(value: Any) -> int:
    """A time limit as whole minutes (seconds round up): minutes, ``HH:MM:SS`` or ``D-HH:MM:SS``.

    >>> parse_time("90"), parse_time("01:30:00"), parse_time("1-00:00:01")
    (90, 90, 1441)
    """
    text = str(value).strip()
    if isinstance(value, bool):
        text = ""
    if text.isdigit():
        minutes = int(text)
    elif (m := _TIME.match(text)) and int(m[3]) < 60 and int(m[4]) < 60:
        days, hours, mins, secs = (int(x or 0) for x in m.groups())
        minutes = math.ceil(((days * 24 + hours) * 60 + mins) + secs / 60)
    else:
        raise ValueError(f"expected minutes or HH:MM:SS (or D-HH:MM:SS), got {value!r}")
    if minutes < 1:
        raise ValueError(f"expected a time limit of at least 1 minute, got {value!r}")
    return minutes


def parse_mem(value: Any) -> str:
    """Memory per task as sbatch's ``--mem`` takes it: a number with a unit K, M, G or T (a bare
    number is megabytes, as for sbatch).

    >>> parse_mem("8G"), parse_mem("512mb"), parse_mem(4000)
    ('8G', '512M', '4000M')
    """
    m = _MEM.match(str(value).strip()) if not isinstance(value, bool) else None
    if m is None or int(m[1]) < 1:
        raise ValueError(f"expected a memory size such as 8G or 512M (a bare number is megabytes), got {value!r}")
    return f"{int(m[1])}{(m[2] or 'M').upper()}"


def _positive(what: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not str(value).strip().isdigit() or int(str(value).strip()) < 1:
            raise ValueError(f"expected an integer >= 1 ({what}), got {value!r}")
        return int(str(value).strip())

    return parse


def parse_gres(value: Any) -> str:
    """A generic-resource request (sbatch ``--gres``), e.g. ``gpu:1`` or ``gpu:a100:2``; ``none``
    (or an empty string) asks for none: ``""``.

    >>> parse_gres("gpu:1"), parse_gres("none")
    ('gpu:1', '')
    """
    text = str(value).strip()
    if text.lower() in ("", "none"):
        return ""
    if isinstance(value, bool) or not all(_GRES.match(x) for x in text.split(",")):
        raise ValueError(f"expected a gres such as gpu:1 or gpu:a100:2 (or none), got {value!r}")
    return text


def parse_directive(value: Any) -> str:
    """One extra ``#SBATCH`` directive in its long form, ``--name=value`` or ``--flag``.

    >>> parse_directive("--constraint=a100")
    '--constraint=a100'
    """
    m = _DIRECTIVE.match(str(value).strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"expected an sbatch directive in its long form, such as --constraint=a100 or "
                         f"--exclusive, got {value!r}")
    name = m[1]
    if name in _OWN_OPTION:
        raise ValueError(f"{value!r}: set it with --slurm-{_OWN_OPTION[name]} (or the key "
                         f"{_OWN_OPTION[name]!r} of --slurm-config)")
    if name in _SUBMITIT_OWNS:
        raise ValueError(f"{value!r}: submitit writes --{name} itself (the array, its logs and its signal)")
    return str(value).strip()


def _name(value: Any) -> str:
    text = str(value).strip() if isinstance(value, str) else ""
    if not text or any(c.isspace() for c in text) or text.startswith("-"):
        raise ValueError(f"expected a name without spaces, got {value!r}")
    return text


#: key (of --slurm-config, and of --slurm-KEY) -> its parser, which raises ValueError("expected ...")
PARSERS: dict[str, Callable[[Any], Any]] = {
    "partition": _name, "account": _name, "qos": _name, "time": parse_time, "mem": parse_mem,
    "cpus": _positive("CPUs per task"), "gres": parse_gres, "extra": parse_directive,
    "parallelism": _positive("array tasks running at once"),
}


@dataclass(frozen=True)
class SlurmOptions:
    """What each array task asks of sbatch (``None``: not asked, sbatch's default).

    ``time`` in minutes; ``mem`` as sbatch writes it (``8G``); ``gres`` ``""`` for none; ``extra``
    long-form directives (``--constraint=a100``); ``parallelism`` the tasks running at once.
    ``sources`` says where each value came from (the preset, the file, the command line).
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: int | None = None
    mem: str | None = None
    cpus: int | None = None
    gres: str = ""
    extra: tuple[str, ...] = ()
    parallelism: int | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)


KEYS: tuple[str, ...] = tuple(f.name for f in fields(SlurmOptions) if f.name != "sources")


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """The SLURM parameters of a TOML (``.toml``) or JSON (``.json``) file: a flat table of
    :data:`KEYS` (``extra`` a list of directives or one), each value checked as on the command line.

    Raises
    ------
    ValueError
        One line naming the file and the key, with what was expected.
    OSError
        The file cannot be read.
    """
    path = Path(path)
    if path.suffix.lower() not in (".toml", ".json"):
        raise ValueError(f"--slurm-config {path}: expected a .toml or .json file")
    if path.stat().st_size > 1 << 20:
        raise ValueError(f"--slurm-config {path}: larger than 1 MiB, not a SLURM parameter file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as e:  # tomllib.TOMLDecodeError and json.JSONDecodeError are ValueErrors
        raise ValueError(f"--slurm-config {path}: not valid {path.suffix[1:].upper()}: {e}") from None
    if not isinstance(data, dict):
        raise ValueError(f"--slurm-config {path}: expected a table of keys ({', '.join(KEYS)}), "
                         f"got {type(data).__name__}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in PARSERS:
            raise ValueError(f"--slurm-config {path}: unknown key {key!r}; expected some of {', '.join(KEYS)}")
        try:
            if key == "extra":
                items = [value] if isinstance(value, str) else value
                if not isinstance(items, list):
                    raise ValueError(f"expected a list of sbatch directives, got {value!r}")
                out[key] = tuple(parse_directive(x) for x in items)
            else:
                out[key] = PARSERS[key](value)
        except ValueError as e:
            raise ValueError(f"--slurm-config {path}: key {key!r}: {e}") from None
    return out


def _directive_key(directive: str) -> str:
    return directive[2:].split("=", 1)[0]


def resolve(resources: Any, *layers: tuple[str, dict[str, Any]]) -> SlurmOptions:
    """The parameters of one array: the preset's ``resources``
    (:class:`training.presets.Resources`), overridden by each ``(source, values)`` layer in turn
    (the file, then the command line; ``None`` values are not given). ``extra`` directives merge
    by name, a later one replacing an earlier one of the same name.

    >>> from training.presets import Resources
    >>> o = resolve(Resources(cpus=1, mem_gb=2), ("the command line", {"time": 5, "gres": "gpu:1"}))
    >>> o.cpus, o.mem, o.time, o.gres, o.sources["gres"]
    (1, '2G', 5, 'gpu:1', 'the command line')
    """
    base = {"partition": resources.partition, "account": resources.account, "qos": resources.qos,
            "time": resources.timeout_min, "mem": f"{resources.mem_gb}G", "cpus": resources.cpus,
            "gres": f"gpu:{resources.gpus}" if resources.gpus else "", "extra": tuple(resources.extra),
            "parallelism": resources.parallelism}
    sources = dict.fromkeys(base, "the preset")
    extra = {_directive_key(d): d for d in base.pop("extra")}
    for source, values in layers:
        for key, value in values.items():
            if value is None:
                continue
            if key not in PARSERS:
                raise ValueError(f"unknown SLURM parameter {key!r}; expected some of {', '.join(KEYS)}")
            sources[key] = source
            if key == "extra":
                extra.update((_directive_key(d), d) for d in value)
            else:
                base[key] = value
    return SlurmOptions(**base, extra=tuple(extra.values()), sources=sources)


def gpu_count(gres: str) -> int:
    """GPUs per task asked by a gres string (``gpu`` alone is one).

    >>> gpu_count("gpu:a100:2,shard:1"), gpu_count(""), gpu_count("gpu")
    (2, 0, 1)
    """
    n = 0
    for item in filter(None, gres.split(",")):
        parts = item.split(":")
        if parts[0] == "gpu":
            n += int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
    return n


def task_threads(preset: Any, options: SlurmOptions) -> int | None:
    """Torch threads of a task: the CPUs it asks for, on a CPU task of a preset that does not fix
    its own count (``Preset.cpu_threads``, part of each run's spec, which :mod:`training.run`
    sets); ``None`` on a GPU task (torch's default)."""
    if gpu_count(options.gres) or preset.cpu_threads:
        return None
    return options.cpus


def idle_cpus(preset: Any, options: SlurmOptions) -> str | None:
    """A one-line warning when a CPU task asks for more CPUs than the preset's fixed thread count
    uses (else None).

    >>> from training.presets import get_preset
    >>> p = get_preset("digits-tiny")
    >>> idle_cpus(p, resolve(p.resources, ("the command line", {"cpus": 3})))
    'digits-tiny trains with 1 torch thread per run (cpu_threads, part of its spec): 2 of the 3 CPUs per task asked by the command line stay idle'
    """
    if gpu_count(options.gres) or not preset.cpu_threads or not options.cpus or options.cpus <= preset.cpu_threads:
        return None
    return (f"{preset.name} trains with {preset.cpu_threads} torch thread{'s' * (preset.cpu_threads > 1)} per run "
            f"(cpu_threads, part of its spec): {options.cpus - preset.cpu_threads} of the {options.cpus} CPUs per "
            f"task asked by {options.sources.get('cpus', 'the preset')} stay idle")


def executor_parameters(options: SlurmOptions, name: str) -> dict[str, Any]:
    """The keyword arguments of ``submitit.AutoExecutor.update_parameters`` for ``options``
    (the ``slurm_`` ones are ignored by submitit's local executor).

    >>> p = executor_parameters(SlurmOptions(time=5, cpus=1, mem="2G", extra=("--exclusive",)), "x")
    >>> p["timeout_min"], p["slurm_mem"], p["slurm_additional_parameters"]
    (5, '2G', {'exclusive': True})
    """
    params: dict[str, Any] = {"name": name}
    if options.time is not None:
        params["timeout_min"] = options.time
    if options.cpus is not None:
        params["cpus_per_task"] = options.cpus
    for key in ("partition", "account", "qos", "mem", "gres"):
        if getattr(options, key):
            params[f"slurm_{key}"] = getattr(options, key)
    if options.parallelism is not None:
        params["slurm_array_parallelism"] = options.parallelism
    if options.extra:
        extra: dict[str, Any] = {}
        for d in options.extra:
            key, _, value = d[2:].partition("=")
            extra[key.replace("-", "_")] = value if value else True
        params["slurm_additional_parameters"] = extra
    return params


def _run(cmd: Sequence[str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, check=False)


def _first_line(text: str) -> str:
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else ""


def check_gres(options: SlurmOptions, what: str) -> None:
    """Refuse, in one line, a GPU request that no node (of the partition) can meet.

    ``what`` names the request in the message (``--preset paper``). Nothing is checked when no GPU
    is asked for, or when ``sinfo`` is not there (sbatch then answers for itself).

    Raises
    ------
    SlurmError
        No node lists a ``gpu`` gres in ``sinfo -o %G``.
    """
    if not gpu_count(options.gres) or shutil.which("sinfo") is None:
        return
    cmd = ["sinfo", "-h", "-o", "%G"] + (["-p", options.partition] if options.partition else [])
    try:
        out = _run(cmd)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{' '.join(cmd)} did not answer within 60 s") from None
    if out.returncode != 0:
        raise SlurmError(f"{' '.join(cmd)} failed: {_first_line(out.stderr) or 'exit status ' + str(out.returncode)}")
    node_gres = sorted({x.strip() for x in out.stdout.splitlines() if x.strip()})
    if not any("gpu" in g for g in node_gres):
        where = f"partition {options.partition}" if options.partition else "the cluster"
        raise SlurmError(f"{what} asks for gres {options.gres} per task ({options.sources.get('gres', 'the preset')}) "
                         f"but no node of {where} has a GPU (sinfo -o %G: {', '.join(node_gres) or 'nothing'}); "
                         f"pass --slurm-gres none to train on CPUs")


@contextlib.contextmanager
def sbatch_errors() -> Any:
    """Turn a refused submission into :class:`SlurmError` with sbatch's own message (submitit also
    prints sbatch's stderr; that copy is swallowed)."""
    from submitit.core.utils import FailedJobError, FailedSubmissionError

    buffer = io.StringIO()
    try:
        with contextlib.redirect_stderr(buffer):
            yield
    except (FailedJobError, FailedSubmissionError, OSError) as e:
        message = _first_line(str(e)) or _first_line(buffer.getvalue()) or type(e).__name__
        raise SlurmError(f"sbatch refused the array job: {message.removeprefix('sbatch: error: ')}") from None


# ------------------------------------------------------------------------------------------- states

#: states after which a task runs no more (anything else: pending, running, completing, requeued)
FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                   "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT", "GONE"})
_ACCOUNTING_OFF = "accounting storage is disabled"


def _expand_tasks(spec: str) -> list[int]:
    """Task indices of an array id suffix: ``3``, ``[0-4%2]``, ``[1,3-5]``."""
    spec = spec.strip("[]").split("%")[0]
    out: list[int] = []
    for part in filter(None, spec.split(",")):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.extend(range(int(lo), int(hi or lo) + 1))
    return out


class TaskStates:
    """The state of each task of an array (:meth:`read`): ``sacct`` while it answers, else
    ``scontrol show job`` (accounting disabled: ``sacct`` exits 1 with "Slurm accounting storage is
    disabled", the case where submitit polls forever). ``source`` says which is used; once ``sacct``
    has failed it is not asked again. A task neither knows is ``GONE`` (ended, record expired).
    """

    def __init__(self, runner: Callable[[Sequence[str]], subprocess.CompletedProcess] = _run):
        self._run = runner
        self.source = "sacct"

    def read(self, array_id: str, n_tasks: int) -> dict[int, str] | None:
        """``task index -> state`` (first word: ``CANCELLED by 0`` is ``CANCELLED``) for the tasks
        0 … ``n_tasks - 1`` of ``array_id``; ``None`` when the controller does not answer this time
        (it is restarting, a command timed out)."""
        states: dict[int, str] | None = None
        try:
            if self.source == "sacct":
                states = self._sacct(array_id)
            if states is None:
                states = self._scontrol(array_id)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if states is None:
            return None
        return {i: states.get(i, "GONE" if self.source == "scontrol" else "PENDING") for i in range(n_tasks)}

    def _sacct(self, array_id: str) -> dict[int, str] | None:
        out = self._run(["sacct", "-n", "-P", "-X", "-j", array_id, "-o", "JobID,State"])
        if out.returncode != 0 or _ACCOUNTING_OFF in (out.stderr + out.stdout):
            self.source = "scontrol"
            return None
        states: dict[int, str] = {}
        for line in out.stdout.splitlines():
            job, _, state = line.partition("|")
            main, _, tasks = job.partition("_")
            if main == array_id:  # a one-task "array" is a plain job (submitit submits it so): task 0
                states.update(dict.fromkeys(_expand_tasks(tasks) if tasks else [0],
                                            state.split()[0] if state.split() else "UNKNOWN"))
        if not states:  # not in the database yet (slurmdbd lags behind): ask the controller this time
            return None
        return states

    def _scontrol(self, array_id: str) -> dict[int, str] | None:
        out = self._run(["scontrol", "-o", "show", "job", array_id])
        states: dict[int, str] = {}
        if out.returncode != 0:  # "Invalid job id specified": every record has expired; else no answer
            return states if "invalid job id" in out.stderr.lower() else None
        for line in out.stdout.splitlines():
            info = dict(x.split("=", 1) for x in line.split() if "=" in x)
            if info.get("ArrayJobId") == array_id and "ArrayTaskId" in info:
                states.update(dict.fromkeys(_expand_tasks(info["ArrayTaskId"]), info.get("JobState", "UNKNOWN")))
            elif info.get("JobId") == array_id and "ArrayJobId" not in info:  # a plain job: task 0
                states[0] = info.get("JobState", "UNKNOWN")
        return states


def array_alive(array_id: str) -> bool | None:
    """Whether any task of ``array_id`` is still queued, running or completing (``squeue``);
    ``None`` when that cannot be known here (no ``squeue``, or it fails for another reason than an
    unknown job)."""
    if shutil.which("squeue") is None:
        return None
    try:
        out = _run(["squeue", "-h", "-r", "-j", array_id, "-o", "%i"], timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return False if "invalid job id" in out.stderr.lower() else None
    return any(line.strip() for line in out.stdout.splitlines())


def cancel_array(array_id: str) -> None:
    """Stop every task of the array now: SIGKILL to its running tasks (submitit's tasks ignore
    SIGTERM until ``KillWait``; a killed task leaves only temporary files), then cancel the pending
    ones. Errors are ignored (an array that has already ended)."""
    for cmd in (["scancel", "--signal=KILL", "--full", array_id], ["scancel", array_id]):
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            _run(cmd, timeout=30)


# ------------------------------------------------------------------------------------------ waiting

@dataclass
class _Task:
    index: int
    handle: Any  # a submitit Job
    runs: int
    final_since: float | None = None


def _outcome(handle: Any) -> tuple[str, Any] | None:
    """submitit's result file of a task: ``("success", value)`` / ``("error", traceback)``, or None."""
    from submitit.core.utils import pickle_load

    path = handle.paths.result_pickle
    if not path.exists():
        return None
    try:
        return pickle_load(path)
    except (EOFError, OSError, ValueError):  # being written
        return None


def _describe_error(trace: str, options: SlurmOptions | None) -> str:
    if "timed-out" in trace:
        limit = f" (--slurm-time {options.time} min)" if options is not None and options.time else ""
        return f"timed out{limit}"
    return f"failed: {_first_line(trace)}"


class _Backend:
    """How the wait reads states and cancels: SLURM (:class:`TaskStates`, :func:`cancel_array`) or
    submitit's local executor (tests)."""

    def __init__(self, handles: Sequence[Any], states: TaskStates | None):
        self.handles = handles
        self.array_id = str(handles[0].job_id).split("_")[0]
        self.slurm = type(handles[0]).__name__ == "SlurmJob"
        self.states = states if states is not None else TaskStates()

    def read(self) -> dict[int, str] | None:
        if self.slurm:
            return self.states.read(self.array_id, len(self.handles))
        local = {"RUNNING": "RUNNING", "FINISHED": "COMPLETED", "INTERRUPTED": "CANCELLED"}
        return {i: local.get(h.state, "FAILED") for i, h in enumerate(self.handles)}

    def cancel(self) -> None:
        if self.slurm:
            cancel_array(self.array_id)
        else:
            for h in self.handles:
                with contextlib.suppress(Exception):
                    h.cancel(check=False)

    def task_id(self, index: int) -> str:
        return str(self.handles[index].job_id)  # ARRAY_TASK (a plain job id for a one-task array)


def _counts(states: dict[int, str], done: Iterable[int]) -> dict[str, int]:
    done = set(done)
    running = sum(s in ("RUNNING", "COMPLETING") for i, s in states.items() if i not in done)
    queued = sum(s not in FINAL and s not in ("RUNNING", "COMPLETING") for i, s in states.items() if i not in done)
    return {"queued": queued, "running": running}


def wait_for_array(handles: Sequence[Any], runs_per_task: Sequence[int], *, progress: bool = True,
                   desc: str = "slurm", options: SlurmOptions | None = None, states: TaskStates | None = None,
                   grace_s: float = 10.0, poll_s: float = 1.0) -> list[Any]:
    """Wait for every task of one submitted array and return their results in task order.

    The progress bar counts runs and shows how many tasks are queued and running. A task whose
    state is final without a result file for ``grace_s`` (cancelled, timed out, killed, its
    record gone), or whose result is an exception, ends the wait: the rest of the array is
    cancelled and :class:`TaskFailed` names the task (``ARRAY_TASK``) and its log. Any exception
    raised while waiting (``KeyboardInterrupt``, a signal turned into an exception) cancels the
    array and propagates with a note naming it. The scheduler is asked every 2 s at first, up to
    every 30 s on a long wait; the result files are looked at every ``poll_s``.
    """
    from tqdm.auto import tqdm

    backend = _Backend(handles, states)
    tasks = [_Task(i, h, n) for i, (h, n) in enumerate(zip(handles, runs_per_task))]
    results: dict[int, Any] = {}
    start = time.monotonic()
    next_read = start
    bar = tqdm(total=sum(runs_per_task), desc=desc, unit="run", disable=not progress)
    try:
        while len(results) < len(tasks):
            for t in tasks:
                if t.index in results or (outcome := _outcome(t.handle)) is None:
                    continue
                if outcome[0] != "success":
                    raise _failed(backend, t, _describe_error(str(outcome[1]), options))
                results[t.index] = outcome[1]
                bar.update(t.runs)
            now = time.monotonic()
            if len(results) < len(tasks) and now >= next_read:
                current = backend.read()  # None: no answer this time, nothing is concluded
                if current:
                    bar.set_postfix(_counts(current, results), refresh=True)
                    lost = _lost(tasks, current, results, now, grace_s)
                    if lost is not None:
                        t, state = lost
                        what = "vanished from the queue" if state == "GONE" else f"ended {state}"
                        raise _failed(backend, t, f"{what} without its result")
                next_read = now + min(30.0, max(2.0, (now - start) / 10))
            if len(results) < len(tasks):
                time.sleep(poll_s)
    except TaskFailed:
        raise
    except BaseException as e:
        backend.cancel()
        e.add_note(f"the array job {backend.array_id} was cancelled{' (scancel)' if backend.slurm else ''}")
        raise
    finally:
        bar.close()
    return [results[t.index] for t in tasks]


def _lost(tasks: list[_Task], current: dict[int, str], results: dict[int, Any], now: float,
          grace_s: float) -> tuple[_Task, str] | None:
    """A task (and its state) that ended without its result file, preferring one with a log. A
    completed or vanished task gets ``grace_s`` for its file to show (a shared file system); so does
    one without a log (a cancelled pending task), so that a running task cancelled with it, whose
    log says more, is named instead once its state is final too."""
    lost = []
    for t in tasks:
        state = current.get(t.index, "UNKNOWN")
        if t.index in results or state not in FINAL:
            t.final_since = None
            continue
        t.final_since = now if t.final_since is None else t.final_since
        no_log = not t.handle.paths.stderr.exists()
        waited = now - t.final_since >= (grace_s if state in ("COMPLETED", "GONE") or no_log else 0)
        if waited and _outcome(t.handle) is None:
            lost.append((no_log, t.index, t, state))
    return min(lost, key=lambda x: x[:2])[2:] if lost else None


def _failed(backend: _Backend, task: _Task, what: str) -> TaskFailed:
    """Cancel the rest of the array, and the one-line error naming the task and its log."""
    backend.cancel()
    log = task.handle.paths.stderr
    others = (f"; the rest of array job {backend.array_id} was cancelled" if len(backend.handles) > 1 else "")
    return TaskFailed(f"task {backend.task_id(task.index)} {what} (log: {log}){others}; complete runs are kept: "
                      f"rerun the same command to train the rest", job_id=backend.task_id(task.index), log=log)
