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
its test-only bootstrap's sample counts). It fuses each sample over the classes some weighting of
the members could predict (:func:`candidate_classes`), and scores once the samples on which every
member ranks the same class first: any weighting of such members predicts that class.

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


def _tolerance(score: np.ndarray, fusion: str) -> np.ndarray:
    """A margin a weighted mean cannot lose to rounding (scores float32 or float64, sums in float64),
    per member and sample, shape ``(M, n, 1)``."""
    scale = 1.0 if fusion == "ProbAverage" else np.maximum(1.0, np.abs(score).max(axis=-1, keepdims=True))
    return np.broadcast_to(1e-9 * scale, (*score.shape[:-1], 1))


def candidate_classes(logits: np.ndarray, fusion: str) -> np.ndarray:
    """Per sample, the classes that some weighting of the members can predict under ``fusion``
    (a superset; bool ``(N, C)``).

    - Average / ProbAverage: a class is ruled out when another class beats it in every member, by
      a margin rounding cannot close (in the score the fusion averages: logits, or probabilities):
      then it loses in every weighted mean. A sample whose members all rank one class first keeps
      that class alone (it is *settled*: resampling members cannot change its prediction).
    - Vote: the classes some member votes for (a class without votes never wins).

    ``logits`` is ``(M, N, C)``.
    """
    if fusion not in ("Average", "ProbAverage", "Vote"):
        raise ValueError(f"Expected `fusion` in {SEED_FUSIONS[:-1]}, got {fusion!r}")
    x = np.asarray(logits, dtype=np.float64)
    m, n, c = x.shape
    top = x.argmax(axis=2)  # (M, N)
    voted = np.zeros((n, c), dtype=bool)
    voted[np.tile(np.arange(n), m), top.ravel()] = True
    if fusion == "Vote":
        return voted
    score = softmax(x) if fusion == "ProbAverage" else x
    out = voted.copy()
    open_ = np.flatnonzero(voted.sum(axis=1) > 1)
    one = np.flatnonzero(voted.sum(axis=1) == 1)
    if one.size:  # one class first everywhere: settled when every member ranks it first strictly
        sc = score[:, one]
        part = np.sort(sc, axis=2)
        strict = (part[:, :, -1:] - part[:, :, -2:-1] > _tolerance(sc, fusion)).all(axis=0)[:, 0]
        open_ = np.union1d(open_, one[~strict])
    if open_.size:  # dominance: class k beats class j in every member (blocks bound the memory)
        for b in range(0, open_.size, 2048):
            rows = open_[b:b + 2048]
            sc = score[:, rows]  # (M, n, C)
            tol = _tolerance(sc, fusion)[..., None]
            beats = ((sc[:, :, None, :] - sc[:, :, :, None]) > tol).all(axis=0)  # [n, j, k]: k beats j
            out[rows] = ~beats.any(axis=2)
    return out


def resampled_fusion_accuracies(
    logits: np.ndarray, labels: np.ndarray, *, fusion: str, member_counts: np.ndarray, sample_counts: np.ndarray,
    chunk: int = 512,
) -> np.ndarray:
    """Accuracy of ``fusion`` on each resample: members weighted by ``member_counts`` ``(B, M)``,
    test samples by ``sample_counts`` ``(B, N)`` (both non-negative integer counts, drawn by the
    caller; any integer dtype, e.g. uint8 to keep many resamples small).

    Equals scoring :func:`weighted_predictions` on every sample (the tests check it), with less work:
    samples with one candidate class (:func:`candidate_classes`) are scored once, and the others
    are fused over their candidate classes only (grouped by how many they have). Returns float64
    ``(B,)``.
    """
    logits = np.asarray(logits)
    labels = np.asarray(labels)
    w = np.asarray(member_counts, dtype=np.float64)
    s = np.asarray(sample_counts)
    m, n, _ = logits.shape
    if w.ndim != 2 or w.shape[1] != m or s.ndim != 2 or s.shape != (w.shape[0], n) or labels.shape != (n,):
        raise ValueError(f"Expected `member_counts` (B, {m}), `sample_counts` (B, {n}) and `labels` ({n},), got "
                         f"{w.shape}, {s.shape} and {labels.shape}")
    cand = candidate_classes(logits, fusion)
    k = cand.sum(axis=1)
    settled_correct = ((k == 1) & (cand.argmax(axis=1) == labels)).astype(np.float32)
    x = np.asarray(logits, dtype=np.float64)
    score = softmax(x) if fusion == "ProbAverage" else x
    wn = w / w.sum(axis=1, keepdims=True)
    groups = []  # per number of candidates K: samples, fused scores' and votes' matrices (K, n_k), label hits
    for size in np.unique(k[k > 1]):
        idx = np.flatnonzero(k == size)
        cls = np.nonzero(cand[idx])[1].reshape(idx.size, size).T  # (K, n_k), ascending class per column
        onehot = None
        if fusion == "Vote":
            onehot = (x.argmax(axis=2)[:, None, idx] == cls[None]).reshape(m, -1).astype(np.float64)
        groups.append((idx, score[:, idx[None], cls].reshape(m, -1), onehot,
                       (cls == labels[idx][None]).astype(np.float32)))
    acc = np.empty(w.shape[0])
    for start in range(0, w.shape[0], chunk):
        rows = slice(start, start + chunk)
        sc = s[rows].astype(np.float32)  # integer sums below 2**24: exact
        total = sc @ settled_correct  # settled samples: one prediction in every resample
        for idx, g, onehot, hit in groups:
            mean = (wn[rows] @ g).reshape(-1, *hit.shape)  # (b, K, n_k)
            if onehot is not None:  # member counts are integers: vote totals and their ties are exact
                votes = (w[rows] @ onehot).reshape(mean.shape)
                mean = np.where(votes == votes.max(axis=1, keepdims=True), mean, -np.inf)
            # argmax over the K candidates, first maximum kept (ties go to the lower class), as
            # comparisons of contiguous slices (numpy's argmax over a short axis is slow)
            best, correct = mean[:, 0], np.broadcast_to(hit[0], mean[:, 0].shape)
            for j in range(1, hit.shape[0]):
                better = mean[:, j] > best
                best, correct = np.where(better, mean[:, j], best), np.where(better, hit[j], correct)
            total += np.einsum("bn,bn->b", correct, sc[:, idx])
        acc[rows] = total / sc.sum(axis=1, dtype=np.float64)
    return acc


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
