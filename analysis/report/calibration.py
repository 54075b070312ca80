"""The calibration page: calibration, reliability, selective-prediction and ensemble-size results
of the paper's arms shaped for display, differences from the learning-rate control ``ce-lr0.01``,
and the page's interpretation sentences computed from the numbers (:func:`interpretation`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.core.metric_registry import metrics_of
from analysis.report.context import ReportContext, load_result, reads
from analysis.report.frames import _order, one_dataset_dropped
from training.arms import ARM_ORDER, ARMS, CONTROL_ARM

#: a reliability bin is "sparse" (greyed in the figure) below this many samples ...
MIN_BIN_COUNT: int = 30
#: ... or below this share of its curve's samples (the test set), whichever is larger
MIN_BIN_SHARE: float = 0.005


def _paper_arms(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["arm"].isin(ARM_ORDER)]


def mark_sparse_bins(rel: pd.DataFrame, *, min_count: int = MIN_BIN_COUNT, min_share: float = MIN_BIN_SHARE,
                     curve: Sequence[str] = ("dataset", "arm", "fusion", "scaling")) -> pd.DataFrame:
    """``rel`` with a boolean ``sparse`` column: the bin holds fewer than
    ``max(min_count, min_share × n)`` samples, ``n`` being the samples of its curve (the rows
    sharing ``curve``)."""
    keys = [c for c in curve if c in rel.columns]
    total = rel.groupby(keys, sort=False)["count"].transform("sum") if keys else rel["count"].sum()
    return rel.assign(sparse=rel["count"] < np.maximum(min_count, min_share * total))


def difference_to_reference(df: pd.DataFrame, *, on: Sequence[str], value: str,
                            reference: str = CONTROL_ARM) -> pd.DataFrame:
    """Every other arm's ``value`` minus the reference arm's at the same ``on`` keys: columns
    ``*on, arm, difference`` (rows without a reference value dropped).

    Raises
    ------
    ValueError
        When ``df`` has no row of the reference arm.
    """
    ref = df[df["arm"] == reference]
    if ref.empty:
        raise ValueError(f"Expected rows of the reference arm {reference!r}; arms present: {sorted(df['arm'].unique())}")
    ref = ref.set_index(list(on))[value].rename("_ref")
    other = df[df["arm"] != reference].join(ref, on=list(on), how="inner")
    out = other[[*on, "arm"]].copy()
    out["difference"] = other[value] - other["_ref"]
    return out.reset_index(drop=True)


#: coverage points of the running mean that smooths each arm's risk difference (0.05 of coverage)
SMOOTH_POINTS: int = 5


def difference_spread(diff: pd.DataFrame, *, x: str, window: int = SMOOTH_POINTS) -> pd.DataFrame:
    """The arms' differences from the reference summarised per dataset and ``x``: each arm's curve
    first smoothed by a centred running mean over ``window`` points (fewer at the ends), then the
    mean, lowest and highest over the arms (columns ``dataset, x, mean, low, high, n_arms``).

    >>> d = pd.DataFrame({"dataset": "d", "arm": ["a"] * 3 + ["b"] * 3, "c": [1, 2, 3] * 2,
    ...                   "difference": [0.0, 0.3, 0.0, 0.0, -0.3, 0.0]})
    >>> difference_spread(d, x="c", window=1)[["c", "mean", "low", "high"]].to_numpy().tolist()
    [[1.0, 0.0, 0.0, 0.0], [2.0, 0.0, -0.3, 0.3], [3.0, 0.0, 0.0, 0.0]]
    """
    if window < 1:
        raise ValueError(f"Expected `window` to be a positive number of points, got {window}")
    d = diff.sort_values(["dataset", "arm", x])
    smooth = d.groupby(["dataset", "arm"], sort=False)["difference"].transform(
        lambda v: v.rolling(window, center=True, min_periods=1).mean())
    g = d.assign(smooth=smooth).groupby(["dataset", x], sort=False)["smooth"]
    out = pd.DataFrame({"mean": g.mean(), "low": g.min(), "high": g.max(), "n_arms": g.size()}).reset_index()
    return out.sort_values(["dataset", x], kind="stable").reset_index(drop=True)


def reliability_gaps(rel: pd.DataFrame) -> pd.DataFrame:
    """Mean confidence, accuracy and their gap (confidence − accuracy: > 0 over-confident) per
    (dataset, arm, scaling), from the reliability bins (count-weighted bin means are the
    test-set means)."""
    rel = rel[rel["count"] > 0]
    w = rel["count"].to_numpy(float)
    g = rel.assign(_c=rel["confidence"] * w, _a=rel["accuracy"] * w, _n=w).groupby(
        ["dataset", "arm", "scaling"], sort=False)[["_c", "_a", "_n"]].sum()
    out = pd.DataFrame({"confidence": g["_c"] / g["_n"], "accuracy": g["_a"] / g["_n"]})
    out["gap"] = out["confidence"] - out["accuracy"]
    return out.reset_index()


def _list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _signed(x: float, digits: int) -> str:
    text = f"{x:+.{digits}f}"
    return "±" + text[1:] if float(text) == 0 else text.replace("-", "−")


def _around(arms, values, centre: float, tol: float, fmt) -> tuple[list[str], list[str], list[str]]:
    """The arms whose value lies above ``centre + tol`` and below ``centre - tol`` (each with its value
    written by ``fmt``), and those within ``tol`` of ``centre``."""
    pairs = list(zip(arms, values))
    return ([f"{a} ({fmt(v)})" for a, v in pairs if v > centre + tol],
            [f"{a} ({fmt(v)})" for a, v in pairs if v < centre - tol],
            [a for a, v in pairs if abs(v - centre) <= tol])


def _phrases(groups) -> list[str]:
    """``"<phrase> <arms>"`` for every ``(arms, phrase)`` with arms."""
    return [f"{phrase} {_list(arms)}" for arms, phrase in groups if arms]


def interpretation(summary: pd.DataFrame, *, reference: str = CONTROL_ARM, gap_tol: float = 0.005,
                   temperature_tol: float = 0.02) -> str:
    """Markdown bullets read off the numbers, per dataset: which arms are over- or under-confident
    (sign of mean confidence − accuracy beyond ``gap_tol``), which fitted temperatures are above or
    below 1 (beyond ``temperature_tol``) and whether that agrees with the gap, and each dynamic
    arm's AUROC and AURC against ``reference``.

    Parameters
    ----------
    summary : one row per (dataset, arm): ``dataset, arm, gap`` (before scaling),
        ``temperature``, ``auroc``, ``aurc``.
    """
    for col in ("dataset", "arm", "gap", "temperature", "auroc", "aurc"):
        if col not in summary.columns:
            raise ValueError(f"Expected `summary` to have column {col!r} (has {list(summary.columns)})")
    lines = []
    datasets = list(dict.fromkeys(summary["dataset"]))
    for ds in datasets:
        s = _order(summary[summary["dataset"] == ds], by=("arm",))
        lead = f"**{ds}**: " if len(datasets) > 1 else ""
        over, under, close = _around(s["arm"], s["gap"], 0.0, gap_tol, lambda g: _signed(g, 3))
        parts = _phrases(((over, "mean confidence exceeds accuracy (**over-confident**) for"),
                          (under, "mean confidence falls short of accuracy (**under-confident**) for"),
                          (close, f"the two agree within ±{gap_tol:g} for")))
        lines.append(f"{lead}Before temperature scaling (Average ensemble, confidence − accuracy), "
                     + "; ".join(parts) + ".")
        t = s.dropna(subset=["temperature"])
        hi, lo, near = _around(t["arm"], t["temperature"], 1.0, temperature_tol, lambda v: f"T = {v:.2f}")
        parts = _phrases(((hi, "above 1 (scaling softens the scores, the remedy for over-confidence) for"),
                          (lo, "below 1 (scaling sharpens them, the remedy for under-confidence) for"),
                          (near, f"within {temperature_tol:g} of 1 for")))
        if parts:
            decided = [(g, v) for g, v in zip(t["gap"], t["temperature"])
                       if abs(g) > gap_tol and abs(v - 1) > temperature_tol]
            agree = sum((g > 0) == (v > 1) for g, v in decided)
            lines.append(f"{lead}The fitted temperature is " + "; ".join(parts)
                         + (f" — in line with the sign of the gap for {agree} of the {len(decided)} arms where both "
                            f"are clear." if decided else "."))
        ref = s[s["arm"] == reference]
        dyn = s[[ARMS[a].family == "dyn" if a in ARMS else False for a in s["arm"]]]
        if ref.empty or dyn.empty:
            continue
        r0 = ref.iloc[0]
        each = [f"{a} (AUROC {_signed(u - r0.auroc, 3)}, AURC {_signed(c - r0.aurc, 4)})"
                for a, u, c in zip(dyn["arm"], dyn["auroc"], dyn["aurc"])]
        better_auroc = int((dyn["auroc"] > r0.auroc).sum())
        better_aurc = int((dyn["aurc"] < r0.aurc).sum())
        lines.append(
            f"{lead}Against {reference} (AUROC {r0.auroc:.3f}, AURC {r0.aurc:.4f}; same learning rate): "
            f"{'; '.join(each)}. AUROC is higher for {better_auroc} of {len(dyn)} dynamic arms and AURC lower (better) "
            f"for {better_aurc} of {len(dyn)}. Their paired intervals are in the difference tables below (claim "
            f"`reliability`); AURC also falls when accuracy alone rises, AUROC does not.")
    return "".join(f"- {line}\n" for line in lines)


def shown_metrics(table: str) -> dict[str, str]:
    """Column -> page label of the metrics of ``table`` shown on the page, in column order
    (:mod:`analysis.core.metric_registry`).

    >>> shown_metrics("selective")
    {'accuracy': 'accuracy', 'auroc': 'AUROC', 'aurc': 'AURC'}
    """
    return {m.name: m.label for m in metrics_of(table) if m.shown}


def metrics_note(table: str = "calibration") -> str:
    """A markdown sentence listing the metrics of ``table`` on the page, with the better direction."""
    parts = [f"{m.label} ({m.direction} is better)" for m in metrics_of(table) if m.shown and m.name != "accuracy"]
    return f"Metrics of the {table} table: {', '.join(parts)}.\n"


#: the metrics of each difference table: calibration (before scaling) and selective prediction
DIFF_METRICS: dict[str, tuple[str, ...]] = {"calibration": ("ece", "nll", "brier"), "selective": ("auroc", "aurc")}
#: a line break inside a table cell (the PDF gets Typst's; HTML wraps the cell itself)
_CELL_BREAK = " `#linebreak()`{=typst} "


def difference_cell(diff: float, low: float, high: float, *, digits: int = 3) -> str:
    """``diff`` over its interval in one thin cell (markdown), bold when the interval excludes 0.

    >>> difference_cell(0.0832, 0.071, 0.095)
    '**+0.083** `#linebreak()`{=typst} **[+0.071, +0.095]**'
    >>> difference_cell(-0.001, -0.004, 0.002)
    '−0.001 `#linebreak()`{=typst} [−0.004, +0.002]'
    """
    if not np.isfinite(diff):
        return "–"
    d = _signed(diff, digits)
    ci = f"[{_signed(low, digits)}, {_signed(high, digits)}]" if np.isfinite(low) and np.isfinite(high) else "[–]"
    if np.isfinite(low) and np.isfinite(high) and (low > 0 or high < 0):
        d, ci = f"**{d}**", f"**{ci}**"
    return d + _CELL_BREAK + ci


# ------------------------------------------------------------------ loaders for the page cells
@reads("calibration")
def calibration_frame(ctx: ReportContext, *, fusions: Sequence[str] = ("Average", "Vote", "MLP-OOB", "Single"),
                      ) -> pd.DataFrame:
    """Calibration of ensembles and single members (Single: mean over members), before and after
    temperature scaling: the shown metrics of ``calibration`` (:func:`shown_metrics`: accuracy, ECE
    (equal width and equal mass), class-wise ECE, Brier, NLL, ...), then T."""
    c = _paper_arms(load_result("calibration", ctx))
    c = c[c["fusion"].isin(fusions)]
    keys = ["dataset", "arm", "fusion", "scaling"]
    labels = {**shown_metrics("calibration"), "temperature": "T"}
    agg = c.groupby(keys, sort=False)[list(labels)].mean().reset_index().rename(columns=labels)
    return one_dataset_dropped(_order(agg, by=("dataset", "arm", "fusion", "scaling")))


def _reliability(ctx: ReportContext, fusion: str, binning: str) -> pd.DataFrame:
    r = _paper_arms(load_result("reliability", ctx))
    return r[(r["fusion"] == fusion) & (r["binning"] == binning) & (r["member"] == -1)]


@reads("reliability")
def reliability_frame(ctx: ReportContext, *, fusion: str = "Average", binning: str = "width") -> pd.DataFrame:
    """Reliability bins of one fusion (non-empty bins, ``sparse`` marked by :func:`mark_sparse_bins`),
    before and after temperature scaling."""
    r = mark_sparse_bins(_reliability(ctx, fusion, binning))
    return _order(r[r["count"] > 0], by=("dataset", "arm", "scaling", "bin"))


@reads("selective")
def selective_frame(ctx: ReportContext, *, fusions: Sequence[str] = ("Average", "Vote", "MLP-OOB", "Single"),
                    ) -> pd.DataFrame:
    """Selective prediction: the shown metrics of ``selective`` (accuracy, AUROC of confidence for
    correct vs wrong, AURC, ...; Single: mean over members)."""
    s = _paper_arms(load_result("selective", ctx))
    s = s[s["fusion"].isin(fusions)]
    labels = shown_metrics("selective")
    agg = (s.groupby(["dataset", "arm", "fusion", "confidence_kind"], sort=False)[list(labels)]
           .mean().reset_index().rename(columns={"confidence_kind": "confidence", **labels}))
    return one_dataset_dropped(_order(agg, by=("dataset", "arm", "fusion")))


@reads("reliability", "calibration", "selective")
def interpretation_note(ctx: ReportContext, *, fusion: str = "Average") -> str:
    """:func:`interpretation` of one fusion's results (reliability gap before scaling, fitted
    temperature, AUROC and AURC)."""
    gaps = reliability_gaps(_reliability(ctx, fusion, "width"))
    gaps = gaps[gaps["scaling"] == "none"][["dataset", "arm", "gap"]]
    cal = _paper_arms(load_result("calibration", ctx))
    cal = cal[(cal["fusion"] == fusion) & (cal["scaling"] == "temperature") & (cal["member"] == -1)]
    temps = cal.groupby(["dataset", "arm"], sort=False)["temperature"].mean().reset_index()
    sel = _paper_arms(load_result("selective", ctx))
    sel = sel[(sel["fusion"] == fusion) & (sel["member"] == -1)][["dataset", "arm", "auroc", "aurc"]]
    summary = gaps.merge(temps, on=["dataset", "arm"], how="left").merge(sel, on=["dataset", "arm"], how="left")
    return interpretation(summary)


@reads("calibration_diff", "lr_tuning")
def reliability_diff_table(ctx: ReportContext, *, table: str = "calibration",
                           fusions: Sequence[str] = ("Average", "Vote", "Weighted-OOB", "MLP-OOB")):
    """Each dynamic arm minus the tuned cross-entropy arm (``lr_tuning.csv``) and minus ``ce-lr0.01``
    (one row when they are the same arm), per fusion: one thin cell per metric of
    :data:`DIFF_METRICS` ``[table]`` holding the difference over its 95 % interval (two-level,
    members × test samples, where the fusion can be re-fused; over test samples for the learned
    fusions: column ``interval``, ``two-level`` or ``test-only``), bold where the interval excludes 0
    (``calibration_diff.csv``); 4 decimals, so that a bound near 0 keeps its sign."""
    from analysis.audit.reliability_claims import tuned_reference
    from analysis.report.markdown import Table

    if table not in DIFF_METRICS:
        raise ValueError(f"Expected `table` in {tuple(DIFF_METRICS)}, got {table!r}")
    d = load_result("calibration_diff", ctx)
    try:
        tuning = load_result("lr_tuning", ctx)
    except FileNotFoundError:
        tuning = pd.DataFrame()
    labels = {m.name: m.label for m in metrics_of("calibration") + metrics_of("selective")}
    rows = []
    for ds, g in d.groupby("dataset", sort=False):
        tuned = tuned_reference(tuning, ds) if not tuning.empty else None
        roles = {CONTROL_ARM: CONTROL_ARM}
        if tuned is not None:
            roles[tuned] = f"{CONTROL_ARM} = tuned" if tuned == CONTROL_ARM else f"{tuned} (tuned)"
        g = g[g["reference"].isin(roles) & g["fusion"].isin(fusions) & g["metric"].isin(DIFF_METRICS[table])]
        for (arm, ref, fusion), c in g.groupby(["arm", "reference", "fusion"], sort=False):
            seeded = c["seed_ci_low"].notna().all()
            row = {"dataset": ds, "arm": arm, "reference": roles[ref], "fusion": fusion,
                   "interval": "two-level" if seeded else "test-only"}
            for r in c.itertuples():
                lo, hi = (r.seed_ci_low, r.seed_ci_high) if seeded else (r.ci_low, r.ci_high)
                row[f"Δ {labels.get(r.metric, r.metric)}"] = difference_cell(r.diff, lo, hi, digits=4)
            rows.append(row)
    if not rows:
        raise ValueError("calibration_diff.csv holds no difference of the shown fusions and references")
    out = one_dataset_dropped(_order(pd.DataFrame(rows), by=("dataset", "arm", "reference", "fusion")))
    return Table(out, markdown=tuple(c for c in out.columns if c.startswith("Δ ")))


@reads("risk_coverage")
def risk_coverage_frame(ctx: ReportContext, *, fusion: str = "Average") -> pd.DataFrame:
    """Risk–coverage points of one fusion, per paper arm."""
    rc = _paper_arms(load_result("risk_coverage", ctx))
    return _order(rc[(rc["fusion"] == fusion) & (rc["member"] == -1)], by=("dataset", "arm", "coverage_target"))


@reads("risk_coverage")
def risk_coverage_diff_frame(ctx: ReportContext, *, fusion: str = "Average") -> pd.DataFrame:
    """Each arm's selective risk minus ``ce-lr0.01``'s at the same coverage target."""
    return difference_to_reference(risk_coverage_frame(ctx, fusion=fusion), on=("dataset", "coverage_target"),
                                    value="risk")


@reads("risk_coverage")
def risk_coverage_spread_frame(ctx: ReportContext, *, fusion: str = "Average",
                               leave_out: Sequence[str] = ("ce",)) -> pd.DataFrame:
    """:func:`difference_spread` of :func:`risk_coverage_diff_frame` over the arms other than
    ``leave_out`` (drawn as absolute curves instead)."""
    diff = risk_coverage_diff_frame(ctx, fusion=fusion)
    return difference_spread(diff[~diff["arm"].isin(leave_out)], x="coverage_target")


@reads("risk_coverage")
def risk_coverage_frames(ctx: ReportContext, *, fusion: str = "Average") -> tuple[pd.DataFrame, ...]:
    """What the risk–coverage figure and its alt text read: the curves, the differences from
    ``ce-lr0.01`` and their spread over the arms other than ``ce``."""
    return (risk_coverage_frame(ctx, fusion=fusion), risk_coverage_diff_frame(ctx, fusion=fusion),
            risk_coverage_spread_frame(ctx, fusion=fusion))


@reads("ensemble_size")
def ensemble_size_frames(ctx: ReportContext, *, fusion: str = "Average") -> tuple[pd.DataFrame, ...]:
    """What the ensemble-size figure and its alt text read: the curves and the differences from
    ``ce-lr0.01``."""
    return ensemble_size_frame(ctx, fusion=fusion), ensemble_size_diff_frame(ctx, fusion=fusion)


@reads("ensemble_size")
def ensemble_size_frame(ctx: ReportContext, *, fusion: str = "Average") -> pd.DataFrame:
    """Accuracy against ensemble size (mean and 5–95 % range over member subsets), one fusion."""
    es = _paper_arms(load_result("ensemble_size", ctx))
    es = _order(es[es["fusion"] == fusion], by=("dataset", "arm", "n_members"))
    return es.rename(columns={"accuracy_mean": "accuracy", "accuracy_q05": "ci_low", "accuracy_q95": "ci_high"})


@reads("ensemble_size")
def ensemble_size_diff_frame(ctx: ReportContext, *, fusion: str = "Average") -> pd.DataFrame:
    """Each arm's mean accuracy over member subsets minus ``ce-lr0.01``'s at the same size."""
    return difference_to_reference(ensemble_size_frame(ctx, fusion=fusion), on=("dataset", "n_members"),
                                   value="accuracy")
