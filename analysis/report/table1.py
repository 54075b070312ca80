"""Regenerated Table 1 shaped for the tables page: the arm × fusion accuracy grid, each arm's
difference to both cross-entropy arms, published and regenerated differences each to their own
cross-entropy, and the accuracy-against-τ frame of the figure. Only the paper's arms
(:data:`training.arms.ARM_ORDER`) are shown; frames in, frames out, no metric computed here
beyond differences of published accuracies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.core.fusions import FUSION_ORDER, PAPER_FUSIONS
from analysis.report.context import ReportContext, load_result, reads
from analysis.report.frames import _interval, _order, one_dataset_dropped
from analysis.report.statistics import CI_SEEDS_SHORT, CI_TEST_SHORT
from training.arms import ARM_ORDER, ARMS, CONTROL_ARM, REFERENCE_ARM
from training.datasets import paper_name


def test_ci(reference: str) -> str:
    """The column of a difference's interval over test samples only (the paired bootstrap).

    >>> test_ci("ce")
    'CI vs ce (test samples)'
    """
    return f"CI vs {reference} ({CI_TEST_SHORT})"


def seed_ci(reference: str) -> str:
    """The column of a difference's two-level interval (training seeds and test samples).

    >>> seed_ci("ce")
    'CI vs ce (seeds + test samples)'
    """
    return f"CI vs {reference} ({CI_SEEDS_SHORT})"


def paper_arms(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of the paper's arms (``ARM_ORDER``): related-loss arms never enter these pages."""
    return df[df["arm"].isin(ARM_ORDER)]


def accuracy_grid(t1: pd.DataFrame) -> pd.DataFrame:
    """Accuracy as an arm × fusion grid: one row per (dataset, arm) in ``ARM_ORDER``, one column
    per fusion in ``FUSION_ORDER`` (fusions absent from ``t1`` left out).

    Parameters
    ----------
    t1 : table1 rows (``dataset, arm, fusion, accuracy``).
    """
    t1 = paper_arms(t1)
    order = tuple(FUSION_ORDER)
    fusions = [f for f in order if f in set(t1["fusion"])] + sorted(set(t1["fusion"]) - set(order))
    wide = t1.pivot_table(index=["dataset", "arm"], columns="fusion", values="accuracy", aggfunc="first")
    wide = wide.reindex(columns=fusions).reset_index()
    wide.columns.name = None
    return one_dataset_dropped(_order(wide, by=("dataset", "arm")))


def with_control_columns(t1: pd.DataFrame, ci: pd.DataFrame | None) -> pd.DataFrame:
    """table1 with ``diff_vs_control``/``control_ci_*`` filled from the ``bootstrap_ci`` diff rows
    against ``ce-lr0.01`` where table1 lacks them."""
    if {"diff_vs_control", "control_ci_low", "control_ci_high"} <= set(t1.columns) or ci is None:
        return t1
    d = ci[(ci["quantity"] == "diff") & (ci["reference"] == CONTROL_ARM)]
    d = d.rename(columns={"estimate": "diff_vs_control", "ci_low": "control_ci_low", "ci_high": "control_ci_high"})
    return t1.merge(d[["dataset", "arm", "fusion", "diff_vs_control", "control_ci_low", "control_ci_high"]],
                    on=["dataset", "arm", "fusion"], how="left", validate="1:1")


