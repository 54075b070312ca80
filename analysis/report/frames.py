"""Result tables shaped for the report pages (Paper Table 1, regenerated Table 2, learning-rate
control, stacking, the super-learners' differences from the authors' code, splits, emphasis
ratios): frames in, frames out, no metric computed here. The regenerated Table 1 frames are in
:mod:`analysis.report.table1`, the calibration page's in :mod:`analysis.report.calibration`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.core.fusions import FUSION_ORDER, FUSIONS, PAPER_FUSIONS
from analysis.core.superlearner_differences import SUPERLEARNER_DIFFERENCES
from analysis.report.context import (
    ReportContext,
    ResultsMissingError,
    load_result,
    reads,
    superlearners_absent,
)
from analysis.report.statistics import CI_TEST_ONLY, MCNEMAR_P
from training.arms import ARM_ORDER, ARMS, REFERENCE_ARM
from training.datasets import paper_name


def one_dataset_dropped(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` without its ``dataset`` column when that holds one value (named in the page's prose by
    :func:`analysis.report.table1.datasets_note`), so that narrow pages keep room for the numbers."""
    return df.drop(columns="dataset") if "dataset" in df.columns and df["dataset"].nunique() == 1 else df


def constant_columns(df: pd.DataFrame, *, keep: Sequence[str] = ()) -> dict[str, object]:
    """The columns of ``df`` (not in ``keep``) that hold one value on every row, with that value,
    for a table that drops them and states them once in its text (:func:`constant_note`); none
    for a table of one row.

    >>> constant_columns(pd.DataFrame({"a": [1, 2], "b": ["x", "x"]}))
    {'b': 'x'}
    """
    if len(df) < 2:
        return {}
    return {c: df[c].iloc[0] for c in df.columns
            if c not in keep and df[c].nunique(dropna=False) == 1}


def constant_note(df: pd.DataFrame, what: str, *, keep: Sequence[str] = (), digits: int = 4) -> str:
    """A markdown sentence stating the columns :func:`constant_columns` drops: ``Every row of
    <what>: <column> <value>, …`` ('' when none).

    >>> constant_note(pd.DataFrame({"a": [1, 2], "b": ["x", "x"], "c": [0.01, 0.01]}), "the table")
    '\\nEvery row of the table: b x, c 0.0100.\\n'
    """
    from analysis.report.markdown import _fmt_cell, escape

    same = constant_columns(df, keep=keep)
    if not same:
        return ""
    parts = ", ".join(f"{escape(str(c))} {escape(_fmt_cell(v, digits))}" for c, v in same.items())
    return f"\nEvery row of {what}: {parts}.\n"


def without_constant_columns(df: pd.DataFrame, *, keep: Sequence[str] = ()) -> pd.DataFrame:
    """``df`` without the columns of :func:`constant_columns` (stated in the text instead)."""
    return df.drop(columns=list(constant_columns(df, keep=keep)))


def _order(df: pd.DataFrame, *, by: Sequence[str] = ("dataset", "arm", "fusion")) -> pd.DataFrame:
    keys, fusions = [], tuple(FUSION_ORDER)  # display order (analysis.core.fusions)
    for col in by:
        if col == "arm":
            keys.append(df["arm"].map(lambda a: (ARM_ORDER.index(a) if a in ARM_ORDER else len(ARM_ORDER), a)))
        elif col == "fusion":
            keys.append(df["fusion"].map(lambda f: (fusions.index(f) if f in fusions else len(fusions), f)))
        else:
            keys.append(df[col])
    order = sorted(range(len(df)), key=lambda i: tuple(k.iloc[i] for k in keys))
    return df.iloc[order].reset_index(drop=True)


