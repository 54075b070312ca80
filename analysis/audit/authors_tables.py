"""Frames built from the authors' records (:mod:`analysis.audit.authors`): which record gives each
published Table 1 cell, validation against test accuracy of the super-learners, and the pooled and
member-shuffled evaluations next to the published (member-ordered) ones.

Pure functions of frames: the records frame of :func:`analysis.audit.authors.read_authors_records`
and published Table 1 (``dataset, fusion, threshold, accuracy``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.audit.authors import tau_label
from training.datasets import get_dataset

#: a record gives a printed cell when it rounds to it: |value − printed| ≤ half a unit of the 4th decimal
PRINTED_HALF_UNIT = 0.5e-4
EPOCH_FIELDS: dict[str, str] = {"best": "acc_test_best", "last": "acc_test_last"}
#: the weight decay of the authors' pooled and shuffled evaluations (their ordered twins share it)
VARIANT_WD = 0.05
#: the super-learners' validation split: 10 % of the official training rows (``Dataset.n_train``)
VAL_FRACTION = 0.1


def gives(value: float, printed: float) -> bool:
    """True when ``value`` prints as ``printed`` at 4 decimals (within half a unit, plus float noise).

    >>> gives(0.9047999978, 0.9048), gives(0.90474, 0.9048)
    (True, False)
    """
    return bool(np.isfinite(value) and abs(value - printed) <= PRINTED_HALF_UNIT + 1e-9)


def _with_labels(records: pd.DataFrame) -> pd.DataFrame:
    out = records.copy()
    out["threshold"] = out["tau"].map(tau_label)
    out["variant"] = np.where(out["pooled"], "pooled", np.where(out["shuffled"], "shuffled", "ordered"))
    return out


def ordered_learned(records: pd.DataFrame) -> pd.DataFrame:
    """Learned evaluations as published (member-ordered: not pooled, not shuffled) that did not fail;
    where a failed evaluation was rerun, the rerun."""
    r = _with_labels(records)
    return r[(r["kind"] == "learned") & (r["variant"] == "ordered") & ~r["failed"]]


def rule_candidates(records: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Every selection rule "weight decay = wd, epoch = best|last" of the ordered learned
    evaluations, scored by the published learned cells it reproduces.

    Returns
    -------
    DataFrame ``wd, epoch, cells_given, n_cells``, best first.
    """
    learned = ordered_learned(records)
    pub = published[published["fusion"].isin(learned["fusion"].unique())]
    rows = []
    for wd in sorted(learned["wd"].unique()):
        sub = learned[learned["wd"] == wd].set_index(["dataset", "fusion", "threshold"])
        for epoch, field in EPOCH_FIELDS.items():
            n = sum(gives(float(sub.loc[key, field]), p) if key in sub.index else False
                    for key, p in zip(zip(pub["dataset"], pub["fusion"], pub["threshold"]), pub["accuracy"]))
            rows.append({"wd": float(wd), "epoch": epoch, "cells_given": int(n), "n_cells": len(pub)})
    return pd.DataFrame(rows).sort_values(["cells_given", "epoch"], ascending=[False, True],
                                          kind="stable").reset_index(drop=True)


