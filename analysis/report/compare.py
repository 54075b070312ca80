"""The report's "Compared with" section: the shown preset's results against a baseline.

Shown only when ``DYNLOSS_BASELINE`` names a baseline: a snapshot file (``dynloss snapshot``), a
results folder, or ``published`` (relative paths are taken from the checkout). The cells outside
noise come first; the rule is :mod:`analysis.core.compare`'s.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from analysis.audit.regression import PUBLISHED, Comparison, compare_results
from analysis.core.compare import cell_label
from analysis.report.context import project_root, reads, results_dir
from analysis.report.markdown import show
from training.paths import display, preset_name

BASELINE_ENV = "DYNLOSS_BASELINE"
#: agreeing cells listed after those outside noise (the rest are counted in the summary)
AGREE_SHOWN = ("table1", "table2")


def baseline_spec() -> str | None:
    """``$DYNLOSS_BASELINE`` resolved against the checkout (``published`` kept), or None."""
    spec = os.environ.get(BASELINE_ENV, "").strip()
    if not spec:
        return None
    if spec == PUBLISHED:
        return spec
    p = Path(spec).expanduser()
    return str(p if p.is_absolute() else project_root() / p)


@reads("table1", "table2", "calibration", "selective")
def comparison(preset: str | None = None) -> Comparison | None:
    """The comparison of the preset's results with ``$DYNLOSS_BASELINE`` (None when unset)."""
    spec = baseline_spec()
    if spec is None:
        return None
    return compare_results(results_dir(preset or preset_name(), require=True), spec)


def cells_frame(cmp: Comparison) -> pd.DataFrame:
    """Cells outside noise (all), cells on one side only, then the agreeing Table 1–2 cells."""
    f = cmp.frame
    keep = (f["status"] != "agree") | f["table"].isin(AGREE_SHOWN)
    f = f[keep]
    return pd.DataFrame({
        "status": f["status"], "table": f["table"], "metric": f["metric"],
        "cell": [cell_label(r) for _, r in f.iterrows()], "baseline": f["baseline"], "new": f["new"],
        "diff": f["diff"], "allowed": f["allowed"],
    }).reset_index(drop=True)


def _shown_source(meta: dict) -> str:
    return meta["source"] if meta["kind"] == "published" else display(meta["source"])


def compared_with_section(preset: str | None = None) -> str:
    """Markdown of the section (empty when ``DYNLOSS_BASELINE`` is unset)."""
    cmp = comparison(preset)
    if cmp is None:
        return ""
    b = cmp.baseline.meta
    n_out = int((cmp.frame["status"] == "outside").sum())
    parts = [
        f"## Compared with {_shown_source(b)}\n",
        f"Baseline: `{_shown_source(b)}`" + (f" (preset {b['preset']})" if b.get("preset") else "")
        + f". Rule: {cmp.rule_text()}. Cells outside noise: **{n_out}**.\n",
        show(cmp.summary()).to_markdown(),
    ]
    parts += [f"- Skipped: {s}" for s in cmp.skipped]
    parts += [f"- Note: {n}" for n in cmp.notes]
    parts += ["", show(cells_frame(cmp), digits=4).to_markdown()]
    return "\n".join(parts) + "\n"
