"""The report's "Compared with" section: the shown preset's results against a baseline.

Shown only when ``DYNLOSS_BASELINE`` names a baseline: a snapshot file (``dynloss snapshot``), a
results folder, or ``published`` (relative paths are taken from the checkout). The failing cells
(outside noise, without a number, invalid, on one side only) come first and are counted in the
section's first line; the rule is :mod:`analysis.audit.regression.compare`'s. A baseline that cannot be used
(missing, damaged, too large, of another preset) is a :class:`BaselineError`, one line, which the
section shows in an error box instead of a comparison (the rest of the report renders).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.audit.regression.results import PUBLISHED, Comparison, compare_results
from analysis.audit.regression.baseline import UnusableInput
from analysis.audit.regression.compare import cell_label, status_counts
from analysis.report.context import BASELINE_ENV, ReportContext, project_root, reads, results_dir
from analysis.report.markdown import show

#: agreeing cells listed after those outside noise (the rest are counted in the summary)
AGREE_SHOWN = ("table1", "table2")


class BaselineError(ValueError):
    """``$DYNLOSS_BASELINE`` names a baseline that cannot be compared with; one line naming it and why."""


def baseline_spec(ctx: ReportContext) -> str | None:
    """The context's baseline (``$DYNLOSS_BASELINE`` when the page started) resolved against the
    checkout (``published`` kept), or None."""
    spec = (ctx.baseline or "").strip()
    if not spec:
        return None
    if spec == PUBLISHED:
        return spec
    p = Path(spec).expanduser()
    return str(p if p.is_absolute() else project_root() / p)


@reads("table1", "table2", "calibration", "selective")
def comparison(ctx: ReportContext) -> Comparison | None:
    """The comparison of the preset's results with ``$DYNLOSS_BASELINE`` (None when unset).

    Raises
    ------
    BaselineError
        When the baseline cannot be read or compared (one line naming ``$DYNLOSS_BASELINE`` and why).
    """
    spec = baseline_spec(ctx)
    if spec is None:
        return None
    folder = results_dir(ctx, require=True)
    try:
        return compare_results(folder, spec)
    except UnusableInput as e:
        raise BaselineError(f"{BASELINE_ENV}={spec}: {e}") from None
    except OSError as e:
        raise BaselineError(f"{BASELINE_ENV}={spec}: {e.filename or spec}: {e.strerror or e}") from None


def cells_frame(cmp: Comparison) -> pd.DataFrame:
    """Failing cells (all: outside noise, no number, invalid), cells on one side only, then the
    agreeing Table 1–2 cells."""
    f = cmp.frame
    keep = (f["status"] != "agree") | f["table"].isin(AGREE_SHOWN)
    f = f[keep]
    return pd.DataFrame({
        "status": f["status"], "table": f["table"], "metric": f["metric"],
        "cell": [cell_label(r) for _, r in f.iterrows()], "baseline": f["baseline"], "new": f["new"],
        "diff": f["diff"], "allowed": f["allowed"], "problem": f["problem"],
    }).reset_index(drop=True)


def _shown_source(meta: dict, ctx: ReportContext) -> str:
    return meta["source"] if meta["kind"] == "published" else ctx.root.display(meta["source"])


def compared_with_section(ctx: ReportContext) -> str:
    """Markdown of the section (empty when ``DYNLOSS_BASELINE`` is unset; an error box naming the
    baseline and the problem when it cannot be used)."""
    try:
        cmp = comparison(ctx)
    except BaselineError as e:
        return f"## Compared with a baseline\n\n::: {{.callout-important}}\nNo comparison: {e}\n:::\n"
    if cmp is None:
        return ""
    b = cmp.baseline.meta
    failing = (f"**{len(cmp.failing)}** ({status_counts(cmp.failing)})" if len(cmp.failing) else "**0**")
    parts = [
        f"## Compared with {_shown_source(b, ctx)}\n",
        f"Baseline: `{_shown_source(b, ctx)}`" + (f" (preset {b['preset']})" if b.get("preset") else "")
        + f". Rule: {cmp.rule_text()}. Failing cells: {failing}.\n",
        show(cmp.summary()).to_markdown(),
    ]
    parts += [f"- Skipped: {s}" for s in cmp.skipped]
    parts += [f"- Note: {n}" for n in cmp.notes]
    parts += ["", show(cells_frame(cmp), digits=4).to_markdown()]
    return "\n".join(parts) + "\n"