def _interval(low: pd.Series, high: pd.Series, digits: int = 4, *, breakable: bool = False) -> pd.Series:
    """``[low, high]`` cells; a no-break space after the comma keeps an interval on one line, unless
    ``breakable`` (a table with several interval columns, which may wrap after the comma)."""
    sep = " " if breakable else "\u00a0"
    return pd.Series([("–" if pd.isna(a) or pd.isna(b) else f"[{a:.{digits}f},{sep}{b:.{digits}f}]")
                      for a, b in zip(low, high)], index=low.index)


def _arm_threshold(arm: str) -> str:
    """The paper's Table 1 row of an arm: ``None`` for ``ce``, τ for a dynamic arm, else empty."""
    if arm == REFERENCE_ARM:
        return "None"
    a = ARMS.get(arm)
    return f"{a.threshold:g}" if a is not None and a.family == "dyn" else ""


def _arm_lr(arm: str) -> float:
    return float(ARMS[arm].lr) if arm in ARMS else float("nan")


def comparison_note(ctx: ReportContext) -> str:
    """A markdown sentence saying how the preset's training differs from the paper's (model,
    members, epochs), so published and regenerated accuracies are not read as like for like."""
    from training.presets import at_paper_scale, get_preset

    preset = ctx.preset
    try:
        ours, paper = get_preset(preset), get_preset("paper")
    except ValueError:
        return ""
    if at_paper_scale(ours):
        return ""
    return (f"Preset **{preset}** trains {ours.model.label} members ({ours.members} per arm, "
            f"{ours.epochs} epochs), the paper {paper.model.label} ({paper.members} per arm, "
            f"{paper.epochs} epochs): published and regenerated accuracies differ in level by design; "
            f"compare directions and intervals, not values.\n")


@reads("paper:table1_accuracy.csv")
def published_table1_frame() -> pd.DataFrame:
    """Paper Table 1 (published): one row per (dataset, τ), one column per fusion."""
    from analysis.audit.published import load_published_table1

    pub = load_published_table1()
    wide = pub.pivot_table(index=["dataset", "threshold"], columns="fusion", values="accuracy", sort=False)
    wide.columns.name = None
    return wide.reset_index().rename(columns={"threshold": "τ"})


@reads("table2", "paper:table2_pearson.csv")
def table2_frame(ctx: ReportContext) -> pd.DataFrame:
    """Table 2 regenerated (r of accuracy with τ, per encoding of the ce arm) next to the published
    r of the same dataset and fusion: intervals (Fisher z; the paired bootstrap over test samples
    only, members fixed; the two-level one over training seeds and test samples, where the fusion
    has it) and tests."""
    from analysis.audit.published import load_published_table2

    t2 = load_result("table2", ctx)
    pub = load_published_table2().set_index(["dataset", "fusion"])["pearson_r"]
    out = pd.DataFrame({
        "dataset": t2["dataset"], "fusion": t2["fusion"], "encoding": t2["encoding"], "n": t2["n"],
        "published r": [pub.get((paper_name(d), f), np.nan)
                        for d, f in zip(t2["dataset"], t2["fusion"])],
        "r": t2["pearson_r"],
        # three intervals side by side: they may wrap after the comma to fit the PDF's width
        "Fisher-z 95 % CI": _interval(t2["pearson_ci_low"], t2["pearson_ci_high"], 3, breakable=True),
        "test-only bootstrap 95 % CI": _interval(t2["r_boot_ci_low"], t2["r_boot_ci_high"], 3, breakable=True),
        "training-seed 95 % CI": _interval(t2.get("r_seed_ci_low", pd.Series(np.nan, index=t2.index)),
                                           t2.get("r_seed_ci_high", pd.Series(np.nan, index=t2.index)), 3,
                                           breakable=True),
        "permutation p (two-sided)": t2["perm_p_two_sided"],
        "Spearman ρ": t2["spearman_rho"],
    })
    return _order(out, by=("dataset", "fusion"))


