"""What a preset's cache holds, run by run, checked by identity rather than by folder layout.

A run is what its ``run.json`` says. For every run of the preset's **grid** (datasets × arms ×
members) this module reads the run's folder and gives it one state:

- ``complete``: ``run.json`` valid; its ``preset``, ``dataset``, ``arm`` and ``member`` are those of
  its folder; its ``spec_hash`` is the one the preset gives that run now; ``arrays.npz`` matches the
  SHA-256 in ``run.json`` (when checksums are checked);
- ``missing``: nothing there;
- ``incomplete``: a folder without ``run.json`` (interrupted before the end of its write);
- ``corrupt``: invalid ``run.json`` (not JSON, over 4 MB, nested too deeply), ``arrays.npz`` absent or
  failing its checksum, a run whose ``run.json`` names another preset / dataset / arm / member (a
  copy), arrays identical to another run's, a file where the run's folder should be, or a run
  reached through a symbolic link (its dataset, arm or run folder, ``run.json`` or ``arrays.npz``:
  ``dynloss train`` refuses to write through it, see :func:`link_in_run`);
- ``stale``: a valid run made with other settings (another ``spec_hash``).

A ``run.json`` or ``arrays.npz`` that is there but cannot be read (permissions, an I/O error) gives
no state: :class:`training.cache_format.UnreadableError` (exit status 3), so that no tool mistakes it
for a corrupt run and overwrites it.

Anything else under ``<cache>/<preset>/`` (a folder that is not a dataset, arm or run of the grid,
``member-0`` beside ``member-000``, a stray file) is an **unexpected entry**. Names starting with
``_`` or ``.`` belong to the tools (``_grid.json``, ``_train.lock``, ``_slurm_logs``, temporary files).

The grid is, first match wins: ``_grid.json`` (written by ``dynloss train`` once all it was asked
for is complete: per dataset and arm, the most members any such call asked for; delete it to fall
back to the preset's grid), the registered preset's own grid, or, for a preset that
is not registered (synthetic test caches), the arms found per dataset with members ``0..max``.
Unregistered presets have no settings to compare, so their runs are never ``stale``.

Standard library, numpy (through :mod:`training.cache_format`) and :mod:`training.presets`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training import cache_format as cf

GRID_FILE = "_grid.json"
#: above this many members per arm, ``dynloss train --members`` needs ``--many-members`` (the paper
#: trains 50), and a ``_grid.json`` needs ``"many_members": true``
MAX_MEMBERS = 1000
#: the most members per arm a ``_grid.json`` may ask for even with ``"many_members": true``
MAX_MANY_MEMBERS = 1_000_000
#: the largest ``_grid.json`` read (one is a few hundred bytes)
MAX_GRID_BYTES = 1 << 20
LOCK_FILE = "_train.lock"
STATES: tuple[str, ...] = ("complete", "missing", "incomplete", "corrupt", "stale")
_MEMBER = re.compile(r"^member-(\d+)$")


@dataclass(frozen=True)
class RunState:
    """The state of one run of the grid (see the module docstring)."""

    dataset: str
    arm: str
    member: int
    path: Path
    state: str
    detail: str = ""
    arrays_sha256: str | None = None
    executor: str | None = None  # what its run.json says trained it ("local", "slurm"), when readable

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.arm}/member-{self.member:03d}"


@dataclass(frozen=True)
class Unexpected:
    """An entry of the preset's cache folder that is no run of the grid."""

    path: Path
    reason: str


