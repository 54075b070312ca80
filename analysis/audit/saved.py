"""The saved claim audit (``dynloss audit --save``): where it is stored, when a saved claim is
evaluated again, and the claims a reader shows (saved ones still valid, the rest evaluated now).

Ours (the paper has no audit). A saved claim that reads results carries the SHA-256 of the
``provenance.json`` it was computed from (:data:`analysis.audit.scope.RESULTS_KEY`); it is evaluated
again when that differs from the results shown (:func:`saved_audit`). The report reads the audit
through :func:`audited_claims` only (:mod:`analysis.report.claims`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis.audit import ClaimResult
from analysis.audit.scope import ResultsScope
from training.paths import DataRoot

#: the largest saved audit read (a few hundred KB in practice)
MAX_AUDIT_BYTES = 16 * 2**20


def audit_json_path(root: DataRoot) -> Path:
    """Where the saved audit of data root ``root`` is written and looked for (``root.audit_file``)."""
    return root.audit_file


def save_audit(results: Sequence[ClaimResult], root: DataRoot) -> Path:
    """Write ``results`` as the saved audit of ``root`` (one JSON list, atomically); return its path."""
    from training.cache_format import atomic_write

    path = audit_json_path(root)
    atomic_write(path, json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    return path


def saved_audit(scope: ResultsScope) -> tuple[dict[str, Any], list[str], str]:
    """The claims of the saved audit (``dynloss audit --save``) still valid for ``scope``
    (:class:`analysis.audit.scope.ResultsScope`), the ids of those to evaluate again, and a note
    saying which and why ('' when none).

    A claim that reads results is evaluated again when it was saved from other results (another
    ``provenance.json``: another preset, seed or member set) or from none recorded (an older audit),
    and left out when the preset has no results. A damaged ``audit.json`` is not read: every claim
    is evaluated again, and the note names the file and ``dynloss audit --save``.

    A claim's kind of evidence and overturn line are its declaration, not its evaluation: for a
    registered claim they are taken from the registry (so an audit saved before claims carried them
    stays readable); a saved claim no longer registered must carry its own, else the file is refused
    as above (:func:`_saved_result`).
    """
    from analysis.audit import missing_results, registered_claims
    from analysis.audit.scope import RESULTS_KEY
    from training.cache_format import read_json

    path = audit_json_path(scope.root)
    specs_by_id = {s.id: s for s in registered_claims()}
    specs = [s for s in specs_by_id.values() if s.id not in scope.skipped]
    if not path.is_file():
        return {}, [s.id for s in specs], ""
    try:
        raw = read_json(path, max_bytes=MAX_AUDIT_BYTES, what="saved claim audit")
        saved = {r["id"]: _saved_result(r, specs_by_id, scope.preset) for r in raw}
        if not all(isinstance(r.values, dict) for r in saved.values()):
            raise ValueError("a claim's values are not an object")
    except (OSError, ValueError, TypeError, KeyError) as e:
        why = str(e) if str(path) in str(e) else f"{path}: unreadable ({type(e).__name__}: {e})"
        return {}, [s.id for s in specs], (f"{why.replace(str(path), scope.root.display(path))}; every claim "
                                           f"evaluated again (`dynloss audit --save` rewrites it).")
    results = [s for s in specs if s.reads]
    stale = [s.id for s in results if s.id in saved and not missing_results(s, scope.preset, scope.root)
             and saved[s.id].values.get(RESULTS_KEY) != scope.provenance_sha256]
    drop = ({s.id for s in results if missing_results(s, scope.preset, scope.root)} | set(scope.skipped)
            | set(stale))
    fresh = stale + [s.id for s in specs if s.id not in saved and s.id not in drop]
    note = (f"Claims {', '.join(stale)} evaluated again: the saved audit ({path.name}) was computed from other "
            f"results than those of preset {scope.preset} shown here." if stale else "")
    return {i: r for i, r in saved.items() if i not in drop}, fresh, note


_KEYS = ("id", "claim", "verdict", "evidence", "source", "values", "kind", "overturn", "preset")


def _saved_result(record: dict[str, Any], specs: dict[str, Any], preset: str) -> ClaimResult:
    """One record of a saved audit as a :class:`ClaimResult`: the kind of evidence and overturn line
    of a registered claim from its declaration (``specs``: id -> :class:`analysis.audit.ClaimSpec`),
    and the preset of a proxy-preset claim from the record, else ``preset`` (the saved results shown:
    a claim saved from other results is evaluated again).

    Raises
    ------
    ValueError
        For a claim no longer registered that carries no kind of evidence (an audit saved by an older
        version), or a record that is not a valid claim.
    """
    from analysis.audit import PROXY

    fields = {k: record[k] for k in _KEYS if k in record}
    spec = specs.get(record["id"])
    if spec is not None:
        fields.update(kind=spec.kind, overturn=spec.overturn)
        fields["preset"] = (fields.get("preset") or preset) if spec.kind == PROXY else ""
    elif not fields.get("kind"):
        raise ValueError(f"saved claim {record['id']!r} is no longer registered and carries no kind of evidence "
                         f"(an audit saved by an older version)")
    return ClaimResult(**fields)


def audited_claims(scope: ResultsScope) -> tuple[tuple[ClaimResult, ...], str]:
    """Every claim to show over ``scope``, in registry order (saved claims no longer registered
    last), and a note on how they were obtained ('' when all were read as saved): read from the
    saved audit where still valid (:func:`saved_audit`), else evaluated now (slower: without a
    saved audit every claim is recomputed)."""
    from analysis.audit import registered_claims
    from analysis.audit.scope import evaluate_scoped

    saved, fresh_ids, note = saved_audit(scope)
    fresh = {r.id: r for r in evaluate_scoped(scope, fresh_ids)} if fresh_ids else {}
    specs = registered_claims()
    out = [fresh.get(s.id) or saved[s.id] for s in specs if s.id in fresh or s.id in saved]
    out.extend(r for i, r in saved.items() if i not in {s.id for s in specs})
    return tuple(out), _with_skipped(note, scope)


def audit_note(scope: ResultsScope) -> str:
    """The note :func:`audited_claims` gives over ``scope`` (which saved claims are evaluated again,
    which cannot be evaluated, and why; '' when none), without evaluating any claim."""
    return _with_skipped(saved_audit(scope)[2], scope)


def _with_skipped(note: str, scope: ResultsScope) -> str:
    from analysis.audit.scope import skipped_note

    return " ".join(n for n in (note, skipped_note(scope)) if n)
