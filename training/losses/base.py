"""Constants, argument checks and small helpers shared by the losses (:mod:`training.losses`).

Public functions call the checks; private helpers trust their inputs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

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
