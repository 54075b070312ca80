"""Per-sample gradients of the toolkit's losses and their emphasis curves.

Gradients are taken by autograd in float64 through the losses of :mod:`training.losses`:

- with respect to the **logits** ``z``: ``d L / d z`` for the loss computed from
  ``log_softmax(z)``;
- with respect to the **probabilities** ``p`` themselves: ``p`` is a leaf tensor and the loss's
  per-sample terms are evaluated on ``log(p)`` (no renormalisation, no softmax Jacobian). This is
  the "gradient on the softmaxed variable" of the paper's demonstration; for cross-entropy it is
  ``-1 / p_t`` on the true class and 0 elsewhere.

``reduction="sum"`` (the default) gives each sample's own gradient (every loss here is a sum of
per-sample terms; the batch coupling of derivative manipulation and SuperLoss goes through
detached weights only). ``reduction="mean"`` divides by the batch size, as an optimiser sees it.

The **emphasis** of a loss at a sample is ``|d L_i / d z_t|``, the magnitude of the gradient on
the true-class logit (for cross-entropy ``1 - p_t``). :func:`emphasis_curves` tabulates it against
``p_t`` for every loss and variant; the logits for a given ``p_t`` are built by
:func:`logits_for_true_prob` (true class 0, the remaining mass spread uniformly).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CurveSpec",
    "DEFAULT_CURVE_SPECS",
    "emphasis_curves",
    "logits_for_true_prob",
    "loss_gradients",
]

WRT: tuple[str, ...] = ("logits", "probs")


def _check_array_2d(name: str, x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"Expected `{name}` of shape (n_samples, n_classes), got shape {arr.shape}")
    return arr


def _check_labels(labels: np.ndarray, n_samples: int) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.shape[0] != n_samples:
        raise ValueError(f"Expected `labels` of shape ({n_samples},), got shape {lab.shape}")
    if lab.size and not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"Expected integer `labels`, got dtype {lab.dtype}")
    return lab.astype(np.int64)


def loss_gradients(
    logits: np.ndarray,
    labels: np.ndarray,
    loss: str = "ce",
    *,
    wrt: str = "logits",
    reduction: str = "sum",
    **params: Any,
) -> np.ndarray:
    """Gradient of a loss of :mod:`training.losses` w.r.t. the logits or the probabilities.

    Parameters
    ----------
    logits : array of shape (n_samples, n_classes)
    labels : integer array of shape (n_samples,)
    loss : str
        A name of :data:`training.losses.LOSSES`.
    wrt : {"logits", "probs"}
        ``"probs"`` differentiates the loss terms evaluated on ``log(p)``, ``p = softmax(logits)``
        a leaf (see the module docstring).
    reduction : {"sum", "mean"}
        ``"sum"``: per-sample gradients; ``"mean"``: divided by ``n_samples``.
    **params
        The loss's parameters (``threshold=0.7, variant="soft"`` for ``"dynamic"``, ...).
        For ``"superloss"`` ``tau`` must be given (a constant threshold).

    Returns
    -------
    np.ndarray of shape (n_samples, n_classes), float64

    Raises
    ------
    ValueError
        For an unknown ``loss``, ``wrt`` or ``reduction``, and the loss's own argument errors.

    Examples
    --------
    >>> z = np.log([[0.75, 0.25]])
    >>> loss_gradients(z, np.array([0])).round(4).tolist()  # softmax - onehot
    [[-0.25, 0.25]]
    >>> loss_gradients(z, np.array([0]), wrt="probs").round(4).tolist()  # -1 / p_t
    [[-1.3333, 0.0]]
    """
    import torch  # here, not at import: the report reads this module's claims without torch

    from training.losses import LOSSES

    if loss not in LOSSES:
        raise ValueError(f"Expected `loss` to be one of {tuple(LOSSES)}, got {loss!r}")
    if wrt not in WRT:
        raise ValueError(f"Expected `wrt` to be one of {WRT}, got {wrt!r}")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"Expected `reduction` to be one of ('sum', 'mean'), got {reduction!r}")
    if loss == "superloss" and params.get("tau") is None:
        raise ValueError("Expected a constant `tau` for loss 'superloss', got none")
    z_np = _check_array_2d("logits", logits)
    lab = _check_labels(labels, z_np.shape[0])
    z = torch.tensor(z_np, dtype=torch.float64)
    target = torch.from_numpy(lab)
    # the public loss validates the inputs and parameters once
    with torch.no_grad():
        LOSSES[loss].loss(z, target, reduction="sum", **params)
    if wrt == "logits":
        z.requires_grad_(True)
        total = LOSSES[loss].loss(z, target, reduction=reduction, **params)
        (grad,) = torch.autograd.grad(total, z)
    else:
        probs = torch.softmax(z, dim=1).detach().requires_grad_(True)
        terms = LOSSES[loss].terms(torch.log(probs), target, **params)
        total = terms.sum() / (terms.shape[0] if reduction == "mean" else 1)
        (grad,) = torch.autograd.grad(total, probs)
    return grad.numpy()


def logits_for_true_prob(p_t: np.ndarray, *, n_classes: int) -> np.ndarray:
    """Logits whose softmax gives probability ``p_t`` to class 0 and ``(1 - p_t) / (C - 1)`` to each other class.

    ``z_0 = log p_t``, ``z_c = log((1 - p_t) / (C - 1))`` for ``c > 0`` (softmax is invariant to a
    shift, so these are one representative). The true class of every row is 0.

    Parameters
    ----------
    p_t : array of shape (n_points,), values in (0, 1)
    n_classes : int >= 2

    Returns
    -------
    np.ndarray of shape (n_points, n_classes)

    Raises
    ------
    ValueError
        For ``n_classes < 2`` or ``p_t`` outside the open interval (0, 1).

    Examples
    --------
    >>> z = logits_for_true_prob(np.array([0.4]), n_classes=4)
    >>> np.round(np.exp(z) / np.exp(z).sum(), 4).tolist()
    [[0.4, 0.2, 0.2, 0.2]]
    """
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"Expected `n_classes` to be an integer >= 2, got {n_classes!r}")
    p = np.asarray(p_t, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"Expected `p_t` of shape (n_points,), got shape {p.shape}")
    if p.size and not (np.all(p > 0.0) and np.all(p < 1.0)):
        raise ValueError(f"Expected `p_t` in the open interval (0, 1), got values in [{p.min()}, {p.max()}]")
    z = np.empty((p.shape[0], n_classes), dtype=np.float64)
    z[:, 0] = np.log(p)
    z[:, 1:] = np.log((1.0 - p) / (n_classes - 1))[:, None]
    return z


@dataclass(frozen=True)
class CurveSpec:
    """One curve of :func:`emphasis_curves`: a loss name, a variant label and its parameters."""

    loss: str
    variant: str
    params: Mapping[str, Any] = field(default_factory=dict)


#: the curves tabulated by default: every loss of the toolkit and every dynamic-loss variant
DEFAULT_CURVE_SPECS: tuple[CurveSpec, ...] = (
    CurveSpec("ce", "-"),
    CurveSpec("dynamic", "published", {"threshold": 0.7, "variant": "published"}),
    CurveSpec("dynamic", "soft", {"threshold": 0.7, "variant": "soft"}),
    CurveSpec("dynamic", "keras", {"threshold": 0.7, "variant": "keras"}),
    CurveSpec("poly1", "-", {"epsilon": 1.0}),
    CurveSpec("polyn", "paper", {"epsilons": [1.0, 1.0], "form": "paper"}),
    CurveSpec("polyn", "blog", {"epsilons": [1.0, 1.0], "form": "blog"}),
    CurveSpec("focal", "-", {"gamma": 2.0}),
    CurveSpec("label_smoothing", "-", {"alpha": 0.1}),
    CurveSpec("superloss", "-", {"tau": None, "lam": 1.0}),
    CurveSpec("dm", "-", {"beta": 2.0, "lam": 1.0}),
)


def emphasis_curves(
    p_t: np.ndarray,
    *,
    n_classes: int = 10,
    specs: Sequence[CurveSpec] = DEFAULT_CURVE_SPECS,
) -> pd.DataFrame:
    """Emphasis ``|d L_i / d z_t|`` against the true-class probability, for several losses.

    For each spec the points ``p_t`` form one batch built by :func:`logits_for_true_prob` (true
    class 0, the rest of the mass spread uniformly over ``n_classes - 1`` classes); the per-sample
    gradient on the logits is taken with ``reduction="sum"``. For ``"superloss"`` a ``tau`` of
    None means ``log(n_classes)``. For ``"dm"`` the emphasis weights are normalised over the batch,
    so its curve is the weight density over this grid (its values depend on the grid size).

    Parameters
    ----------
    p_t : array of shape (n_points,), values in (0, 1)
    n_classes : int >= 2
    specs : sequence of CurveSpec

    Returns
    -------
    pandas.DataFrame
        Long format, one row per (spec, point), columns ``loss``, ``variant``, ``params`` (JSON
        of the parameters), ``n_classes``, ``p_t``, ``emphasis`` (``|dL/dz_t|``) and ``grad_l1``
        (the L1 norm of the whole logit gradient of the sample).

    Examples
    --------
    >>> df = emphasis_curves(np.array([0.25, 0.5]), specs=[CurveSpec("ce", "-")])
    >>> df["emphasis"].round(6).tolist()  # 1 - p_t
    [0.75, 0.5]
    """
    p = np.asarray(p_t, dtype=np.float64)
    logits = logits_for_true_prob(p, n_classes=n_classes)
    labels = np.zeros(p.shape[0], dtype=np.int64)
    frames = []
    for spec in specs:
        params = dict(spec.params)
        if spec.loss == "superloss" and params.get("tau") is None:
            params["tau"] = math.log(n_classes)
        grad = loss_gradients(logits, labels, spec.loss, **params)
        frames.append(
            pd.DataFrame(
                {
                    "loss": spec.loss,
                    "variant": spec.variant,
                    "params": json.dumps(dict(spec.params), sort_keys=True),
                    "n_classes": int(n_classes),
                    "p_t": p,
                    "emphasis": np.abs(grad[:, 0]),
                    "grad_l1": np.abs(grad).sum(axis=1),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
