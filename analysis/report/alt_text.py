"""Alternative text of the report's figures, computed from the numbers each figure draws, and the
way a figure cell hands it to both report engines (:func:`shown`).

Each ``*_alt`` function takes the same frames as its figure function (in
:mod:`analysis.report.figures`, :mod:`analysis.report.calibration_figures` and
:mod:`analysis.report.related`) and returns plain text: what kind of chart it is, its axes, and
what the numbers say (which arms lie above or below the control ``ce-lr0.01``, the range of the
values, where curves end). No figure is drawn and no metric computed here.

A figure cell runs with ``output: asis`` and ends in ``shown(figure, alt)``: the figure is
displayed as usual (so both engines write, caption and number it as any figure) and the alt text
follows as an empty ``::: {.fig-alt alt="…"}`` block. The book's Lua filter ``reports/fig-alt.lua``
(``filters:`` in ``_quarto.yml``, which the offline engine applies too) moves that text onto the
figure's image as its ``fig-alt`` attribute: Quarto writes it as the HTML ``alt`` and as Typst's
``image(alt: …)``, the offline engine likewise (``analysis/report/engine/fig-alt.lua``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.arms import ARM_ORDER, CONTROL_ARM


@dataclass(frozen=True)
class AltFigure:
    """A Matplotlib figure and its alternative text, displayed as the figure followed by the
    ``.fig-alt`` block that carries the text (the cell must run with ``output: asis``)."""

    figure: object
    alt: str

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.figure)
        print(alt_block(self.alt))


def shown(figure, alt: str) -> AltFigure:
    """The value a figure cell ends with: ``figure`` shown with ``alt`` as its alternative text.

    Raises
    ------
    ValueError
        When ``alt`` is empty.
    """
    if not str(alt).strip():
        raise ValueError("Expected a non-empty `alt` text for the figure")
    return AltFigure(figure, " ".join(str(alt).split()))


def alt_block(alt: str) -> str:
    """The pandoc markdown block that carries ``alt`` (an empty div with the text as its ``alt``
    attribute, which keeps it out of markdown parsing), preceded by a blank line.

    >>> alt_block('r "near" 1')
    '\\n::: {.fig-alt alt="r \\\\"near\\\\" 1"}\\n:::\\n'
    """
    text = " ".join(str(alt).split()).replace("\\", "\\\\").replace('"', '\\"')
    return f'\n::: {{.fig-alt alt="{text}"}}\n:::\n'


#: a related loss whose emphasis is largest at p_t at or below this is said to be largest near 0
PEAK_AT_ZERO: float = 0.02

# ---------------------------------------------------------------- wording helpers


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if not items:
        return "none"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _num(x: float, digits: int = 3) -> str:
    """A number as the figure's axis shows it, with a true minus sign (and no "−0.000")."""
    s = f"{float(x):.{digits}f}"
    return (s.lstrip("-") if float(s) == 0 else s).replace("-", "−")


def _signed(x: float, digits: int = 3) -> str:
    """:func:`_num` with a plus sign on positive values."""
    s = _num(x, digits)
    return s if s.startswith("−") or float(s) == 0 else "+" + s


def _arm_key(arm: str) -> tuple[int, str]:
    return (ARM_ORDER.index(arm) if arm in ARM_ORDER else len(ARM_ORDER), arm)


def split_by_sign(values: pd.Series, *, tol: float = 0.0) -> tuple[list[str], list[str], list[str]]:
    """The index labels of ``values`` above ``tol``, below ``-tol`` and within it (NaN left out),
    each list in arm order.

    >>> split_by_sign(pd.Series({"dyn-0.6": 0.01, "dyn-0.7": -0.02, "dyn-0.8": 0.0}))
    (['dyn-0.6'], ['dyn-0.7'], ['dyn-0.8'])
    """
    v = values.dropna()
    above = sorted((str(a) for a in v.index[v > tol]), key=_arm_key)
    below = sorted((str(a) for a in v.index[v < -tol]), key=_arm_key)
    level = sorted((str(a) for a in v.index[(v >= -tol) & (v <= tol)]), key=_arm_key)
    return above, below, level


