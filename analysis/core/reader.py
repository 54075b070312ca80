"""Cache reader: a preset's runs as aligned ``(n_members, n_samples, n_classes)`` arrays.

Built on :mod:`training.cache_state` (which run of the preset's grid each folder holds, checked by
identity: ``run.json``'s preset, dataset, arm, member and ``spec_hash``, and the checksum) and
:mod:`training.cache_format` (``read_run`` validates each run's files, dtypes and shapes). A cache
that is not exactly the grid, complete and current, is an error unless the caller allows a
partial or stale analysis, which is then recorded (:class:`CacheStatus`). On top of it, this module

- aligns every member by sample id (rows sorted by ``train_ids`` / ``test_ids``), never by order;
- checks that all members of an arm, and all arms of a dataset, hold the same ids (train and
  test), the same labels for each id and the same class count;
- for a registered preset, relies on the cache scan (:mod:`training.cache_state`) having called
  every run whose ``fit_index`` / ``val_index`` is not the split the preset derives for its
  member corrupt, and checks that a dataset whose labels are known without files (``digits``,
  bundled with scikit-learn) holds exactly its official ids and labels. So a consistent forgery
  (arrays replaced, checksum recomputed) is refused, naming the run's folder. Synthetic presets
  (not registered) have no seeds to derive from and are checked for shared ids and labels only;
- applies the non-finite policy: a member with any NaN/inf logit is dropped and reported
  (``nonfinite="drop"``, default) or makes the load fail (``"raise"``); it never votes or averages.

Every error is a :class:`~training.cache_format.CacheError` naming the offending file.

``fit_index`` / ``val_index`` hold official training row ids (values of ``train_ids``); they are
mapped here to positions in the aligned (id-sorted) training arrays.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from training.cache_format import (
    ARRAYS_FILE,
    CacheError,
    read_run,
)

NonFinitePolicy = Literal["drop", "raise"]


@dataclass(frozen=True)
class ArmLogits:
    """All kept members of one (dataset, arm), aligned by sample id.

    Attributes
    ----------
    train_logits : float32 array (n_members, n_train, n_classes), rows sorted by ``train_ids``.
    test_logits : float32 array (n_members, n_test, n_classes), rows sorted by ``test_ids``.
    train_labels, test_labels, train_ids, test_ids : int64 arrays of the aligned rows.
    members : member numbers kept, in order of the first axis.
    fit_positions, val_positions : per kept member, positions (in the aligned training rows) the
        member was fitted / internally validated on.
    checksums : per kept member, the SHA-256 of its ``arrays.npz``.
    seeds : per kept member, the seed recorded in ``run.json`` (None if absent).
    dropped : ``(member, path, reason)`` of members removed by the non-finite policy.
    """

    dataset: str
    arm: str
    train_logits: np.ndarray
    test_logits: np.ndarray
    train_labels: np.ndarray
    test_labels: np.ndarray
    train_ids: np.ndarray
    test_ids: np.ndarray
    members: tuple[int, ...]
    fit_positions: tuple[np.ndarray, ...]
    val_positions: tuple[np.ndarray, ...]
    checksums: tuple[str, ...]
    seeds: tuple[int | None, ...]
    dropped: tuple[tuple[int, str, str], ...] = field(default=())

    @property
    def n_members(self) -> int:
        return self.test_logits.shape[0]

    @property
    def n_classes(self) -> int:
        return self.test_logits.shape[2]

    def fit_mask(self) -> np.ndarray:
        """Bool array (n_members, n_train): True where the member was fitted on the row."""
        mask = np.zeros((self.n_members, self.train_ids.shape[0]), dtype=bool)
        for k, pos in enumerate(self.fit_positions):
            mask[k, pos] = True
        return mask


@dataclass(frozen=True)
class PresetLogits:
    """A preset's arms: ``arms[(dataset, arm)]`` and the list of runs read (for provenance)."""

    preset: str
    root: str
    arms: dict[tuple[str, str], ArmLogits]
    runs: tuple[dict, ...]
    status: CacheStatus | None = None

    @property
    def datasets(self) -> list[str]:
        return sorted({d for d, _ in self.arms})

    def arm_names(self, dataset: str) -> list[str]:
        return sorted(a for d, a in self.arms if d == dataset)

    def dropped(self) -> list[dict]:
        """One dict per dropped member: dataset, arm, member, path, reason."""
        return [
            {"dataset": a.dataset, "arm": a.arm, "member": m, "path": p, "reason": r}
            for a in self.arms.values()
            for m, p, r in a.dropped
        ]


def _check_policy(nonfinite: str) -> None:
    if nonfinite not in ("drop", "raise"):
        raise ValueError(f"Expected argument `nonfinite` to be 'drop' or 'raise', but got {nonfinite!r}")


