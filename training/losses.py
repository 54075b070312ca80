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
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "DYNAMIC_VARIANTS",
    "KERAS_EPSILON",
    "LOSSES",
    "LossEntry",
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

REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")
DYNAMIC_VARIANTS: tuple[str, ...] = ("published", "soft", "keras")
#: Keras' default fuzz factor ``keras.backend.epsilon()``, used by its categorical cross-entropy
KERAS_EPSILON: float = 1e-7
#: scale applied to the probabilities below the threshold by the dynamic loss
DYNAMIC_SCALE: float = 0.1
POLY_FORMS: tuple[str, ...] = ("paper", "blog")


# --------------------------------------------------------------------------------------------
# argument checks (public functions call these; private helpers trust their inputs)
# --------------------------------------------------------------------------------------------
def _check_logits_target(logits: Tensor, target: Tensor, *, name: str = "logits") -> None:
    if not isinstance(logits, Tensor):
        raise ValueError(f"Expected `{name}` to be a torch.Tensor, got {type(logits).__name__}")
    if not isinstance(target, Tensor):
        raise ValueError(f"Expected `target` to be a torch.Tensor, got {type(target).__name__}")
    if logits.ndim != 2:
        raise ValueError(
            f"Expected `{name}` of shape (n_samples, n_classes), got shape {tuple(logits.shape)}"
        )
    if not logits.is_floating_point():
        raise ValueError(f"Expected `{name}` to be floating point, got dtype {logits.dtype}")
    if target.ndim != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(
            f"Expected `target` of shape ({logits.shape[0]},) to match `{name}` of shape "
            f"{tuple(logits.shape)}, got shape {tuple(target.shape)}"
        )
    if target.is_floating_point() or target.is_complex() or target.dtype == torch.bool:
        raise ValueError(f"Expected `target` to hold integer class indices, got dtype {target.dtype}")
    n_classes = logits.shape[1]
    if n_classes < 1:
        raise ValueError(f"Expected `{name}` to have at least 1 class, got shape {tuple(logits.shape)}")
    if target.numel() > 0:
        lo, hi = int(target.min()), int(target.max())
        if lo < 0 or hi >= n_classes:
            raise ValueError(
                f"Expected `target` in [0, {n_classes - 1}] for {n_classes} classes, "
                f"got values in [{lo}, {hi}]"
            )
    if not bool(torch.isfinite(logits).all()):
        n_bad = int((~torch.isfinite(logits)).sum())
        raise ValueError(f"Expected finite `{name}`, got {n_bad} non-finite value(s)")


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"Expected `reduction` to be one of {REDUCTIONS}, got {reduction!r}")


def _check_threshold(threshold: float) -> None:
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not (0.0 < threshold <= 1.0):
        raise ValueError(f"Expected `threshold` in (0, 1], got {threshold!r}")


def _check_finite_number(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"Expected `{name}` to be a finite number, got {value!r}")


def _check_nonnegative(name: str, value: float) -> None:
    _check_finite_number(name, value)
    if value < 0:
        raise ValueError(f"Expected `{name}` >= 0, got {value!r}")


def _check_positive(name: str, value: float) -> None:
    _check_finite_number(name, value)
    if value <= 0:
        raise ValueError(f"Expected `{name}` > 0, got {value!r}")


