"""SLURM, asked for explicitly: is a cluster there, and what a task records about where it ran.

``dynloss train --executor slurm`` submits through ``submitit.AutoExecutor(cluster="slurm")``:
never submitit's silent fallback to its local executor when ``srun`` is missing. Before anything
is locked or trained, :func:`require_slurm` checks that ``sbatch`` and ``srun`` are on ``PATH``
and that ``sinfo`` answers (the controller is reachable), and raises :class:`SlurmMissingError`
(one line, exit status 3 from the command line) otherwise. ``cluster="local"`` (library call and
tests only) runs the same submitit path through its local executor.

Provenance (``run.json``): the submitting ``dynloss train`` passes its own command line to the
tasks (:func:`submitter`), so a run records the user's ``argv`` rather than submitit's
``_submit.py``; inside a SLURM job, :func:`task_record` adds the job id, the array job and task
ids, the node and the submitting host. Standard library only.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["CLUSTERS", "SlurmMissingError", "require_slurm", "slurm_missing", "submitter", "task_record"]

#: what ``cluster`` may be: "slurm" (a real cluster, the only choice of ``dynloss train``) or
#: "local" (submitit's local executor: the same code path without SLURM, for tests)
CLUSTERS: tuple[str, ...] = ("slurm", "local")

#: seconds ``sinfo`` may take to answer before the cluster counts as unreachable
SINFO_TIMEOUT_S = 30.0


class SlurmMissingError(OSError):
    """``--executor slurm`` on a machine without a usable SLURM (no ``sbatch``/``srun``, or ``sinfo``
    fails): an environment failure, exit status 3."""


def slurm_missing(*, path: str | None = None, timeout: float = SINFO_TIMEOUT_S) -> str | None:
    """Why SLURM cannot be used here (``"sbatch not on PATH"``, ``"sinfo failed: ..."``), or None.

    Parameters
    ----------
    path : the ``PATH`` to search (default: this process's).
    timeout : seconds ``sinfo`` may take.

    >>> slurm_missing(path="/nonexistent")
    'sbatch not on PATH'
    """
    env_path = os.environ.get("PATH", "") if path is None else path
    for exe in ("sbatch", "srun", "sinfo"):
        if shutil.which(exe, path=env_path) is None:
            return f"{exe} not on PATH"
    conf = os.environ.get("SLURM_CONF")
    if conf and not os.path.isfile(conf):
        return f"SLURM_CONF names {conf}, which is no file"  # sinfo would search for a minute first
    sinfo = shutil.which("sinfo", path=env_path)
    try:
        out = subprocess.run([sinfo, "-h", "-o", "%P"], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"sinfo did not answer within {timeout:g} s"
    except OSError as e:
        return f"sinfo could not run: {e.strerror or e}"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        return f"sinfo failed: {last}"
    if not out.stdout.strip():
        return "sinfo lists no partition"
    return None


def require_slurm(*, path: str | None = None) -> None:
    """Raise :class:`SlurmMissingError` (one line: what is missing and what to do) unless SLURM is usable."""
    reason = slurm_missing(path=path)
    if reason is not None:
        raise SlurmMissingError(
            f"--executor slurm: no SLURM found ({reason}); run where SLURM's client commands reach a "
            f"controller (SLURM_CONF names its slurm.conf; scripts/slurm_cluster.sh starts a one-node "
            f"cluster), or train with --executor local")


def submitter(argv: list[str] | None = None) -> dict[str, Any]:
    """What the submitting process tells its tasks: its command line (the user's) and host."""
    return {"argv": list(sys.argv if argv is None else argv), "host": socket.gethostname()}


def task_record(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """Where a SLURM task runs, from the variables SLURM sets in it; None outside a SLURM job.

    ``job_id`` is the task's own job id (``SLURM_JOB_ID``), ``array_job_id`` and ``array_task_id``
    the array's (None for a job that is no array), ``node`` ``SLURMD_NODENAME`` (else this host).

    >>> task_record({"SLURM_JOB_ID": "12", "SLURM_ARRAY_JOB_ID": "11", "SLURM_ARRAY_TASK_ID": "1",
    ...              "SLURMD_NODENAME": "n1"})["array_task_id"]
    1
    >>> task_record({}) is None
    True
    """
    env = os.environ if environ is None else environ
    if not env.get("SLURM_JOB_ID"):
        return None

    def number(name: str) -> int | None:
        value = env.get(name, "")
        return int(value) if value.isdigit() else None

    return {
        "job_id": number("SLURM_JOB_ID"),
        "array_job_id": number("SLURM_ARRAY_JOB_ID"),
        "array_task_id": number("SLURM_ARRAY_TASK_ID"),
        "node": env.get("SLURMD_NODENAME") or socket.gethostname(),
        "submit_host": env.get("SLURM_SUBMIT_HOST") or None,
        "cluster": env.get("SLURM_CLUSTER_NAME") or None,
    }