def _sorted_by_id(ids: np.ndarray, where: Path, name: str) -> np.ndarray:
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    if s.size > 1 and np.any(s[1:] == s[:-1]):
        raise CacheError(f"{where}: `{name}` holds duplicate sample ids")
    return order


def _id_positions(ids_sorted: np.ndarray, wanted: np.ndarray, where: Path, name: str) -> np.ndarray:
    pos = np.searchsorted(ids_sorted, wanted)
    ok = (pos < ids_sorted.size) & (ids_sorted[np.minimum(pos, ids_sorted.size - 1)] == wanted)
    if not np.all(ok):
        raise CacheError(f"{where}: `{name}` holds {int((~ok).sum())} row ids absent from `train_ids`")
    return pos


def load_arm(
    paths: list[tuple[int, Path]], *, dataset: str, arm: str, nonfinite: NonFinitePolicy = "drop",
    verify_checksum: bool = True,
) -> ArmLogits:
    """Load the member runs ``(member, path)`` of one arm into an :class:`ArmLogits`.

    Raises
    ------
    CacheError
        On a malformed run, disagreeing ids / labels / class counts, a non-finite member under
        ``nonfinite="raise"``, or when no finite member is left. The message names the file.
    """
    _check_policy(nonfinite)
    if not paths:
        raise CacheError(f"no member runs given for dataset {dataset!r}, arm {arm!r}")
    ref = None
    kept: dict[str, list] = {k: [] for k in ("train", "test", "members", "fit", "val", "sha", "seed")}
    dropped = []
    for member, path in paths:
        rec = read_run(path, verify_checksum=verify_checksum)
        a = rec.arrays
        f = path / ARRAYS_FILE
        o_tr = _sorted_by_id(a["train_ids"], f, "train_ids")
        o_te = _sorted_by_id(a["test_ids"], f, "test_ids")
        cur = {
            "train_ids": a["train_ids"][o_tr], "test_ids": a["test_ids"][o_te],
            "train_labels": a["train_labels"][o_tr], "test_labels": a["test_labels"][o_te],
            "n_classes": a["test_logits"].shape[1],
        }
        if ref is None:
            ref = dict(cur, file=f)
        else:
            if cur["n_classes"] != ref["n_classes"]:
                raise CacheError(f"{f}: {cur['n_classes']} classes, but {ref['file']} has {ref['n_classes']}")
            for split in ("train", "test"):
                if not np.array_equal(cur[f"{split}_ids"], ref[f"{split}_ids"]):
                    raise CacheError(f"{f}: `{split}_ids` differ from those of {ref['file']} (members must share samples)")
                bad = cur[f"{split}_labels"] != ref[f"{split}_labels"]
                if np.any(bad):
                    raise CacheError(
                        f"{f}: `{split}_labels` disagree with {ref['file']} on {int(bad.sum())} sample ids "
                        f"(first id {int(cur[f'{split}_ids'][bad][0])})"
                    )
        train = a["train_logits"][o_tr]
        test = a["test_logits"][o_te]
        if not (np.all(np.isfinite(train)) and np.all(np.isfinite(test))):
            reason = (
                f"non-finite logits (train {int((~np.isfinite(train)).any(1).sum())} rows, "
                f"test {int((~np.isfinite(test)).any(1).sum())} rows)"
            )
            if nonfinite == "raise":
                raise CacheError(f"{f}: {reason}; pass nonfinite='drop' to drop such members")
            dropped.append((member, str(f), reason))
            continue
        kept["train"].append(train)
        kept["test"].append(test)
        kept["members"].append(member)
        kept["fit"].append(_id_positions(ref["train_ids"], a["fit_index"], f, "fit_index"))
        kept["val"].append(_id_positions(ref["train_ids"], a["val_index"], f, "val_index"))
        kept["sha"].append(rec.meta["arrays_sha256"])
        kept["seed"].append(rec.meta.get("seed"))
    if not kept["members"]:
        raise CacheError(
            f"{paths[0][1].parent}: every member of dataset {dataset!r}, arm {arm!r} has non-finite logits "
            f"({[d[1] for d in dropped]})"
        )
    return ArmLogits(
        dataset=dataset, arm=arm,
        train_logits=np.stack(kept["train"]), test_logits=np.stack(kept["test"]),
        train_labels=ref["train_labels"], test_labels=ref["test_labels"],
        train_ids=ref["train_ids"], test_ids=ref["test_ids"],
        members=tuple(kept["members"]), fit_positions=tuple(kept["fit"]), val_positions=tuple(kept["val"]),
        checksums=tuple(kept["sha"]), seeds=tuple(kept["seed"]), dropped=tuple(dropped),
    )