def _reduce(terms: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return terms
    if reduction == "sum":
        return terms.sum()
    return terms.sum() / terms.shape[0] if terms.shape[0] > 0 else terms.sum() * float("nan")


def _true_class(log_probs: Tensor, target: Tensor) -> Tensor:
    return log_probs.gather(1, target.long().unsqueeze(1)).squeeze(1)


def _one_minus_p(logp_t: Tensor) -> Tensor:
    """``1 - p_t`` from ``log p_t`` without cancellation near ``p_t = 1``."""
    return -torch.expm1(logp_t)


# --------------------------------------------------------------------------------------------
# per-sample terms on log-probabilities
# --------------------------------------------------------------------------------------------
def _ce_terms(log_probs: Tensor, target: Tensor) -> Tensor:
    return -_true_class(log_probs, target)


def _dynamic_terms(
    log_probs: Tensor, target: Tensor, *, threshold: float, variant: str = "published", fill: float = 1.0
) -> Tensor:
    if variant == "keras":
        return _dynamic_keras_terms(log_probs, target, threshold=threshold, fill=fill)
    logp_t = _true_class(log_probs, target)
    confident = logp_t.exp() > threshold
    below = -math.log(DYNAMIC_SCALE) - logp_t  # -log(0.1 p_t)
    if variant == "published":
        above = torch.full_like(logp_t, -math.log(fill))  # -log(fill): a constant
    else:  # soft
        above = -DYNAMIC_SCALE * logp_t  # -log(p_t ** 0.1)
    return torch.where(confident, above, below)


def _dynamic_keras_terms(log_probs: Tensor, target: Tensor, *, threshold: float, fill: float = 1.0) -> Tensor:
    # q = fill * 1[p > tau] + 0.1 p 1[p <= tau], elementwise over classes; Keras'
    # categorical_crossentropy(from_logits=False) then renormalises q to sum 1, clips it to
    # [eps, 1 - eps] and returns -sum_c y_c log q_c.
    probs = log_probs.exp()
    q = torch.where(probs > threshold, torch.full_like(probs, fill), DYNAMIC_SCALE * probs)
    q = q / q.sum(dim=1, keepdim=True)
    q = q.clamp(KERAS_EPSILON, 1.0 - KERAS_EPSILON)
    return -_true_class(torch.log(q), target)


def _poly_terms(log_probs: Tensor, target: Tensor, *, epsilons: Sequence[float], form: str = "paper") -> Tensor:
    logp_t = _true_class(log_probs, target)
    one_minus = _one_minus_p(logp_t)
    out = -logp_t
    for j, eps in enumerate(epsilons, start=1):
        coef = eps / j if form == "blog" else eps
        out = out + coef * one_minus**j
    return out


def _focal_terms(log_probs: Tensor, target: Tensor, *, gamma: float) -> Tensor:
    logp_t = _true_class(log_probs, target)
    return -(_one_minus_p(logp_t).clamp(min=0.0) ** gamma) * logp_t


def _label_smoothing_terms(log_probs: Tensor, target: Tensor, *, alpha: float) -> Tensor:
    return -(1.0 - alpha) * _true_class(log_probs, target) - alpha * log_probs.mean(dim=1)


def _superloss_terms(log_probs: Tensor, target: Tensor, *, tau: float, lam: float = 1.0) -> Tensor:
    return _superloss_of_ce(_ce_terms(log_probs, target), tau=tau, lam=lam)[0]


def _superloss_of_ce(ce: Tensor, *, tau: float, lam: float) -> tuple[Tensor, Tensor]:
    """The SuperLoss formula, once: per-sample ``(ce - tau) * sigma + lam * (log sigma) ** 2`` and sigma."""
    sigma = superloss_sigma(ce, tau=tau, lam=lam)
    # log sigma = -W0(...), computed from sigma itself (sigma > 0 always)
    return (ce - tau) * sigma + lam * torch.log(sigma) ** 2, sigma


def _dm_terms(log_probs: Tensor, target: Tensor, *, beta: float = 1.0, lam: float = 1.0) -> Tensor:
    ce = _ce_terms(log_probs, target)
    with torch.no_grad():
        probs = log_probs.exp()
        w = _dm_weights_from_log_probs(log_probs, target, beta=beta, lam=lam)
        onehot = F.one_hot(target.long(), probs.shape[1]).to(probs.dtype)
        # the L1 norm of d ce / d logits = p - y, computed as autograd will compute it
        l1 = (probs - onehot).abs().sum(dim=1).clamp(min=torch.finfo(probs.dtype).tiny)
    return (w / l1) * ce


def _dm_weights_from_log_probs(log_probs: Tensor, target: Tensor, *, beta: float, lam: float) -> Tensor:
    logp_t = _true_class(log_probs, target)
    p_t = logp_t.exp()
    score = beta * p_t**lam * _one_minus_p(logp_t)
    return torch.softmax(score, dim=0)


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


# --------------------------------------------------------------------------------------------
# SuperLoss
# --------------------------------------------------------------------------------------------
def lambert_w0(x: Tensor, *, n_iter: int = 12) -> Tensor:
    """Principal branch ``W0`` of the Lambert W function for real ``x >= -1/e``, in torch.

    Solves ``w * exp(w) = x`` with Halley iterations in float64 from a branch-point series
    (``x`` near ``-1/e``), ``log1p(x)`` (moderate ``x``) or ``log x - log log x`` (large ``x``),
    and returns the dtype of ``x``. Values below ``-1/e`` (beyond a few ulps) give NaN. No gradient is defined.

    Examples
    --------
    >>> lambert_w0(torch.tensor([0.0, math.e, -1 / math.e])).tolist()
    [0.0, 1.0, -1.0]
    """
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    with torch.no_grad():
        z = x.detach().to(torch.float64)
        inv_e = math.exp(-1.0)
        # inputs within a few ulps of -1/e (rounding of the branch point) are the branch point
        tol = 4.0 * torch.finfo(dtype).eps
        invalid = z < -inv_e - tol
        z = z.clamp(min=-inv_e)
        p = torch.sqrt((2.0 * (math.e * z + 1.0)).clamp(min=0.0))
        w_branch = -1.0 + p - p**2 / 3.0 + (11.0 / 72.0) * p**3
        w_mid = torch.log1p(z.clamp(min=-0.3))
        zl = z.clamp(min=3.0)
        w_big = torch.log(zl) - torch.log(torch.log(zl))
        w = torch.where(z < -0.3, w_branch, torch.where(z > 3.0, w_big, w_mid))
        for _ in range(n_iter):
            ew = torch.exp(w)
            f = w * ew - z
            wp1 = w + 1.0
            denom = ew * wp1 - (w + 2.0) * f / (2.0 * wp1)
            step = torch.where((wp1.abs() > 1e-12) & (denom != 0), f / denom, torch.zeros_like(w))
            w = w - step
        w = torch.where(invalid, torch.full_like(w, float("nan")), w)
    return w.to(dtype)


def superloss_sigma(ce: Tensor, *, tau: float, lam: float = 1.0) -> Tensor:
    """SuperLoss confidence ``sigma_i = exp(-W0(max(beta_i, -2/e) / 2))``, ``beta_i = (ce_i - tau) / lam``.

    Detached: SuperLoss treats sigma as a constant. ``sigma`` lies in ``(0, e]``; it is 1 at
    ``ce = tau``, above 1 for easy samples (``ce < tau``), below 1 for hard ones.

    Parameters
    ----------
    ce : Tensor of shape (n_samples,)
        Per-sample cross-entropy.
    tau : float
    lam : float > 0

    Raises
    ------
    ValueError
        For ``lam <= 0`` or a non-finite ``tau``.

    Examples
    --------
    >>> superloss_sigma(torch.tensor([1.0]), tau=1.0).item()
    1.0
    """
    _check_positive("lam", lam)
    _check_finite_number("tau", tau)
    beta = (ce.detach() - tau) / lam
    y = 0.5 * torch.clamp(beta, min=-2.0 / math.e)
    return torch.exp(-lambert_w0(y)).to(ce.dtype)


def superloss(
    logits: Tensor, target: Tensor, *, tau: float | None = None, lam: float = 1.0, reduction: str = "mean"
) -> Tensor:
    """SuperLoss (Castells et al., 2020) around cross-entropy, with a constant threshold ``tau``.

    ``L_i = (ce_i - tau) * sigma_i + lam * (log sigma_i) ** 2`` with ``sigma_i`` from
    :func:`superloss_sigma` (no gradient). ``tau=None`` uses ``log(n_classes)``. For a ``tau``
    that follows an exponential moving average of the batch-mean loss use :class:`SuperLoss`.

    Raises
    ------
    ValueError
        For ``lam <= 0``, a non-finite ``tau`` and the input errors of :func:`cross_entropy`.

    Examples
    --------
    >>> logits = torch.zeros(2, 3)  # ce = log 3 = tau: sigma = 1, loss 0
    >>> float(superloss(logits, torch.tensor([0, 1])))
    0.0
    """
    _check_logits_target(logits, target)
    if tau is None:
        tau = math.log(logits.shape[1])
    _check_finite_number("tau", tau)
    _check_positive("lam", lam)
    _check_reduction(reduction)
    return _reduce(_superloss_terms(torch.log_softmax(logits, dim=1), target, tau=tau, lam=lam), reduction)


def update_tau_ema(tau: float, ce: Tensor, *, momentum: float = 0.1) -> float:
    """One EMA step of the SuperLoss threshold: ``tau - momentum * (tau - mean(ce))``.

    Examples
    --------
    >>> update_tau_ema(1.0, torch.tensor([2.0, 4.0]))
    1.2
    """
    _check_finite_number("tau", tau)
    _check_finite_number("momentum", momentum)
    if not 0.0 < momentum <= 1.0:
        raise ValueError(f"Expected `momentum` in (0, 1], got {momentum!r}")
    return float(tau - momentum * (tau - float(ce.detach().mean())))


class SuperLoss(nn.Module):
    """SuperLoss with explicit threshold state.

    Parameters
    ----------
    tau : float or None
        Initial (or constant) threshold; ``None`` means ``log(n_classes)`` at the first call.
    lam : float > 0
        Regularisation strength lambda.
    ema : bool
        If True, ``tau`` is an exponential moving average of the batch-mean cross-entropy:
        on every call in training mode, *before* computing the loss,
        ``tau <- tau - momentum * (tau - mean ce)``. In eval mode ``tau`` is frozen.
    momentum : float in (0, 1]
    reduction : {"mean", "sum", "none"}

    Attributes
    ----------
    tau : float or None
        Current threshold (saved in ``state_dict`` as the buffer ``tau_state``; NaN = unset).
    last_sigma : Tensor or None
        The per-sample confidences ``sigma`` of the last call, shape (n_samples,).

    Examples
    --------
    >>> loss = SuperLoss(tau=1.0, ema=True)
    >>> _ = loss(torch.zeros(2, 3), torch.tensor([0, 1]))
    >>> round(loss.tau, 4)  # 1 - 0.1 * (1 - log 3)
    1.0099
    """

    def __init__(
        self,
        tau: float | None = None,
        *,
        lam: float = 1.0,
        ema: bool = False,
        momentum: float = 0.1,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if tau is not None:
            _check_finite_number("tau", tau)
        _check_positive("lam", lam)
        _check_finite_number("momentum", momentum)
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"Expected `momentum` in (0, 1], got {momentum!r}")
        _check_reduction(reduction)
        self.lam = float(lam)
        self.ema = bool(ema)
        self.momentum = float(momentum)
        self.reduction = reduction
        self.register_buffer("tau_state", torch.tensor(float("nan") if tau is None else float(tau), dtype=torch.float64))
        self.last_sigma: Tensor | None = None

    @property
    def tau(self) -> float | None:
        value = float(self.tau_state)
        return None if math.isnan(value) else value

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        _check_logits_target(logits, target)
        log_probs = torch.log_softmax(logits, dim=1)
        ce = _ce_terms(log_probs, target)
        tau = self.tau
        if tau is None:
            tau = math.log(logits.shape[1])
        if self.ema and self.training:
            tau = update_tau_ema(tau, ce, momentum=self.momentum)
        self.tau_state.fill_(tau)
        terms, self.last_sigma = _superloss_of_ce(ce, tau=tau, lam=self.lam)
        return _reduce(terms, self.reduction)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, lam={self.lam}, ema={self.ema}, momentum={self.momentum}"


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
