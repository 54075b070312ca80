"""Claims decided from our own caches: the analysed results of one preset
(``<results root>/<preset>/*.csv``, written by ``dynloss analyze``; columns in
:mod:`analysis.core.schema`).

- ``lr-confound``: each dynamic arm against ``ce`` (the published comparison: loss and learning
  rate both change) and against ``ce-lr0.01`` (cross-entropy at the dynamic arms' learning rate:
  the loss alone changes), with the paired bootstrap CIs of ``bootstrap_ci.csv`` and McNemar's p of
  ``mcnemar.csv`` Holm-adjusted across the arms compared with one reference (its ``pvalue_holm``,
  per dataset and fusion).
- ``stacking-leak``: validation against test accuracy of the in-sample (published) and the
  out-of-bag (leak-free) super-learners of ``superlearner_gap.csv``.

These claims exist only once the preset is analysed (:func:`analysis.audit.missing_results`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.audit import Finding, claim
from analysis.core.fusions import PAPER_FUSIONS  # the paper's four: the lr-confound verdict is taken over these
from training.arms import ARMS, CONTROL_ARM, REFERENCE_ARM
from training.paths import DataRoot

ALPHA = 0.05
REFERENCES: tuple[str, ...] = (REFERENCE_ARM, CONTROL_ARM)


def is_dynamic(arm: str) -> bool:
    """True for the published dynamic-loss arms (family ``dyn`` of :mod:`training.arms`)."""
    return arm in ARMS and ARMS[arm].family == "dyn"


def _load(root: DataRoot, preset: str, name: str) -> pd.DataFrame:
    path = root.results_dir(preset) / f"{name}.csv"
    df = pd.read_csv(path)
    if df.empty:
        raise ValueError(f"{path} holds no rows: rerun `dynloss analyze --preset {preset}`")
    return df


def _r(x: float, digits: int = 6) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), digits)


def dynamic_vs_references(ci: pd.DataFrame, mc: pd.DataFrame, *, fusions=PAPER_FUSIONS) -> pd.DataFrame:
    """Each dynamic arm against each reference arm, per dataset and fusion.

    Parameters
    ----------
    ci : ``bootstrap_ci.csv`` (rows with ``quantity == "diff"`` are used).
    mc : ``mcnemar.csv``.

    Returns
    -------
    DataFrame ``dataset, fusion, reference, arm, diff, ci_low, ci_high, n01, n10, pvalue, p_holm,
    significant, direction`` (``p_holm``: ``mcnemar.csv``'s ``pvalue_holm``, Holm-adjusted over
    the arms compared with the same reference per dataset and fusion; ``direction``:
    ``better``/``worse`` when ``p_holm`` < :data:`ALPHA`, else ``n.s.``).

    Raises
    ------
    ValueError
        When ``mcnemar.csv`` lacks a test or the ``pvalue_holm`` column (results of an older analysis).
    """
    if "pvalue_holm" not in mc.columns:
        raise ValueError("mcnemar.csv has no pvalue_holm column (written by an older analysis): rerun `dynloss analyze`")
    d = ci[(ci["quantity"] == "diff") & ci["arm"].map(is_dynamic) & ci["reference"].isin(REFERENCES)
           & ci["fusion"].isin(fusions)]
    keys = ["dataset", "arm", "reference", "fusion"]
    m = d.merge(mc[keys + ["n01", "n10", "pvalue", "pvalue_holm"]], on=keys, how="left", validate="one_to_one")
    if m["pvalue"].isna().any():
        miss = m.loc[m["pvalue"].isna(), keys].to_dict("records")
        raise ValueError(f"mcnemar.csv lacks the tests of {miss[:3]}: rerun `dynloss analyze`")
    m = m.rename(columns={"estimate": "diff", "pvalue_holm": "p_holm"})
    m["significant"] = m["p_holm"] < ALPHA
    m["direction"] = np.where(~m["significant"], "n.s.", np.where(m["diff"] > 0, "better", "worse"))
    cols = ["dataset", "fusion", "reference", "arm", "diff", "ci_low", "ci_high", "n01", "n10", "pvalue", "p_holm",
            "significant", "direction"]
    order = {f: i for i, f in enumerate(fusions)}
    return (m[cols].assign(_f=m["fusion"].map(order)).sort_values(["dataset", "reference", "_f", "arm"])
            .drop(columns="_f").reset_index(drop=True))


def preset_scope(preset: str) -> str:
    """What the preset trains, next to the paper's setting, and what it therefore cannot settle."""
    from training.presets import at_paper_scale, get_preset

    try:
        ours, paper = get_preset(preset), get_preset("paper")
    except ValueError:
        return f"Preset {preset} is not a registered preset; its training is unknown here."
    if at_paper_scale(ours):
        return f"Preset {preset} trains the paper's setting."
    return (f"Preset {preset} trains {ours.model.label} members ({ours.members} per arm, {ours.epochs} epochs, "
            f"{', '.join(ours.datasets)}); the paper trained {paper.model.label} ({paper.members} per arm, "
            f"{paper.epochs} "
            f"epochs, {', '.join(paper.datasets)}). It cannot settle whether lr 0.1 also hurts those networks at 50 "
            f"epochs with warm-up, whether the dynamic loss helps on CIFAR-10/100 at the published learning rates, nor "
            f"how a 50-member ensemble changes the differences; that needs the paper preset.")


