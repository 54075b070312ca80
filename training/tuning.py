"""Each loss at its own learning rate: the lr of some arms chosen on held-out training rows.

The paper grid-searched lr over {0.001, 0.01, 0.05, 0.1} (and weight decay) for cross-entropy
alone and trained the dynamic loss at a tenth of the chosen lr, untuned. A fair comparison gives
each loss its own best rate. For every arm of :attr:`training.presets.Preset.tune` and every lr of
``Preset.lr_grid``, ``Preset.tuning_members`` members of the arm at that lr (:func:`training.arms.at_lr`)
are trained as ordinary runs of the preset, into their own cache folder
``<cache root>/_tuning/<preset>/`` (not part of the preset's grid; the ``_`` keeps it out of every
listing of presets), except the grid points that are arms of the preset anyway: those are scored
on the preset's own first members (the same runs: same spec, same seeds), trained first. Each run is scored by its accuracy on the rows of the official training set
it was **not** fitted on (its out-of-bag rows: about 45 % of the training set under the paper's
bootstrap split), and the lr of the best mean score is chosen per dataset (ties: the smaller lr).
The test set enters nowhere: :func:`held_out_accuracy` is given the training labels and the fit
rows only (tests permute the test labels and get the same choice).

The choice is written to ``<cache root>/_tuning/<preset>.selection.json`` (atomically, with the
spec hash of every run it rests on) and read back, checked, by :func:`read_selection`; ``dynloss
train`` then trains the chosen arms with the preset's full membership beside its own arms.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training import cache_format
from training.arms import at_lr

TUNING_DIR = "_tuning"
SELECTION_VERSION = 1


def tuning_root(cache_root: str | os.PathLike) -> Path:
    """Cache root of the tuning runs (``<cache root>/_tuning``)."""
    return Path(cache_root) / TUNING_DIR


def selection_file(cache_root: str | os.PathLike, preset: str) -> Path:
    return tuning_root(cache_root) / f"{preset}.selection.json"


def tuning_arms(preset: Any) -> tuple[str, ...]:
    """Every arm the tuning of ``preset`` trains: each tuned arm at each lr of its grid.

    >>> from training.presets import get_preset
    >>> tuning_arms(get_preset("fmnist-mini"))[:4]
    ('ce-lr0.001', 'ce-lr0.01', 'ce-lr0.05', 'ce')
    """
    return tuple(dict.fromkeys(at_lr(a, lr) for a in preset.tune for lr in preset.lr_grid))


def held_out_accuracy(train_logits: np.ndarray, train_labels: np.ndarray, fit_index: np.ndarray) -> tuple[float, int]:
    """Accuracy of one run on the training rows it was not fitted on, and their number.

    >>> z = np.eye(3)[[0, 1, 2, 0]]; y = np.array([0, 1, 0, 0])
    >>> held_out_accuracy(z, y, np.array([0, 0, 1]))
    (0.5, 2)
    """
    train_logits, train_labels = np.asarray(train_logits), np.asarray(train_labels)
    if train_logits.ndim != 2 or train_labels.shape != train_logits.shape[:1]:
        raise ValueError(f"Expected train_logits (n, classes) and train_labels (n,), got shapes "
                         f"{train_logits.shape} and {train_labels.shape}")
    held = np.ones(train_labels.size, dtype=bool)
    held[np.asarray(fit_index, dtype=np.int64)] = False
    n = int(held.sum())
    if n == 0:
        raise ValueError("The run was fitted on every training row: no held-out row to score it on")
    return float((train_logits[held].argmax(1) == train_labels[held]).mean()), n


@dataclass(frozen=True)
class Choice:
    """The lr chosen for one tuned arm on one dataset, and the scores it was chosen from."""

    dataset: str
    base: str  # the tuned arm as the preset names it (e.g. "ce", "dyn-0.7")
    chosen: str  # the arm at the chosen lr
    lr: float
    scores: tuple[tuple[float, str, tuple[float, ...], int], ...]  # (lr, arm, per-member held-out accuracy, rows)


def choose(scores: dict[float, list[float]]) -> float:
    """The lr of the best mean score; ties go to the smaller lr.

    >>> choose({0.1: [0.8, 0.9], 0.01: [0.85, 0.85], 0.001: [0.7, 0.7]})
    0.01
    """
    if not scores or any(not v for v in scores.values()):
        raise ValueError(f"Expected a score list per learning rate, got {scores}")
    best = max(float(np.mean(v)) for v in scores.values())
    return min(lr for lr, v in scores.items() if float(np.mean(v)) == best)


def in_cache(preset: Any, members: int | None = None) -> tuple[str, ...]:
    """The grid points the preset trains anyway (its own arms, with at least ``tuning_members``
    members): their tuning runs are its members 0.. in its cache, not trained twice.

    >>> from training.presets import get_preset
    >>> in_cache(get_preset("fmnist-mini"))
    ('ce-lr0.01', 'ce', 'dyn-0.7', 'dyn-0.7-lr0.1')
    """
    n = preset.members if members is None else members
    return tuple(a for a in tuning_arms(preset) if a in preset.arms and n >= preset.tuning_members)


def select(preset: Any, cache_root: str | os.PathLike, *, members: int | None = None,
           datasets: tuple[str, ...] | None = None, from_cache: tuple[str, ...] = ()) -> list[Choice]:
    """Score the tuning runs of ``preset`` (complete, checksummed, of the expected spec) and choose;
    the runs of the arms in ``from_cache`` are read from the preset's cache (``<cache root>/<preset>``),
    the others from the tuning folder.

    Raises
    ------
    training.cache_format.CacheError
        When a tuning run is missing, damaged or not the run its spec says (the message names it).
    """
    from training.grid import make_run_spec

    members = preset.tuning_members if members is None else members
    root = tuning_root(cache_root)
    settings = preset.settings()
    out = []
    for ds in datasets or preset.datasets:
        for base in preset.tune:
            rows = []
            per_lr: dict[float, list[float]] = {}
            for lr in preset.lr_grid:
                arm = at_lr(base, lr)
                accs, n_rows = [], 0
                for m in range(members):
                    spec = make_run_spec(preset.name, ds, arm, m, root_seed=preset.root_seed, settings=settings)
                    path = cache_format.run_dir(cache_root if arm in from_cache else root, preset.name, ds, arm, m)
                    rec = cache_format.read_run(path)
                    if rec.meta.get("spec_hash") != spec.spec_hash():
                        raise cache_format.CacheError(
                            f"{path}: not the tuning run of {preset.name}/{ds}/{arm} member {m} (another spec "
                            f"hash); rerun `dynloss train --preset {preset.name}`")
                    z = rec.arrays
                    acc, n_rows = held_out_accuracy(z["train_logits"], z["train_labels"], z["fit_index"])
                    accs.append(acc if math.isfinite(acc) else 0.0)
                per_lr[lr] = accs
                rows.append((float(lr), arm, tuple(accs), n_rows))
            lr = choose(per_lr)
            out.append(Choice(ds, base, at_lr(base, lr), float(lr), tuple(rows)))
    return out


def chosen_arms(choices: list[Choice]) -> tuple[str, ...]:
    """The chosen arms, each once, in the order of the choices."""
    return tuple(dict.fromkeys(c.chosen for c in choices))


def to_record(preset: Any, choices: list[Choice], *, members: int) -> dict[str, Any]:
    return {
        "selection_version": SELECTION_VERSION, "preset": preset.name, "tune": list(preset.tune),
        "lr_grid": list(preset.lr_grid), "members": members, "score": "held-out training accuracy (out-of-bag rows)",
        "choices": [{"dataset": c.dataset, "base": c.base, "chosen": c.chosen, "lr": c.lr,
                     "scores": [{"lr": lr, "arm": arm, "held_out_accuracy": list(accs), "held_out_rows": n}
                                for lr, arm, accs, n in c.scores]} for c in choices],
    }


def write_selection(preset: Any, choices: list[Choice], cache_root: str | os.PathLike, *, members: int) -> Path:
    path = selection_file(cache_root, preset.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    cache_format.atomic_write_json(path, to_record(preset, choices, members=members))
    return path


def read_selection(cache_root: str | os.PathLike, preset: Any) -> list[Choice] | None:
    """The recorded choice of ``preset``'s tuning (None when the preset tunes nothing or none is
    recorded), checked against the preset: its arms, grid and datasets, and that each choice is the
    best recorded score.

    Raises
    ------
    training.cache_format.CacheError
        When the record is not this preset's selection or contradicts itself (the message names it).
    """
    path = selection_file(cache_root, preset.name)
    if not preset.tune or not path.exists():
        return None
    try:
        rec = cache_format.read_json(path, what="tuning selection")
    except cache_format.JsonFileError as e:
        raise cache_format.CacheError(str(e)) from None

    def bad(why: str) -> cache_format.CacheError:
        return cache_format.CacheError(f"{path}: {why}; delete it and rerun `dynloss train --preset {preset.name}`")

    if not isinstance(rec, dict) or rec.get("selection_version") != SELECTION_VERSION:
        raise bad(f"not a tuning selection of version {SELECTION_VERSION}")
    if rec.get("preset") != preset.name or rec.get("tune") != list(preset.tune) \
            or [float(x) for x in rec.get("lr_grid", [])] != [float(x) for x in preset.lr_grid]:
        raise bad(f"records preset {rec.get('preset')!r}, arms {rec.get('tune')} and grid {rec.get('lr_grid')}, "
                  f"not those of preset {preset.name!r} ({list(preset.tune)}, {list(preset.lr_grid)})")
    choices = []
    try:
        for c in rec["choices"]:
            scores = tuple((float(s["lr"]), str(s["arm"]), tuple(float(a) for a in s["held_out_accuracy"]),
                            int(s["held_out_rows"])) for s in c["scores"])
            per_lr = {lr: list(accs) for lr, _, accs, _ in scores}
            if [lr for lr, *_ in scores] != [float(x) for x in preset.lr_grid] or \
                    any(arm != at_lr(c["base"], lr) for lr, arm, *_ in scores):
                raise bad(f"the scores of {c['dataset']}/{c['base']} are not those of the grid {list(preset.lr_grid)}")
            if float(c["lr"]) != choose(per_lr) or c["chosen"] != at_lr(c["base"], float(c["lr"])):
                raise bad(f"the choice {c['chosen']} for {c['dataset']}/{c['base']} is not the best recorded score")
            choices.append(Choice(str(c["dataset"]), str(c["base"]), str(c["chosen"]), float(c["lr"]), scores))
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, cache_format.CacheError):
            raise
        raise bad(f"malformed ({type(e).__name__}: {e})") from None
    got = [(c.dataset, c.base) for c in choices]
    datasets = dict.fromkeys(c.dataset for c in choices)
    if not choices or set(datasets) - set(preset.datasets) or sorted(got) != sorted(
            (ds, b) for ds in datasets for b in preset.tune):
        raise bad(f"holds choices for {sorted(got)}, expected each of {list(preset.tune)} once per dataset of "
                  f"{list(preset.datasets)}")
    return choices


def tune_preset(preset: Any, *, cache_root: str | os.PathLike, datasets: tuple[str, ...] | None = None,
                members: int | None = None, **train_options: Any) -> list[Choice]:
    """Train the tuning runs of ``preset`` (missing or broken ones only, as ``dynloss train`` does:
    :func:`training.executors.train_preset` with ``train_options``), choose each tuned arm's lr and
    record the choice (:func:`write_selection`). Returns the choices.

    The grid points that are arms of the preset (:func:`in_cache`) are trained as the preset's own
    runs first (``members`` per arm, default the preset's) and scored on their first
    ``tuning_members`` members; the others are trained into the tuning folder."""
    from training.executors import train_preset

    n = preset.tuning_members
    shared = in_cache(preset, members)
    if shared:
        train_preset(preset, cache_root=cache_root, members=members, datasets=datasets, **train_options)
    own = tuple(a for a in tuning_arms(preset) if a not in shared)
    if own:
        train_preset(preset, cache_root=tuning_root(cache_root), members=n, arms=own, datasets=datasets,
                     **train_options)
    choices = select(preset, cache_root, members=n, datasets=datasets, from_cache=shared)
    write_selection(preset, choices, cache_root, members=n)
    return choices


def describe(choices: list[Choice]) -> str:
    """One line per choice: the arm, the scores by lr and the chosen lr.

    >>> print(describe([Choice("d", "ce", "ce-lr0.01", 0.01, ((0.01, "ce-lr0.01", (0.9,), 10), (0.1, "ce", (0.8,), 10)))]))
    d/ce: lr 0.01 0.9000, lr 0.1 0.8000 -> lr 0.01 (ce-lr0.01)
    """
    return "\n".join(f"{c.dataset}/{c.base}: " + ", ".join(f"lr {lr:g} {np.mean(a):.4f}" for lr, _, a, _ in c.scores)
                     + f" -> lr {c.lr:g} ({c.chosen})" for c in choices)
