"""The paper's base-learner splits: stratified k-fold, bootstrap, then an 80/20 cut.

For member ``i`` of ``k`` (the paper: k = 50):

1. ``fold`` = the training part of fold ``i`` of a stratified k-fold partition of the official
   training set (``(k-1)/k`` of it: 98 % for k = 50). The partition is shared by all members.
2. ``base`` = a bootstrap resample of ``fold`` of the same size (with replacement).
3. ``fit`` = the first 80 % of ``base`` (with its duplicates: a sample drawn twice is fitted
   twice); ``val`` = the last 20 %, an internal validation set that may overlap ``fit``.

The test set is the official test split. The split depends only on (root seed, dataset, member),
never on the arm, so every arm of member ``i`` sees the same training subset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FIT_FRACTION = 0.8


@dataclass(frozen=True)
class Split:
    """Rows of the official training set used by one member.

    ``fit_index`` (n_fit,) int64 and ``val_index`` (n_val,) int64 keep the bootstrap duplicates.
    """

    fit_index: np.ndarray
    val_index: np.ndarray


def _check_labels(labels: np.ndarray, k: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"Expected `labels` of shape (n_samples,), got shape {labels.shape}")
    if k < 2:
        raise ValueError(f"Expected `k` >= 2, got {k}")
    counts = np.bincount(labels.astype(np.int64)) if labels.size else np.zeros(0, int)
    counts = counts[counts > 0]
    if labels.size < k or (counts.size and counts.min() < k):
        raise ValueError(
            f"Expected every class to hold at least k={k} samples for a stratified {k}-fold, "
            f"got {labels.size} samples with smallest class count {counts.min() if counts.size else 0}"
        )
    return labels


def fold_train_indices(labels: np.ndarray, *, k: int, fold: int, seed: int) -> np.ndarray:
    """Training part (sorted row indices) of fold ``fold`` of a seeded stratified ``k``-fold.

    Parameters
    ----------
    labels : (n_samples,) int array of class labels of the official training set.
    k : number of folds (the paper: 50).
    fold : which fold, in ``[0, k)``.
    seed : seed of the shuffled partition; the same for every member of a dataset.

    >>> y = np.repeat(np.arange(2), 10)
    >>> fold_train_indices(y, k=5, fold=0, seed=0).size
    16
    """
    labels = _check_labels(labels, k)
    if not 0 <= fold < k:
        raise ValueError(f"Expected `fold` in [0, {k}), got {fold}")
    # only this function needs scikit-learn
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=int(seed) % (2**32))
    for i, (train, _test) in enumerate(skf.split(np.zeros(labels.size), labels)):
        if i == fold:
            return np.sort(train).astype(np.int64)
    raise AssertionError("unreachable")  # pragma: no cover


def member_split(
    labels: np.ndarray, *, k: int, member: int, partition_seed: int, bootstrap_seed: int,
    fit_fraction: float = FIT_FRACTION,
) -> Split:
    """The paper's split of member ``member``: k-fold part, bootstrap, first 80 % fits.

    Parameters
    ----------
    labels : (n_samples,) class labels of the official training set.
    k : number of folds; members beyond ``k`` reuse fold ``member % k`` with a new bootstrap.
    member : member number (>= 0).
    partition_seed : seed of the stratified k-fold partition (per dataset).
    bootstrap_seed : seed of this member's bootstrap resample.
    fit_fraction : share of the resample used to fit (0.8 in the paper).

    Returns
    -------
    Split with ``fit_index`` of ``round(fit_fraction * m)`` rows and ``val_index`` of the rest,
    where ``m`` is the size of the fold's training part.

    >>> y = np.repeat(np.arange(3), 20)
    >>> s = member_split(y, k=5, member=1, partition_seed=0, bootstrap_seed=1)
    >>> s.fit_index.size + s.val_index.size
    48
    """
    if member < 0:
        raise ValueError(f"Expected `member` >= 0, got {member}")
    if not 0.0 < fit_fraction <= 1.0:
        raise ValueError(f"Expected `fit_fraction` in (0, 1], got {fit_fraction}")
    fold = fold_train_indices(labels, k=k, fold=member % k, seed=partition_seed)
    rng = np.random.default_rng(bootstrap_seed)
    base = fold[rng.integers(0, fold.size, size=fold.size)]
    n_fit = int(round(fit_fraction * base.size))
    return Split(fit_index=base[:n_fit].astype(np.int64), val_index=base[n_fit:].astype(np.int64))


def split_stats(fit_index: np.ndarray, val_index: np.ndarray, n_train: int) -> dict[str, float]:
    """Measure a split: distinct-sample fractions and the fit/validation overlap.

    Parameters
    ----------
    fit_index, val_index : row indices (with duplicates) of the official training set.
    n_train : size of the official training set.

    Returns
    -------
    dict with ``fit_distinct_fraction`` (distinct fit rows / n_train, the quantity the paper puts
    at 49.4 %), ``base_distinct_fraction`` (distinct rows of fit ∪ val / n_train),
    ``val_distinct_fraction``, ``val_overlap_fraction`` (share of distinct validation rows that
    are also fitted), ``fit_duplicate_fraction`` (share of fit rows that repeat an earlier row).

    >>> split_stats(np.array([0, 0, 1]), np.array([1, 2]), 4)["fit_distinct_fraction"]
    0.5
    """
    fit = np.asarray(fit_index)
    val = np.asarray(val_index)
    if n_train <= 0:
        raise ValueError(f"Expected `n_train` > 0, got {n_train}")
    fit_u = np.unique(fit)
    val_u = np.unique(val)
    overlap = np.intersect1d(fit_u, val_u, assume_unique=True)
    return {
        "fit_distinct_fraction": fit_u.size / n_train,
        "base_distinct_fraction": np.union1d(fit_u, val_u).size / n_train,
        "val_distinct_fraction": val_u.size / n_train,
        "val_overlap_fraction": (overlap.size / val_u.size) if val_u.size else 0.0,
        "fit_duplicate_fraction": (1.0 - fit_u.size / fit.size) if fit.size else 0.0,
    }


def expected_fit_distinct_fraction(n_train: int, *, k: int = 50, fit_fraction: float = FIT_FRACTION) -> float:
    """Theory: expected distinct fraction of the fitted part of a member's split.

    The fold part has ``m = n (k-1)/k`` distinct rows; the first ``fit_fraction * m`` draws of a
    size-``m`` bootstrap hit each of them with probability ``1 - (1 - 1/m)^(fit_fraction m)``.
    For large ``n`` this is ``(k-1)/k * (1 - exp(-fit_fraction))`` = 0.98 · 0.551 ≈ 0.540 for
    k = 50, not the 0.80 · 0.98 · 0.63 = 0.494 obtained by taking 80 % after deduplication.

    >>> round(expected_fit_distinct_fraction(50_000), 3)
    0.54
    """
    m = n_train * (k - 1) / k
    draws = fit_fraction * m
    return (m / n_train) * (1.0 - math.exp(draws * math.log1p(-1.0 / m)))
