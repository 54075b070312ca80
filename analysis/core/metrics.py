"""Pure numpy metrics over labels, predictions and probabilities.

Every public function takes data first and options keyword-only, validates its inputs with small
``_check_*`` helpers and never mutates them. Names give the direction: ``*_score`` is to be
maximised, ``*_error`` / ``*_loss`` minimised.

Binning convention (calibration): ``n_bins`` bins over [0, 1]. Equal-width bins are left-closed,
``[k/n, (k+1)/n)``, except the last, which also holds confidence exactly 1.0 (torchmetrics'
``CalibrationError`` instead gives 1.0 an extra bin of its own; the two agree whenever no
confidence equals 1.0). Equal-mass bins hold ``n_samples // n_bins`` or one more samples in order
of increasing confidence (ties broken by sample order, so the split is deterministic).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Binning = Literal["width", "mass"]


# ----------------------------------------------------------------------------- validators
def _check_labels(labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"Expected `labels` of shape (n_samples,), got shape {labels.shape}")
    if labels.size == 0:
        raise ValueError("Expected `labels` to hold at least one sample, got 0")
    if not np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool:
        raise ValueError(f"Expected integer `labels`, got dtype {labels.dtype}")
    if labels.min() < 0:
        raise ValueError(f"Expected `labels` >= 0 (class indices), got min {labels.min()}")
    if n_classes is not None and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(
            f"Expected `labels` in [0, {n_classes}), got min {labels.min()} and max {labels.max()}"
        )
    return labels


def _check_probs(probs: np.ndarray, labels: np.ndarray | None = None, *, atol: float = 1e-3) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"Expected `probs` of shape (n_samples, n_classes >= 2), got shape {probs.shape}")
    if not np.all(np.isfinite(probs)):
        raise ValueError("Expected finite `probs`, got NaN or inf")
    if probs.min() < -atol or probs.max() > 1 + atol:
        raise ValueError(f"Expected `probs` in [0, 1], got min {probs.min():.3g} and max {probs.max():.3g}")
    dev = np.abs(probs.sum(axis=1) - 1).max()
    if dev > atol:
        raise ValueError(f"Expected `probs` rows to sum to 1, got max deviation {dev:.3g}")
    if labels is not None and labels.shape[0] != probs.shape[0]:
        raise ValueError(
            f"Found inconsistent numbers of samples: `labels` has {labels.shape[0]}, `probs` has {probs.shape[0]}"
        )
    if labels is not None:
        _check_labels(labels, probs.shape[1])
    return probs


def _check_confidence(confidence: np.ndarray, correct: np.ndarray, *, unit: bool = False, atol: float = 1e-6
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Validate a score and the correctness of each prediction.

    ``correct`` must be boolean, or numbers that are all 0 or 1 (NaN is refused, never cast to
    True); with ``unit=True`` (calibration), ``confidence`` must lie in [0, 1] (to ``atol``).
    """
    confidence = np.asarray(confidence)
    correct = np.asarray(correct)
    if confidence.ndim != 1 or correct.shape != confidence.shape:
        raise ValueError(
            f"Expected `confidence` and `correct` of equal shape (n_samples,), got {confidence.shape} and {correct.shape}"
        )
    if confidence.size == 0:
        raise ValueError("Expected at least one sample, got 0")
    if not (np.issubdtype(confidence.dtype, np.number) and confidence.dtype != bool):
        raise ValueError(f"Expected numeric `confidence`, got dtype {confidence.dtype}")
    confidence = confidence.astype(np.float64)
    if not np.all(np.isfinite(confidence)):
        raise ValueError("Expected finite `confidence`, got NaN or inf")
    if unit and (confidence.min() < -atol or confidence.max() > 1 + atol):
        raise ValueError(f"Expected `confidence` in [0, 1], got min {confidence.min():.6g} and max {confidence.max():.6g}")
    if correct.dtype != bool:
        if not np.issubdtype(correct.dtype, np.number):
            raise ValueError(f"Expected boolean `correct`, got dtype {correct.dtype}")
        ok = (correct == 0) | (correct == 1)
        if not np.all(ok):
            bad = correct[~ok][0]
            raise ValueError(f"Expected boolean `correct` (or 0/1), got {bad!r}")
    return np.clip(confidence, 0.0, 1.0) if unit else confidence, correct.astype(bool)


