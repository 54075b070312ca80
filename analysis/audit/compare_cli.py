"""``dynloss compare``: does a results set agree with a baseline within noise?

``dynloss compare --results DIR --baseline DIR|FILE|published`` prints a table of the cells
outside noise (``--all``: every cell), a summary per result table, what was skipped, and notes;
``--csv FILE`` / ``--json FILE`` (``-`` for standard output) write every cell. Colours only on a
terminal (``--color``; ``NO_COLOR`` is honoured). Exit status: 0 when every gated cell agrees, 1
when some do not, 2 for unusable input (one line naming the files or the difference).
The rule is documented in :mod:`analysis.core.compare`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

GREEN, RED, YELLOW, DIM, RESET = "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[0m"
#: rows of the terminal table without --all (cells outside noise come first)
SHOWN = 40
COLOURS = {"agree": GREEN, "outside": RED, "only in baseline": YELLOW, "only in results": YELLOW}


def register(sub, *, name: str = "compare", help: str = "") -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=(
        "Compare a results set with a baseline cell by cell (Table 1 accuracies and differences to ce, "
        "Table 2 correlations, calibration and selective metrics). A difference is within noise when "
        "|new - baseline| <= z * sqrt(se_baseline^2 + se_new^2) + tolerance, se from each side's bootstrap "
        "interval (or training-seed interval, where wider); the tolerance applies only where a side carries "
        "no interval. Exit 0: all agree; 1: some do not; 2: unusable input."))
    p.add_argument("--results", required=True, metavar="DIR",
                   help="results folder written by `dynloss analyze` (or a snapshot file)")
    p.add_argument("--baseline", required=True, metavar="DIR|FILE|published",
                   help="results folder, snapshot file (`dynloss snapshot`), or 'published' (the paper's Tables 1-2)")
    p.add_argument("--level", type=float, default=0.95,
                   help="comparison level: share of cells two independent runs agree in (default 0.95)")
    p.add_argument("--adjust", choices=("none", "holm"), default="none",
                   help="'holm' controls the chance of any false flag over all cells (default: none, per cell)")
    p.add_argument("--tolerance", action="append", default=[], metavar="METRIC=VALUE",
                   help="tolerance where a side has no interval, e.g. accuracy=0.01 (repeatable; defaults in "
                        "analysis/core/compare.py DEFAULT_TOLERANCES)")
    p.add_argument("--fail-on", default="all", metavar="LIST",
                   help="comma-separated: which cells fail the comparison: tables (table1, table2, calibration, "
                        "selective), 'missing' (cells on one side only), 'all' (every table, default) or 'none'")
    p.add_argument("--csv", default=None, metavar="FILE", help="write every cell as CSV ('-' = standard output)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="write the comparison as JSON ('-' = standard output)")
    p.add_argument("--all", action="store_true", help="list every cell, not only those outside noise")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the table (default: only on a terminal, unless NO_COLOR is set)")
    p.set_defaults(func=run)
    return p


def _tolerances(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items:
        key, _, val = item.partition("=")
        try:
            value = float(val)
        except ValueError:
            value = -1.0
        if not key.strip() or not value >= 0:
            raise ValueError(f"--tolerance expects METRIC=VALUE with VALUE >= 0, got {item!r}")
        out[key.strip()] = value
    return out


def _use_colour(mode: str, stream) -> bool:
    if mode != "auto":
        return mode == "always"
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def format_table(frame, *, colour: bool = False, limit: int | None = None) -> str:
    """Fixed-width text table of comparison rows (status, table, metric, cell, values)."""
    from analysis.core.compare import cell_label

    head = ["status", "table", "metric", "cell", "baseline", "new", "diff", "allowed", "z"]
    rows = []
    for _, r in (frame if limit is None else frame.head(limit)).iterrows():
        def num(x, fmt):
            return "–" if math.isnan(x) else format(x, fmt)
        rows.append([r["status"], r["table"], r["metric"], cell_label(r), num(r["baseline"], ".4f"),
                     num(r["new"], ".4f"), num(r["diff"], "+.4f"), num(r["allowed"], ".4f"), num(r["z"], "+.2f")])
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(head)]
    right = {4, 5, 6, 7, 8}

    def line(cells):
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [line(head), "  ".join("-" * w for w in widths)]
    for row in rows:
        text = line(row)
        if colour:
            text = COLOURS.get(row[0], "") + text + RESET
        out.append(text)
    return "\n".join(out)


def report_text(cmp, *, show_all: bool = False, colour: bool = False) -> str:
    """The terminal report: header, cells (outside noise first), summary, skipped, notes, verdict."""
    b, r = cmp.baseline.meta, cmp.results.meta
    lines = [f"results:  {r['source']}" + (f" (preset {r['preset']})" if r.get("preset") else ""),
             f"baseline: {b['source']}" + (f" (preset {b['preset']})" if b.get("preset") else ""),
             f"rule: {cmp.rule_text()}", ""]
    shown = cmp.frame if show_all else cmp.frame[cmp.frame["status"] != "agree"]
    limit = None if show_all else SHOWN
    if len(shown):
        lines += [format_table(shown, colour=colour, limit=limit)]
        if limit is not None and len(shown) > limit:
            lines.append(f"... and {len(shown) - limit} more (--all lists every cell, --csv writes them)")
        lines.append("")
    summ = cmp.summary()
    lines.append(summ.to_string(index=False))
    for s in cmp.skipped:
        lines.append(f"skipped: {s}")
    for n in cmp.notes:
        lines.append(f"note: {n}")
    n_out = int((cmp.frame["status"] == "outside").sum())
    if not cmp.ok:
        gated = [t for t in cmp.fail_on if t != "missing"]
        verdict = (f"{len(cmp.failing)} cell(s) outside noise" + (" or missing" if "missing" in cmp.fail_on else "")
                   + (f" in {', '.join(gated)}" if len(gated) < cmp.frame["table"].nunique() else ""))
    elif n_out:
        verdict = f"{n_out} cell(s) outside noise in tables not gated by --fail-on ({','.join(cmp.fail_on) or 'none'})"
    else:
        verdict = "all compared cells agree within noise"
    if colour:
        verdict = (GREEN if cmp.ok else RED) + verdict + RESET
    lines += ["", verdict]
    return "\n".join(lines)


def _write(target: str, text: str) -> None:
    if target == "-":
        sys.stdout.write(text)
    else:
        from pathlib import Path

        from training.cache_format import atomic_write

        atomic_write(Path(target), text)


def run(args: argparse.Namespace) -> int:
    import json

    from analysis.audit.regression import compare_results
    from analysis.core.baseline import UnusableInput

    try:
        tolerances = _tolerances(args.tolerance)
        cmp = compare_results(args.results, args.baseline, level=args.level, adjust=args.adjust,
                              tolerances=tolerances, fail_on=args.fail_on)
    except (UnusableInput, ValueError) as e:
        print(f"dynloss compare: {e}", file=sys.stderr)
        return 2
    if args.csv:
        _write(args.csv, cmp.frame.to_csv(index=False, float_format="%.10g"))
    if args.json:
        _write(args.json, json.dumps(cmp.to_dict(), indent=2, allow_nan=False, default=str) + "\n")
    if "-" not in (args.csv, args.json):
        print(report_text(cmp, show_all=args.all, colour=_use_colour(args.color, sys.stdout)))
    return 0 if cmp.ok else 1