def scale_caveat(preset: str) -> str:
    """The scale caveat in one short sentence, for every place that draws conclusions from a
    preset's runs (the verdict table, the methods, calibration and related-losses pages): what the
    preset trains next to the paper, and that a run at the paper's scale could overturn what it
    shows ('' for a preset at the paper's scale; :func:`preset_scope` says more).

    >>> scale_caveat("paper")
    ''
    """
    from training.presets import at_paper_scale, get_preset

    try:
        ours, paper = get_preset(preset), get_preset("paper")
    except ValueError:
        return f"Preset {preset} is not a registered preset: what its runs can settle is unknown here."
    if at_paper_scale(ours):
        return ""
    return (f"Proxy preset {preset}: {ours.model.label} members, {ours.members} per arm, {ours.epochs} epochs, on "
            f"{', '.join(ours.datasets)} (the paper: {paper.model.label}, {paper.members} per arm, {paper.epochs} "
            f"epochs, on {', '.join(paper.datasets)}). What it shows holds for this setting; a run at the paper's "
            f"scale could overturn it, unlike what exact mathematics, the authors' records or their code show.")


#: the learning-rate protocols the dynamic loss is compared with cross-entropy under
PROTOCOLS: dict[str, str] = {
    "tuned": "each loss at its own learning rate, tuned on held-out training rows (the fair comparison)",
    "text": "every arm at lr 0.1 (the paper's text)",
    "code": "cross-entropy at 0.1, the dynamic loss at 0.01 (the authors' code; the published comparison)",
    "control": "both at 0.01 (cross-entropy at the dynamic arms' rate: the loss alone changes)",
}


def _load_optional(root: DataRoot, preset: str, name: str) -> pd.DataFrame:
    path = root.results_dir(preset) / f"{name}.csv"
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def protocol_pairs(arms: set[str], tuning: pd.DataFrame, dataset: str) -> dict[str, list[tuple[str, str]]]:
    """``protocol -> [(dynamic arm, cross-entropy arm)]`` of one dataset, for the arms present.

    ``tuned`` pairs the chosen arm of each tuned dynamic arm with the chosen cross-entropy arm
    (``lr_tuning.csv``, rows with ``chosen`` 1); the other protocols pair each τ.
    """
    from training.arms import TEXT_PROTOCOL_ARMS

    code = [a for a in sorted(arms) if is_dynamic(a)]
    out: dict[str, list[tuple[str, str]]] = {"tuned": [], "text": [], "code": [], "control": []}
    if not tuning.empty:
        t = tuning[(tuning["dataset"] == dataset) & (tuning["chosen"] == 1)]
        ce = [r.arm for r in t.itertuples() if ARMS[r.base_arm].family == "ce"]
        for r in t.itertuples():
            if ARMS[r.base_arm].family != "ce" and ce:
                out["tuned"].append((r.arm, ce[0]))
    out["text"] = [(a, REFERENCE_ARM) for a in TEXT_PROTOCOL_ARMS if a != REFERENCE_ARM]
    out["code"] = [(a, REFERENCE_ARM) for a in code]
    out["control"] = [(a, CONTROL_ARM) for a in code]
    return {k: [(a, r) for a, r in v if a in arms and r in arms] for k, v in out.items()}