def differences(t1: pd.DataFrame, ci: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each arm's accuracy difference to ``ce-lr0.01`` (same learning rate: the loss alone) next to
    its difference to ``ce`` (as published: loss and learning rate), with paired bootstrap CIs, and
    the two-level (training-seed) CIs where table1 has them. Rows: (dataset, fusion, arm) for
    every paper arm but ``ce-lr0.01``.

    Parameters
    ----------
    t1 : table1 rows; ``diff_vs_control``/``control_ci_*`` are taken from ``ci`` (the long
        ``bootstrap_ci`` table) when table1 lacks them.
    """
    t1 = with_control_columns(paper_arms(t1), ci)
    t1 = t1[t1["arm"] != CONTROL_ARM]
    out = pd.DataFrame({"dataset": t1["dataset"], "fusion": t1["fusion"], "arm": t1["arm"],
                        f"Δ vs {CONTROL_ARM}": t1["diff_vs_control"],
                        test_ci(CONTROL_ARM): _interval(t1["control_ci_low"], t1["control_ci_high"])})
    if {"control_seed_ci_low", "control_seed_ci_high"} <= set(t1.columns):
        out[seed_ci(CONTROL_ARM)] = _interval(t1["control_seed_ci_low"], t1["control_seed_ci_high"])
    out[f"Δ vs {REFERENCE_ARM}"] = t1["diff_vs_ce"]
    out[test_ci(REFERENCE_ARM)] = _interval(t1["diff_ci_low"], t1["diff_ci_high"])
    if {"diff_seed_ci_low", "diff_seed_ci_high"} <= set(t1.columns):
        out[seed_ci(REFERENCE_ARM)] = _interval(t1["diff_seed_ci_low"], t1["diff_seed_ci_high"])
    return one_dataset_dropped(_order(out.reset_index(drop=True), by=("dataset", "fusion", "arm")))


def published_differences(pub: pd.DataFrame) -> pd.DataFrame:
    """Paper Table 1 as differences to its own cross-entropy row: ``dataset, fusion, τ, Δ`` with
    Δ = accuracy at τ minus accuracy at ``None`` (same dataset and fusion).

    Parameters
    ----------
    pub : published Table 1 (``dataset, fusion, threshold`` (``"None"`` for cross-entropy), ``accuracy``).
    """
    none = pub[pub["threshold"] == "None"].set_index(["dataset", "fusion"])["accuracy"]
    dyn = pub[pub["threshold"] != "None"]
    base = [none.get((d, f), np.nan) for d, f in zip(dyn["dataset"], dyn["fusion"])]
    return pd.DataFrame({"dataset": dyn["dataset"].to_numpy(), "fusion": dyn["fusion"].to_numpy(),
                         "τ": dyn["threshold"].astype(float).to_numpy(), "Δ": dyn["accuracy"].to_numpy() - base})


def delta_comparison(t1: pd.DataFrame, pub: pd.DataFrame, ci: pd.DataFrame | None = None) -> pd.DataFrame:
    """Published and regenerated Table 1 compared as each source's difference to its own
    cross-entropy (never raw accuracies of different models): per dataset, paper fusion and τ,
    the paper's Δ (dyn-τ minus its None row, same dataset and fusion) next to ours (dyn-τ minus
    ``ce``, and minus ``ce-lr0.01``) with paired bootstrap CIs. The paper's Δ is ``NaN`` where
    the paper has no such dataset.
    """
    pdiff = published_differences(pub).set_index(["dataset", "fusion", "τ"])["Δ"]
    t1 = with_control_columns(paper_arms(t1), ci)
    rows = []
    for r in t1[t1["fusion"].isin(PAPER_FUSIONS)].itertuples(index=False):
        arm = ARMS.get(r.arm)
        if arm is None or arm.family != "dyn":
            continue
        paper_ds = paper_name(r.dataset)
        rows.append({
            "dataset": r.dataset, "fusion": r.fusion, "τ": f"{arm.threshold:g}",
            "paper Δ vs None": pdiff.get((paper_ds, r.fusion, float(arm.threshold)), np.nan),
            f"Δ vs {REFERENCE_ARM}": r.diff_vs_ce,
            test_ci(REFERENCE_ARM): _interval(pd.Series([r.diff_ci_low]), pd.Series([r.diff_ci_high])).iloc[0],
            f"Δ vs {CONTROL_ARM}": r.diff_vs_control,
            test_ci(CONTROL_ARM): _interval(pd.Series([r.control_ci_low]), pd.Series([r.control_ci_high])).iloc[0],
        })
    out = pd.DataFrame(rows)
    return one_dataset_dropped(_order(out, by=("dataset", "fusion", "τ"))) if len(out) else out


def threshold_points(t1: pd.DataFrame, fusions: Sequence[str]) -> pd.DataFrame:
    """Accuracy with CI per (dataset, fusion, arm) and the arm's τ (NaN for the cross-entropy
    arms), the columns of :func:`analysis.report.figures.accuracy_vs_threshold_figure`."""
    t1 = paper_arms(t1)
    t1 = t1[t1["fusion"].isin(fusions)].copy()
    t1["tau"] = [np.nan if ARMS[a].threshold is None else float(ARMS[a].threshold) for a in t1["arm"]]
    t1["fusion"] = pd.Categorical(t1["fusion"], categories=[f for f in fusions if f in set(t1["fusion"])])
    t1 = t1.sort_values(["dataset", "fusion"], kind="stable")
    t1["fusion"] = t1["fusion"].astype(str)
    return _order(t1, by=("dataset",))[["dataset", "fusion", "arm", "tau", "accuracy", "ci_low", "ci_high"]]


def fusions_note() -> str:
    """A markdown sentence naming every fusion in display order, ours with what it does
    (:mod:`analysis.core.fusions`)."""
    from analysis.core.fusions import FUSIONS, displayed

    ours = [f"`{f.name}` ({f.label}{'' if f.leak_free else ', not leak-free'})" for f in displayed() if not f.published]
    paper = ", ".join(f"`{f}`" for f in PAPER_FUSIONS)
    in_sample = [f for f in PAPER_FUSIONS if not FUSIONS[f].leak_free]
    if in_sample:
        paper += f" ({' and '.join(in_sample)} fitted on in-sample predictions, as published)"
    return f"Fusions: the paper's {paper}" + (f"; ours: {'; '.join(ours)}" if ours else "") + ".\n"


# ------------------------------------------------------------------ loaders for the page cells
@reads("table1")
def datasets_note(ctx: ReportContext) -> str:
    """A markdown sentence naming the datasets of the regenerated tables (a table with one
    dataset leaves its ``dataset`` column out)."""
    names = list(dict.fromkeys(load_result("table1", ctx)["dataset"]))
    return f"Regenerated tables below: dataset{'s' if len(names) > 1 else ''} {', '.join(f'**{n}**' for n in names)}.\n"


@reads("table1")
def grid_frame(ctx: ReportContext) -> pd.DataFrame:
    """Regenerated Table 1 as an arm × fusion accuracy grid (:func:`accuracy_grid`)."""
    return accuracy_grid(load_result("table1", ctx))


@reads("table1", "bootstrap_ci")
def differences_frame(ctx: ReportContext, reference: str) -> pd.DataFrame:
    """Each arm's Δ to one cross-entropy arm (``ce-lr0.01`` or ``ce``) with its CIs: the columns of
    :func:`differences` for that reference (every paper arm but the reference), under short headers (the caption names the reference
    and the level), so that each of the page's two tables fits it."""
    if reference not in (CONTROL_ARM, REFERENCE_ARM):
        raise ValueError(f"Expected `reference` {CONTROL_ARM!r} or {REFERENCE_ARM!r}, got {reference!r}")
    d = differences(load_result("table1", ctx), load_result("bootstrap_ci", ctx))
    d = d[d["arm"] != reference].reset_index(drop=True)  # the reference minus itself: no row
    cols = {c: c for c in ("dataset", "fusion", "arm") if c in d.columns}
    cols.update({f"Δ vs {reference}": "Δ accuracy", test_ci(reference): f"95 % CI ({CI_TEST_SHORT})",
                 seed_ci(reference): f"95 % CI ({CI_SEEDS_SHORT})"})
    return d[[c for c in cols if c in d.columns]].rename(columns=cols)


@reads("table1", "bootstrap_ci", "paper:table1_accuracy.csv")
def delta_comparison_frame(ctx: ReportContext) -> pd.DataFrame:
    """Paper Table 1 and regenerated Table 1 as differences to their own cross-entropy
    (:func:`delta_comparison`)."""
    from analysis.audit.published import load_published_table1

    return delta_comparison(load_result("table1", ctx), load_published_table1(), load_result("bootstrap_ci", ctx))


@reads("table1")
def threshold_frame(ctx: ReportContext,
                    fusions: Sequence[str] = ("Average", "Vote", "Weighted-OOB", "MLP-OOB")) -> pd.DataFrame:
    """The accuracy-against-τ points of the leak-free fusions (:func:`threshold_points`)."""
    return threshold_points(load_result("table1", ctx), fusions)
