"""Static fusion of member logits (pure numpy).

Every function takes ``logits`` of shape ``(n_members, n_samples, n_classes)`` (raw, finite) and
returns ``(preds, probs)``: predicted classes ``(n_samples,)`` and a probability-like score
``(n_samples, n_classes)`` whose rows sum to 1, used for calibration and selective prediction.

- **Average** (published): mean of the raw logits, argmax. Its probabilities are
  ``softmax(mean logits)``.
- **ProbAverage**: mean of the members' softmax probabilities, argmax.
- **Vote** (published): modal predicted class. Ties between classes with the same number of votes
  are broken by the larger mean raw logit among the tied classes; a remaining exact tie goes to the
  lowest class index. Vote has no natural probability: its score is the fraction of members voting
  for each class (so its confidence is the winning vote fraction, which takes only
  ``n_members + 1`` values).

What each fusion is (inputs, temperature scaling, seed intervals, display order) is declared in
:mod:`analysis.core.fusions`.
"""

from __future__ import annotations

import numpy as np

from analysis.core.metrics import softmax


def _check_logits(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits)
    if logits.ndim != 3 or logits.shape[0] < 1 or logits.shape[2] < 2:
        raise ValueError(
            f"Expected `logits` of shape (n_members, n_samples, n_classes >= 2), got shape {logits.shape}"
        )
    if not np.all(np.isfinite(logits)):
        raise ValueError(
            "Expected finite `logits`; non-finite members must be dropped by the reader's policy before fusion"
        )
    return logits


def mean_logits(logits: np.ndarray) -> np.ndarray:
    """Mean of the members' raw logits, float64 ``(n_samples, n_classes)``: Average's fused logits."""
    return np.asarray(logits).mean(axis=0, dtype=np.float64)


def average_fusion(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average: argmax of the mean raw logits; probs = softmax(mean logits).

    >>> preds, probs = average_fusion(np.array([[[2.0, 0.0]], [[0.0, 1.0]]]))
    >>> preds.tolist()
    [0]
    """
    mean = mean_logits(_check_logits(logits))
    return mean.argmax(axis=1), softmax(mean)


def prob_average_fusion(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ProbAverage: argmax of the mean member probabilities; probs = that mean.

    >>> preds, probs = prob_average_fusion(np.array([[[2.0, 0.0]], [[0.0, 1.0]]]))
    >>> preds.tolist()
    [0]
    """
    logits = _check_logits(logits)
    probs = softmax(logits).mean(axis=0)
    return probs.argmax(axis=1), probs


def vote_counts(logits: np.ndarray) -> np.ndarray:
    """Number of members predicting each class, shape ``(n_samples, n_classes)``."""
    logits = _check_logits(logits)
    m, n, c = logits.shape
    member_preds = logits.argmax(axis=2)  # (m, n)
    flat = (np.arange(n)[None, :] * c + member_preds).ravel()
    return np.bincount(flat, minlength=n * c).reshape(n, c)


def vote_fusion(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vote: modal member prediction; ties → larger mean logit, then lowest class index.

    probs = vote fractions (counts / n_members).

    >>> logits = np.array([[[2.0, 0.0, 0.0]], [[0.0, 3.0, 0.0]]])  # one vote each for 0 and 1
    >>> vote_fusion(logits)[0].tolist()  # mean logits 1.0 vs 1.5: class 1 wins the tie
    [1]
    """
    logits = _check_logits(logits)
    counts = vote_counts(logits)
    tied = counts == counts.max(axis=1, keepdims=True)
    mean = logits.mean(axis=0, dtype=np.float64)
    preds = np.where(tied, mean, -np.inf).argmax(axis=1)  # argmax returns the first (lowest) index
    return preds, counts / logits.shape[0]


def fuse(logits: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Apply a static fusion by name (one of :data:`analysis.core.fusions.STATIC_FUSIONS`)."""
    from analysis.core.fusions import STATIC_FUSIONS

    try:
        f = STATIC_FUSIONS[method]
    except KeyError:
        raise ValueError(f"Expected `method` in {sorted(STATIC_FUSIONS)}, got {method!r}") from None
    return f(logits)
