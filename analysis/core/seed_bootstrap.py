"""Two-level bootstrap: uncertainty over training randomness *and* test samples.

A test-only bootstrap treats the trained members as fixed; a rerun with other training seeds
would give other members. Here each resample draws, with replacement,

1. the **members** of the ensemble (indices ``0..M-1``; a member drawn twice counts twice), and
2. the **test samples** (a multinomial count per sample),

re-fuses the drawn members and scores the drawn samples. The member draw is shared across arms
(member ``k`` of every arm was fitted on the same training subset, so arms stay paired), and so is
the sample draw: differences between arms get paired intervals.

Only static fusions can be re-fused this way (Average, ProbAverage, Vote, and the single-member
mean); a learned super-learner would have to be refitted on every resample.

:func:`resampled_fusion_accuracies` is the building block of Table 1's seed intervals: the member
and sample counts come from the caller (Table 1 draws each arm's members independently and reuses
its test-only bootstrap's sample counts), and samples on which every member predicts the same
class (with a strict margin) are scored once: any weighting of such members predicts that class.

The weighted forms below equal fusing the materialised resample (members repeated by their
counts): the test compares them with :mod:`analysis.core.fusion` on explicit copies.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from analysis.core.metrics import softmax

#: fusions this bootstrap can re-fuse on resampled members
SEED_FUSIONS: tuple[str, ...] = ("Average", "ProbAverage", "Vote", "Single")


def weighted_predictions(logits: np.ndarray, weights: np.ndarray, fusion: str) -> np.ndarray:
    """Predictions ``(B, N)`` of ``fusion`` over members weighted by ``weights`` ``(B, M)`` (member
    counts of each resample); ``logits`` is ``(M, N, C)``. ``Single`` is not a fusion: use
    :func:`single_member_correct`."""
    logits = np.asarray(logits)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[1] != logits.shape[0]:
        raise ValueError(f"Expected `weights` of shape (B, {logits.shape[0]}), got {w.shape}")
    w = w / w.sum(axis=1, keepdims=True)
    m, n, c = logits.shape

    def mix(x: np.ndarray) -> np.ndarray:  # weighted mean over members, as one matrix product
        return (w @ x.reshape(m, n * c).astype(np.float64, copy=False)).reshape(-1, n, c)

    if fusion == "Average":
        return mix(logits).argmax(axis=2)
    if fusion == "ProbAverage":
        return mix(softmax(logits)).argmax(axis=2)
    if fusion == "Vote":
        votes = mix(np.eye(c)[logits.argmax(axis=2)])  # (B, N, C) weighted vote shares
        mean = mix(logits)
        tied = np.isclose(votes, votes.max(axis=2, keepdims=True), rtol=0, atol=1e-9)
        return np.where(tied, mean, -np.inf).argmax(axis=2)
    raise ValueError(f"Expected `fusion` in {SEED_FUSIONS[:-1]}, got {fusion!r}")


def unanimous_classes(logits: np.ndarray, fusion: str) -> np.ndarray:
    """Per sample, the class every weighting of the members predicts under ``fusion``, or -1.

    A sample is settled when every member ranks one class first with a strict margin (in the score
    the fusion averages: logits for Average, probabilities for ProbAverage; any top vote for Vote):
    a convex combination of such members has the same argmax, so resampling members cannot change
    the fused prediction there. ``logits`` is ``(M, N, C)``; returns int64 ``(N,)``.
    """
    x = np.asarray(logits, dtype=np.float64)
    top = x.argmax(axis=2)  # (M, N)
    same = (top == top[0]).all(axis=0)
    if fusion in ("Average", "ProbAverage"):
        score = softmax(x) if fusion == "ProbAverage" else x
        part = np.sort(score, axis=2)
        first, second = part[:, :, -1], part[:, :, -2]
        tol = 1e-12 if fusion == "ProbAverage" else 1e-9 * np.maximum(1.0, np.abs(first))
        same &= (first - second > tol).all(axis=0)
    elif fusion != "Vote":
        raise ValueError(f"Expected `fusion` in {SEED_FUSIONS[:-1]}, got {fusion!r}")
    return np.where(same, top[0], -1)


def resampled_fusion_accuracies(
    logits: np.ndarray, labels: np.ndarray, *, fusion: str, member_counts: np.ndarray, sample_counts: np.ndarray,
    chunk: int = 256,
) -> np.ndarray:
    """Accuracy of ``fusion`` on each resample: members weighted by ``member_counts`` ``(B, M)``,
    test samples by ``sample_counts`` ``(B, N)`` (both non-negative counts, drawn by the caller).

    Equals scoring :func:`weighted_predictions` on every sample; samples settled by
    :func:`unanimous_classes` are scored once, so the work grows with the contested samples only.
    Returns float64 ``(B,)``.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    w = np.asarray(member_counts)
    s = np.asarray(sample_counts, dtype=np.float64)
    m, n, _ = logits.shape
    if w.ndim != 2 or w.shape[1] != m or s.ndim != 2 or s.shape != (w.shape[0], n) or labels.shape != (n,):
        raise ValueError(f"Expected `member_counts` (B, {m}), `sample_counts` (B, {n}) and `labels` ({n},), got "
                         f"{w.shape}, {s.shape} and {labels.shape}")
    settled = unanimous_classes(logits, fusion)
    contested = np.flatnonzero(settled < 0)
    acc = s @ (settled == labels).astype(np.float64)  # settled samples: the same prediction in every resample
    if contested.size:
        x, y = logits[:, contested], labels[contested]
        for start in range(0, w.shape[0], chunk):
            rows = slice(start, start + chunk)
            correct = weighted_predictions(x, w[rows], fusion) == y
            acc[rows] += np.einsum("bn,bn->b", correct, s[rows, contested])
    return acc / s.sum(axis=1)


