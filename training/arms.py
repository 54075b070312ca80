"""The arm registry: what each arm is, for training and analysis alike.

An **arm** is one loss configuration: the :func:`training.losses.get_loss` name and parameters,
the learning rate, and how analysis and the report treat it (family, threshold τ, label, role).
Every other module asks this registry instead of parsing arm names.

>>> get_arm("dyn-0.7").threshold, get_arm("dyn-0.7").family, get_arm("dyn-0.7").lr
(0.7, 'dyn', 0.01)
>>> get_arm("ce-lr0.01").threshold is None, get_arm("ce-lr0.01").lr_tag
(True, 'lr0.01')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: the cross-entropy arm at the learning rate the paper's text states (the paper's "None" row)
REFERENCE_ARM = "ce"
#: cross-entropy at the dynamic arms' learning rate: separates the loss from the learning rate
CONTROL_ARM = "ce-lr0.01"


@dataclass(frozen=True)
class Arm:
    """One loss configuration.

    ``loss_params`` is a tuple of (name, value) pairs so the arm stays hashable. ``family`` groups
    arms in the tables (``dyn`` = the published dynamic loss, whose τ enters Table 2); ``lr_tag``
    marks an arm that differs from its family's usual learning rate.
    """

    name: str
    loss: str
    lr: float
    loss_params: tuple[tuple[str, Any], ...] = ()
    family: str = ""
    label: str = ""
    lr_tag: str = ""

    def loss_kwargs(self) -> dict[str, Any]:
        return dict(self.loss_params)

    @property
    def threshold(self) -> float | None:
        """τ of a dynamic-loss arm, ``None`` for every other arm."""
        return self.loss_kwargs().get("threshold") if self.loss == "dynamic" else None


def _dyn(tau: float, variant: str = "published", family: str = "dyn", label: str = "dynamic") -> Arm:
    return Arm(f"{family}-{tau:g}", "dynamic", 0.01, (("threshold", tau), ("variant", variant)), family,
               f"{label}, τ = {tau:g}")


def _dyn_lr(tau: float, lr: float) -> Arm:
    """The published dynamic loss at τ and another learning rate than its usual 0.01: family
    ``dyn-lr<lr>``, so that nothing taking the ``dyn`` family (Table 2 over τ, the report's pages)
    mixes learning rates."""
    return Arm(f"dyn-{tau:g}-lr{lr:g}", "dynamic", lr, (("threshold", tau), ("variant", "published")),
               f"dyn-lr{lr:g}", f"dynamic, τ = {tau:g}, lr {lr:g}", f"lr{lr:g}")


#: every known arm. Cross-entropy at lr 0.1 (the paper's text, and the authors' code), the dynamic
#: loss at 0.01 (the authors' code: a tenth of the rate tuned for cross-entropy; the text says 0.1);
#: ``ce-lr0.01`` is the control at the dynamic arms' learning rate. Related-loss arms use 0.01.
#: Arms tagged ``lr<x>`` are the same losses at another rate: the text's protocol and the tuning grid.
ARMS: dict[str, Arm] = {
    a.name: a
    for a in [
        Arm("ce", "ce", 0.1, (), "ce", "cross-entropy, lr 0.1"),
        *(_dyn(t) for t in (0.6, 0.7, 0.8, 0.9)),
        Arm("ce-lr0.01", "ce", 0.01, (), "ce", "cross-entropy, lr 0.01", "lr0.01"),
        _dyn(0.7, "keras", "keras", "dynamic (Keras original)"),
        _dyn(0.7, "soft", "soft", "dynamic (soft)"),
        Arm("poly1", "poly1", 0.01, (("epsilon", 1.0),), "poly1", "Poly-1 (ε = 1)"),
        Arm("focal", "focal", 0.01, (("gamma", 2.0),), "focal", "focal (γ = 2)"),
        Arm("ls-0.1", "label_smoothing", 0.01, (("alpha", 0.1),), "ls", "label smoothing (α = 0.1)"),
        Arm("superloss", "superloss", 0.01, (("lam", 1.0),), "superloss", "SuperLoss (λ = 1)"),
        # the paper's learning-rate grid for cross-entropy and the dynamic loss at τ = 0.7 (tuning),
        # and every dynamic arm at the text's lr 0.1 (the text's protocol)
        *(Arm(f"ce-lr{lr:g}", "ce", lr, (), "ce", f"cross-entropy, lr {lr:g}", f"lr{lr:g}") for lr in (0.05, 0.001)),
        *(_dyn_lr(t, 0.1) for t in (0.6, 0.7, 0.8, 0.9)),
        *(_dyn_lr(0.7, lr) for lr in (0.05, 0.001)),
    ]
}
#: arms every preset trains unless told otherwise
DEFAULT_ARMS: tuple[str, ...] = ("ce", "dyn-0.6", "dyn-0.7", "dyn-0.8", "dyn-0.9", "ce-lr0.01")
#: the related losses compared with the learning-rate control ``ce-lr0.01`` under one protocol (all
#: at lr 0.01): the published dynamic loss at τ = 0.7, its soft and Keras forms, and losses from the
#: literature on confident or hard samples
RELATED_ARMS: tuple[str, ...] = ("dyn-0.7", "soft-0.7", "keras-0.7", "poly1", "focal", "ls-0.1", "superloss")
#: the paper's learning-rate grid (seed text; the authors' scripts/tune.py), searched there for
#: cross-entropy only
LR_GRID: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1)
#: the text's protocol: every arm at lr 0.1 (the dynamic arms as ``dyn-<τ>-lr0.1``)
TEXT_PROTOCOL_ARMS: tuple[str, ...] = ("ce", "dyn-0.6-lr0.1", "dyn-0.7-lr0.1", "dyn-0.8-lr0.1", "dyn-0.9-lr0.1")


def at_lr(arm: str, lr: float) -> str:
    """The registered arm with ``arm``'s loss and parameters at learning rate ``lr``.

    >>> at_lr("ce", 0.01), at_lr("dyn-0.7", 0.1), at_lr("dyn-0.7-lr0.1", 0.01)
    ('ce-lr0.01', 'dyn-0.7-lr0.1', 'dyn-0.7')
    """
    a = get_arm(arm)
    group = _LR_FAMILIES if a.family in _LR_FAMILIES else (a.family,)
    same = [b for b in ARMS.values() if b.loss == a.loss and b.loss_params == a.loss_params and b.family in group]
    for b in same:
        if b.lr == lr:
            return b.name
    raise ValueError(f"No registered arm is {arm!r} at lr {lr:g}; its registered learning rates: "
                     f"{sorted({b.lr for b in same})}")


#: families of the published dynamic loss: its usual lr 0.01 (``dyn``) and the other learning rates
_LR_FAMILIES = ("dyn", "dyn-lr0.1", "dyn-lr0.05", "dyn-lr0.001")


#: display order in tables and figures: the two cross-entropy arms, then the dynamic arms by τ
ARM_ORDER: tuple[str, ...] = ("ce", "ce-lr0.01", "dyn-0.6", "dyn-0.7", "dyn-0.8", "dyn-0.9")


def get_arm(name: str) -> Arm:
    if name not in ARMS:
        raise ValueError(f"Unknown arm {name!r}; expected one of {sorted(ARMS)}")
    return ARMS[name]