#: the two halves of regenerated Table 2 the tables page shows (so that each fits the page): the
#: columns of :func:`table2_frame` each takes, under shorter headers (the caption says 95 %)
TABLE2_PARTS: dict[str, dict[str, str]] = {
    "intervals": {"dataset": "dataset", "fusion": "fusion", "encoding": "encoding", "r": "r",
                  "training-seed 95 % CI": "training-seed CI", "test-only bootstrap 95 % CI": "test-only CI",
                  "Fisher-z 95 % CI": "Fisher-z CI", "published r": "published r"},
    "tests": {"dataset": "dataset", "fusion": "fusion", "encoding": "encoding", "r": "r",
              "permutation p (two-sided)": "permutation p", "Spearman ρ": "Spearman ρ", "n": "n",
              "published r": "published r"},
}


@reads("table2", "paper:table2_pearson.csv")
def table2_part_frame(ctx: ReportContext, part: str) -> pd.DataFrame:
    """One half of :func:`table2_frame` (:data:`TABLE2_PARTS`: ``intervals``, r with its three
    intervals; ``tests``, r with the permutation p and Spearman's ρ), its value columns first after
    the row's fusion and encoding; the dataset column only with several datasets."""
    if part not in TABLE2_PARTS:
        raise ValueError(f"Expected `part` in {tuple(TABLE2_PARTS)}, got {part!r}")
    cols = TABLE2_PARTS[part]
    return one_dataset_dropped(table2_frame(ctx)[list(cols)].rename(columns=cols))


@reads("bootstrap_ci", "mcnemar")
def headline_frame(ctx: ReportContext, *, fusion: str = "Average") -> pd.DataFrame:
    """Each dynamic arm against ``ce`` and against ``ce-lr0.01`` (one fusion, named in the caption):
    accuracy difference with its paired bootstrap CI and McNemar's p first, then the reference (and
    the dataset, when there are several)."""
    ci = load_result("bootstrap_ci", ctx)
    ci = ci[(ci["quantity"] == "diff") & (ci["fusion"] == fusion)]
    mc = load_result("mcnemar", ctx).set_index(["dataset", "arm", "reference", "fusion"])
    rows = []
    for r in ci.itertuples(index=False):
        if not str(r.arm).startswith("dyn-"):
            continue
        m = mc.loc[(r.dataset, r.arm, r.reference, fusion)] if (r.dataset, r.arm, r.reference, fusion) in mc.index else None
        rows.append({"arm": r.arm, "Δ accuracy": r.estimate,
                     f"95 % CI, {CI_TEST_ONLY}": _interval(pd.Series([r.ci_low]), pd.Series([r.ci_high])).iloc[0],
                     MCNEMAR_P: np.nan if m is None else m["pvalue"], "versus": r.reference, "dataset": r.dataset})
    if not rows:
        raise ResultsMissingError(f"bootstrap_ci of preset {ctx.preset!r} has no dynamic-arm differences "
                                  f"for fusion {fusion!r}: rerun `dynloss analyze --preset {ctx.preset}`.")
    return one_dataset_dropped(_order(pd.DataFrame(rows), by=("dataset", "versus", "arm")))


@reads("table1")
def lr_confound_frame(ctx: ReportContext, *, fusions: Sequence[str] | None = None) -> pd.DataFrame:
    """Cross-entropy at both learning rates and the dynamic arms: ``arm, fusion, accuracy, 95 % CI
    (test samples only), member accuracy (mean ± sd), lr, loss`` (the numbers first, for narrow
    screens; ``dataset`` last, with several datasets); ``fusions`` default: the paper's static
    fusions (Average, Vote)."""
    fusions = [f for f in PAPER_FUSIONS if not FUSIONS[f].learned] if fusions is None else fusions
    t1 = load_result("table1", ctx)
    t1 = t1[t1["fusion"].isin(fusions) & t1["arm"].isin(ARM_ORDER)]
    out = pd.DataFrame({
        "arm": t1["arm"], "fusion": t1["fusion"], "accuracy": t1["accuracy"],
        f"95 % CI, {CI_TEST_ONLY}": _interval(t1["ci_low"], t1["ci_high"]),
        "members": [f"{m:.4f} ± {s:.4f}" for m, s in zip(t1["member_acc_mean"], t1["member_acc_sd"])],
        "lr": [_arm_lr(a) for a in t1["arm"]], "loss": t1["loss"], "dataset": t1["dataset"],
    })
    return one_dataset_dropped(_order(out, by=("dataset", "fusion", "arm")))