@dataclass
class CacheScan:
    """Every run of a preset's grid with its state, and the unexpected entries."""

    preset: str
    root: Path
    grid: dict[tuple[str, str], int]
    grid_source: str
    runs: list[RunState]
    unexpected: list[Unexpected] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.root / self.preset

    def with_state(self, *states: str) -> list[RunState]:
        return [r for r in self.runs if r.state in states]

    @property
    def ok(self) -> bool:
        """Every run complete and nothing unexpected."""
        return not self.unexpected and all(r.state == "complete" for r in self.runs)

    def counts(self) -> dict[str, int]:
        return {s: n for s in STATES if (n := sum(r.state == s for r in self.runs))}

    def summary(self) -> str:
        """``18 runs: 16 complete, 1 missing, 1 corrupt; 1 unexpected entry``."""
        parts = ", ".join(f"{n} {s}" for s, n in self.counts().items()) or "none"
        out = f"{len(self.runs)} runs: {parts}"
        if self.unexpected:
            out += f"; {len(self.unexpected)} unexpected entr{'y' if len(self.unexpected) == 1 else 'ies'}"
        return out

    def problems(self, *, states: tuple[str, ...] = ("missing", "incomplete", "corrupt", "stale"),
                 limit: int = 4) -> str:
        """The first ``limit`` problems as ``path: state (detail)``, ``; ``-separated (one line)."""
        items = [f"{r.path}: {r.state}" + (f" ({r.detail})" if r.detail else "") for r in self.runs if r.state in states]
        items += [f"{u.path}: unexpected ({u.reason})" for u in self.unexpected]
        shown = "; ".join(items[:limit])
        return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


# ----------------------------------------------------------------------------------------- grid
def read_grid(folder: Path) -> dict[tuple[str, str], int] | None:
    """The grid recorded in ``folder/_grid.json`` (None when absent), checked before it is used: at
    most :data:`MAX_GRID_BYTES`, known datasets and arms, 1 to :data:`MAX_MEMBERS` members per arm
    (up to :data:`MAX_MANY_MEMBERS` when the record says ``"many_members": true``, as ``dynloss
    train --many-members`` writes it), so that no record makes a scan plan billions of runs.

    Raises
    ------
    CacheError
        When the file is not a valid grid record (the message names it and says how to repair).
    UnreadableError
        When it is there but cannot be read (permissions, I/O error).
    """
    from training.arms import ARMS
    from training.datasets import DATASETS

    f = folder / GRID_FILE
    fix = (f"delete it to go back to the preset's grid (`dynloss train` writes it again with the --arms, "
           f"--datasets and --members it is given)")
    try:
        raw = cf.read_json(f, max_bytes=MAX_GRID_BYTES, what="grid record", allow_nan=False)
    except FileNotFoundError:
        return None
    except cf.JsonFileError as e:
        raise cf.CacheError(f"{e}; {fix}") from None
    except OSError as e:
        raise cf.unreadable(e, f) from None
    runs = raw.get("runs") if isinstance(raw, dict) else None
    if not isinstance(runs, dict) or not runs or not all(isinstance(a, dict) and a for a in runs.values()):
        raise cf.CacheError(f'{f}: expected {{"runs": {{dataset: {{arm: members}}}}}}; {fix}')
    top = MAX_MANY_MEMBERS if raw.get("many_members") is True else MAX_MEMBERS
    grid: dict[tuple[str, str], int] = {}
    for ds, arms in runs.items():
        if ds not in DATASETS:
            raise cf.CacheError(f"{f}: unknown dataset {ds[:40]!r} (known: {', '.join(DATASETS)}); {fix}")
        for arm, n in arms.items():
            if arm not in ARMS:
                raise cf.CacheError(f"{f}: unknown arm {arm[:40]!r} (known: {', '.join(ARMS)}); {fix}")
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= top:
                raise cf.CacheError(f"{f}: {ds}/{arm} asks for {str(n)[:20]} members, expected a whole number from "
                                    f"1 to {top}; {fix}")
            grid[(ds, arm)] = n
    return grid


