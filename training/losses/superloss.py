"""SuperLoss (Castells et al., 2020): the closed-form confidence σ through Lambert W, the
functional loss and the module that keeps the threshold's moving average.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from training.losses.base import (
    _check_finite_number,
    _check_logits_target,
    _check_positive,
    _check_reduction,
    _reduce,
)
from training.losses.terms import _ce_terms


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


def _superloss_terms(log_probs: Tensor, target: Tensor, *, tau: float, lam: float = 1.0) -> Tensor:
    return _superloss_of_ce(_ce_terms(log_probs, target), tau=tau, lam=lam)[0]


def _superloss_of_ce(ce: Tensor, *, tau: float, lam: float) -> tuple[Tensor, Tensor]:
    """The SuperLoss formula, once: per-sample ``(ce - tau) * sigma + lam * (log sigma) ** 2`` and sigma."""
    sigma = superloss_sigma(ce, tau=tau, lam=lam)
    # log sigma = -W0(...), computed from sigma itself (sigma > 0 always)
    return (ce - tau) * sigma + lam * torch.log(sigma) ** 2, sigma
