"""Run a preset's grid: skip complete runs, train the rest locally or on slurm (submitit).

Idempotent: a run whose directory holds ``run.json`` with the same spec hash is skipped; an
incomplete run (no ``run.json``, e.g. interrupted while writing) is redone; ``force`` redoes all.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import cache_format
from training.grid import RunSpec
from training.presets import Preset, expand, get_preset, group_runs

EXECUTORS: tuple[str, ...] = ("local", "slurm")
DEFAULT_CACHE = Path("data/cache")


@dataclass
class TrainSummary:
    """What :func:`train_preset` did: counts and the run.json paths written."""

    preset: str
    total: int
    skipped: int
    trained: int
    written: list[str] = field(default_factory=list)


def run_status(spec: RunSpec, cache_root: str | os.PathLike) -> str:
    """"complete" (same spec hash), "stale" (complete for another spec) or "incomplete"."""
    path = cache_format.run_dir(cache_root, spec.preset, spec.dataset, spec.arm.name, spec.member)
    if not cache_format.is_complete(path):
        return "incomplete"
    try:
        meta = cache_format.read_meta(path)
    except cache_format.CacheError:
        return "incomplete"
    return "complete" if meta.get("spec_hash") == spec.spec_hash() else "stale"


def pending_runs(specs: list[RunSpec], cache_root: str | os.PathLike, *, force: bool = False) -> list[RunSpec]:
    """Runs that must be (re)done; removes leftover temporary files of interrupted writes."""
    todo = []
    for s in specs:
        if force or run_status(s, cache_root) != "complete":
            path = cache_format.run_dir(cache_root, s.preset, s.dataset, s.arm.name, s.member)
            if path.is_dir():
                for tmp in path.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
            todo.append(s)
    return todo


def _job(preset: Preset, specs: list[RunSpec], cache_root: str, data_root: str, download: bool,
         threads: int | None, progress: bool) -> list[str]:
    """One job (a group of runs); the entry point of worker processes and slurm tasks."""
    import torch

    from training.run import train_group

    if threads:
        torch.set_num_threads(threads)
    paths = train_group(preset, specs, cache_root=cache_root, data_root=data_root, download=download,
                        progress=progress)
    return [str(p) for p in paths]


def run_local(preset: Preset, jobs: list[list[RunSpec]], *, cache_root, data_root="data/raw", download=False,
              workers: int = 1, progress: bool = True) -> list[str]:
    """Train jobs in this process (``workers=1``) or in ``workers`` spawned processes."""
    from tqdm.auto import tqdm

    n_runs = sum(len(j) for j in jobs)
    written: list[str] = []
    bar = tqdm(total=n_runs, desc=f"train {preset.name}", unit="run", disable=not progress)
    if workers <= 1:
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
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            futs = {pool.submit(_job, preset, job, str(cache_root), str(data_root), download, threads, False): job
                    for job in jobs}
            for f in as_completed(futs):
                written += f.result()
                bar.update(len(futs[f]))
    bar.close()
    return written


def run_slurm(preset: Preset, jobs: list[list[RunSpec]], *, cache_root, data_root="data/raw", download=False,
              cluster: str | None = None, progress: bool = True, **overrides: Any) -> list[str]:
    """Submit one array job (one task per group) through submitit and wait for it.

    Logs go to ``<cache_root>/<preset>/_slurm_logs``. ``cluster="local"`` runs the same path
    with submitit's local executor (tests). ``overrides`` go to ``update_parameters``.
    """
    import submitit
    from tqdm.auto import tqdm

    if not jobs:
        return []
    folder = Path(cache_root) / preset.name / "_slurm_logs"
    ex = submitit.AutoExecutor(folder=folder, cluster=cluster)
    r = preset.resources
    params: dict[str, Any] = {"timeout_min": r.timeout_min, "cpus_per_task": r.cpus, "mem_gb": r.mem_gb,
                              "name": f"dynloss-{preset.name}"}
    if r.gpus:
        params["gpus_per_node"] = r.gpus
    if ex.cluster == "slurm":
        params["slurm_array_parallelism"] = 256
        if r.partition:
            params["slurm_partition"] = r.partition
    params.update(overrides)
    ex.update_parameters(**params)
    n = len(jobs)
    handles = ex.map_array(_job, [preset] * n, jobs, [str(cache_root)] * n, [str(data_root)] * n,
                           [download] * n, [r.cpus if not r.gpus else None] * n, [False] * n)
    written: list[str] = []
    bar = tqdm(total=sum(len(j) for j in jobs), desc=f"slurm {preset.name}", unit="run", disable=not progress)
    for h, job in zip(handles, jobs):
        written += h.result()
        bar.update(len(job))
    bar.close()
    return written


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
    cluster: str | None = None,
    progress: bool = True,
) -> TrainSummary:
    """Train every missing run of a preset into the cache (the library call behind ``dynloss train``).

    Parameters
    ----------
    preset : preset name (``digits-tiny``, ``fmnist-mini``, ``paper``) or a :class:`Preset`.
    executor : "local" (this machine) or "slurm" (submitit array job).
    members, arms, datasets : restrict or extend the preset's grid.
    force : redo complete runs too.
    workers : local worker processes, each training whole groups (None: the preset's ``local_workers``).

    Returns
    -------
    TrainSummary
    """
    p = get_preset(preset) if isinstance(preset, str) else preset
    if executor not in EXECUTORS:
        raise ValueError(f"Expected `executor` in {EXECUTORS}, got {executor!r}")
    specs = expand(p, members=members, arms=arms, datasets=datasets)
    todo = pending_runs(specs, cache_root, force=force)
    jobs = group_runs(p, todo)
    if executor == "local":
        workers = p.local_workers if workers is None else workers
        written = run_local(p, jobs, cache_root=cache_root, data_root=data_root, download=download,
                            workers=workers, progress=progress)
    else:
        written = run_slurm(p, jobs, cache_root=cache_root, data_root=data_root, download=download,
                            cluster=cluster, progress=progress)
    return TrainSummary(preset=p.name, total=len(specs), skipped=len(specs) - len(todo), trained=len(todo),
                        written=sorted(written))