def member_count_draws(n_members: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Counts ``(n_resamples, n_members)`` of members drawn with replacement (``n_members`` draws per
    resample, one row each)."""
    idx = rng.integers(0, n_members, size=(n_resamples, n_members))
    idx += (np.arange(n_resamples) * n_members)[:, None]
    return np.bincount(idx.ravel(), minlength=n_resamples * n_members).reshape(n_resamples, n_members)


def _draws(children: list[np.random.Generator], n_members: int, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Member counts ``(b, M)`` and sample counts ``(b, N)``, one child generator per resample (so
    the draws do not depend on the chunk size): members first, then samples."""
    members = np.empty((len(children), n_members), dtype=np.int64)
    samples = np.empty((len(children), n_samples), dtype=np.int64)
    for i, g in enumerate(children):
        members[i] = np.bincount(g.integers(0, n_members, n_members), minlength=n_members)
        samples[i] = np.bincount(g.integers(0, n_samples, n_samples), minlength=n_samples)
    return members, samples


def two_level_bootstrap(
    logits: Mapping[str, np.ndarray], labels: np.ndarray, *, fusion: str, rng: np.random.Generator,
    n_resamples: int = 2_000, chunk: int = 50,
) -> dict[str, np.ndarray]:
    """Accuracy of ``fusion`` for every arm on ``n_resamples`` joint (member, sample) resamples.

    Parameters
    ----------
    logits : arm -> test logits ``(M, N, C)``; every arm has the same ``M`` (paired members).
    labels : ``(N,)`` test labels shared by the arms.
    fusion : one of :data:`SEED_FUSIONS` (``Single`` = mean accuracy of the drawn members).
    rng : generator of both draws (passed explicitly); resample ``i`` draws from ``rng.spawn(n)[i]``,
        the same for every arm (paired) and whatever ``chunk`` is.
    n_resamples, chunk : resamples in all, and per block (memory ~ ``chunk × N × C`` floats).

    Returns
    -------
    arm -> float64 array ``(n_resamples,)`` of resampled accuracies.
    """
    if fusion not in SEED_FUSIONS:
        raise ValueError(f"Expected `fusion` in {SEED_FUSIONS}, got {fusion!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"Expected `rng` to be a numpy.random.Generator, got {type(rng).__name__}")
    if n_resamples < 1 or chunk < 1:
        raise ValueError(f"Expected `n_resamples` and `chunk` >= 1, got {n_resamples} and {chunk}")
    labels = np.asarray(labels)
    shapes = {a: np.shape(x) for a, x in logits.items()}
    if not shapes:
        raise ValueError("Expected at least one arm in `logits`")
    m = {s[0] for s in shapes.values()}
    if len(m) != 1 or any(len(s) != 3 or s[1] != labels.shape[0] for s in shapes.values()):
        raise ValueError(f"Expected every arm's logits as (M, {labels.shape[0]}, C) with one M, got {shapes}")
    n_members, n_samples = m.pop(), labels.shape[0]
    member_correct = {a: (np.asarray(x).argmax(axis=2) == labels).astype(np.float64) for a, x in logits.items()}
    out = {a: np.empty(n_resamples) for a in logits}
    children = rng.spawn(n_resamples)
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        members, samples = _draws(children[start:start + b], n_members, n_samples)
        samples = samples.astype(np.float64)
        for arm, x in logits.items():
            if fusion == "Single":
                # mean over drawn members of each member's accuracy on the drawn samples
                per_member = member_correct[arm] @ samples.T / n_samples  # (M, b)
                acc = (members * per_member.T).sum(axis=1) / n_members
            else:
                correct = weighted_predictions(x, members, fusion) == labels  # (b, N)
                acc = np.einsum("bn,bn->b", correct, samples) / n_samples
            out[arm][start:start + b] = acc
    return out