def protocol_cells(ci: pd.DataFrame, mc: pd.DataFrame, tuning: pd.DataFrame, *, fusions=PAPER_FUSIONS) -> pd.DataFrame:
    """Every (protocol, dataset, fusion, dynamic arm, cross-entropy arm) comparison with its paired
    bootstrap difference and McNemar p, Holm-adjusted within the protocol per dataset and fusion
    (over that protocol's dynamic arms: one test, unadjusted, when it has one pair).

    Returns
    -------
    DataFrame ``protocol, dataset, fusion, arm, reference, diff, ci_low, ci_high, n01, n10, pvalue,
    p_holm, direction`` (``better``/``worse`` when ``p_holm`` < :data:`ALPHA`, else ``n.s.``).
    """
    from analysis.core.stats import holm

    d = ci[(ci["quantity"] == "diff") & ci["fusion"].isin(fusions)].set_index(["dataset", "arm", "reference", "fusion"])
    m = mc[mc["fusion"].isin(fusions)].set_index(["dataset", "arm", "reference", "fusion"])
    rows = []
    for ds in sorted(set(ci["dataset"])):
        present = set(ci.loc[ci["dataset"] == ds, "arm"]) | set(ci.loc[ci["dataset"] == ds, "reference"].dropna())
        for protocol, pairs in protocol_pairs(present, tuning, ds).items():
            for f in fusions:
                cells = [(a, r) for a, r in pairs if (ds, a, r, f) in d.index and (ds, a, r, f) in m.index]
                if not cells:
                    continue
                p = np.array([float(m.loc[(ds, a, r, f), "pvalue"]) for a, r in cells])
                adj = holm(p)[1]
                for (a, r), pv, pa in zip(cells, p, adj):
                    x, t = d.loc[(ds, a, r, f)], m.loc[(ds, a, r, f)]
                    rows.append({"protocol": protocol, "dataset": ds, "fusion": f, "arm": a, "reference": r,
                                 "diff": float(x["estimate"]), "ci_low": float(x["ci_low"]),
                                 "ci_high": float(x["ci_high"]), "n01": int(t["n01"]), "n10": int(t["n10"]),
                                 "pvalue": float(pv), "p_holm": float(pa)})
    cols = ["protocol", "dataset", "fusion", "arm", "reference", "diff", "ci_low", "ci_high", "n01", "n10", "pvalue",
            "p_holm"]
    out = pd.DataFrame(rows, columns=cols)
    out["direction"] = np.where(out["p_holm"] >= ALPHA, "n.s.", np.where(out["diff"] > 0, "better", "worse"))
    return out


def _counts(g: pd.DataFrame) -> dict:
    """Cells better / worse / not significant (``direction``), their mean difference and how many are above 0."""
    return {"n_cells": len(g), "n_better": int((g["direction"] == "better").sum()),
            "n_worse": int((g["direction"] == "worse").sum()), "n_ns": int((g["direction"] == "n.s.").sum()),
            "mean_diff": _r(g["diff"].mean()) if len(g) else None, "n_positive": int((g["diff"] > 0).sum())}


def _summary(g: pd.DataFrame) -> dict:
    """:func:`_counts` of one protocol's cells, with the pairs compared."""
    return {**_counts(g), "pairs": sorted({f"{a} vs {r}" for a, r in zip(g["arm"], g["reference"])})}


def _verdict(s: dict) -> str:
    return ("holds" if s["n_better"] >= s["n_cells"] / 2 and s["n_worse"] == 0 else
            "fails" if s["n_better"] == 0 else "conditional")


