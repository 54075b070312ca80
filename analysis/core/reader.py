"""Cache reader: a preset's runs as aligned ``(n_members, n_samples, n_classes)`` arrays.

Built on :mod:`training.cache_format` (``read_run`` validates each run's files, dtypes, shapes and
checksum). On top of it, this module

- aligns every member by sample id (rows sorted by ``train_ids`` / ``test_ids``), never by order;
- checks that all members of an arm, and all arms of a dataset, hold the same ids, the same labels
  for each id and the same class count;
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
    RUN_FILE,
    CacheError,
    iter_run_dirs,
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


def load_preset(
    root: str | os.PathLike, preset: str, *, nonfinite: NonFinitePolicy = "drop", verify_checksum: bool = True,
) -> PresetLogits:
    """Load every complete (dataset, arm) of a preset from the cache root.

    Parameters
    ----------
    root : cache root (e.g. ``data/cache``); runs live under ``root/preset/dataset/arm/member-XXX``.
    preset : preset name.
    nonfinite : ``"drop"`` (default: drop members with NaN/inf logits and report them in
        :meth:`PresetLogits.dropped`) or ``"raise"``.
    verify_checksum : check each ``arrays.npz`` against the SHA-256 in its ``run.json``.

    Raises
    ------
    FileNotFoundError
        When the preset has no runs, naming the command that makes them.
    CacheError
        On any malformed or inconsistent run (the message names the file), an incomplete run
        (no ``run.json``), or arms of one dataset that disagree on test ids or labels.
    """
    _check_policy(nonfinite)
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = {}
    for ds, arm, k, p in iter_run_dirs(root, preset):
        groups.setdefault((ds, arm), []).append((k, p))
    if not groups:
        raise FileNotFoundError(
            f"No cached runs for preset {preset!r} under {Path(root) / preset}; "
            f"make them with `dynloss train --preset {preset}`"
        )
    arms: dict[tuple[str, str], ArmLogits] = {}
    runs = []
    for (ds, arm), paths in sorted(groups.items()):
        for k, p in paths:
            if not (p / RUN_FILE).is_file():
                raise CacheError(
                    f"{p / RUN_FILE}: missing; the run is incomplete (finish it with `dynloss train --preset {preset}`)"
                )
        a = load_arm(paths, dataset=ds, arm=arm, nonfinite=nonfinite, verify_checksum=verify_checksum)
        arms[(ds, arm)] = a
        sha = dict(zip(a.members, a.checksums))
        for k, p in paths:
            runs.append({"dataset": ds, "arm": arm, "member": k, "path": str(p), "arrays_sha256": sha.get(k),
                         "kept": k in sha})
    _check_datasets_agree(arms, {key: dict(paths) for key, paths in groups.items()})
    return PresetLogits(preset=preset, root=str(root), arms=arms, runs=tuple(runs))


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
