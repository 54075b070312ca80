"""Registry of the paper's claims, each evaluated by computation into a verdict.

A claim module exposes ``CLAIMS``: a list of :class:`ClaimSpec`. :func:`evaluate_all` runs every
registered evaluator and returns :class:`ClaimResult` objects in registry order.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Literal

Verdict = Literal["holds", "fails", "conditional"]
VERDICTS: tuple[str, ...] = ("holds", "fails", "conditional")

#: modules holding ``CLAIMS``, in the order the audit lists them
CLAIM_MODULES: tuple[str, ...] = (
    "analysis.audit.loss_claims",
    "analysis.audit.split_claims",
    "analysis.audit.table_claims",
)


@dataclass(frozen=True)
class ClaimResult:
    """A claim with its computed verdict, evidence text and the deciding numbers."""

    id: str
    claim: str
    verdict: Verdict
    evidence: str
    values: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"Expected `verdict` in {VERDICTS}, got {self.verdict!r} for claim {self.id!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClaimSpec:
    """A registered claim: its id, the paper's statement, and the function that evaluates it."""

    id: str
    claim: str
    evaluate: Callable[[], ClaimResult]


def registered_claims() -> list[ClaimSpec]:
    specs: list[ClaimSpec] = []
    for name in CLAIM_MODULES:
        specs.extend(importlib.import_module(name).CLAIMS)  # a missing claim module is an error
    ids = [s.id for s in specs]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise RuntimeError(f"Duplicate claim ids in the audit registry: {sorted(dupes)}")
    return specs


def evaluate_all(ids: list[str] | None = None) -> list[ClaimResult]:
    """Evaluate the registered claims (all, or those in ``ids``) in registry order."""
    specs = registered_claims()
    if ids is not None:
        known = {s.id for s in specs}
        unknown = sorted(set(ids) - known)
        if unknown:
            raise ValueError(f"Unknown claim ids {unknown}; known: {sorted(known)}")
        specs = [s for s in specs if s.id in ids]
    return [s.evaluate() for s in specs]
