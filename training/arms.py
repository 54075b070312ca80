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


#: every known arm; the paper's lr is 0.1 for cross-entropy and 0.01 for the dynamic loss, and
#: ``ce-lr0.01`` is the control at the dynamic arms' learning rate. Related-loss arms use 0.01.
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
    ]
}
#: arms every preset trains unless told otherwise
DEFAULT_ARMS: tuple[str, ...] = ("ce", "dyn-0.6", "dyn-0.7", "dyn-0.8", "dyn-0.9", "ce-lr0.01")
#: the related losses compared with the learning-rate control ``ce-lr0.01`` under one protocol (all
#: at lr 0.01): the published dynamic loss at τ = 0.7, its soft and Keras forms, and losses from the
#: literature on confident or hard samples
RELATED_ARMS: tuple[str, ...] = ("dyn-0.7", "soft-0.7", "keras-0.7", "poly1", "focal", "ls-0.1", "superloss")
#: display order in tables and figures: the two cross-entropy arms, then the dynamic arms by τ
ARM_ORDER: tuple[str, ...] = ("ce", "ce-lr0.01", "dyn-0.6", "dyn-0.7", "dyn-0.8", "dyn-0.9")


def get_arm(name: str) -> Arm:
    if name not in ARMS:
        raise ValueError(f"Unknown arm {name!r}; expected one of {sorted(ARMS)}")
    return ARMS[name]