@reads("mcnemar", "bootstrap_ci")
def lr_tests_frame(ctx: ReportContext, *, fusion: str = "Average") -> pd.DataFrame:
    """Paired comparisons that separate the loss from the learning rate: ``ce`` vs
    ``ce-lr0.01`` (learning rate only) and each dynamic arm vs ``ce-lr0.01`` (loss only, same
    rate) and vs ``ce`` (both, as published)."""
    mc = load_result("mcnemar", ctx)
    mc = mc[mc["fusion"] == fusion]
    ci = load_result("bootstrap_ci", ctx)
    ci = ci[(ci["quantity"] == "diff") & (ci["fusion"] == fusion)].set_index(["dataset", "arm", "reference"])
    keep = ((mc["arm"] == "ce") & (mc["reference"] == "ce-lr0.01")) | (mc["arm"].str.startswith("dyn-"))
    mc = mc[keep]
    what = {("ce", "ce-lr0.01"): "learning rate only"}
    rows = []
    for r in mc.itertuples(index=False):
        key = (r.dataset, r.arm, r.reference)
        d = ci.loc[key] if key in ci.index else None
        rows.append({
            "arm": r.arm, "versus": r.reference, "Δ accuracy": r.accuracy - r.reference_accuracy,
            f"Δ 95 % CI, {CI_TEST_ONLY}": "–" if d is None else _interval(pd.Series([d["ci_low"]]),
                                                                          pd.Series([d["ci_high"]])).iloc[0],
            MCNEMAR_P: r.pvalue,
            "differs in": what.get((r.arm, r.reference), "loss only" if r.reference == "ce-lr0.01" else "loss and learning rate"),
            "n01": int(r.n01), "n10": int(r.n10), "dataset": r.dataset,
        })
    return one_dataset_dropped(_order(pd.DataFrame(rows), by=("dataset", "versus", "arm")))


@reads("superlearner_gap")
def stacking_frame(ctx: ReportContext) -> pd.DataFrame:
    """Super-learners fitted on in-sample (published) vs out-of-bag (leak-free) predictions:
    validation and test accuracy of each, per arm and kind; a one-cell "absent" table when the
    results were made without super-learners."""
    if (why := superlearners_absent(ctx)) is not None:
        return pd.DataFrame({"super-learners": [why]})
    g = load_result("superlearner_gap", ctx)
    wide = g.pivot_table(index=["dataset", "arm", "kind"], columns="variant", values=["val_accuracy", "test_accuracy"],
                         sort=False)
    out = pd.DataFrame(index=wide.index)
    for variant, label in (("in-sample", "in-sample (published)"), ("out-of-bag", "leak-free (out-of-bag)")):
        if ("val_accuracy", variant) in wide.columns:
            out[f"{label}: validation"] = wide[("val_accuracy", variant)]
            out[f"{label}: test"] = wide[("test_accuracy", variant)]
    out = out.reset_index().rename(columns={"kind": "super-learner"})
    return _order(out, by=("dataset", "super-learner", "arm"))


