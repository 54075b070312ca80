"""Run a preset's grid: check every run, train the missing or broken ones locally or on slurm.

Idempotent and self-repairing: under the preset's cache lock (:mod:`training.cache_lock`), every
run of the grid is checked (:func:`training.cache_state.scan`, SHA-256 included); complete runs are
skipped, and missing, incomplete, corrupt (truncated, failing its checksum, copied from another
folder, a file in place of the folder) and stale runs are trained again; ``force`` redoes all.
Nothing is ever written through a symbolic link in the cache (a run, arm or dataset folder, a
``run.json`` or ``arrays.npz`` that is a link: :class:`LinkedRunError`, before any training), and a
run that cannot be read (permissions, I/O error) stops everything
(:class:`training.cache_format.UnreadableError`) rather than being overwritten. A read-only cache
whose runs are all complete trains nothing and succeeds, although its lock cannot be taken.
Local worker processes die with their parent (``PR_SET_PDEATHSIG`` on Linux, a watchdog thread
elsewhere); SIGINT / SIGTERM stop the workers and leave no partial run (``run.json`` is written
last, atomically).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import sys
import threading
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import cache_format
from training.cache_lock import preset_lock
from training.cache_state import CacheScan, link_in_run, linked_detail, preset_grid, read_grid, record_grid
from training.grid import RunSpec
from training.presets import Preset, expand, get_preset, group_runs

EXECUTORS: tuple[str, ...] = ("local", "slurm")
DEFAULT_CACHE = Path("data/cache")


class LinkedRunError(cache_format.CacheError):
    """A run of the grid is reached through a symbolic link: ``train`` writes nothing (message names it)."""


#: errno values of a lock file that cannot be created because the cache cannot be written
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


@dataclass
class TrainSummary:
    """What :func:`train_preset` did: counts, the run.json paths written and the states found."""

    preset: str
    total: int
    skipped: int
    trained: int
    written: list[str] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)  # state found -> runs redone (missing excluded)
    read_only: bool = False  # the cache could not be locked (read-only) and every run was complete


def run_status(spec: RunSpec, cache_root: str | os.PathLike, *, checksum: bool = True) -> str:
    """The state of one run (:data:`training.cache_state.STATES`): "complete", "missing",
    "incomplete", "corrupt" or "stale"."""
    from training.cache_state import inspect_run

    path = cache_format.run_dir(cache_root, spec.preset, spec.dataset, spec.arm.name, spec.member)
    return inspect_run(path, spec.preset, spec.dataset, spec.arm.name, spec.member, spec_hash=spec.spec_hash(),
                       checksum=checksum, spec=spec.to_dict()).state


def _prepare(path: Path) -> None:
    if os.path.lexists(path) and not path.is_dir():
        path.unlink()
    if path.is_dir():
        for tmp in cache_format.orphaned_temporaries(path):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)


#: the dataset a worker process loaded for its last job, ``(name, data_root) -> ImageData``: the
#: next job on the same dataset reuses it (a local worker trains several groups)
_WORKER_DATA: dict[tuple[str, str], Any] = {}


def _job(preset: Preset, specs: list[RunSpec], cache_root: str, data_root: str, download: bool,
         threads: int | None, progress: bool, submitted: dict | None = None) -> list[str]:
    """One job (a group of runs); the entry point of worker processes and slurm tasks.

    ``submitted`` (:func:`training.slurm.submitter`) is what the submitting ``train`` tells a slurm
    task: the user's command line, recorded in each ``run.json`` instead of submitit's own.
    """
    import torch

    from training.datasets import load_dataset
    from training.run import train_group

    if threads:
        torch.set_num_threads(threads)
    key = (specs[0].dataset, str(data_root))
    if key not in _WORKER_DATA:
        _WORKER_DATA.clear()
        _WORKER_DATA[key] = load_dataset(key[0], data_root, download=download)
    paths = train_group(preset, specs, cache_root=cache_root, data=_WORKER_DATA[key], progress=progress,
                        submitted=submitted)
    return [str(p) for p in paths]


def _die_with_parent(parent: int) -> None:
    """Worker initialiser: exit when the parent process dies (even by ``kill -9``) and leave
    Ctrl-C to the parent, which stops the workers itself.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``. Elsewhere (no prctl): a daemon thread polls the
    parent id once a second and exits the worker when it changes.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    armed = False
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            armed = False
    if not armed:
        def watch() -> None:
            import time

            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="dynloss-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the watch was set up
        os._exit(1)