def _sides(values: pd.Series, *, what: str, reference: str = CONTROL_ARM, digits: int = 3) -> str:
    """``"above <reference> (<what>): a (+0.01); below: b (−0.02)"``."""
    above, below, level = split_by_sign(values)
    fmt = lambda names: _join([f"{a} ({_signed(values[a], digits)})" for a in names])  # noqa: E731
    parts = [f"above {reference}{what}: {fmt(above)}", f"below: {fmt(below)}"]
    if level:
        parts.append(f"equal to it: {_join(level)}")
    return "; ".join(parts)


# ---------------------------------------------------------------- the figures


def emphasis_alt(curves: pd.DataFrame, ratio: pd.DataFrame | None = None, *, threshold: float | None = None) -> str:
    """Alt text of :func:`analysis.report.figures.emphasis_figure` (same inputs): the curves of
    each panel, the ratio to cross-entropy of each dynamic variant below and above τ, and where
    each related loss puts its largest emphasis."""
    dyn = curves[curves["group"] == "dynamic"]
    rel = curves[curves["group"] == "related"]
    names = [n for n in dict.fromkeys(dyn["curve"]) if n != "cross-entropy"]
    quoted = [f"“{n}”" for n in names]
    tau = f" τ = {threshold:g} is marked by a dotted line." if threshold is not None else ""
    out = [f"Line charts of the emphasis |∂L/∂z_t| against the true-class probability p_t from 0 to 1.",
           f"Top left: cross-entropy (falling from 1 to 0) and the dynamic-loss variants {_join(quoted)}.{tau}"]
    if ratio is not None and threshold is not None:
        said = []
        for name in names:
            g = ratio[ratio["curve"] == name]
            lo, hi = g[g["p_t"] < threshold]["ratio"], g[g["p_t"] > threshold]["ratio"]
            said.append(f"“{name}” {_range(lo)} below τ and {_range(hi)} above it")
        out.append("Top right: each variant's emphasis divided by cross-entropy's (symmetric-log axis); "
                   + "; ".join(said) + ".")
    if not rel.empty:
        at_zero, peaks = [], []
        for name, g in rel.groupby("curve", sort=False):
            if name == "cross-entropy":
                continue
            top = g.loc[g["emphasis"].idxmax()]
            if top["p_t"] <= PEAK_AT_ZERO:
                at_zero.append(f"“{name}”")
            else:
                peaks.append(f"“{name}” at p_t = {top['p_t']:.2f} (height {top['emphasis']:.2g})")
        out.append(f"Bottom: the related losses next to cross-entropy; largest as p_t approaches 0: {_join(at_zero)}; "
                   f"peaking further right: {_join(peaks)}.")
    return " ".join(out)


def _range(values: pd.Series, digits: int = 2) -> str:
    v = values.dropna()
    if v.empty:
        return "no points"
    lo, hi = float(v.min()), float(v.max())
    return f"{lo:.{digits}g}" if np.isclose(lo, hi, rtol=1e-3, atol=1e-9) else f"{lo:.{digits}g} to {hi:.{digits}g}"


def table2_encoding_alt(search: pd.DataFrame, audit: pd.DataFrame) -> str:
    """Alt text of :func:`analysis.report.figures.table2_encoding_figure` (same inputs): the best
    τ of the search, and per encoding the range of r and its largest deviation from the published r."""
    grid = search.dropna(subset=["none_value"]).drop_duplicates("none_value")
    best = grid.loc[grid["max_abs_diff"].idxmin()]
    cells = audit.assign(dev=(audit["pearson_r"] - audit["published_r"]).abs())
    n_cells = cells[["dataset", "fusion"]].drop_duplicates().shape[0]
    per = []
    for enc, g in cells.groupby("encoding", sort=False):
        per.append(f"{enc}: r from {_num(g['pearson_r'].min())} to {_num(g['pearson_r'].max())}, "
                   f"at most {g['dev'].max():.3f} from the published r")
    closest = cells.groupby("encoding", sort=False)["dev"].max().idxmin()
    return (f"Two panels. Left: a line of the largest deviation |r − published r| over the {n_cells} cells of "
            f"Paper Table 2 (log scale) against the τ assigned to the cross-entropy row, from "
            f"{_num(grid['none_value'].min(), 2)} to {_num(grid['none_value'].max(), 2)}; the smallest, "
            f"{best['max_abs_diff']:.2g}, is at τ = {_num(best['none_value'], 2)}. Right: one row per cell (dataset · fusion) "
            f"with the published r as a black cross and r under each encoding as a hollow marker, each encoding on its "
            f"own row offset; {'; '.join(per)}. Closest to the published values: {closest}.")


