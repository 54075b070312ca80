"""The public losses on logits: cross-entropy, the paper's dynamic loss, Poly-1 / Poly-N, focal
and label smoothing (validating; reduced as :mod:`torch.nn.functional` does).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from training.losses.base import (
    DYNAMIC_VARIANTS,
    POLY_FORMS,
    _check_finite_number,
    _check_logits_target,
    _check_nonnegative,
    _check_positive,
    _check_reduction,
    _check_threshold,
    _reduce,
)
from training.losses.terms import (
    _ce_terms,
    _dynamic_terms,
    _focal_terms,
    _label_smoothing_terms,
    _poly_terms,
)


# --------------------------------------------------------------------------------------------
# public losses
# --------------------------------------------------------------------------------------------
def cross_entropy(logits: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """Cross-entropy ``-log softmax(logits)[target]``.

    Parameters
    ----------
    logits : Tensor of shape (n_samples, n_classes)
    target : integer Tensor of shape (n_samples,)
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor, scalar or of shape (n_samples,) for ``reduction="none"``.

    Raises
    ------
    ValueError
        On shape mismatch, non-finite logits, targets out of range or an unknown reduction.

    Examples
    --------
    >>> round(float(cross_entropy(torch.zeros(3, 4), torch.tensor([0, 1, 2]))), 4)  # log 4
    1.3863
    """
    _check_logits_target(logits, target)
    _check_reduction(reduction)
    return _reduce(_ce_terms(torch.log_softmax(logits, dim=1), target), reduction)


def dynamic_loss(
    logits: Tensor,
    target: Tensor,
    threshold: float,
    *,
    variant: str = "published",
    fill: float = 1.0,
    reduction: str = "mean",
) -> Tensor:
    """The paper's dynamic loss and its two audited variants.

    With ``p = softmax(logits)``, true class ``t`` and threshold ``tau``, the per-sample term is
    ``-log(0.1 * p_t)`` when ``p_t <= tau``; when ``p_t > tau`` (the confident side, strict) it is

    - ``"published"``: the constant ``-log(fill)`` (0 for the default ``fill=1``; the authors'
      PyTorch code fills the probability with ``fill`` before ``-log``), so no gradient;
    - ``"soft"``: ``-log(p_t ** 0.1) = -0.1 * log p_t``, i.e. 0.1 times cross-entropy;
    - ``"keras"``: the authors' original Keras form. ``q = fill * 1[p > tau] + 0.1 * p * 1[p <= tau]``
      elementwise over *all* classes, renormalised to sum 1 and clipped to ``[1e-7, 1 - 1e-7]``
      as Keras' ``categorical_crossentropy`` does, term ``-log q_t``. Above the threshold its
      gradient is small but not zero (the renormalisation couples the classes).

    Parameters
    ----------
    logits : Tensor of shape (n_samples, n_classes)
    target : integer Tensor of shape (n_samples,)
    threshold : float in (0, 1]
    variant : {"published", "soft", "keras"}
    fill : float > 0
        Value the confident probabilities are replaced with (see above). Unused by ``"soft"``.
    reduction : {"mean", "sum", "none"}

    Returns
    -------
    Tensor

    Raises
    ------
    ValueError
        For ``threshold`` outside (0, 1], ``fill <= 0``, an unknown ``variant`` or ``reduction``,
        and the input errors of :func:`cross_entropy`.

    Examples
    --------
    >>> logits = torch.log(torch.tensor([[0.9, 0.1], [0.2, 0.8]]))
    >>> dynamic_loss(logits, torch.tensor([0, 0]), 0.5, reduction="none")
    tensor([-0.0000, 3.9120])
    """
    _check_logits_target(logits, target)
    _check_threshold(threshold)
    if variant not in DYNAMIC_VARIANTS:
        raise ValueError(f"Expected `variant` to be one of {DYNAMIC_VARIANTS}, got {variant!r}")
    _check_positive("fill", fill)
    _check_reduction(reduction)
    log_probs = torch.log_softmax(logits, dim=1)
    return _reduce(_dynamic_terms(log_probs, target, threshold=threshold, variant=variant, fill=fill), reduction)


def poly1_loss(logits: Tensor, target: Tensor, *, epsilon: float = 1.0, reduction: str = "mean") -> Tensor:
    """Poly-1 loss (Leng et al., 2022): ``-log p_t + epsilon * (1 - p_t)``.

    Raises
    ------
    ValueError
        For a non-finite ``epsilon`` and the input errors of :func:`cross_entropy`.

    Examples
    --------
    >>> logits = torch.log(torch.tensor([[0.75, 0.25]]))
    >>> round(float(poly1_loss(logits, torch.tensor([0]), epsilon=2.0)), 4)  # -log .75 + 2 * .25
    0.7877
    """
    _check_logits_target(logits, target)
    _check_finite_number("epsilon", epsilon)
    _check_reduction(reduction)
    return _reduce(_poly_terms(torch.log_softmax(logits, dim=1), target, epsilons=[epsilon]), reduction)


def polyn_loss(
    logits: Tensor,
    target: Tensor,
    *,
    epsilons: Sequence[float],
    form: str = "paper",
    reduction: str = "mean",
) -> Tensor:
    """Poly-N loss: ``-log p_t + sum_{j=1..N} epsilons[j-1] * (1 - p_t) ** j``.

    ``form="blog"`` divides the j-th term by ``j`` (the reading of seed 003's blog post: the
    Taylor coefficients of ``-log p_t`` are ``(1 - p_t)^j / j``, so there the ``epsilon_j``
    perturb those coefficients). The two forms agree only for ``N = 1``; ``"paper"`` is the
    definition of Leng et al.

    Raises
    ------
    ValueError
        For an empty or non-finite ``epsilons``, an unknown ``form`` and the input errors of
        :func:`cross_entropy`.

    Examples
    --------
    >>> logits = torch.log(torch.tensor([[0.5, 0.5]]))
    >>> round(float(polyn_loss(logits, torch.tensor([0]), epsilons=[0.0, 4.0])), 4)  # log 2 + 1
    1.6931
    """
    _check_logits_target(logits, target)
    epsilons = list(epsilons)
    if len(epsilons) == 0:
        raise ValueError("Expected `epsilons` to hold at least one coefficient, got an empty sequence")
    for j, eps in enumerate(epsilons):
        _check_finite_number(f"epsilons[{j}]", eps)
    if form not in POLY_FORMS:
        raise ValueError(f"Expected `form` to be one of {POLY_FORMS}, got {form!r}")
    _check_reduction(reduction)
    return _reduce(_poly_terms(torch.log_softmax(logits, dim=1), target, epsilons=epsilons, form=form), reduction)


def focal_loss(logits: Tensor, target: Tensor, *, gamma: float = 2.0, reduction: str = "mean") -> Tensor:
    """Focal loss (Lin et al., 2017): ``-(1 - p_t) ** gamma * log p_t``; ``gamma = 0`` is cross-entropy.

    Raises
    ------
    ValueError
        For ``gamma < 0`` and the input errors of :func:`cross_entropy`.

    Examples
    --------
    >>> logits = torch.log(torch.tensor([[0.5, 0.5]]))
    >>> round(float(focal_loss(logits, torch.tensor([0]), gamma=1.0)), 4)  # 0.5 log 2
    0.3466
    """
    _check_logits_target(logits, target)
    _check_nonnegative("gamma", gamma)
    _check_reduction(reduction)
    return _reduce(_focal_terms(torch.log_softmax(logits, dim=1), target, gamma=gamma), reduction)


def label_smoothing_loss(logits: Tensor, target: Tensor, *, alpha: float = 0.1, reduction: str = "mean") -> Tensor:
    """Cross-entropy against ``(1 - alpha) * onehot + alpha / n_classes``.

    Equals ``torch.nn.functional.cross_entropy(..., label_smoothing=alpha)``.

    Raises
    ------
    ValueError
        For ``alpha`` outside [0, 1] and the input errors of :func:`cross_entropy`.

    Examples
    --------
    >>> round(float(label_smoothing_loss(torch.zeros(1, 4), torch.tensor([2]), alpha=0.2)), 4)
    1.3863
    """
    _check_logits_target(logits, target)
    _check_finite_number("alpha", alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"Expected `alpha` in [0, 1], got {alpha!r}")
    _check_reduction(reduction)
    return _reduce(_label_smoothing_terms(torch.log_softmax(logits, dim=1), target, alpha=alpha), reduction)