def _stop(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's worker processes now (their partial work is only temporary files)."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.kill()
    for proc in list(getattr(pool, "_processes", {}).values()):
        proc.join(5)
    pool.shutdown(wait=False, cancel_futures=True)


def run_local(preset: Preset, jobs: list[list[RunSpec]], *, cache_root, data_root="data/raw", download=False,
              workers: int = 1, progress: bool = True) -> list[str]:
    """Train jobs in this process (``workers=1``) or in ``workers`` spawned processes that die with
    this one. On any exception here (KeyboardInterrupt, a signal turned into an exception, a
    failing job) the workers are killed before it propagates."""
    from tqdm.auto import tqdm

    if workers < 1:
        raise ValueError(f"Expected `workers` >= 1, got {workers}")
    n_runs = sum(len(j) for j in jobs)
    written: list[str] = []
    bar = tqdm(total=n_runs, desc=f"train {preset.name}", unit="run", disable=not progress)
    try:
        if workers <= 1 or not jobs:
            from training.datasets import load_dataset
            from training.run import train_group

            data = None
            for job in jobs:
                if data is None or data.name != job[0].dataset:
                    data = load_dataset(job[0].dataset, data_root, download=download)
                paths = train_group(preset, job, cache_root=cache_root, data=data, progress=progress)
                written += [str(p) for p in paths]
                bar.update(len(job))
        else:
            import multiprocessing as mp

            threads = preset.cpu_threads or max(1, (os.cpu_count() or 1) // workers)
            pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn"),
                                       initializer=_die_with_parent, initargs=(os.getpid(),))
            try:
                futs = {pool.submit(_job, preset, job, str(cache_root), str(data_root), download, threads, False): job
                        for job in jobs}
                pending = set(futs)
                while pending:
                    done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                    for f in done:
                        written += f.result()
                        bar.update(len(futs[f]))
            except BaseException:
                _stop(pool)
                raise
            pool.shutdown(wait=True)
    finally:
        bar.close()
    return written


def run_slurm(preset: Preset, jobs: list[list[RunSpec]], *, cache_root, data_root="data/raw", download=False,
              cluster: str = "slurm", progress: bool = True, slurm: dict | None = None,
              on_submit=None, **overrides: Any) -> list[str]:
    """Submit one array job (one task per group) through submitit and wait for it
    (:func:`training.slurm_jobs.wait_for_array`: a failed, cancelled or timed-out task raises
    :class:`training.slurm_jobs.TaskFailed` after the rest of the array is cancelled).

    Logs go to ``<cache_root>/<preset>/_slurm_logs``. ``cluster`` is "slurm" (a real cluster; never
    submitit's silent local fallback: :func:`training.slurm.require_slurm` first) or, for tests
    only, "local" (the same path with submitit's local executor). ``slurm``: ``{source: {key:
    value}}`` layers over the preset's :class:`training.presets.Resources` in increasing precedence
    (:func:`training.slurm_jobs.resolve`: the file, then the command line). ``on_submit`` is called
    with the SLURM array job id once submitted (not on the local executor).
    ``overrides`` go to ``update_parameters``.
    """
    import submitit

    from training import slurm_jobs
    from training.logs import get_logger

    from training.slurm import submitter

    if not jobs:
        return []
    options = slurm_jobs.resolve(preset.resources, *(slurm or {}).items())
    folder = Path(cache_root) / preset.name / "_slurm_logs"
    ex = submitit.AutoExecutor(folder=folder, cluster=_cluster(cluster))
    if ex.cluster == "slurm":
        slurm_jobs.check_gres(options, f"--preset {preset.name}")
    if (idle := slurm_jobs.idle_cpus(preset, options)) is not None:
        get_logger("train").warning(f"dynloss train: {idle}")
    ex.update_parameters(**{**slurm_jobs.executor_parameters(options, f"dynloss-{preset.name}"), **overrides})
    n = len(jobs)
    with slurm_jobs.sbatch_errors():
        handles = ex.map_array(_job, [preset] * n, jobs, [str(cache_root)] * n, [str(data_root)] * n,
                               [download] * n, [slurm_jobs.task_threads(preset, options)] * n, [False] * n,
                               [submitter()] * n)
    if on_submit is not None and ex.cluster == "slurm":
        on_submit(str(handles[0].job_id).split("_")[0])
    results = slurm_jobs.wait_for_array(handles, [len(j) for j in jobs], progress=progress, options=options,
                                        desc=f"slurm {preset.name}")
    return [path for paths in results for path in paths]


def _cluster(cluster: str) -> str:
    """``cluster`` checked: one of :data:`training.slurm.CLUSTERS` (never None, submitit's guess)."""
    from training.slurm import CLUSTERS

    if cluster not in CLUSTERS:
        raise ValueError(f"Expected `cluster` in {CLUSTERS}, got {cluster!r}")
    return cluster


def _scan_specs(specs: list[RunSpec], cache_root, checksum: bool) -> CacheScan:
    """The state of each run of ``specs`` (their own spec hashes: a preset object changed with
    :func:`training.presets.with_overrides` is checked against its own settings)."""
    from training.cache_state import inspect_run

    memo: dict = {}
    runs = [inspect_run(cache_format.run_dir(cache_root, s.preset, s.dataset, s.arm.name, s.member), s.preset,
                        s.dataset, s.arm.name, s.member, spec_hash=s.spec_hash(), checksum=checksum,
                        spec=s.to_dict(), memo=memo) for s in specs]
    grid: dict[tuple[str, str], int] = {}
    for s in specs:
        grid[(s.dataset, s.arm.name)] = max(grid.get((s.dataset, s.arm.name), 0), s.member + 1)
    return CacheScan(preset=specs[0].preset if specs else "", root=Path(cache_root), grid=grid, grid_source="requested",
                     runs=runs)


def train_preset(
    preset: str | Preset,
    *,
    executor: str = "local",
    cache_root: str | os.PathLike = DEFAULT_CACHE,
    members: int | None = None,
    arms: tuple[str, ...] | None = None,
    datasets: tuple[str, ...] | None = None,
    force: bool = False,
    workers: int | None = None,
    data_root: str | os.PathLike = "data/raw",
    download: bool = False,
    cluster: str = "slurm",
    progress: bool = True,
    wait_for_lock: bool = False,
    on_wait=None,
    slurm: dict | None = None,
) -> TrainSummary:
    """Train every run of a preset that is not complete into the cache (the library call behind
    ``dynloss train``): under the preset's lock, check each run (checksum included), retrain the
    missing, incomplete, corrupt and stale runs, then record the grid in ``_grid.json``.

    Parameters
    ----------
    preset : preset name (``digits-tiny``, ``fmnist-mini``, ``paper``) or a :class:`Preset`.
    executor : "local" (this machine) or "slurm" (submitit array job).
    cluster : for ``executor="slurm"``: "slurm" (checked first: :class:`training.slurm.SlurmMissingError`
        when SLURM is not there) or, for tests only, "local" (submitit's local executor).
    members, arms, datasets : restrict or extend the preset's grid.
    force : redo complete runs too.
    workers : local worker processes, each training whole groups (None: the preset's ``local_workers``).
    wait_for_lock : wait while another process trains this preset (else raise
        :class:`training.cache_lock.CacheLockedError` naming it); ``on_wait`` gets a message first.
    slurm : with ``executor="slurm"``, SLURM parameters over the preset's ``Resources``, as
        ``{source: {key: value}}`` in increasing precedence (:func:`training.slurm_jobs.resolve`).

    Returns
    -------
    TrainSummary

    Raises
    ------
    LinkedRunError
        When a run of the grid is reached through a symbolic link (nothing is trained).
    training.cache_format.UnreadableError
        When a run cannot be read (permissions, I/O error); it is left as it is.
    training.slurm.SlurmMissingError
        When ``executor="slurm"`` and SLURM is not there (before anything is locked or trained).
    training.slurm_jobs.SlurmError
        When sbatch refuses the array, no node has the GPU asked for, or a task fails, is cancelled
        or times out (:class:`training.slurm_jobs.TaskFailed`; the rest of the array is cancelled).
    OSError
        When the cache cannot be written (locked against writes: only if some run must be trained).
    """
    p = get_preset(preset) if isinstance(preset, str) else preset
    if executor not in EXECUTORS:
        raise ValueError(f"Expected `executor` in {EXECUTORS}, got {executor!r}")
    if executor == "slurm" and _cluster(cluster) == "slurm":
        from training.slurm import require_slurm

        require_slurm()
    workers = p.local_workers if workers is None else workers
    if workers < 1:
        raise ValueError(f"Expected `workers` >= 1, got {workers}")
    specs = expand(p, members=members, arms=arms, datasets=datasets)
    folder = Path(cache_root) / p.name
    paths = {s.key: cache_format.run_dir(cache_root, s.preset, s.dataset, s.arm.name, s.member) for s in specs}
    with contextlib.ExitStack() as stack:
        try:
            lock = stack.enter_context(preset_lock(folder, wait=wait_for_lock, on_wait=on_wait))
        except OSError as e:
            # a read-only cache: nothing to do if every run is complete, else the error stands
            if e.errno not in _READ_ONLY or force or any(
                    r.state != "complete" for r in _scan_specs(specs, cache_root, True).runs):
                raise
            return TrainSummary(preset=p.name, total=len(specs), skipped=len(specs), trained=0, read_only=True)
        read_grid(folder)  # a bad record is refused now, not after the training
        for s in specs:
            if (link := link_in_run(paths[s.key])) is not None:
                raise LinkedRunError(f"{linked_detail(link)}, then rerun")
        states = {(r.dataset, r.arm, r.member): r.state for r in _scan_specs(specs, cache_root, True).runs}
        todo = specs if force else [s for s in specs if states[s.key] != "complete"]
        for s in todo:
            _prepare(paths[s.key])
        repaired: dict[str, int] = {}
        for s in todo:
            st = states[s.key]
            if st not in ("missing", "complete"):
                repaired[st] = repaired.get(st, 0) + 1
        jobs = group_runs(p, todo)
        if executor == "local":
            written = run_local(p, jobs, cache_root=cache_root, data_root=data_root, download=download,
                                workers=workers, progress=progress)
        else:
            written = run_slurm(p, jobs, cache_root=cache_root, data_root=data_root, download=download,
                                cluster=cluster, progress=progress, slurm=slurm,
                                on_submit=lambda array: lock.record(slurm_array=array))
            lock.record(slurm_array=None)  # every task has its result: the array is over
        # recorded once every run asked for is complete: an interrupted (or mistaken) extension of the
        # grid does not become what analyze expects
        record_grid(folder, preset_grid(p, members=members, arms=arms, datasets=datasets))
    return TrainSummary(preset=p.name, total=len(specs), skipped=len(specs) - len(todo), trained=len(todo),
                        written=sorted(written), repaired=repaired)