@reads("audit")
def stacking_note(ctx: ReportContext) -> str:
    """A markdown sentence: mean validation-minus-test accuracy of the in-sample and the
    out-of-bag super-learners, and in how many fits the in-sample gap is larger (the values of
    claim ``stacking-leak``, computed from ``superlearner_gap.csv``)."""
    from analysis.report.claims import claim_values

    if superlearners_absent(ctx) is not None:
        return ""
    v = claim_values(ctx, "stacking-leak")
    if "gap_in_sample" not in v or "gap_out_of_bag" not in v:
        return ""
    return (f"Validation minus test accuracy averages {v['gap_in_sample'][0]:+.4f} for the in-sample (published) "
            f"fits and {v['gap_out_of_bag'][0]:+.4f} for the out-of-bag fits; the in-sample gap is the larger one in "
            f"{v['n_in_sample_larger']} of {v['n_pairs']} (arm, super-learner) pairs.\n")


#: the split_stats columns the methods page shows, and their headers
_SPLIT_COLUMNS = {"dataset": "dataset", "member": "member", "n_train": "n", "fit_distinct_fraction": "fitted, distinct",
                  "base_distinct_fraction": "resample, distinct", "val_overlap_fraction": "validation also fitted",
                  "arm": "arm measured"}


@reads("split_stats")
def preset_split_frame(ctx: ReportContext) -> pd.DataFrame:
    """Split fractions measured on the preset's own cached splits, one row per (dataset, member),
    as ``split_stats.csv`` holds them (written by ``dynloss analyze``: :mod:`analysis.core.splits`),
    under short headers; the columns with one value on every row are left to
    :func:`preset_split_note`."""
    df = load_result("split_stats", ctx)[list(_SPLIT_COLUMNS)].rename(columns=_SPLIT_COLUMNS)
    return without_constant_columns(df, keep=("member", "fitted, distinct"))


def preset_split_note(ctx: ReportContext) -> str:
    """A markdown sentence: what every member of :func:`preset_split_frame` shares (dataset, n, the
    arm whose run was measured)."""
    df = load_result("split_stats", ctx)[list(_SPLIT_COLUMNS)].rename(columns=_SPLIT_COLUMNS)
    return constant_note(df, f"the table of preset **{ctx.preset}**", keep=("member", "fitted, distinct"))


def emphasis_ratio_frame(curves: pd.DataFrame, *, group: str = "dynamic", reference: str = "cross-entropy") -> pd.DataFrame:
    """Each curve of ``group`` divided by the ``reference`` curve of the same group at the same
    ``p_t`` (the gradient relative to cross-entropy): ``curve, p_t, ratio``; points where the
    reference emphasis is 0 are dropped.

    Parameters
    ----------
    curves : DataFrame with ``curve, group, p_t, emphasis``
        (:func:`analysis.report.claims.emphasis_curves_frame`).
    """
    sub = curves[curves["group"] == group]
    ref = sub[sub["curve"] == reference].set_index("p_t")["emphasis"]
    if ref.empty:
        raise ValueError(f"Expected a {reference!r} curve in group {group!r}; curves: {sorted(sub['curve'].unique())}")
    out = sub.join(ref.rename("_ref"), on="p_t", how="inner")
    out = out[out["_ref"] > 0]
    return pd.DataFrame({"curve": out["curve"], "p_t": out["p_t"],
                         "ratio": out["emphasis"] / out["_ref"]}).reset_index(drop=True)


def _lr_tuning(ctx: ReportContext) -> pd.DataFrame:
    """``lr_tuning.csv`` of the preset; empty when the preset tunes nothing."""
    try:
        return load_result("lr_tuning", ctx)
    except ResultsMissingError:
        return pd.DataFrame()


@reads("lr_tuning")
def lr_tuning_frame(ctx: ReportContext) -> pd.DataFrame:
    """The learning-rate tuning: per tuned arm and grid point, the mean (± sd) held-out training
    accuracy of the tuning runs and the choice; a one-cell table when the preset tunes nothing."""
    t = _lr_tuning(ctx)
    if t.empty:
        return pd.DataFrame({"learning-rate tuning": [f"preset {ctx.preset} tunes no learning rate"]})
    out = pd.DataFrame({
        "dataset": t["dataset"], "tuned arm": t["base_arm"], "lr": t["lr"], "arm trained": t["arm"],
        "runs": t["members"].astype(int),
        "held-out accuracy": [f"{m:.4f} ± {s:.4f}" if pd.notna(s) else f"{m:.4f}"
                              for m, s in zip(t["held_out_accuracy"], t["held_out_sd"])],
        "held-out rows": t["held_out_rows"].astype(int), "chosen": np.where(t["chosen"] == 1, "✓", ""),
    })
    return out.reset_index(drop=True)