def accuracy_tau_alt(acc: pd.DataFrame, *, reference: str = CONTROL_ARM) -> str:
    """Alt text of :func:`analysis.report.figures.accuracy_vs_threshold_figure` (same input): per
    panel, the accuracy of the reference and of ``ce``, and which dynamic arms lie above or below
    the reference (point estimates), with their range."""
    panels = []
    for (ds, fu), sub in acc.groupby(["dataset", "fusion"], sort=False):
        by_arm = sub.set_index("arm")["accuracy"]
        name = f"{ds} · {fu}" if acc["dataset"].nunique() > 1 else str(fu)
        if reference not in by_arm.index:
            panels.append(f"{name}: no {reference}")
            continue
        ref = float(by_arm[reference])
        dyn = sub[sub["tau"].notna()].set_index("arm")["accuracy"]
        text = f"{name}: {reference} {_num(ref)}"
        if "ce" in by_arm.index:
            text += f", ce {_num(by_arm['ce'])}"
        if not dyn.empty:
            text += (f", dynamic arms {_num(dyn.min())} to {_num(dyn.max())}; "
                     + _sides(dyn - ref, what="", reference=reference))
        panels.append(text)
    return ("Panels of test accuracy against the dynamic-loss threshold τ, one per fusion: each dynamic arm a point "
            "with its 95 % interval, the cross-entropy arms horizontal lines with their interval as a band. "
            + ". ".join(panels) + ".")


def validation_alt(vt: pd.DataFrame) -> str:
    """Alt text of :func:`analysis.report.figures.validation_test_figure` (same input): per
    dataset, the fits shown, how many lie above y = x and the range of validation minus test."""
    if "failed" in vt.columns:
        vt = vt[~vt["failed"].astype(bool)]
    parts = []
    for ds, g in sorted(vt.groupby("dataset"), key=lambda kv: str(kv[0])):
        gap = g["val_best"] - g["test_best"]
        parts.append(f"{ds}: {len(g)} fits, {int((gap > 0).sum())} above the line, validation minus test from "
                     f"{_signed(gap.min())} to {_signed(gap.max())}")
    return ("Scatter plots of validation against test accuracy of the authors' super-learner fits, one panel per "
            "dataset, with the line y = x (points above it validated better than they tested); colour: fusion, "
            "marker: variant. " + "; ".join(parts) + ".")


def reliability_alt(rel: pd.DataFrame) -> str:
    """Alt text of :func:`analysis.report.calibration_figures.reliability_figure` (same input):
    per arm, before temperature scaling, the bins (not sparse) where confidence exceeds accuracy
    and the largest gap; then the largest gap after scaling."""
    rel = rel.assign(sparse=rel["sparse"].astype(bool) if "sparse" in rel.columns else False,
                     scaling=rel["scaling"] if "scaling" in rel.columns else "none",
                     gap=rel["confidence"] - rel["accuracy"])
    dense = rel[~rel["sparse"] & rel["gap"].notna()]
    parts = []
    for ds, d in dense.groupby("dataset", sort=False):
        arms = []
        for arm in sorted(d["arm"].unique(), key=_arm_key):
            g = d[(d["arm"] == arm) & (d["scaling"] == "none")]
            if g.empty:
                continue
            worst = g.loc[g["gap"].abs().idxmax()]
            after = d[(d["arm"] == arm) & (d["scaling"] != "none")]["gap"]
            text = (f"{arm} over-confident in {int((g['gap'] > 0).sum())} of {len(g)} bins, largest gap "
                    f"{_signed(worst['gap'])} at confidence {worst['confidence']:.2f}")
            if not after.empty:
                text += f", after scaling at most {after.abs().max():.3f} from 0"
            arms.append(text)
        lead = f"{ds}: " if dense["dataset"].nunique() > 1 else ""
        parts.append(lead + "; ".join(arms))
    return ("Small multiples, one panel per arm, of confidence minus accuracy (above 0: over-confident) against the "
            "mean confidence of each bin, before temperature scaling (solid, the arm's colour) and after (grey, "
            "dashed). " + ". ".join(parts) + ".")


