"""Classification losses on logits: cross-entropy, the paper's dynamic loss and related losses.

Every public loss takes ``logits`` of shape ``(n_samples, n_classes)`` and integer ``target`` of
shape ``(n_samples,)``, computes log-probabilities with ``log_softmax`` and reduces the per-sample
terms with ``reduction`` in ``"mean" | "sum" | "none"`` as :mod:`torch.nn.functional` does
(``"mean"`` is the sum divided by ``n_samples``; no class weights, no ignore index).

Each loss is built from a per-sample *term* function on log-probabilities,
``terms(log_probs, target, **params) -> (n_samples,)``, registered in :data:`LOSSES`. The
audit differentiates these terms with respect to the probabilities themselves (``log_probs =
log(probs)`` with ``probs`` a leaf tensor), as the paper's demonstration does.

Threshold convention (dynamic loss)
-----------------------------------
A sample is on the *confident* side when ``p_t > threshold`` (strict), where ``p_t =
exp(log_softmax(logits))[target]`` is computed in the dtype of ``logits``. A probability exactly
equal to the threshold is on the scaled side, ``-log(0.1 * p_t)``. This follows the authors'
PyTorch code; the printed formula of the paper puts ``p_t == threshold`` on the confident side.
The two conventions differ only on a set of measure zero.

Registry
--------
:func:`get_loss` builds a loss by name (a key of :data:`LOSSES`) and returns a callable
``loss(logits, target) -> Tensor``, mean-reduced unless ``reduction`` is passed.

Examples
--------
>>> import torch
>>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
>>> target = torch.tensor([0, 0])
>>> float(cross_entropy(logits, target)) == float(torch.nn.functional.cross_entropy(logits, target))
True
>>> loss = get_loss("dynamic", threshold=0.7)
>>> round(float(loss(logits, target)), 4)  # first sample confident (p_t = 0.88): term 0
2.2148
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from training.losses.base import (
    DYNAMIC_SCALE,
    DYNAMIC_VARIANTS,
    KERAS_EPSILON,
    POLY_FORMS,
    REDUCTIONS,
)
from training.losses.derivative import derivative_manipulation_loss, dm_weights
from training.losses.functional import (
    cross_entropy,
    dynamic_loss,
    focal_loss,
    label_smoothing_loss,
    poly1_loss,
    polyn_loss,
)
from training.losses.superloss import (
    SuperLoss,
    _superloss_terms,
    lambert_w0,
    superloss,
    superloss_sigma,
    update_tau_ema,
)
from training.losses.terms import (
    _ce_terms,
    _dm_terms,
    _dynamic_terms,
    _focal_terms,
    _label_smoothing_terms,
    _poly_terms,
)

__all__ = [
    "DYNAMIC_SCALE",
    "DYNAMIC_VARIANTS",
    "KERAS_EPSILON",
    "LOSSES",
    "LossEntry",
    "POLY_FORMS",
    "REDUCTIONS",
    "SuperLoss",
    "cross_entropy",
    "derivative_manipulation_loss",
    "dm_weights",
    "dynamic_loss",
    "focal_loss",
    "get_loss",
    "label_smoothing_loss",
    "lambert_w0",
    "poly1_loss",
    "polyn_loss",
    "superloss",
    "superloss_sigma",
    "update_tau_ema",
]


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LossEntry:
    """One registered loss: the public function ``loss(logits, target, **params, reduction=...)``
    (validating) and its per-sample terms ``terms(log_probs, target, **params) -> (n_samples,)``."""

    loss: Callable[..., Tensor]
    terms: Callable[..., Tensor]


#: the one loss registry: name -> :class:`LossEntry` (the names :func:`get_loss` accepts)
LOSSES: dict[str, LossEntry] = {
    "ce": LossEntry(cross_entropy, _ce_terms),
    "dynamic": LossEntry(dynamic_loss, _dynamic_terms),
    "poly1": LossEntry(poly1_loss, lambda log_probs, target, *, epsilon=1.0: _poly_terms(log_probs, target,
                                                                                          epsilons=[epsilon])),
    "polyn": LossEntry(polyn_loss, _poly_terms),
    "focal": LossEntry(focal_loss, _focal_terms),
    "label_smoothing": LossEntry(label_smoothing_loss, _label_smoothing_terms),
    "superloss": LossEntry(superloss, _superloss_terms),
    "dm": LossEntry(derivative_manipulation_loss, _dm_terms),
}


def get_loss(name: str, **params) -> Callable[[Tensor, Tensor], Tensor]:
    """Build a loss by name: a callable ``loss(logits, target) -> Tensor``.

    Names and their parameters (keyword-only; ``reduction`` defaults to ``"mean"``):

    - ``"ce"``: none
    - ``"dynamic"``: ``threshold`` (required), ``variant`` ("published" | "soft" | "keras"), ``fill``
    - ``"poly1"``: ``epsilon``
    - ``"polyn"``: ``epsilons`` (required), ``form`` ("paper" | "blog")
    - ``"focal"``: ``gamma``
    - ``"label_smoothing"``: ``alpha``
    - ``"superloss"``: ``tau`` (None: log C), ``lam``, ``ema``, ``momentum`` — returns a
      :class:`SuperLoss` module, which holds the threshold state
    - ``"dm"``: ``beta``, ``lam``

    Parameters are validated here, once, on a tiny dummy batch, so a bad arm fails at build time.

    Raises
    ------
    ValueError
        For an unknown name, unknown parameters or invalid parameter values.

    Examples
    --------
    >>> loss = get_loss("focal", gamma=0.0)
    >>> logits, target = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    >>> torch.allclose(loss(logits, target), cross_entropy(logits, target))
    True
    """
    if name not in LOSSES:
        raise ValueError(f"Expected loss `name` to be one of {tuple(LOSSES)}, got {name!r}")
    if name == "superloss":
        allowed = {"tau", "lam", "ema", "momentum", "reduction"}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise ValueError(f"Unknown parameter(s) {unknown} for loss 'superloss'; expected a subset of {sorted(allowed)}")
        return SuperLoss(**params)
    fn = LOSSES[name].loss
    sig = inspect.signature(fn)
    allowed = {k for k, p in sig.parameters.items() if k not in ("logits", "target")}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"Unknown parameter(s) {unknown} for loss {name!r}; expected a subset of {sorted(allowed)}")
    required = {
        k for k, p in sig.parameters.items() if k not in ("logits", "target") and p.default is inspect.Parameter.empty
    }
    missing = sorted(required - set(params))
    if missing:
        raise ValueError(f"Missing required parameter(s) {missing} for loss {name!r}")

    def loss(logits: Tensor, target: Tensor) -> Tensor:
        return fn(logits, target, **params)

    loss.__name__ = f"{name}_loss"
    loss.__doc__ = f"{name} loss with {params!r}"
    fn(torch.zeros(1, 2), torch.zeros(1, dtype=torch.long), **params)  # validate once
    return loss