def _compared(arms: pd.Series, refs: pd.Series) -> str:
    """``dynamic τ 0.6–0.9, lr 0.1 vs ce, lr 0.1``: the pairs of one protocol in a few words.

    >>> _compared(pd.Series(["dyn-0.6", "dyn-0.7"]), pd.Series(["ce-lr0.01"] * 2))
    'dynamic τ 0.6, 0.7, lr 0.01 vs ce-lr0.01, lr 0.01'
    """
    parts = []
    for ref in dict.fromkeys(refs):
        mine = [ARMS[a] for a, r in zip(arms, refs) if r == ref]
        taus = ", ".join(f"{a.threshold:g}" for a in mine)
        lrs = "/".join(dict.fromkeys(f"{a.lr:g}" for a in mine))
        parts.append(f"dynamic τ {taus}, lr {lrs} vs {ref}, lr {ARMS[ref].lr:g}")
    return "; ".join(parts)


@reads("bootstrap_ci", "mcnemar", "lr_tuning")
def lr_protocols_frame(ctx: ReportContext) -> pd.DataFrame:
    """The dynamic loss against cross-entropy under each learning-rate protocol
    (:data:`analysis.audit.cache_claims.PROTOCOLS`: tuned, the text's, the code's, the same-rate
    control), per fusion: the pairs, mean Δ accuracy, and how many (dynamic arm × fusion) cells are
    better / worse / not significant (McNemar, Holm within the protocol)."""
    from analysis.audit.cache_claims import PROTOCOLS, protocol_cells

    cells = protocol_cells(load_result("bootstrap_ci", ctx), load_result("mcnemar", ctx), _lr_tuning(ctx))
    rows = []
    for (protocol, ds, fusion), g in cells.groupby(["protocol", "dataset", "fusion"], sort=False):
        rows.append({"protocol": protocol, "dataset": ds, "fusion": fusion,
                     "compared": _compared(g["arm"], g["reference"]),
                     "mean Δ accuracy": g["diff"].mean(),
                     "better / worse / n.s. (Holm)": f"{(g['direction'] == 'better').sum()} / "
                                              f"{(g['direction'] == 'worse').sum()} / {(g['direction'] == 'n.s.').sum()}"})
    if not rows:
        raise ResultsMissingError(f"bootstrap_ci of preset {ctx.preset!r} holds no dynamic-vs-cross-entropy "
                                  f"differences: rerun `dynloss analyze --preset {ctx.preset}`.")
    out = pd.DataFrame(rows)
    order = {p: i for i, p in enumerate(PROTOCOLS)}
    fusions = tuple(FUSION_ORDER)
    out = out.assign(_p=out["protocol"].map(order), _f=out["fusion"].map(lambda f: fusions.index(f) if f in fusions else 99))
    return out.sort_values(["dataset", "_p", "_f"]).drop(columns=["_p", "_f"]).reset_index(drop=True)


def superlearner_differences_frame() -> pd.DataFrame:
    """Every remaining difference between our fusions and the authors' code, with its effect on
    fmnist-mini: :data:`analysis.core.superlearner_differences.SUPERLEARNER_DIFFERENCES`, one row each."""
    return pd.DataFrame([(d.aspect, d.authors, d.ours, d.effect) for d in SUPERLEARNER_DIFFERENCES],
                        columns=["aspect", "authors", "ours", "effect"])