@dataclass(frozen=True)
class CacheStatus:
    """How the analysed runs relate to the preset's grid (recorded in ``provenance.json``,
    ``cache_status.csv``, ``table1.csv`` and the report banner).

    ``state`` is ``"complete"`` (every run of the grid, none stale, nothing unexpected), or
    ``"partial"``, ``"stale"`` or ``"partial+stale"`` when ``allow_partial`` / ``allow_stale``
    let the analysis go on. ``runs`` holds one dict per run of the grid: dataset, arm, member,
    path (relative to the preset's cache folder), state, included, detail.
    """

    state: str
    grid: dict[tuple[str, str], int]
    grid_source: str
    runs: tuple[dict, ...]
    unexpected: tuple[dict, ...] = ()

    def arm_state(self, dataset: str, arm: str) -> str:
        """``complete``, or e.g. ``partial (2 of 3 members); stale (1 run)`` for one arm."""
        rows = [r for r in self.runs if r["dataset"] == dataset and r["arm"] == arm]
        kept = sum(r["included"] for r in rows)
        stale = sum(r["included"] and r["state"] == "stale" for r in rows)
        parts = []
        if kept < len(rows):
            parts.append(f"partial ({kept} of {len(rows)} members)")
        if stale:
            parts.append(f"stale ({stale} run{'s' if stale > 1 else ''})")
        return "; ".join(parts) or "complete"

    def to_dict(self) -> dict:
        return {"state": self.state, "grid_source": self.grid_source,
                "grid": {f"{d}/{a}": n for (d, a), n in sorted(self.grid.items())},
                "excluded": [r for r in self.runs if not r["included"]],
                "stale_included": [r for r in self.runs if r["included"] and r["state"] == "stale"],
                "unexpected": list(self.unexpected)}


def load_preset(
    root: str | os.PathLike, preset: str, *, nonfinite: NonFinitePolicy = "drop", verify_checksum: bool = True,
    allow_partial: bool = False, allow_stale: bool = False,
) -> PresetLogits:
    """Load every run of a preset's grid from the cache root, each checked by identity.

    The grid and each run's state come from :func:`training.cache_state.scan`: a run is what its
    ``run.json`` says (preset, dataset, arm, member, ``spec_hash``), whatever its folder is called.

    Parameters
    ----------
    root : cache root (e.g. ``data/cache``); runs live under ``root/preset/dataset/arm/member-XXX``.
    preset : preset name.
    nonfinite : ``"drop"`` (default: drop members with NaN/inf logits and report them in
        :meth:`PresetLogits.dropped`) or ``"raise"``.
    verify_checksum : check each ``arrays.npz`` against the SHA-256 in its ``run.json``.
    allow_partial : analyse the complete runs when some are missing, incomplete or corrupt, or
        when unexpected entries sit in the cache (all listed in :attr:`PresetLogits.status`).
    allow_stale : include runs made with other settings (another ``spec_hash``).

    Raises
    ------
    FileNotFoundError
        When the preset has no runs, naming the command that makes them.
    CacheError
        When the cache does not hold exactly the grid's runs, complete and current (unless
        allowed), on any malformed or inconsistent run (the message names the file), or arms of
        one dataset that disagree on test ids or labels.
    """
    from training.cache_state import cache_option, repair_command, scan

    _check_policy(nonfinite)
    folder = Path(root) / preset
    sc = scan(root, preset, checksum=verify_checksum) if folder.is_dir() else None
    if sc is None or not sc.runs or all(r.state == "missing" for r in sc.runs) and not sc.unexpected:
        raise FileNotFoundError(
            f"No cached runs for preset {preset!r} under {folder}; make them with "
            + (repair_command(sc) if sc is not None else f"`dynloss train --preset {preset}`")
        )
    broken = sc.with_state("missing", "incomplete", "corrupt")
    stale = sc.with_state("stale")
    verify = f"`dynloss cache verify --preset {preset}{cache_option(root)}` lists every run"
    if (broken or sc.unexpected) and not allow_partial:
        raise CacheError(
            f"{folder}: the cache does not hold the grid of preset {preset!r} ({sc.summary()}; grid from "
            f"{sc.grid_source}): {sc.problems(states=('missing', 'incomplete', 'corrupt'))}. Repair with "
            f"{repair_command(sc, ('missing', 'incomplete', 'corrupt'))} (move unexpected entries out by hand); {verify}; or pass "
            f"--allow-partial to analyse the complete runs only"
        )
    if stale and not allow_stale:
        raise CacheError(
            f"{folder}: {len(stale)} run(s) were made with other settings than preset {preset!r} has now: "
            f"{sc.problems(states=('stale',))}. Retrain them with {repair_command(sc, ('stale',))}, or pass "
            f"--allow-stale to analyse them anyway"
        )
    use = ("complete", "stale") if allow_stale else ("complete",)
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for r in sc.runs:
        if r.state in use:
            groups.setdefault((r.dataset, r.arm), []).append((r.member, r.path))
    if not groups:
        raise CacheError(f"{folder}: no complete run to analyse ({sc.summary()}); make them with "
                         f"{repair_command(sc)}")
    arms: dict[tuple[str, str], ArmLogits] = {}
    runs = []
    for (ds, arm), paths in sorted(groups.items()):
        # checksums were verified by the scan: each file is hashed once
        a = load_arm(paths, dataset=ds, arm=arm, nonfinite=nonfinite, verify_checksum=False)
        arms[(ds, arm)] = a
        sha = dict(zip(a.members, a.checksums))
        for k, p in paths:
            runs.append({"dataset": ds, "arm": arm, "member": k, "path": str(p), "arrays_sha256": sha.get(k),
                         "kept": k in sha})
    by_arm = {key: dict(paths) for key, paths in groups.items()}
    if _registered(preset) is not None:
        _check_known_labels(arms, by_arm, preset, Path(root))
    _check_datasets_agree(arms, by_arm)
    partial = bool(broken or sc.unexpected)
    state = "+".join(x for x, on in (("partial", partial), ("stale", bool(stale))) if on) or "complete"
    status = CacheStatus(
        state=state, grid=sc.grid, grid_source=sc.grid_source,
        runs=tuple({"dataset": r.dataset, "arm": r.arm, "member": r.member,
                    "path": r.path.relative_to(folder).as_posix(), "state": r.state,
                    "included": r.state in use, "detail": r.detail} for r in sc.runs),
        unexpected=tuple({"path": u.path.relative_to(folder).as_posix(), "reason": u.reason} for u in sc.unexpected),
    )
    return PresetLogits(preset=preset, root=str(root), arms=arms, runs=tuple(runs), status=status)


