"""Registry of the paper's claims, each evaluated by computation into a verdict.

A claim is registered once, where it is evaluated: the decorator :func:`claim` gives an evaluator
its id, statement and source, and the evaluator returns a :class:`Finding` (verdict, evidence,
deciding numbers). :func:`evaluate_all` runs the claims of :data:`CLAIM_MODULES` and returns
:class:`ClaimResult` objects (spec + finding) in registry order: module order, then definition
order within a module.

Every claim names its **source** (:data:`SOURCES`): where the statement or the evidence comes
from. Claims whose source is "our caches" read the analysed results of one preset
(``<results root>/<preset>/*.csv``, written by ``dynloss analyze``); they list the result tables
they need in ``reads``, take the preset as their one argument, and are left out of the audit
while that preset has no such results (:func:`missing_results`).
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

from training.paths import DataRoot

Verdict = Literal["holds", "fails", "conditional"]
VERDICTS: tuple[str, ...] = ("holds", "fails", "conditional")

#: where a claim comes from: the paper's text (methods, results), its corrections note on the loss,
#: the authors' public code, the authors' own evaluation records (data/authors/), or our own caches
SOURCES: tuple[str, ...] = ("paper text", "corrections note", "authors' code", "authors' records", "our caches")

#: modules registering claims (with :func:`claim`), in the order the audit lists them
CLAIM_MODULES: tuple[str, ...] = (
    "analysis.audit.loss_claims",
    "analysis.audit.split_claims",
    "analysis.audit.table_claims",
    "analysis.audit.code_claims",
    "analysis.audit.authors_claims",
    "analysis.audit.cache_claims",
    "analysis.audit.reliability_claims",
)


@dataclass(frozen=True)
class Finding:
    """What an evaluator computed: its verdict, the evidence text and the deciding numbers."""

    verdict: Verdict
    evidence: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimResult:
    """A claim with its computed verdict, evidence text, source and the deciding numbers."""

    id: str
    claim: str
    verdict: Verdict
    evidence: str
    source: str = ""
    values: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"Expected `verdict` in {VERDICTS}, got {self.verdict!r} for claim {self.id!r}")
        if self.source and self.source not in SOURCES:
            raise ValueError(f"Expected `source` in {SOURCES}, got {self.source!r} for claim {self.id!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClaimSpec:
    """A registered claim: its id, the statement, its source, and the function that evaluates it.

    ``reads`` names the result tables of a preset the claim is computed from (e.g. ``("table1",)``);
    such a claim's ``evaluate`` takes the preset name. Claims with empty ``reads`` take no argument.
    """

    id: str
    claim: str
    source: str
    evaluate: Callable[..., Finding]
    reads: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"Expected `source` in {SOURCES}, got {self.source!r} for claim {self.id!r}")


#: the registered claims of each claim module, in definition order (filled by :func:`claim`)
_REGISTRY: dict[str, list[ClaimSpec]] = {}

F = TypeVar("F", bound=Callable[..., Finding])


def claim(id: str, *, source: str, text: str, reads: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Register the decorated evaluator as claim ``id`` (statement ``text``, from ``source``).

    The evaluator returns a :class:`Finding`; it takes the preset name and the data root
    (:class:`training.paths.DataRoot`, whose ``results_dir(preset)`` holds the tables) when ``reads``
    names result tables, no argument otherwise. It is returned unchanged, with its :class:`ClaimSpec` as
    ``.spec`` (for a claim that refers to another).
    """

    def register(fn: F) -> F:
        spec = ClaimSpec(id=id, claim=text, source=source, evaluate=fn, reads=tuple(reads))
        _REGISTRY.setdefault(fn.__module__, []).append(spec)
        fn.spec = spec  # type: ignore[attr-defined]
        return fn

    return register


def module_claims(module: str) -> list[ClaimSpec]:
    """The claims ``module`` registers, in definition order (a missing module is an error)."""
    importlib.import_module(module)
    return list(_REGISTRY.get(module, ()))


def registered_claims() -> list[ClaimSpec]:
    specs = [s for name in CLAIM_MODULES for s in module_claims(name)]
    ids = [s.id for s in specs]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise RuntimeError(f"Duplicate claim ids in the audit registry: {sorted(dupes)}")
    return specs


def missing_results(spec: ClaimSpec, preset: str, root: DataRoot) -> list[Path]:
    """The result files ``spec`` reads that the preset's results folder lacks (empty: evaluable)."""
    folder = root.results_dir(preset)
    return [folder / f"{name}.csv" for name in spec.reads if not (folder / f"{name}.csv").is_file()]


def _run(spec: ClaimSpec, preset: str, root: DataRoot) -> ClaimResult:
    finding = spec.evaluate(preset, root) if spec.reads else spec.evaluate()
    if not isinstance(finding, Finding):
        raise TypeError(f"Claim {spec.id!r}: its evaluator returned {type(finding).__name__}, expected a Finding")
    return ClaimResult(id=spec.id, claim=spec.claim, verdict=finding.verdict, evidence=finding.evidence,
                       source=spec.source, values=finding.values)


def evaluate_all(ids: list[str] | None = None, *, preset: str | None = None,
                 root: DataRoot | None = None) -> list[ClaimResult]:
    """Evaluate the registered claims (all, or those in ``ids``) in registry order.

    Claims that read a preset's results use ``preset``'s results under ``root``; they are left out
    when its results are missing, unless asked for by id, which is an error. Left None, ``preset``
    and ``root`` are read from the environment here, once (:func:`training.paths.default_preset`,
    :func:`training.paths.resolve_root`): a Python call is its own boundary.

    Raises
    ------
    ValueError
        For unknown ids, or a requested claim whose preset has no results (the message names the
        missing file and the command that writes it).
    """
    from training.paths import default_preset, resolve_root

    preset = preset or default_preset()
    root = root if root is not None else resolve_root()
    specs = registered_claims()
    if ids is not None:
        known = {s.id for s in specs}
        unknown = sorted(set(ids) - known)
        if unknown:
            raise ValueError(f"Unknown claim ids {unknown}; known: {sorted(known)}")
        specs = [s for s in specs if s.id in ids]
        for s in specs:
            missing = missing_results(s, preset, root)
            if missing:
                raise ValueError(f"Claim {s.id!r} reads the analysed results of preset {preset!r}, but "
                                 f"{missing[0]} is missing: run `dynloss analyze --preset {preset}`")
    return [_run(s, preset, root) for s in specs if not missing_results(s, preset, root)]
