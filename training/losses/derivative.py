"""Derivative manipulation: per-sample gradient-magnitude weights and the loss they give.
"""

from __future__ import annotations

import torch
from torch import Tensor

from training.losses.base import (
    _check_logits_target,
    _check_nonnegative,
    _check_reduction,
    _reduce,
)
from training.losses.terms import _dm_terms, _dm_weights_from_log_probs


# --------------------------------------------------------------------------------------------
# derivative manipulation
# --------------------------------------------------------------------------------------------
def dm_weights(logits: Tensor, target: Tensor, *, beta: float = 1.0, lam: float = 1.0) -> Tensor:
    """Emphasis weights of derivative manipulation (Wang et al., 2019).

    ``w_i = softmax_i(beta * p_t,i ** lam * (1 - p_t,i))`` over the batch; they sum to 1.
    ``lam`` sets the emphasis mode (the peak of ``p ** lam * (1 - p)`` is at ``p = lam / (1 + lam)``),
    ``beta`` its spread (``beta = 0``: uniform weights).

    Raises
    ------
    ValueError
        For ``beta < 0``, ``lam < 0`` and the input errors of :func:`cross_entropy`.

    Examples
    --------
    >>> dm_weights(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1])).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    _check_logits_target(logits, target)
    _check_nonnegative("beta", beta)
    _check_nonnegative("lam", lam)
    with torch.no_grad():
        return _dm_weights_from_log_probs(torch.log_softmax(logits, dim=1), target, beta=beta, lam=lam)


def derivative_manipulation_loss(
    logits: Tensor, target: Tensor, *, beta: float = 1.0, lam: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """Derivative-manipulation surrogate ``stopgrad(w_i / ||p_i - y_i||_1) * ce_i``.

    With ``reduction="sum"`` this is the surrogate of seed 002: the L1 norm of each sample's
    gradient on the logits equals its emphasis weight ``w_i`` (:func:`dm_weights`), and the
    direction is that of cross-entropy, ``p_i - y_i``. ``"mean"`` divides by ``n_samples`` (so
    the per-sample L1 norms are ``w_i / n_samples``), keeping ``mean == sum / n``. A sample with
    ``p_t = 1`` exactly has zero gradient under either loss.

    Raises
    ------
    ValueError
        For ``beta < 0``, ``lam < 0`` and the input errors of :func:`cross_entropy`.

    Examples
    --------
    >>> logits = torch.tensor([[1.0, 0.0], [0.0, 3.0]], requires_grad=True)
    >>> derivative_manipulation_loss(logits, torch.tensor([0, 0]), reduction="sum").backward()
    >>> torch.allclose(logits.grad.abs().sum(dim=1), dm_weights(logits, torch.tensor([0, 0])))
    True
    """
    _check_logits_target(logits, target)
    _check_nonnegative("beta", beta)
    _check_nonnegative("lam", lam)
    _check_reduction(reduction)
    return _reduce(_dm_terms(torch.log_softmax(logits, dim=1), target, beta=beta, lam=lam), reduction)
