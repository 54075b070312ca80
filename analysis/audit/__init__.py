"""Registry of the paper's claims, each evaluated by computation into a verdict.

A claim is registered once, where it is evaluated: the decorator :func:`claim` gives an evaluator
its id, statement and source, and the evaluator returns a :class:`Finding` (verdict, evidence,
deciding numbers). :func:`evaluate_all` runs the claims of :data:`CLAIM_MODULES` and returns
:class:`ClaimResult` objects (spec + finding) in registry order: module order, then definition
order within a module.

Every claim names its **source** (:data:`SOURCES`): where the statement or the evidence comes
from; its **kind of evidence** (:data:`KINDS`): what its verdict rests on, from exact mathematics
(true whatever is trained) to a proxy preset (our small runs, which a run at the paper's scale could
overturn); and one line on **what would overturn** the verdict. Both are required by :func:`claim`.
Claims whose source is "our caches" read the analysed results of one preset
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

#: the kinds of evidence a verdict rests on, strongest first: ``exact mathematics`` (computed from the
#: formulas themselves: true whatever is trained), ``the authors' records`` (numbers the authors published or
#: recorded: Paper Tables 1-2, data/authors/), ``the authors' code`` (what their scripts run, at a pinned
#: commit) and ``proxy preset`` (our own runs of one preset: shown as "proxy preset NAME")
KINDS: tuple[str, ...] = ("exact mathematics", "the authors' records", "the authors' code", "proxy preset")
#: the kind of the claims read from a preset's analysed results (and of those only)
PROXY = "proxy preset"


def kind_label(kind: str, preset: str = "") -> str:
    """The kind of evidence as shown: ``proxy preset NAME`` for a claim evaluated on preset ``NAME``
    (``preset NAME (the paper's setting)`` when that preset trains at the paper's scale), else ``kind``.

    >>> kind_label("proxy preset", "fmnist-mini")
    'proxy preset fmnist-mini'
    >>> kind_label("exact mathematics")
    'exact mathematics'
    """
    if kind != PROXY or not preset:
        return kind
    from training.presets import at_paper_scale, get_preset

    try:
        paper_scale = at_paper_scale(get_preset(preset))
    except ValueError:  # a preset no longer registered: still a proxy as far as is known
        paper_scale = False
    return f"preset {preset} (the paper's setting)" if paper_scale else f"{PROXY} {preset}"


def _check_declaration(id: str, kind: object, overturn: object, reads: tuple[str, ...]) -> None:
    """Refuse a claim whose kind of evidence or overturn line is missing or malformed (one-line errors)."""
    if kind not in KINDS:
        raise ValueError(f"Claim {id!r}: expected `kind=` one of {KINDS} (what its verdict rests on), got {kind!r}")
    if not isinstance(overturn, str) or not overturn.strip() or "\n" in overturn:
        raise ValueError(f"Claim {id!r}: expected `overturn=` one non-empty line saying what would overturn its "
                         f"verdict, got {overturn!r}")
    if (kind == PROXY) != bool(reads):
        raise ValueError(f"Claim {id!r}: kind {PROXY!r} is for the claims that read a preset's results (`reads=`), "
                         f"and only those; got kind {kind!r} with reads={tuple(reads)!r}")


#: modules registering claims (with :func:`claim`), in the order the audit lists them
CLAIM_MODULES: tuple[str, ...] = (
    "analysis.audit.loss_claims",
    "analysis.audit.split_claims",
    "analysis.audit.table_claims",
    "analysis.audit.code_claims",
    "analysis.audit.note_claims",
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
    """A claim with its computed verdict, evidence text, source, the deciding numbers, the kind of
    evidence its verdict rests on (:data:`KINDS`), what would overturn it, and (for a proxy-preset
    claim) the preset it was evaluated on.

    ``kind`` and ``overturn`` are required (given defaults only to keep the field order); ``preset``
    is set exactly when ``kind`` is :data:`PROXY`.
    """

    id: str
    claim: str
    verdict: Verdict
    evidence: str
    source: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    kind: str = ""
    overturn: str = ""
    preset: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"Expected `verdict` in {VERDICTS}, got {self.verdict!r} for claim {self.id!r}")
        if self.source and self.source not in SOURCES:
            raise ValueError(f"Expected `source` in {SOURCES}, got {self.source!r} for claim {self.id!r}")
        if self.kind not in KINDS:
            raise ValueError(f"Expected `kind` in {KINDS}, got {self.kind!r} for claim {self.id!r}")
        if not isinstance(self.overturn, str) or not self.overturn.strip():
            raise ValueError(f"Expected `overturn`, a non-empty line, got {self.overturn!r} for claim {self.id!r}")
        if (self.kind == PROXY) != bool(self.preset):
            raise ValueError(f"Expected `preset` set exactly for kind {PROXY!r}, got kind {self.kind!r} and preset "
                             f"{self.preset!r} for claim {self.id!r}")

    @property
    def kind_label(self) -> str:
        """The kind of evidence as shown (:func:`kind_label`: ``proxy preset NAME`` for a proxy claim)."""
        return kind_label(self.kind, self.preset)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ClaimSpec:
    """A registered claim: its id, the statement, its source, the kind of evidence its verdict
    rests on (:data:`KINDS`), one line on what would overturn it, and the function that evaluates it.

    ``reads`` names the result tables of a preset the claim is computed from (e.g. ``("table1",)``);
    such a claim's ``evaluate`` takes the preset name, and its kind is :data:`PROXY` (only such
    claims have that kind). Claims with empty ``reads`` take no argument.
    """

    id: str
    claim: str
    source: str
    evaluate: Callable[..., Finding]
    reads: tuple[str, ...] = ()
    kind: str = ""
    overturn: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"Expected `source` in {SOURCES}, got {self.source!r} for claim {self.id!r}")
        _check_declaration(self.id, self.kind, self.overturn, self.reads)


#: the registered claims of each claim module, in definition order (filled by :func:`claim`)
_REGISTRY: dict[str, list[ClaimSpec]] = {}

F = TypeVar("F", bound=Callable[..., Finding])


def claim(id: str, *, source: str, text: str, kind: str | None = None, overturn: str | None = None,
          reads: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Register the decorated evaluator as claim ``id`` (statement ``text``, from ``source``), whose
    verdict rests on evidence of ``kind`` (one of :data:`KINDS`; :data:`PROXY` exactly when ``reads``
    names result tables) and would be overturned by what ``overturn`` says (one line).

    ``kind`` and ``overturn`` are required: leaving either out, or giving a kind not in
    :data:`KINDS`, is a ``ValueError`` naming the claim, raised when the module registering it is
    imported.

    The evaluator returns a :class:`Finding`; it takes the preset name and the data root
    (:class:`training.paths.DataRoot`, whose ``results_dir(preset)`` holds the tables) when ``reads``
    names result tables, no argument otherwise. It is returned unchanged, with its :class:`ClaimSpec` as
    ``.spec`` (for a claim that refers to another).
    """

    _check_declaration(id, kind, overturn, tuple(reads))

    def register(fn: F) -> F:
        spec = ClaimSpec(id=id, claim=text, source=source, evaluate=fn, reads=tuple(reads), kind=kind or "",
                         overturn=overturn or "")
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
                       source=spec.source, values=finding.values, kind=spec.kind, overturn=spec.overturn,
                       preset=preset if spec.kind == PROXY else "")


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