def reference_difference_alt(absolute: pd.DataFrame, diff: pd.DataFrame, *, x: str, y: str, what: str, x_name: str,
                             reference: str = CONTROL_ARM, also_absolute: Sequence[str] = (),
                             spread: pd.DataFrame | None = None, digits: int = 3) -> str:
    """Alt text of :func:`analysis.report.calibration_figures.reference_difference_figure` (same
    inputs): the reference's curve and the ``also_absolute`` arms' from the first to the last ``x``,
    then which arms end above or below the reference and the range of the differences (of the
    drawn band when ``spread`` is given, with the arms' unsmoothed values at the last ``x``)."""
    parts = []
    for ds, a in absolute.groupby("dataset", sort=False):
        lead = f"{ds}: " if absolute["dataset"].nunique() > 1 else ""
        ends = []
        for arm in [reference, *[a_ for a_ in also_absolute if a_ != reference]]:
            g = a[a["arm"] == arm].sort_values(x)
            if not g.empty:
                ends.append(f"{arm} from {_num(g[y].iloc[0], digits)} at {x_name} {g[x].iloc[0]:g} to "
                            f"{_num(g[y].iloc[-1], digits)} at {g[x].iloc[-1]:g}")
        d = diff[(diff["dataset"] == ds) & ~diff["arm"].isin([reference, *also_absolute])]
        text = lead + "Left: " + "; ".join(ends)
        if not d.empty:
            last = d[x].max()
            at_end = d[d[x] == last].set_index("arm")["difference"]
            if spread is None:
                text += (f". Right: the difference from {reference} ranges from {_signed(d['difference'].min(), digits)} to "
                         f"{_signed(d['difference'].max(), digits)}")
            else:
                sp = spread[spread["dataset"] == ds]
                text += (f". Right: a band over the arms {_join(sorted(d['arm'].unique(), key=_arm_key))} of their "
                         f"smoothed difference from {reference}, from {_signed(sp['low'].min(), digits)} to "
                         f"{_signed(sp['high'].max(), digits)}, mean from {_signed(sp['mean'].min(), digits)} to "
                         f"{_signed(sp['mean'].max(), digits)}")
            text += f"; at {x_name} {last:g}, " + _sides(at_end, what="", reference=reference, digits=digits)
        parts.append(text)
    return (f"Two panels of {what} against {x_name}: left, the absolute curves; right, each other arm's difference from "
            f"{reference} (0 line). " + ". ".join(parts) + ".")


def risk_coverage_alt(rc: pd.DataFrame, diff: pd.DataFrame, spread: pd.DataFrame) -> str:
    """Alt text of :func:`analysis.report.calibration_figures.risk_coverage_figure` (same inputs)."""
    return reference_difference_alt(rc, diff, x="coverage_target", y="risk", what="selective risk",
                                    x_name="coverage", also_absolute=("ce",), spread=spread)


def ensemble_size_alt(es: pd.DataFrame, diff: pd.DataFrame) -> str:
    """Alt text of :func:`analysis.report.calibration_figures.ensemble_size_figure` (same inputs)."""
    return reference_difference_alt(es, diff, x="n_members", y="accuracy", what="test accuracy",
                                    x_name="members", also_absolute=("ce",))


def related_alt(rel: pd.DataFrame, *, reference: str = CONTROL_ARM) -> str:
    """Alt text of :func:`analysis.report.related.related_figure` (same input): per dataset, the
    losses whose seed interval lies above or below 0, and the range of the estimates."""
    parts = []
    for ds, g in rel[rel["arm"] != reference].groupby("dataset", sort=False):
        lo, hi = g["control_seed_ci_low"], g["control_seed_ci_high"]
        names = g["label"].astype(str)
        above, below = names[lo > 0].tolist(), names[hi < 0].tolist()
        low_row, high_row = g.loc[g["diff_vs_control"].idxmin()], g.loc[g["diff_vs_control"].idxmax()]
        lead = f"{ds}: " if rel["dataset"].nunique() > 1 else ""
        parts.append(f"{lead}{len(g)} {'loss' if len(g) == 1 else 'losses'}; estimates from {_signed(low_row['diff_vs_control'])} "
                     f"({low_row['label']}) to {_signed(high_row['diff_vs_control'])} ({high_row['label']}); seed "
                     f"interval above 0: {_join(above)}; below 0: {_join(below)}; the others' seed intervals hold 0")
    return (f"Dot-and-interval chart of the accuracy difference to {reference} per loss (Average ensembles): a thick bar "
            "for the 95 % interval over test samples, a thin capped line for the interval over training seeds and "
            f"test samples, a vertical line at 0 ({reference}). " + ". ".join(parts) + ".")
