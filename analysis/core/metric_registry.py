"""What each calibration and selective-prediction metric is: one :class:`Metric` record per
metric, in the ordered registry :data:`METRICS` (ours: the paper reports accuracy only).

A new metric is declared here, in one :func:`register_metric` call; every consumer derives from
the records: the columns of ``calibration.csv`` and ``selective.csv`` and their descriptions
(:mod:`analysis.core.schema`), the values :func:`analysis.core.calibration.calibration_tables`
writes (:func:`metric_values`), the calibration page's columns and labels
(:mod:`analysis.report.calibration`) and the cells ``dynloss compare`` judges with their default
tolerances (:mod:`analysis.audit.regression.compare`).

Every metric scores one fused ensemble or member through :class:`Scores`: its labels, probability
scores, its own predictions (Vote breaks ties by mean logit, which the argmax of its vote
fractions would not) and the confidence of each prediction (the score of the predicted class).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from analysis.core import metrics as M
from analysis.core.registry import LiveTuple, Registry

#: result tables a metric can write a column to
METRIC_TABLES: tuple[str, ...] = ("calibration", "selective")


@dataclass(frozen=True)
class Scores:
    """What a metric reads: ``labels`` (N,), ``probs`` (N, C), the fusion's ``preds`` (N,), the bin
    count; ``confidence`` (score of the predicted class) and ``correct`` follow."""

    labels: np.ndarray
    probs: np.ndarray
    preds: np.ndarray
    n_bins: int = 15
    confidence: np.ndarray = field(init=False, repr=False)
    correct: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "confidence", self.probs[np.arange(self.labels.size), self.preds])
        object.__setattr__(self, "correct", self.preds == self.labels)


@dataclass(frozen=True)
class Metric:
    """One metric.

    Attributes
    ----------
    name : the column it writes (in each of ``tables``).
    function : :class:`Scores` -> float.
    label : column header on the report page.
    description : the column's entry in :mod:`analysis.core.schema`.
    direction : ``"higher"`` or ``"lower"`` is better.
    tables : ``calibration`` (before and after temperature scaling) and/or ``selective``.
    tolerance : ``dynloss compare``'s default tolerance where a side carries no interval (absolute,
        in the metric's units); None: not compared.
    on_votes : compared also on vote-fraction confidences (NLL of vote fractions is not: unanimous
        mistakes at the clip dominate it).
    shown : a column of the calibration page's tables.
    """

    name: str
    function: Callable[[Scores], float]
    label: str
    description: str
    direction: Literal["higher", "lower"]
    tables: tuple[str, ...] = ("calibration",)
    tolerance: float | None = None
    on_votes: bool = True
    shown: bool = True

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns it writes (one per table)."""
        return (self.name,)

    @property
    def compared(self) -> bool:
        return self.tolerance is not None

    def __call__(self, labels: np.ndarray, probs: np.ndarray, *, n_bins: int = 15) -> float:
        """The metric of probability scores, predictions = their argmax (after validation)."""
        labels = M._check_labels(labels)
        probs = M._check_probs(probs, labels)
        return self.function(Scores(labels, probs, probs.argmax(axis=1), n_bins))


def _check(m: Metric, registry: Registry) -> None:
    where = f"metric {m.name!r}"
    if not callable(m.function):
        raise ValueError(f"{where}: `function` must be callable (Scores -> float), got {m.function!r}")
    if m.direction not in ("higher", "lower"):
        raise ValueError(f"{where}: expected `direction` 'higher' or 'lower', got {m.direction!r}")
    if not m.tables or any(t not in METRIC_TABLES for t in m.tables):
        raise ValueError(f"{where}: expected `tables` among {METRIC_TABLES}, got {m.tables!r}")
    if not (isinstance(m.description, str) and m.description.strip()):
        raise ValueError(f"{where}: needs a `description` (its column's entry in analysis.core.schema)")
    if m.tolerance is not None and not (isinstance(m.tolerance, (int, float)) and 0 <= m.tolerance < np.inf):
        raise ValueError(f"{where}: expected `tolerance` None or a finite number >= 0, got {m.tolerance!r}")


#: every metric, in column order
METRICS: Registry[Metric] = Registry("metric", _check)


def register_metric(metric: Metric) -> Metric:
    """Declare a metric (one call); ``METRICS.temporarily(metric)`` declares it for a ``with`` block."""
    return METRICS.register(metric)


def metrics_of(table: str) -> tuple[Metric, ...]:
    """The metrics writing a column of ``table``, in column order."""
    return tuple(m for m in METRICS.values() if table in m.tables)


def metric_values(table: str, scores: Scores) -> dict[str, float]:
    """Every column of ``table``'s metrics for one row."""
    return {m.name: m.function(scores) for m in metrics_of(table)}


#: the metrics ``dynloss compare`` judges, in column order
COMPARED_METRICS: LiveTuple = LiveTuple(lambda: tuple(m.name for m in METRICS.values() if m.compared))


def _ece(binning: str = "width", norm: str = "l1") -> Callable[[Scores], float]:
    return lambda s: M.confidence_calibration_error(s.confidence, s.correct, n_bins=s.n_bins, binning=binning,
                                                    norm=norm)


for _m in (
    Metric("accuracy", lambda s: float(s.correct.mean()), "accuracy", "test accuracy (unchanged by temperature)",
           "higher", tables=("calibration", "selective")),
    Metric("ece", _ece(), "ECE", "top-label ECE, equal-width bins (confidence 1.0 in the last bin); top label = the "
           "fusion's prediction, confidence = its score for that class", "lower", tolerance=0.02),
    Metric("ece_mass", _ece("mass"), "ECE (mass)", "top-label ECE, equal-mass bins", "lower", tolerance=0.02),
    Metric("classwise_ece", lambda s: M.classwise_calibration_error(s.labels, s.probs, n_bins=s.n_bins),
           "class-wise ECE", "mean over classes of the equal-width binned error of p_k vs 1[y=k]", "lower",
           tolerance=0.005),
    Metric("mce", _ece(norm="max"), "MCE", "maximum calibration error over non-empty equal-width bins", "lower",
           shown=False),  # a maximum over bins: no stable scale to compare
    Metric("brier", lambda s: M.brier_score(s.labels, s.probs), "Brier",
           "multiclass Brier score, mean of sum_k (p_k - 1[y=k])^2", "lower", tolerance=0.02),
    Metric("nll", lambda s: M.nll(s.labels, s.probs), "NLL", "negative log-likelihood (probabilities clipped at "
           "1e-15; for Vote, of the vote fractions, so unanimous mistakes dominate it)", "lower", tolerance=0.05,
           on_votes=False),
    Metric("auroc", lambda s: M.selective_auroc(s.correct, s.confidence), "AUROC",
           "AUROC of confidence for correct vs wrong predictions (ties count 1/2)", "higher", tables=("selective",),
           tolerance=0.03),
    Metric("aurc", lambda s: M.aurc_loss(s.correct, s.confidence), "AURC",
           "area under the risk-coverage curve (lower is better)", "lower", tables=("selective",), tolerance=0.01),
):
    register_metric(_m)
del _m