def _check_n_bins(n_bins: int) -> None:
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"Expected argument `n_bins` to be an integer larger than 0, but got {n_bins!r}")


def _check_binning(binning: str) -> None:
    if binning not in ("width", "mass"):
        raise ValueError(f"Expected argument `binning` to be 'width' or 'mass', but got {binning!r}")


# ----------------------------------------------------------------------------- basics
def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (float64 result).

    >>> softmax(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax (float64 result)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def accuracy(labels: np.ndarray, preds: np.ndarray) -> float:
    """Fraction of samples whose predicted class equals the label (validated inputs).

    >>> accuracy(np.array([0, 1, 1]), np.array([0, 1, 0]))
    0.6666666666666666
    """
    labels = _check_labels(labels)
    preds = np.asarray(preds)
    if preds.shape != labels.shape:
        raise ValueError(f"Expected `preds` of shape {labels.shape}, got {preds.shape}")
    return float(np.mean(preds == labels))


def _top_label(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = probs.argmax(axis=1)
    return probs[np.arange(len(pred)), pred], pred == labels


# ----------------------------------------------------------------------------- binning
def bin_assignment(confidence: np.ndarray, *, n_bins: int = 15, binning: Binning = "width") -> np.ndarray:
    """Bin index in ``[0, n_bins)`` of every confidence (see the module docstring for the convention).

    >>> bin_assignment(np.array([0.0, 0.5, 1.0]), n_bins=2).tolist()
    [0, 1, 1]
    """
    _check_n_bins(n_bins)
    _check_binning(binning)
    confidence = np.asarray(confidence, dtype=np.float64)
    if confidence.ndim != 1 or not np.all(np.isfinite(confidence)) or (
            confidence.size and (confidence.min() < 0 or confidence.max() > 1)):
        raise ValueError("Expected `confidence` of shape (n_samples,) with finite values in [0, 1]")
    if binning == "width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        return np.searchsorted(edges[1:-1], confidence, side="right")
    order = np.argsort(confidence, kind="stable")
    idx = np.empty(confidence.shape[0], dtype=np.int64)
    idx[order] = (np.arange(confidence.shape[0]) * n_bins) // max(confidence.shape[0], 1)
    return idx


def _bin_stats(confidence, correct, n_bins, binning):
    b = bin_assignment(confidence, n_bins=n_bins, binning=binning)
    count = np.bincount(b, minlength=n_bins).astype(np.float64)
    conf_sum = np.bincount(b, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(b, weights=correct.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = conf_sum / count
        acc = acc_sum / count
    return count, conf, acc


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, *, n_bins: int = 15, binning: Binning = "width"
) -> dict[str, np.ndarray]:
    """Reliability-diagram data: per bin its edges, count, mean confidence and accuracy.

    Parameters
    ----------
    confidence : array of shape (n_samples,) in [0, 1].
    correct : bool array of shape (n_samples,).

    Returns
    -------
    dict with arrays of shape (n_bins,): ``bin``, ``lower``, ``upper``, ``count``, ``confidence``,
    ``accuracy`` (NaN for empty bins). For equal-mass bins, ``lower``/``upper`` are the smallest and
    largest confidence inside the bin.
    """
    confidence, correct = _check_confidence(confidence, correct, unit=True)
    _check_n_bins(n_bins)
    _check_binning(binning)
    count, conf, acc = _bin_stats(confidence, correct, n_bins, binning)
    if binning == "width":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        lower, upper = edges[:-1], edges[1:]
    else:
        b = bin_assignment(confidence, n_bins=n_bins, binning=binning)
        lower = np.full(n_bins, np.nan)
        upper = np.full(n_bins, np.nan)
        nonempty = count > 0
        lower[nonempty] = [confidence[b == k].min() for k in np.flatnonzero(nonempty)]
        upper[nonempty] = [confidence[b == k].max() for k in np.flatnonzero(nonempty)]
    return {"bin": np.arange(n_bins), "lower": lower, "upper": upper, "count": count, "confidence": conf, "accuracy": acc}


def confidence_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, *, n_bins: int = 15, binning: Binning = "width", norm: str = "l1"
) -> float:
    """Binned calibration error of a confidence score: ECE (``norm='l1'``) or MCE (``'max'``).

    Useful for scores that are not a softmax (e.g. vote fractions). ``confidence`` must lie in
    [0, 1] and ``correct`` be boolean (or 0/1).
    """
    confidence, correct = _check_confidence(confidence, correct, unit=True)
    _check_n_bins(n_bins)
    _check_binning(binning)
    count, conf, acc = _bin_stats(confidence, correct, n_bins, binning)
    nz = count > 0
    gap = np.abs(acc[nz] - conf[nz])
    if norm == "l1":
        return float(np.sum(gap * count[nz]) / count.sum())
    if norm == "max":
        return float(gap.max())
    raise ValueError(f"Expected argument `norm` to be 'l1' or 'max', but got {norm!r}")


def expected_calibration_error(
    labels: np.ndarray, probs: np.ndarray, *, n_bins: int = 15, binning: Binning = "width"
) -> float:
    """Top-label expected calibration error: Σ_b (n_b/n)·|acc_b − conf_b|.

    Parameters
    ----------
    labels : int array of shape (n_samples,).
    probs : array of shape (n_samples, n_classes), rows summing to 1.
    n_bins : number of bins (default 15).
    binning : ``"width"`` (equal-width) or ``"mass"`` (equal-mass).

    >>> expected_calibration_error(np.array([0, 1]), np.array([[1.0, 0.0], [0.0, 1.0]]))
    0.0
    """
    labels = _check_labels(labels)
    probs = _check_probs(probs, labels)
    conf, correct = _top_label(labels, probs)
    return confidence_calibration_error(conf, correct, n_bins=n_bins, binning=binning, norm="l1")


def maximum_calibration_error(
    labels: np.ndarray, probs: np.ndarray, *, n_bins: int = 15, binning: Binning = "width"
) -> float:
    """Top-label maximum calibration error: max over non-empty bins of |acc_b − conf_b|."""
    labels = _check_labels(labels)
    probs = _check_probs(probs, labels)
    conf, correct = _top_label(labels, probs)
    return confidence_calibration_error(conf, correct, n_bins=n_bins, binning=binning, norm="max")


def classwise_calibration_error(
    labels: np.ndarray, probs: np.ndarray, *, n_bins: int = 15, binning: Binning = "width"
) -> float:
    """Classwise ECE: mean over classes k of the binned error of ``probs[:, k]`` against ``labels == k``."""
    labels = _check_labels(labels)
    probs = _check_probs(probs, labels)
    errs = [
        confidence_calibration_error(probs[:, k], labels == k, n_bins=n_bins, binning=binning)
        for k in range(probs.shape[1])
    ]
    return float(np.mean(errs))


def brier_score(labels: np.ndarray, probs: np.ndarray) -> float:
    """Multiclass Brier score, mean over samples of Σ_k (p_k − 1[y = k])² (range [0, 2]).

    Computed here rather than by :func:`sklearn.metrics.brier_score_loss`, which switches to the
    one-column binary definition when ``C = 2`` (half this value); for ``C > 2`` the two agree.

    >>> brier_score(np.array([0]), np.array([[0.5, 0.5]]))
    0.5
    """
    labels = _check_labels(labels)
    probs = _check_probs(probs, labels)
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(labels)), labels] = 1.0
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))