def record_grid(folder: Path, requested: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """Merge ``requested`` into ``folder/_grid.json`` (per dataset and arm, the most members asked
    for) and return the merged grid. Callers hold the preset's lock (:mod:`training.cache_lock`)."""
    grid = dict(read_grid(folder) or {})
    for key, n in requested.items():
        grid[key] = max(n, grid.get(key, 0))
    runs: dict[str, dict[str, int]] = {}
    for (ds, arm), n in sorted(grid.items()):
        runs.setdefault(ds, {})[arm] = n
    record: dict[str, Any] = {"runs": runs}
    if max(grid.values(), default=0) > MAX_MEMBERS:
        record["many_members"] = True
    cf.atomic_write_json(folder / GRID_FILE, record)
    return grid


def cache_option(root: str | os.PathLike) -> str:
    """`` --cache ROOT`` for a command line the user is told to type, or ``""`` when ``root`` is the
    cache root that command finds by itself (:func:`training.paths.resolve_root` over the user's
    environment, which the command will see)."""
    import shlex

    from training import paths

    default = paths.resolve_root().cache
    return "" if Path(root).resolve() == default.resolve() else f" --cache {shlex.quote(str(root))}"


def executor_option(sc: CacheScan) -> str:
    """`` --executor slurm`` when a run of ``sc`` records it was trained through SLURM, else ``""``
    (the default executor, local)."""
    return " --executor slurm" if any(r.executor == "slurm" for r in sc.runs) else ""


def repair_command(sc: CacheScan, states: tuple[str, ...] = ("missing", "incomplete", "corrupt", "stale")) -> str:
    """The ``dynloss train`` command (in backticks) that retrains the runs of ``sc`` in ``states``.

    ``dynloss train`` trains the preset's grid unless told otherwise, so for a grid read from
    ``_grid.json`` (which an earlier ``train --arms/--members/--datasets`` extended) the command
    names the ``--datasets``, ``--arms`` and ``--members`` of those runs (one command per members
    count) and offers to delete ``_grid.json`` instead; ``--cache`` is given unless ``sc.root`` is
    the default cache root, and ``--executor slurm`` when a run of the cache records that it was
    trained through SLURM (``dynloss train`` trains locally unless told otherwise).
    """
    base = f"dynloss train --preset {sc.preset}{cache_option(sc.root)}{executor_option(sc)}"
    if sc.grid_source != GRID_FILE:
        return f"`{base}`"
    by_members: dict[int, set[tuple[str, str]]] = {}
    for r in sc.runs:
        if r.state in states:
            by_members.setdefault(sc.grid[(r.dataset, r.arm)], set()).add((r.dataset, r.arm))
    commands = [f"`{base} --datasets {','.join(sorted({d for d, _ in pairs}))} "
                f"--arms {','.join(sorted({a for _, a in pairs}))} --members {n}"
                f"{' --many-members' if n > MAX_MEMBERS else ''}`" for n, pairs in sorted(by_members.items())]
    return (" then ".join(commands or [f"`{base}`"]) +
            f" (or delete {sc.folder / GRID_FILE} to go back to the preset's grid)")


def preset_grid(preset: Any, *, members: int | None = None, arms: tuple[str, ...] | None = None,
                datasets: tuple[str, ...] | None = None) -> dict[tuple[str, str], int]:
    """The grid of a registered preset, optionally restricted or extended as ``dynloss train`` is."""
    members = preset.members if members is None else members
    return {(ds, arm): members for ds in (datasets or preset.datasets) for arm in (arms or preset.arms)}


def _subdirs(p: Path) -> list[Path]:
    try:
        return sorted(q for q in p.iterdir() if not q.name.startswith(("_", ".")))
    except (NotADirectoryError, FileNotFoundError):
        return []


def _inferred_grid(folder: Path) -> dict[tuple[str, str], int]:
    grid: dict[tuple[str, str], int] = {}
    datasets = [d for d in _subdirs(folder) if d.is_dir()]
    for ds in datasets:
        arms = [a for a in _subdirs(ds) if a.is_dir()]
        top = -1
        for arm in arms:
            for m in _subdirs(arm):
                if (mm := _MEMBER.match(m.name)) and m.name == f"member-{int(mm[1]):03d}":
                    top = max(top, int(mm[1]))
        for arm in arms:
            grid[(ds.name, arm.name)] = max(top + 1, 1)
    return grid


def resolve_grid(root: str | os.PathLike, preset: str) -> tuple[dict[tuple[str, str], int], str, Any]:
    """``(grid, source, Preset or None)`` by the rule of the module docstring."""
    from training.presets import PRESETS

    folder = Path(root) / preset
    registered = PRESETS.get(preset)
    grid = read_grid(folder)
    if grid is not None:
        return grid, GRID_FILE, registered
    if registered is not None:
        return preset_grid(registered), "preset", registered
    return _inferred_grid(folder), "cache folders", None


# ----------------------------------------------------------------------------------------- scan
def _expected_specs(preset: Any, grid: dict[tuple[str, str], int]) -> dict[tuple[str, str, int], Any] | None:
    if preset is None:
        return None
    from training.grid import make_run_spec

    settings = preset.settings()
    out = {}
    for (ds, arm), n in grid.items():
        for k in range(n):
            try:
                out[(ds, arm, k)] = make_run_spec(preset.name, ds, arm, k, root_seed=preset.root_seed, settings=settings)
            except ValueError as e:  # an arm this version does not know
                raise cf.CacheError(f"{Path(GRID_FILE)}: {e}") from None
    return out


def link_in_run(path: Path) -> Path | None:
    """The first symbolic link among a run folder's dataset and arm folders, the run folder itself
    and its ``run.json`` and ``arrays.npz`` (None when there is none): a run reached through a link
    is never written, since the write would land in whatever the link points at."""
    path = Path(path)
    return next((p for p in (path.parent.parent, path.parent, path, path / cf.RUN_FILE, path / cf.ARRAYS_FILE)
                 if p.is_symlink()), None)


def linked_detail(link: Path) -> str:
    """What to say about a symbolic link in the cache (see :func:`link_in_run`)."""
    kind = "folder" if link.is_dir() or link.name not in (cf.RUN_FILE, cf.ARRAYS_FILE) else "file"
    return (f"{link} is a symbolic link (to {os.readlink(link)}); `dynloss train` never writes through a link it "
            f"did not create: replace the link with a real {kind}")


def inspect_run(path: Path, preset: str, dataset: str, arm: str, member: int, *, spec_hash: str | None = None,
                checksum: bool = True, spec: dict | None = None, memo: dict | None = None) -> RunState:
    """The state of one run folder (see the module docstring). With ``spec`` (the expected
    ``RunSpec.to_dict()``), a run whose ``fit_index`` / ``val_index`` are not the split that spec
    derives (a stale run: the spec it records) is corrupt, a consistent forgery or a foreign run
    (:func:`split_problem`; ``memo`` shares derivations across runs)."""

    recorded: dict[str, Any] = {}  # from run.json, once it is read

    def state(s: str, detail: str = "", sha: str | None = None) -> RunState:
        executor = recorded.get("executor")
        return RunState(dataset, arm, member, path, s, detail, sha, executor if isinstance(executor, str) else None)

    if (link := link_in_run(path)) is not None:
        return state("corrupt", linked_detail(link))
    if not os.path.lexists(path):
        return state("missing")
    if not path.is_dir():
        return state("corrupt", "a file, not a run folder; `dynloss train` replaces it")
    if not (path / cf.RUN_FILE).exists():
        others = [p for p in path.iterdir() if not p.name.startswith(".")]
        return state("incomplete", "no run.json: interrupted before the end of its write") if others else state("missing")
    try:
        meta = cf.read_meta(path)
    except cf.CacheError as e:
        return state("corrupt", str(e).replace(str(path / cf.RUN_FILE), "run.json"))
    except cf.UnreadableError:
        raise
    except OSError as e:
        return state("corrupt", f"run.json unreadable ({e.strerror})")
    recorded["executor"] = meta.get("executor")
    said = {k: meta.get(k) for k in ("preset", "dataset", "arm", "member")}
    want = {"preset": preset, "dataset": dataset, "arm": arm, "member": member}
    wrong = [f"{k} {said[k]!r}" for k in want if said[k] != want[k]]
    if wrong:
        return state("corrupt", f"run.json says {', '.join(wrong)}: copied or moved from another run's folder")
    arrays = path / cf.ARRAYS_FILE
    if not arrays.is_file():
        return state("corrupt", "arrays.npz missing although run.json exists")
    sha = meta["arrays_sha256"]
    if checksum:
        try:
            digest = cf.sha256_file(arrays)
        except OSError as e:
            if e.errno in cf.UNREADABLE_ERRNOS:
                raise cf.unreadable(e, arrays) from None
            return state("corrupt", f"arrays.npz unreadable ({e.strerror})")
        if digest != sha:
            return state("corrupt", f"arrays.npz SHA-256 {digest[:12]}… does not match {sha[:12]}… in run.json "
                                    "(truncated or replaced)")
    stale = spec_hash is not None and meta.get("spec_hash") != spec_hash
    settings = split_settings(meta.get("spec") if stale else spec) if spec is not None else None
    if settings is not None and (problem := _arrays_split_problem(arrays, member, settings, memo)):
        return state("corrupt", f"{problem}: a forged or foreign run", sha)
    if stale:
        return state("stale", "made with other settings or an older trainer (another spec_hash)", sha)
    return state("complete", "", sha)


def _arrays_split_problem(arrays: Path, member: int, settings: tuple[int, int, int, float], memo: dict | None) -> str:
    """:func:`split_problem` of an ``arrays.npz`` (reads four small arrays of it)."""
    import numpy as np

    try:
        with np.load(arrays, allow_pickle=False) as z:
            return split_problem({k: z[k] for k in ("train_ids", "train_labels", "fit_index", "val_index")},
                                 member, settings, memo)
    except OSError as e:
        if e.errno in cf.UNREADABLE_ERRNOS:
            raise cf.unreadable(e, arrays) from None
        return f"arrays.npz unreadable ({e.strerror})"
    except Exception as e:  # a damaged npz, seen only without checksums: zipfile, KeyError, ValueError
        return f"arrays.npz unreadable ({type(e).__name__}: {e})"


def scan(root: str | os.PathLike, preset: str, *, checksum: bool = True,
         grid: dict[tuple[str, str], int] | None = None) -> CacheScan:
    """State of every run of the preset's grid and the unexpected entries of its cache folder.

    Parameters
    ----------
    root : cache root; the preset's runs live in ``root/preset``.
    checksum : compare each ``arrays.npz`` with the SHA-256 in its ``run.json``.
    grid : ``{(dataset, arm): members}`` to check (default: :func:`resolve_grid`).

    Raises
    ------
    CacheError
        When ``_grid.json`` is unreadable.
    """
    root = Path(root)
    folder = root / preset
    resolved, source, registered = resolve_grid(root, preset)
    if grid is None:
        grid = resolved
    else:
        source = "requested"
    specs = _expected_specs(registered, grid)
    runs: list[RunState] = []
    memo: dict = {}
    for (ds, arm), n in sorted(grid.items()):
        for k in range(n):
            spec = None if specs is None else specs[(ds, arm, k)]
            runs.append(inspect_run(cf.run_dir(root, preset, ds, arm, k), preset, ds, arm, k,
                                    spec_hash=None if spec is None else spec.spec_hash(), checksum=checksum,
                                    spec=None if spec is None else spec.to_dict(), memo=memo))
    runs = _mark_copies(runs)
    return CacheScan(preset=preset, root=root, grid=dict(grid), grid_source=source, runs=runs,
                     unexpected=_unexpected(folder, grid))


def split_settings(spec: Any) -> tuple[int, int, int, float] | None:
    """(partition seed, bootstrap seed, k, fit fraction) a run's split is drawn with, from its spec
    (``RunSpec.to_dict()``, or the ``spec`` its ``run.json`` records); None when it names none."""
    try:
        settings = spec["settings"]
        return (int(spec["partition_seed"]), int(spec["bootstrap_seed"]), int(settings["k"]),
                float(settings["fit_fraction"]))
    except (TypeError, KeyError, ValueError):
        return None


def split_problem(arrays: dict[str, Any], member: int, settings: tuple[int, int, int, float],
                  memo: dict | None = None) -> str:
    """Why a run's ``fit_index`` / ``val_index`` are not the split ``settings`` derive for its
    member from its training labels ("" when they are). The split depends only on the labels (it
    is stratified), the member and the seeds, so ``memo`` shares one derivation across arms."""
    import hashlib

    import numpy as np

    from training.splits import member_split

    ids, labels = arrays["train_ids"], arrays["train_labels"]
    if not np.array_equal(np.sort(ids), np.arange(ids.size)):
        return "train_ids are not the official rows 0..n-1"
    by_id = labels[np.argsort(ids, kind="stable")]
    key = (member, settings, hashlib.sha256(np.ascontiguousarray(by_id).tobytes()).hexdigest())
    memo = {} if memo is None else memo
    if key not in memo:
        p_seed, b_seed, k, fraction = settings
        try:
            memo[key] = member_split(by_id, k=k, member=member, partition_seed=p_seed, bootstrap_seed=b_seed,
                                     fit_fraction=fraction)
        except ValueError as e:
            memo[key] = e
    want = memo[key]
    if isinstance(want, Exception):
        return f"no split can be derived from its train_labels ({want})"
    for name in ("fit_index", "val_index"):
        got, exp = arrays[name], getattr(want, name)
        if not np.array_equal(got, exp):
            n = int((got != exp).sum()) if got.shape == exp.shape else max(got.size, exp.size)
            return f"{name} is not the split the preset derives for member {member} ({n} of {exp.size} rows differ)"
    return ""


def _mark_copies(runs: list[RunState]) -> list[RunState]:
    first: dict[str, RunState] = {}
    out = []
    for r in runs:
        if r.state in ("complete", "stale") and r.arrays_sha256:
            seen = first.setdefault(r.arrays_sha256, r)
            if seen is not r:
                r = RunState(r.dataset, r.arm, r.member, r.path, "corrupt",
                             f"arrays identical to those of {seen.key} (a copy)", r.arrays_sha256)
        out.append(r)
    return out


def _unexpected(folder: Path, grid: dict[tuple[str, str], int]) -> list[Unexpected]:
    out: list[Unexpected] = []
    datasets = {ds for ds, _ in grid}
    for d in _subdirs(folder):
        if d.name not in datasets or not d.is_dir():
            out.append(Unexpected(d, "a file, not a dataset folder" if not d.is_dir() else "not a dataset of the grid"))
            continue
        arms = {arm for ds, arm in grid if ds == d.name}
        for a in _subdirs(d):
            if a.name not in arms or not a.is_dir():
                out.append(Unexpected(a, "a file, not an arm folder" if not a.is_dir() else "not an arm of the grid"))
                continue
            n = grid[(d.name, a.name)]
            for m in _subdirs(a):
                mm = _MEMBER.match(m.name)
                if not mm:
                    out.append(Unexpected(m, "not a run folder (member-NNN)"))
                elif m.name != f"member-{int(mm[1]):03d}":
                    out.append(Unexpected(m, f"not the run folder name of member {int(mm[1])} "
                                             f"(member-{int(mm[1]):03d}): a copy?"))
                elif int(mm[1]) >= n:
                    out.append(Unexpected(m, f"member {int(mm[1])} is outside the grid (members 0-{n - 1})"))
    return out
