"""``dynloss compare``: does a results set agree with a baseline within noise?

``dynloss compare --results DIR --baseline DIR|FILE|published`` prints a table of the cells
outside noise (``--all``: every cell), a summary per result table, what was skipped, and notes;
``--csv FILE`` / ``--json FILE`` (``-`` for standard output, then no table is printed; files are
written atomically) write every cell; the JSON is strict (a number that is not finite is null, its
cell's status says why). Colours only on a terminal (``--color``; ``NO_COLOR`` is honoured). Exit
status: 0 when every gated cell agrees, 1 when some do not (outside noise, without a number,
invalid, or, unless ``--fail-on tables``, on one side only), 2 for unusable input or options (one
line naming the file, the cell, the option or the difference).
The rule is documented in :mod:`analysis.audit.regression.compare`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from training.argtypes import nonempty_arg, one_line_errors
from training.logs import get_logger

GREEN, RED, YELLOW, DIM, RESET = "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[0m"
#: rows of the terminal table without --all (cells outside noise come first)
SHOWN = 40
COLOURS = {"agree": GREEN, "outside": RED, "no number": RED, "invalid": RED, "only in baseline": YELLOW,
           "only in results": YELLOW}


def register(sub, *, name: str = "compare", help: str = "") -> argparse.ArgumentParser:
    p = one_line_errors(sub.add_parser(name, help=help, description=(
        "Compare a results set with a baseline cell by cell (Table 1 accuracies and differences to ce, "
        "Table 2 correlations, calibration and selective metrics). A difference is within noise when "
        "|new - baseline| <= z * sqrt(se_baseline^2 + se_new^2) + tolerance, se from each side's bootstrap "
        "interval (or training-seed interval, where wider); the tolerance applies only where a side carries "
        "no interval. A cell without a finite number or with an unusable interval fails, and so, by default, "
        "does a cell on one side only. Exit 0: all agree; 1: some do not; 2: unusable input or options.")))
    p.add_argument("--results", required=True, type=nonempty_arg, metavar="DIR",
                   help="results folder written by `dynloss analyze` (or a snapshot file)")
    p.add_argument("--baseline", required=True, type=nonempty_arg, metavar="DIR|FILE|published",
                   help="results folder, snapshot file (`dynloss snapshot`), or 'published' (the paper's Tables 1-2)")
    p.add_argument("--level", type=float, default=0.95, metavar="LEVEL",
                   help="comparison level: share of cells two independent runs agree in (default 0.95)")
    p.add_argument("--adjust", choices=("none", "holm"), default="none",
                   help="'holm' controls the chance of any false flag over all cells (default: none, per cell)")
    p.add_argument("--tolerance", action="append", default=[], metavar="METRIC=VALUE",
                   help="tolerance where a side has no interval, e.g. accuracy=0.01 (repeatable; a finite number "
                        ">= 0 for a compared metric; defaults and names in analysis/audit/regression/compare.py DEFAULT_TOLERANCES)")
    p.add_argument("--fail-on", default="all", metavar="LIST",
                   help="comma-separated: which cells fail the comparison: tables (table1, table2, calibration, "
                        "selective: their cells outside noise, without a number or invalid), 'missing' (cells on "
                        "one side only), 'tables' (every table, missing cells only reported), 'all' (every table "
                        "and missing cells, default) or 'none'")
    p.add_argument("--csv", default=None, metavar="FILE", help="write every cell as CSV, atomically ('-' = standard output, no table printed)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="write the comparison as strict JSON (a number that is not finite is null), atomically "
                        "('-' = standard output, no table printed)")
    p.add_argument("--all", action="store_true", help="list every cell, not only those that fail or are missing")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="colour the table (default: only on a terminal, unless NO_COLOR is set)")
    p.set_defaults(func=run)
    return p


def _tolerances(items: list[str]) -> dict[str, float]:
    from analysis.audit.regression.compare import tolerance_problem

    out = {}
    for item in items:
        key, eq, val = (x.strip() for x in item.partition("="))
        try:
            value = float(val)
        except ValueError:
            value = None
        why = ("expected METRIC=VALUE" if not (eq and key) else f"{val!r} is not a number" if value is None
               else tolerance_problem(key, value))
        if why:
            raise ValueError(f"--tolerance {item!r}: {why}")
        out[key] = value
    return out


def _use_colour(mode: str, stream) -> bool:
    if mode != "auto":
        return mode == "always"
    return not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()


def format_table(frame, *, colour: bool = False, limit: int | None = None) -> str:
    """Text table (tabulate) of comparison rows (status, table, metric, cell, values)."""
    from analysis.audit.regression.compare import cell_label

    head = ["status", "table", "metric", "cell", "baseline", "new", "diff", "allowed", "z", "problem"]
    rows = []
    for _, r in (frame if limit is None else frame.head(limit)).iterrows():
        def num(x, fmt):
            return "–" if math.isnan(x) else format(x, fmt)
        rows.append([r["status"], r["table"], r["metric"], cell_label(r), num(r["baseline"], ".4f"),
                     num(r["new"], ".4f"), num(r["diff"], "+.4f"), num(r["allowed"], ".4f"), num(r["z"], "+.2f"),
                     r["problem"]])
    from tabulate import tabulate

    right = {4, 5, 6, 7, 8}
    text = tabulate(rows, headers=head, tablefmt="simple", disable_numparse=True,
                    colalign=["right" if i in right else "left" for i in range(len(head))]).splitlines()
    out = text[:2]  # the header and its rule
    for row, line in zip(rows, text[2:]):
        out.append(COLOURS.get(row[0], "") + line + RESET if colour else line)
    return "\n".join(out)


def report_text(cmp, *, show_all: bool = False, colour: bool = False) -> str:
    """The terminal report: header, cells (failing first), summary, skipped, notes, verdict."""
    from analysis.audit.regression.compare import status_counts

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
    if not cmp.ok:
        verdict = f"{len(cmp.failing)} cell(s) fail the comparison ({status_counts(cmp.failing)})"
    elif (cmp.frame["status"] != "agree").any():
        verdict = (f"no gated cell fails; not gated by --fail-on {','.join(cmp.fail_on) or 'none'}: "
                   f"{status_counts(cmp.frame[cmp.frame['status'] != 'agree'])}")
    else:
        verdict = "all compared cells agree within noise"
    if colour:
        verdict = (GREEN if cmp.ok else RED) + verdict + RESET
    lines += ["", verdict]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json

    from analysis.audit.regression.results import compare_results
    from analysis.audit.regression.baseline import UnusableInput, write_output

    try:
        if args.csv == args.json == "-":
            raise ValueError("--csv - and --json - would both write to standard output: give one of them a FILE")
        tolerances = _tolerances(args.tolerance)
        cmp = compare_results(args.results, args.baseline, level=args.level, adjust=args.adjust,
                              tolerances=tolerances, fail_on=args.fail_on)
    except (UnusableInput, ValueError) as e:
        get_logger("compare").error(f"dynloss compare: {e}")
        return 2
    if args.csv:
        write_output(args.csv, cmp.frame.to_csv(index=False))
    if args.json:
        write_output(args.json, json.dumps(cmp.to_dict(), indent=2, allow_nan=False) + "\n")
    if "-" not in (args.csv, args.json):
        print(report_text(cmp, show_all=args.all, colour=_use_colour(args.color, sys.stdout)))
    return 0 if cmp.ok else 1