def nll(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels, after validation: the true class's probability
    clipped to ``[eps, 1 - eps]`` (``eps`` of its float type), as :func:`sklearn.metrics.log_loss`
    over all ``C`` classes computes it (its oracle in the tests; called directly here, its input
    checks cost 6 ms a call, a tenth of an analysis's calibration tables).

    >>> round(nll(np.array([0]), np.array([[0.5, 0.5]])), 6)
    0.693147
    """
    labels = _check_labels(labels)
    probs = _check_probs(probs, labels)
    eps = np.finfo(probs.dtype).eps
    return float(-np.mean(np.log(np.clip(probs[np.arange(labels.size), labels], eps, 1 - eps))))


def selective_auroc(correct: np.ndarray, confidence: np.ndarray) -> float:
    """AUROC of ``confidence`` for separating correct from wrong predictions
    (:func:`sklearn.metrics.roc_auc_score`; ties count ½). NaN when all predictions are correct or
    all are wrong (the AUROC is undefined there).

    >>> selective_auroc(np.array([True, False]), np.array([0.9, 0.1]))
    1.0
    """
    from sklearn.metrics import roc_auc_score

    confidence, correct = _check_confidence(confidence, correct)
    if correct.all() or not correct.any():
        return float("nan")
    return float(roc_auc_score(correct, confidence))


def risk_coverage_curve(correct: np.ndarray, confidence: np.ndarray) -> dict[str, np.ndarray]:
    """Selective risk against coverage when abstaining on the least confident samples first.

    Samples are sorted by decreasing confidence; tied confidences are accepted together, so the
    curve has one point per distinct confidence value.

    Returns
    -------
    dict with ``coverage``, ``risk`` (error rate among accepted) and ``threshold`` arrays.
    """
    confidence, correct = _check_confidence(confidence, correct)
    order = np.argsort(-confidence, kind="stable")
    c = confidence[order]
    err = np.cumsum(~correct[order])
    last = np.r_[np.flatnonzero(np.diff(c) != 0), c.size - 1]  # end of each tie group
    n = np.arange(1, c.size + 1)[last]
    return {"coverage": n / c.size, "risk": err[last] / n, "threshold": c[last]}


def aurc_loss(correct: np.ndarray, confidence: np.ndarray) -> float:
    """Area under the risk-coverage curve: mean selective risk over coverages k/n, k = 1..n.

    Tied confidences share the risk of their whole tie group.

    >>> aurc_loss(np.array([True, False]), np.array([0.9, 0.1]))
    0.25
    """
    curve = risk_coverage_curve(correct, confidence)
    n = np.asarray(correct).size
    counts = np.diff(np.r_[0, np.rint(curve["coverage"] * n)])
    return float(np.sum(curve["risk"] * counts) / n)


# ----------------------------------------------------------------------------- temperature
def fit_temperature(labels: np.ndarray, logits: np.ndarray, *, bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """Temperature T minimising the NLL of ``softmax(logits / T)`` (bounded scalar search on log T).

    Parameters
    ----------
    labels : int array of shape (n_samples,).
    logits : array of shape (n_samples, n_classes).
    """
    from scipy.optimize import minimize_scalar

    labels = _check_labels(labels)
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0] or logits.shape[1] < 2:
        raise ValueError(f"Expected `logits` of shape ({labels.shape[0]}, n_classes >= 2), got {logits.shape}")
    if not np.all(np.isfinite(logits)):
        raise ValueError(f"Expected finite `logits`, got {int((~np.isfinite(logits)).sum())} NaN or inf values")
    _check_labels(labels, logits.shape[1])
    rows = np.arange(labels.size)

    def nll(log_t: float) -> float:
        return float(-np.mean(log_softmax(logits / np.exp(log_t))[rows, labels]))

    res = minimize_scalar(nll, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(res.x))
