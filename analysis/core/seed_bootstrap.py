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