@claim(
    "lr-confound",
    source="our caches",
    kind="proxy preset",
    overturn=(
        "The paper preset (WideResNets, 50 members, 50 epochs, CIFAR-10/100) with each loss at its tuned rate"
        " putting the dynamic arms significantly above cross-entropy."
    ),
    text=(
        "The dynamic loss improves ensemble accuracy over cross-entropy (Paper Table 1: every dynamic row above the "
        "None row)."
    ),
    reads=("bootstrap_ci", "mcnemar"),
)
def evaluate_lr_confound(preset: str, root: DataRoot) -> Finding:
    ci, mc = _load(root, preset, "bootstrap_ci"), _load(root, preset, "mcnemar")
    tuning = _load_optional(root, preset, "lr_tuning")
    scope = preset_scope(preset)
    t = dynamic_vs_references(ci, mc)
    base = {"preset": preset, "results": root.display(root.results_dir(preset)), "fusions": list(PAPER_FUSIONS),
            "alpha": ALPHA, "scope": scope}
    if not set(REFERENCES) <= set(t["reference"]):
        return Finding(verdict="conditional", values=base,
                       evidence=f"Preset {preset} has no ce-lr0.01 control arm: the learning rate and the loss "
                                f"cannot be separated. {scope}")
    per_ref = {ref: _counts(g) for ref, g in t.groupby("reference", sort=False)}
    lr_only = ci[(ci["quantity"] == "diff") & (ci["arm"] == CONTROL_ARM) & (ci["reference"] == REFERENCE_ARM)
                 & ci["fusion"].isin(PAPER_FUSIONS)]
    cells = protocol_cells(ci, mc, tuning)
    protocols = {p: _summary(cells[cells["protocol"] == p]) for p in PROTOCOLS if (cells["protocol"] == p).any()}
    tuned_lr = {} if tuning.empty else {
        f"{r.dataset}/{r.base_arm}": _r(r.lr, 8) for r in tuning[tuning["chosen"] == 1].itertuples()}
    decided_by = "tuned" if "tuned" in protocols else "control"
    fair = protocols.get(decided_by) or per_ref[CONTROL_ARM]
    verdict = _verdict(fair)
    values = {
        **base, "per_reference": per_ref, "decided_by": decided_by, "tuned_lr": tuned_lr,
        "protocols": {p: {**v, "verdict": _verdict(v)} for p, v in protocols.items()},
        "lr_only_diff": {f"{r.dataset}/{r.fusion}": [_r(r.estimate), _r(r.ci_low), _r(r.ci_high)]
                         for r in lr_only.itertuples()},
        "cells": [{"dataset": r.dataset, "fusion": r.fusion, "reference": r.reference, "arm": r.arm,
                   "diff": _r(r.diff), "ci": [_r(r.ci_low), _r(r.ci_high)], "p": _r(r.pvalue, 8),
                   "p_holm": _r(r.p_holm, 8), "direction": r.direction} for r in t.itertuples()],
        "protocol_cells": [{"protocol": r.protocol, "dataset": r.dataset, "fusion": r.fusion, "arm": r.arm,
                            "reference": r.reference, "diff": _r(r.diff), "ci": [_r(r.ci_low), _r(r.ci_high)],
                            "p_holm": _r(r.p_holm, 8), "direction": r.direction} for r in cells.itertuples()],
        "rule": f"decided from the {decided_by} protocol ({PROTOCOLS[decided_by]}), over its dynamic arms × "
                f"{'/'.join(PAPER_FUSIONS)}: holds if at least half are better with McNemar p < {ALPHA} (Holm "
                f"within the protocol) and none worse; fails if none is better; conditional otherwise",
    }
    lr_text = ", ".join(f"{k} {v[0]:+.4f} [{v[1]:+.4f}, {v[2]:+.4f}]" for k, v in values["lr_only_diff"].items())

    def said(p: str) -> str:
        v = protocols[p]
        return (f"{p} ({PROTOCOLS[p]}; {', '.join(v['pairs'])}): mean difference {v['mean_diff']:+.4f}, "
                f"{v['n_better']}/{v['n_cells']} cells better, {v['n_worse']} worse")

    lead = (f"Decided from the tuned protocol: learning rates chosen on held-out training rows, never the test set "
            f"({', '.join(f'{k} lr {v:g}' for k, v in tuned_lr.items())}). " if decided_by == "tuned" else
            f"No learning-rate tuning in these results: decided from the same-rate control. ")
    evidence = (
        f"Preset {preset} ({values['results']}). {lead}"
        + "; ".join(said(p) for p in PROTOCOLS if p in protocols)
        + f" (paired bootstrap 95 % CIs; McNemar, Holm within each protocol). Learning rate alone "
        f"({CONTROL_ARM} − {REFERENCE_ARM}): {lr_text}. {scope}"
    )
    return Finding(verdict=verdict, evidence=evidence, values=values)


def paired_gaps(gap: pd.DataFrame) -> pd.DataFrame:
    """``superlearner_gap.csv`` as one row per (dataset, arm, kind): ``gap_in_sample``,
    ``gap_out_of_bag`` (validation − test accuracy) and their difference ``leak``."""
    wide = gap.pivot_table(index=["dataset", "arm", "kind"], columns="variant", values="gap").dropna()
    if not {"in-sample", "out-of-bag"} <= set(wide.columns):
        raise ValueError("superlearner_gap.csv needs both 'in-sample' and 'out-of-bag' rows")
    out = pd.DataFrame({"gap_in_sample": wide["in-sample"], "gap_out_of_bag": wide["out-of-bag"]})
    out["leak"] = out["gap_in_sample"] - out["gap_out_of_bag"]
    return out.reset_index()


