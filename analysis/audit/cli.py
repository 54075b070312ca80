"""``dynloss audit``: evaluate the registered claims and print a table or JSON.

``dynloss audit`` prints one block per claim (id, verdict, claim, evidence, then its source, the
kind of evidence its verdict rests on and what would overturn it), wrapped to the terminal width.
``dynloss audit --json`` prints a JSON list of objects with the keys ``id``, ``claim``,
``verdict``, ``evidence``, ``source``, ``values``, ``kind`` (one of
:data:`analysis.audit.KINDS`), ``overturn`` and ``preset`` (the preset a ``proxy preset`` claim
was evaluated on, else empty). ``--ids a,b`` restricts the audit to
those claims; ``--list`` prints the registered ids only.

Claims from our caches read the analysed results of one preset: ``--preset NAME``, else
``$DYNLOSS_PRESET``, else the default preset. The audit says on stderr which preset it used, or,
when that preset has no results, that those claims are left out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import textwrap
from collections.abc import Collection

from analysis.audit import ClaimResult, missing_results, registered_claims
from training.argtypes import int_at_least, one_line_errors, preset_arg
from training.logs import get_logger
from training.paths import DataRoot

log = get_logger("audit")

__all__ = ["format_table", "register", "run"]


def format_table(results: list[ClaimResult], *, width: int = 100) -> str:
    """A readable, wrapped text table of claim results.

    Examples
    --------
    >>> r = ClaimResult(id="x", claim="A claim.", verdict="holds", evidence="Because.",
    ...                 kind="exact mathematics", overturn="A counterexample.")
    >>> print(format_table([r], width=50))
    ID  VERDICT      CLAIM / EVIDENCE
    --------------------------------------------------
    x   holds        A claim.
                     -> Because.
                        [evidence: exact mathematics]
                        [overturned by: A
                        counterexample.]
    <BLANKLINE>
    1 claims: 1 holds, 0 fails, 0 conditional
    """
    id_w = max([2] + [len(r.id) for r in results]) + 2
    verdict_w = len("conditional") + 2
    text_w = max(20, width - id_w - verdict_w)
    indent = " " * (id_w + verdict_w)
    lines = [f"{'ID':<{id_w}}{'VERDICT':<{verdict_w}}CLAIM / EVIDENCE", "-" * width]
    for r in results:
        claim = textwrap.wrap(r.claim, text_w) or [""]
        lines.append(f"{r.id:<{id_w}}{r.verdict:<{verdict_w}}{claim[0]}")
        lines.extend(indent + c for c in claim[1:])
        lines.extend(indent + e for e in textwrap.wrap("-> " + r.evidence, text_w, subsequent_indent="   "))
        tags = [f"source: {r.source}"] if r.source else []
        tags.append(f"evidence: {r.kind_label}")
        for tag in (f"[{'; '.join(tags)}]", f"[overturned by: {r.overturn}]"):
            lines.extend(indent + "   " + t for t in textwrap.wrap(tag, text_w - 3, break_on_hyphens=False))
        lines.append("")
    counts = {v: sum(r.verdict == v for r in results) for v in ("holds", "fails", "conditional")}
    lines.append(
        f"{len(results)} claims: {counts['holds']} holds, {counts['fails']} fails, {counts['conditional']} conditional"
    )
    return "\n".join(lines)


def preset_note(preset: str, root: DataRoot, ids: list[str] | None = None, skipped: Collection[str] = ()) -> str:
    """One line naming the preset the cache claims read, or saying they are left out and why
    (``skipped``: claims the results cannot decide, named apart)."""
    shown = root.display(root.results_dir(preset))
    specs = [s for s in registered_claims() if s.reads and (ids is None or s.id in ids) and s.id not in skipped]
    if not specs:
        return ""
    names = ", ".join(s.id for s in specs)
    if any(missing_results(s, preset, root) for s in specs):
        return (f"dynloss audit: no analysed results of preset {preset!r} in {shown}: "
                f"claims {names} left out (run `dynloss analyze --preset {preset}`, or pass --preset)")
    return f"dynloss audit: claims {names} from the results of preset {preset!r} ({shown})"


def run(args: argparse.Namespace) -> int:
    from training.paths import default_preset

    if args.list:
        for spec in registered_claims():
            print(spec.id)
        return 0
    ids = None
    if args.save and args.ids:
        log.error("dynloss audit: --save writes the whole audit the report reads; drop --ids")
        return 2
    if args.ids:
        ids = [i.strip() for i in args.ids.split(",") if i.strip()]
    from analysis.audit.scope import evaluate_scoped, results_scope, skipped_note

    preset, root = args.preset or default_preset(), args.paths
    try:  # a results folder that is not one whole set of this preset is refused (ResultsSetError)
        scope = results_scope(preset, root)
        results = evaluate_scoped(scope, ids)
    except ValueError as e:
        log.error(f"dynloss audit: {e}")
        return 2
    for note in (preset_note(preset, root, ids, scope.skipped), skipped_note(scope)):
        if note:
            log.info(note if note.startswith("dynloss") else f"dynloss audit: {note}")
    if args.save:
        from analysis.audit.saved import save_audit

        path = save_audit(results, root)
        log.info(f"dynloss audit: {len(results)} claims written to {path}")
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        width = args.width or min(120, shutil.get_terminal_size((100, 24)).columns)
        print(format_table(results, width=width))
    return 0


def register(sub, *, name: str, help: str) -> None:  # noqa: A002 - argparse's own name
    """Add the ``audit`` command to the ``dynloss`` sub-parsers."""
    p = one_line_errors(sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + "."))
    p.add_argument("--json", action="store_true", help="print a JSON list of {id, claim, verdict, evidence, source, values, kind, overturn, "
                        "preset}")
    p.add_argument("--ids", default=None, help="comma-separated claim ids to evaluate (default: all)")
    p.add_argument("--preset", default=None, type=preset_arg,
                   help="preset whose analysed results the claims from our caches read "
                        "(default: $DYNLOSS_PRESET, else the default preset)")
    p.add_argument("--save", action="store_true",
                   help="also write the JSON to <data root>/results/audit.json, which the report reads")
    p.add_argument("--list", action="store_true", help="print the registered claim ids and exit")
    p.add_argument("--width", type=int_at_least(40), default=None, help="table width in characters (default: terminal, at most 120)")
    p.set_defaults(func=run)
