"""Which results the claims from our caches are evaluated on, and which of them cannot be.

:func:`results_scope` checks a preset's results set whole (:func:`analysis.core.results_set.check_set`)
and says which claims it cannot decide (a set made with ``dynloss analyze --no-superlearners`` has
no super-learner rows). :func:`evaluate_scoped` evaluates the others and stamps each claim that
reads results with the SHA-256 of the set's ``provenance.json`` (``values["results_provenance_sha256"]``),
so that a saved audit (``dynloss audit --save``) says which results it was computed from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from analysis.audit import ClaimResult, evaluate_all, registered_claims
from training.paths import DataRoot

#: result tables that only ``dynloss analyze`` with super-learners fills
SUPERLEARNER_TABLES = frozenset({"superlearner_gap"})
#: key of a claim's values naming the results set it was computed from
RESULTS_KEY = "results_provenance_sha256"


@dataclass(frozen=True)
class ResultsScope:
    """The results set of ``preset`` the claims read, under data root ``root`` (``provenance`` None:
    the preset has none), and the claims it cannot decide (id -> why)."""

    preset: str
    root: DataRoot
    provenance: dict[str, Any] | None = None
    provenance_sha256: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)


def results_scope(preset: str, root: DataRoot | None = None) -> ResultsScope:
    """The scope of the claims over ``preset``'s results under ``root`` (None: resolved here from
    the environment, :func:`training.paths.resolve_root`).

    Raises
    ------
    analysis.core.results_set.ResultsSetError
        When the preset's results folder exists but is not one whole set of that preset.
    """
    from analysis.core.results_set import PROVENANCE, check_set
    from training.cache_format import sha256_file
    from training.paths import resolve_root

    root = root if root is not None else resolve_root()
    folder = root.results_dir(preset)
    if not folder.is_dir():
        return ResultsScope(preset, root)
    prov = check_set(folder, fix=f"dynloss analyze --preset {preset}", preset=preset)
    skipped = {}
    if not prov.get("config", {}).get("superlearners", True):
        skipped = {s.id: "not evaluated: the results were made with `dynloss analyze --no-superlearners`"
                   for s in registered_claims() if SUPERLEARNER_TABLES & set(s.reads)}
    return ResultsScope(preset, root, prov, sha256_file(folder / PROVENANCE), skipped)


def evaluate_scoped(scope: ResultsScope, ids: list[str] | None = None) -> list[ClaimResult]:
    """:func:`analysis.audit.evaluate_all` over the scope (``ids``: those only), less the claims it
    cannot decide, each claim that reads results stamped with the results it was computed from.

    Raises
    ------
    ValueError
        As :func:`analysis.audit.evaluate_all`, and for an id asked for that the scope cannot decide.
    """
    asked = [i for i in (ids or []) if i in scope.skipped]
    if asked:
        raise ValueError(f"claim {asked[0]!r} {scope.skipped[asked[0]]}; `dynloss analyze --preset {scope.preset}` "
                         f"fits the super-learners")
    if scope.skipped:
        ids = [s.id for s in registered_claims() if s.id not in scope.skipped and (ids is None or s.id in ids)]
    reads = {s.id for s in registered_claims() if s.reads}
    return [dataclasses.replace(r, values={**r.values, RESULTS_KEY: scope.provenance_sha256}) if r.id in reads else r
            for r in evaluate_all(ids, preset=scope.preset, root=scope.root)]


def skipped_note(scope: ResultsScope) -> str:
    """One sentence naming the claims the scope cannot decide and why ('' when none)."""
    if not scope.skipped:
        return ""
    why = next(iter(scope.skipped.values()))
    return f"Claims {', '.join(scope.skipped)} {why}."