def _mean_ci(x: np.ndarray) -> tuple[float, float, float]:
    from scipy import stats

    x = np.asarray(x, dtype=float)
    if x.size < 2:
        return float(x.mean()) if x.size else np.nan, np.nan, np.nan
    lo, hi = stats.ttest_1samp(x, 0.0).confidence_interval(1 - ALPHA)
    return float(x.mean()), float(lo), float(hi)


#: the id of the claim below, which the authors' records claim stacking-validation links to
STACKING_LEAK = "stacking-leak"


@claim(
    STACKING_LEAK,
    source="our caches",
    kind="proxy preset",
    overturn=(
        "The paper preset, whose WideResNets fit their training rows more tightly, putting the in-sample gap "
        "above the out-of-bag one at 95 % (or the two equal)."
    ),
    text=(
        "Super-learners fitted on the base learners' in-sample training predictions (as published) reach on the "
        "test set the validation accuracy they were selected by."
    ),
    reads=("superlearner_gap",),
)
def evaluate_stacking_leak(preset: str, root: DataRoot) -> Finding:
    from scipy import stats

    from analysis.audit.authors import read_authors_records
    from analysis.audit.authors_tables import gap_summary, validation_vs_test

    p = paired_gaps(_load(root, preset, "superlearner_gap"))
    ins, oob, leak = (_mean_ci(p[c].to_numpy()) for c in ("gap_in_sample", "gap_out_of_bag", "leak"))
    wil = stats.wilcoxon(p["leak"]) if len(p) >= 2 and (p["leak"] != 0).any() else None
    in_sig, leak_sig = ins[1] > 0, leak[1] > 0
    verdict = "fails" if in_sig and leak_sig else ("holds" if not (in_sig or leak_sig) else "conditional")
    authors = gap_summary(validation_vs_test(read_authors_records()))
    values = {
        "preset": preset, "results": root.display(root.results_dir(preset)), "n_pairs": len(p),
        "gap_in_sample": [_r(v) for v in ins], "gap_out_of_bag": [_r(v) for v in oob], "leak": [_r(v) for v in leak],
        "n_in_sample_larger": int((p["leak"] > 0).sum()),
        "wilcoxon_p": None if wil is None else _r(float(wil.pvalue), 8),
        "per_kind": {k: {"gap_in_sample": _r(g["gap_in_sample"].mean()), "gap_out_of_bag": _r(g["gap_out_of_bag"].mean())}
                     for k, g in p.groupby("kind")},
        "authors_gap_by_dataset": {r.dataset: _r(r.gap_best_mean) for r in authors.itertuples()},
        "rule": "mean validation − test accuracy over (dataset, arm, super-learner) with a 95 % t-interval: fails if "
                "the in-sample gap is above 0 and above the out-of-bag gap (paired) at 95 %; holds if neither; "
                "conditional otherwise",
    }
    oob_text = (" The out-of-bag gap is itself above 0, so part of the optimism is not the leak (the best epoch "
                "is selected on the validation split itself, and its rows are training rows, not test rows)."
                if oob[1] > 0 else "")
    authors_text = ", ".join(f"{k} {v:+.4f}" for k, v in values["authors_gap_by_dataset"].items())
    evidence = (
        f"Preset {preset} ({values['results']}), {len(p)} (dataset, arm, super-learner) pairs: validation − test "
        f"accuracy {ins[0]:+.4f} [{ins[1]:+.4f}, {ins[2]:+.4f}] in-sample (published) and {oob[0]:+.4f} "
        f"[{oob[1]:+.4f}, {oob[2]:+.4f}] out-of-bag (leak-free); in-sample minus out-of-bag {leak[0]:+.4f} "
        f"[{leak[1]:+.4f}, {leak[2]:+.4f}], larger in-sample in {values['n_in_sample_larger']}/{len(p)} pairs"
        f"{'' if wil is None else f' (Wilcoxon p = {wil.pvalue:.3g})'}."
        f"{oob_text} The authors' records (claim stacking-validation) show in-sample gaps of {authors_text} for "
        f"the paper's WideResNets; the leak grows with how tightly the members fit their training rows, which "
        f"differs between this preset's members and those. {preset_scope(preset).split('. ')[0]}."
    )
    return Finding(verdict=verdict, evidence=evidence, values=values)
