"""What each fusion is: one :class:`Fusion` record per fusion, in the ordered registry :data:`FUSIONS`.

A new fusion is declared here, in one :func:`register_fusion` call; every consumer derives from
the records: the static fusions applied to every arm (:data:`STATIC_FUSIONS`,
:func:`analysis.core.fuse.static_fusions`), the super-learner fits (:data:`SUPERLEARNER_FUSIONS`),
temperature scaling and the confidence kind (:meth:`Fusion.output_logits`,
:attr:`Fusion.confidence_kind`), Table 1's ``leak_free`` column and its training-seed intervals
(:data:`SEED_CI_FUSIONS`: the fusions with a batched re-fusion ``resampled``; a static fusion
without one gets NaN seed intervals by declaration), the report's display order
(:data:`FUSION_ORDER`) and the paper's four (:data:`PAPER_FUSIONS`).

Published (the paper): Average, Vote and the in-sample super-learners Weighted and MLP. Ours:
ProbAverage and the leak-free, out-of-bag super-learners Weighted-OOB and MLP-OOB.

Registry order is table order (Table 1 rows: per arm, the static fusions, then the learned
ones); ``order`` is display order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np

from analysis.core.fusion import average_fusion, mean_logits, prob_average_fusion, vote_fusion
from analysis.core.registry import LiveMapping, LiveTuple, Registry
from analysis.core.seed_bootstrap import resampled_fusion_accuracies

Inputs = Literal["logits", "probabilities", "votes"]
INPUTS: tuple[str, ...] = ("logits", "probabilities", "votes")


@dataclass(frozen=True)
class Fusion:
    """One fusion of the members of an arm.

    Attributes
    ----------
    name : the ``fusion`` value of every result table.
    label : the fusion in words (report prose).
    inputs : what it combines: ``"logits"`` or ``"probabilities"`` (its output is temperature-scaled,
        confidence = max probability) or ``"votes"`` (not temperature-scaled, confidence = vote fraction).
    function : static fusions: member logits ``(M, N, C)`` -> ``(preds (N,), probs (N, C))``;
        None for a learned fusion (fitted by :mod:`analysis.core.superlearner`).
    logits : static fusions: member logits -> the fused logits that temperature scaling rescales;
        default ``log(probs)`` (for a softmax output, the logits up to a per-row shift, which
        temperature scaling ignores). Unused for ``"votes"``.
    resampled : the batched re-fusion of the two-level bootstrap,
        ``f(logits, labels, *, member_counts, sample_counts) -> accuracies (B,)``
        (:func:`analysis.core.seed_bootstrap.resampled_fusion_accuracies`); None: no training-seed
        interval (NaN), the case of every learned fusion (it would need a refit per resample).
    learned : fitted on the training predictions (a super-learner) rather than a fixed rule.
    superlearner : learned fusions: ``(kind, variant)`` of :class:`analysis.core.superlearner.SuperLearnerConfig`.
    published : one of the paper's four fusions.
    leak_free : False only for a fusion fitted on in-sample predictions (the published super-learners).
    order : display order in the report (ties: declaration order).
    """

    name: str
    label: str
    inputs: Inputs
    function: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None
    logits: Callable[[np.ndarray], np.ndarray] | None = None
    resampled: Callable[..., np.ndarray] | None = None
    learned: bool = False
    superlearner: tuple[str, str] | None = None
    published: bool = False
    leak_free: bool = True
    order: int = 1000

    @property
    def temperature_scaled(self) -> bool:
        """Whether calibration also scores it after temperature scaling (it has logits)."""
        return self.inputs != "votes"

    @property
    def confidence_kind(self) -> str:
        """``"vote_fraction"`` for vote fusions, else ``"max_prob"`` (the ``confidence_kind`` column)."""
        return "vote_fraction" if self.inputs == "votes" else "max_prob"

    def output_logits(self, member_logits: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
        """The ``FusionOutput.logits`` of a static fusion: None for votes, else :attr:`logits` of the
        members or ``log(probs)`` (clipped at 1e-300)."""
        if not self.temperature_scaled:
            return None
        if self.logits is not None:
            return self.logits(member_logits)
        return np.log(np.clip(probs, 1e-300, None))


def _check(f: Fusion, registry: Registry) -> None:
    where = f"fusion {f.name!r}"
    if f.inputs not in INPUTS:
        raise ValueError(f"{where}: expected `inputs` in {INPUTS}, got {f.inputs!r}")
    if f.learned:
        if f.function is not None or f.resampled is not None or f.superlearner is None:
            raise ValueError(f"{where}: a learned fusion has a `superlearner` (kind, variant) and no `function` "
                             f"or `resampled` (it is refitted, not re-fused)")
    elif not callable(f.function) or f.superlearner is not None:
        raise ValueError(f"{where}: a static fusion needs a callable `function` (member logits -> (preds, probs)) "
                         f"and no `superlearner`")
    if f.resampled is not None and not callable(f.resampled):
        raise ValueError(f"{where}: `resampled` must be callable or None, got {f.resampled!r}")


#: every fusion, in table order
FUSIONS: Registry[Fusion] = Registry("fusion", _check)


def register_fusion(fusion: Fusion) -> Fusion:
    """Declare a fusion (one call); ``FUSIONS.temporarily(fusion)`` declares it for a ``with`` block."""
    return FUSIONS.register(fusion)


def static_records() -> tuple[Fusion, ...]:
    """The static fusions, in table order."""
    return tuple(f for f in FUSIONS.values() if not f.learned)


def displayed() -> tuple[Fusion, ...]:
    """Every fusion in display order."""
    index = {name: i for i, name in enumerate(FUSIONS)}
    return tuple(sorted(FUSIONS.values(), key=lambda f: (f.order, index[f.name])))


#: static fusion name -> function(logits) -> (preds, probs)
STATIC_FUSIONS: LiveMapping = LiveMapping(lambda: {f.name: f.function for f in static_records()})
#: fusions with two-level (training-seed) intervals in Table 1: those with a batched re-fusion
SEED_CI_FUSIONS: LiveTuple = LiveTuple(lambda: tuple(n for n, f in FUSIONS.items() if f.resampled is not None))
#: learned fusions of every arm, in table order: (name, kind, variant)
SUPERLEARNER_FUSIONS: LiveTuple = LiveTuple(
    lambda: tuple((n, *f.superlearner) for n, f in FUSIONS.items() if f.learned))
#: fusions in display order (the paper's four, then ours)
FUSION_ORDER: LiveTuple = LiveTuple(lambda: tuple(f.name for f in displayed()))
#: the fusions of the published Table 1, in display order
PAPER_FUSIONS: LiveTuple = LiveTuple(lambda: tuple(f.name for f in displayed() if f.published))


def names(**where) -> tuple[str, ...]:
    """Fusion names in table order whose fields equal ``where`` (e.g. ``names(learned=False)``).

    >>> names(published=True, learned=True)
    ('Weighted', 'MLP')
    """
    return tuple(n for n, f in FUSIONS.items() if all(getattr(f, k) == v for k, v in where.items()))


def _resampled(fusion: str) -> Callable[..., np.ndarray]:
    return partial(resampled_fusion_accuracies, fusion=fusion)


for _f in (
    Fusion("Average", "mean of the raw logits", "logits", average_fusion, logits=mean_logits,
           resampled=_resampled("Average"), published=True, order=0),
    Fusion("ProbAverage", "mean of the members' probabilities", "probabilities", prob_average_fusion,
           resampled=_resampled("ProbAverage"), order=4),
    Fusion("Vote", "modal predicted class (ties: larger mean logit, then lowest class)", "votes", vote_fusion,
           resampled=_resampled("Vote"), published=True, order=1),
    Fusion("Weighted", "one linear layer fitted on in-sample training predictions", "logits", learned=True,
           superlearner=("Weighted", "in-sample"), published=True, leak_free=False, order=2),
    Fusion("Weighted-OOB", "one linear layer fitted on out-of-bag training predictions", "logits", learned=True,
           superlearner=("Weighted", "out-of-bag"), order=5),
    Fusion("MLP", "the authors' MLP fitted on in-sample training predictions", "logits", learned=True,
           superlearner=("MLP", "in-sample"), published=True, leak_free=False, order=3),
    Fusion("MLP-OOB", "the authors' MLP fitted on out-of-bag training predictions", "logits", learned=True,
           superlearner=("MLP", "out-of-bag"), order=6),
):
    register_fusion(_f)
del _f
