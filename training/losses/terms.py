"""Per-sample loss terms on log-probabilities, ``terms(log_probs, target, **params) -> (n_samples,)``:
what :data:`training.losses.LOSSES` registers and the audit differentiates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from training.losses.base import DYNAMIC_SCALE, KERAS_EPSILON, _one_minus_p, _true_class


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