def _check_datasets_agree(arms: dict[tuple[str, str], ArmLogits], paths: dict[tuple[str, str], dict[int, Path]]) -> None:
    first: dict[str, ArmLogits] = {}
    for (ds, arm), a in arms.items():
        r = first.setdefault(ds, a)
        if r is a:
            continue
        where = paths[(ds, arm)][a.members[0]] / ARRAYS_FILE
        if a.n_classes != r.n_classes:
            raise CacheError(f"{where}: {a.n_classes} classes, arm {r.arm!r} has {r.n_classes}")
        if not (np.array_equal(a.test_ids, r.test_ids) and np.array_equal(a.test_labels, r.test_labels)):
            raise CacheError(f"{where}: test ids/labels differ from arm {r.arm!r}; paired comparisons need one test set")
        if not (np.array_equal(a.train_ids, r.train_ids) and np.array_equal(a.train_labels, r.train_labels)):
            raise CacheError(f"{where}: train ids/labels differ from arm {r.arm!r}; every run of a dataset is "
                             f"trained on the one training set")


def _registered(preset: str):
    from training.presets import PRESETS

    return PRESETS.get(preset)


def _forged(path: Path, what: str, preset: str, root: Path) -> CacheError:
    from training.cache_state import cache_option

    train = f"dynloss train --preset {preset}{cache_option(root)}"
    return CacheError(f"{path}: {what} (a forged or foreign run). Repair: delete {path} and rerun `{train}`")


def _check_known_labels(arms: dict[tuple[str, str], ArmLogits], paths: dict[tuple[str, str], dict[int, Path]],
                        preset: str, root: Path) -> None:
    """Every arm of ``digits`` (the dataset whose labels are known without files) holds its
    official ids ``0..n-1`` and their labels, train and test."""
    known: dict[str, np.ndarray] = {}
    for (ds, arm), a in arms.items():
        if ds != "digits":
            continue
        if not known:
            from training.datasets import load_digits_data

            d = load_digits_data()
            known = {"train": d.train_labels, "test": d.test_labels}
        for split, want in known.items():
            ids, labels = getattr(a, f"{split}_ids"), getattr(a, f"{split}_labels")
            if not (np.array_equal(ids, np.arange(want.size)) and np.array_equal(labels, want)):
                n = int((labels != want).sum()) if labels.shape == want.shape else labels.size
                raise _forged(paths[(ds, arm)][a.members[0]], f"`{split}_ids`/`{split}_labels` are not those of "
                              f"dataset 'digits' ({n} of {want.size} labels differ)", preset, root)