def table1_provenance(records: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """For every published Table 1 cell, the record(s) that give it to the printed precision.

    Static cells (Average, Vote) have one record each (test accuracy in the ``best`` fields). For
    the learned cells the rule is the best of :func:`rule_candidates`; the frame also says whether
    the printed value is the best test accuracy any setting and epoch reached (a per-cell pick
    would give that), and what the rule "best validation accuracy across settings" would print.

    Returns
    -------
    DataFrame, one row per published cell: ``dataset, fusion, threshold, published, record,
    setting, value, given`` (the rule's record gives the cell), ``n_records`` (evaluations of the
    cell in the records), ``n_giving`` (record × epoch pairs that give it), ``also_given_by``,
    ``max_test`` (best test accuracy over settings and epochs), ``is_max_test``,
    ``best_val_pick`` (test accuracy of the setting with the best validation accuracy),
    ``wd_spread`` (max − min test accuracy at the best epoch over weight decays; NaN for static).
    """
    r = _with_labels(records)
    learned = ordered_learned(records)
    rules = rule_candidates(records, published)
    rule = rules.iloc[0] if len(rules) else None
    rows = []
    for cell in published.itertuples(index=False):
        key = (r["dataset"] == cell.dataset) & (r["fusion"] == cell.fusion) & (r["threshold"] == cell.threshold)
        all_cell = r[key]
        giving = [f"{x.record} ({x.variant}, wd={x.wd:g}, {epoch})" for x in all_cell.itertuples()
                  for epoch, field in EPOCH_FIELDS.items() if gives(getattr(x, field), cell.accuracy)]
        row = {"dataset": cell.dataset, "fusion": cell.fusion, "threshold": cell.threshold,
               "published": float(cell.accuracy), "n_records": len(all_cell), "n_giving": len(giving)}
        if (all_cell["kind"] == "static").all():
            pick = all_cell.iloc[0] if len(all_cell) == 1 else None
            setting, field = "static fusion", "acc_test_best"
            row.update(max_test=np.nan, is_max_test=np.nan, best_val_pick=np.nan, wd_spread=np.nan)
        else:
            cands = learned[(learned["dataset"] == cell.dataset) & (learned["fusion"] == cell.fusion)
                            & (learned["threshold"] == cell.threshold)]
            field = EPOCH_FIELDS[rule["epoch"]]
            chosen = cands[np.isclose(cands["wd"], rule["wd"])]
            pick = chosen.iloc[0] if len(chosen) == 1 else None
            setting = f"wd={rule['wd']:g}, {rule['epoch']} epoch"
            both = cands[["acc_test_best", "acc_test_last"]].to_numpy(dtype=float)
            best_val = cands.loc[cands["acc_val_best"].idxmax()] if len(cands) else None
            row.update(max_test=float(np.nanmax(both)),
                       is_max_test=bool(gives(float(np.nanmax(both)), cell.accuracy)),
                       best_val_pick=float(best_val["acc_test_best"]) if best_val is not None else np.nan,
                       wd_spread=float(cands["acc_test_best"].max() - cands["acc_test_best"].min()))
        value = float(pick[field]) if pick is not None else np.nan
        row.update(record=pick["record"] if pick is not None else "", setting=setting, value=value,
                   given=gives(value, cell.accuracy),
                   also_given_by="; ".join(g for g in giving if pick is None or not g.startswith(pick["record"]))
                   if giving else "")
        rows.append(row)
    cols = ["dataset", "fusion", "threshold", "published", "record", "setting", "value", "given", "n_records",
            "n_giving", "also_given_by", "max_test", "is_max_test", "best_val_pick", "wd_spread"]
    return pd.DataFrame(rows)[cols]


def validation_vs_test(records: pd.DataFrame) -> pd.DataFrame:
    """Validation and test accuracy of every learned evaluation, at the best and the last epoch.

    Returns
    -------
    DataFrame ``record, dataset, fusion, threshold, variant, wd, failed, val_best, test_best,
    gap_best, val_last, test_last, gap_last`` (gap = validation − test accuracy).
    """
    r = _with_labels(records)
    r = r[r["kind"] == "learned"]
    out = pd.DataFrame({
        "record": r["record"], "dataset": r["dataset"], "fusion": r["fusion"], "threshold": r["threshold"],
        "variant": r["variant"], "wd": r["wd"], "failed": r["failed"],
        "val_best": r["acc_val_best"], "test_best": r["acc_test_best"],
        "val_last": r["acc_val_last"], "test_last": r["acc_test_last"],
    })
    out["gap_best"] = out["val_best"] - out["test_best"]
    out["gap_last"] = out["val_last"] - out["test_last"]
    cols = ["record", "dataset", "fusion", "threshold", "variant", "wd", "failed", "val_best", "test_best",
            "gap_best", "val_last", "test_last", "gap_last"]
    return out[cols].reset_index(drop=True)


def pooled_shuffled_comparison(records: pd.DataFrame) -> pd.DataFrame:
    """Each pooled or member-shuffled evaluation next to its member-ordered twin (same dataset,
    fusion, threshold and weight decay), with its own gain over the cross-entropy row of the same
    variant. Failed evaluations stay, flagged, with NaN accuracies.

    Returns
    -------
    DataFrame ``dataset, fusion, threshold, variant, record, failed, test, ordered_test,
    diff_vs_ordered, variant_ce_test, diff_vs_ce, ordered_diff_vs_ce`` (``diff_vs_ce`` = test
    accuracy minus the same variant's cross-entropy evaluation; NaN for the ce row itself or when
    either failed).
    """
    r = _with_labels(records)
    learned = r[(r["kind"] == "learned") & np.isclose(r["wd"], VARIANT_WD)]
    ok = learned[~learned["failed"]]
    ordered = ok[ok["variant"] == "ordered"].set_index(["dataset", "fusion", "threshold"])["acc_test_best"]
    rows = []
    for x in learned[learned["variant"] != "ordered"].itertuples():
        key = (x.dataset, x.fusion, x.threshold)
        same = ok[(ok["variant"] == x.variant) & (ok["dataset"] == x.dataset) & (ok["fusion"] == x.fusion)]
        ce = same.loc[same["threshold"] == "None", "acc_test_best"]
        test = np.nan if x.failed else float(x.acc_test_best)
        ordered_test = float(ordered.get(key, np.nan))
        ce_test = float(ce.iloc[0]) if len(ce) else np.nan
        ordered_ce = float(ordered.get((x.dataset, x.fusion, "None"), np.nan))
        is_ce = x.threshold == "None"
        rows.append({"dataset": x.dataset, "fusion": x.fusion, "threshold": x.threshold, "variant": x.variant,
                     "record": x.record, "failed": bool(x.failed), "test": test, "ordered_test": ordered_test,
                     "diff_vs_ordered": test - ordered_test, "variant_ce_test": ce_test,
                     "diff_vs_ce": np.nan if is_ce else test - ce_test,
                     "ordered_diff_vs_ce": np.nan if is_ce else ordered_test - ordered_ce})
    return pd.DataFrame(rows)


def gap_summary(vt: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: validation − test accuracy of the evaluations that did not fail.

    Returns
    -------
    DataFrame ``dataset, n, n_positive, gap_best_mean, gap_best_min, gap_best_max, gap_last_mean,
    gap_ce_mean, gap_dynamic_mean, val_se, sign_p``: ``val_se`` is the binomial standard error of
    a validation accuracy on 10 % of the training rows at the mean validation accuracy; ``sign_p``
    the one-sided sign-test p of "the gap is positive" (evaluations share base learners, so this
    overstates the evidence's independence; the margins make that immaterial).
    """
    from scipy import stats

    rows = []
    for ds, g in vt[~vt["failed"]].groupby("dataset", sort=True):
        n, pos = len(g), int((g["gap_best"] > 0).sum())
        p = float(g["val_best"].mean())
        rows.append({"dataset": ds, "n": n, "n_positive": pos, "gap_best_mean": g["gap_best"].mean(),
                     "gap_best_min": g["gap_best"].min(), "gap_best_max": g["gap_best"].max(),
                     "gap_last_mean": g["gap_last"].mean(),
                     "gap_ce_mean": g.loc[g["threshold"] == "None", "gap_best"].mean(),
                     "gap_dynamic_mean": g.loc[g["threshold"] != "None", "gap_best"].mean(),
                     "val_se": float(np.sqrt(p * (1 - p) / (VAL_FRACTION * get_dataset(ds).n_train))),
                     "sign_p": float(stats.binomtest(pos, n, 0.5, alternative="greater").pvalue)})
    return pd.DataFrame(rows)


def provenance_summary(prov: pd.DataFrame) -> pd.DataFrame:
    """:func:`table1_provenance` summed up per dataset and kind of fusion (static: Average, Vote;
    learned: the super-learners).

    Returns
    -------
    DataFrame ``dataset, kind, cells, given`` (cells the selected record prints), ``coincidences``
    (cells that records of other settings print too), ``setting`` (the selected settings),
    ``published_min, published_max``, ``max_abs_diff`` (largest |record − published|).
    """
    kind = np.where(prov["setting"] == "static fusion", "static", "learned")
    rows = []
    for (ds, k), g in prov.assign(kind=kind).groupby(["dataset", "kind"], sort=True):
        rows.append({"dataset": ds, "kind": k, "cells": len(g), "given": int(g["given"].sum()),
                     "coincidences": int((g["also_given_by"] != "").sum()),
                     "setting": "; ".join(dict.fromkeys(g["setting"])),
                     "published_min": float(g["published"].min()), "published_max": float(g["published"].max()),
                     "max_abs_diff": float((g["value"] - g["published"]).abs().max())})
    out = pd.DataFrame(rows)
    return out.sort_values(["dataset", "kind"], key=lambda s: s.map({"static": 0, "learned": 1}) if s.name == "kind"
                           else s, kind="stable").reset_index(drop=True)


def pooled_shuffled_summary(comp: pd.DataFrame) -> pd.DataFrame:
    """:func:`pooled_shuffled_comparison` summed up per variant and dataset, over the fits that ran.

    Returns
    -------
    DataFrame ``variant, dataset, fits, failed, diff_vs_ordered_mean, diff_vs_ordered_min,
    diff_vs_ordered_max`` (test accuracy minus the ordered twin's), ``dynamic_fits`` (dynamic-loss
    fits with a gain over this variant's cross-entropy fit), ``dynamic_better`` (of them, those
    above it), ``diff_vs_ce_mean`` (their mean gain) and ``ordered_diff_vs_ce_mean`` (the mean gain
    of their ordered twins).
    """
    rows = []
    for (variant, ds), g in comp.groupby(["variant", "dataset"], sort=True):
        ran = g[~g["failed"]]
        gain = ran.dropna(subset=["diff_vs_ce"])
        rows.append({"variant": variant, "dataset": ds, "fits": len(g), "failed": int(g["failed"].sum()),
                     "diff_vs_ordered_mean": ran["diff_vs_ordered"].mean(),
                     "diff_vs_ordered_min": ran["diff_vs_ordered"].min(),
                     "diff_vs_ordered_max": ran["diff_vs_ordered"].max(),
                     "dynamic_fits": len(gain), "dynamic_better": int((gain["diff_vs_ce"] > 0).sum()),
                     "diff_vs_ce_mean": gain["diff_vs_ce"].mean(),
                     "ordered_diff_vs_ce_mean": gain["ordered_diff_vs_ce"].mean()})
    return pd.DataFrame(rows)
