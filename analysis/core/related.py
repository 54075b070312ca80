"""The related losses under one protocol: one row per dataset × arm, against the learning-rate control.

Every arm of :data:`training.arms.RELATED_ARMS` (the published dynamic loss at τ = 0.7, its soft and
Keras forms, Poly-1, focal, label smoothing, SuperLoss), all at lr 0.01, and the control
``ce-lr0.01`` (cross-entropy at the same learning rate), fused by Average. A pure function over
tables already computed: accuracy and the difference to the control with both intervals from
``table1``, ECE before and after temperature scaling and the fitted temperature from
``calibration``, AURC from ``selective``. Arms absent from the cache have no row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.arms import CONTROL_ARM, RELATED_ARMS, get_arm

#: arms of the table, in row order: the control first, then the related losses
RELATED_TABLE_ARMS: tuple[str, ...] = (CONTROL_ARM, *RELATED_ARMS)


def related_losses_table(table1: pd.DataFrame, calibration: pd.DataFrame, selective: pd.DataFrame, *,
                         fusion: str = "Average", arms: tuple[str, ...] = RELATED_TABLE_ARMS) -> pd.DataFrame:
    """One row per dataset × arm of ``arms`` present in ``table1`` (columns
    :data:`analysis.core.schema.RELATED_LOSSES_COLUMNS`), for ``fusion``.

    >>> related_losses_table(pd.DataFrame(columns=["dataset", "arm", "fusion"]), pd.DataFrame(),
    ...                      pd.DataFrame()).empty
    True
    """
    from analysis.core.schema import RELATED_LOSSES_COLUMNS

    cols = list(RELATED_LOSSES_COLUMNS)
    t1 = table1[(table1["fusion"] == fusion) & table1["arm"].isin(arms)]
    if t1.empty:
        return pd.DataFrame(columns=cols)
    keys = ["dataset", "arm"]

    def ensemble(df: pd.DataFrame, **where) -> pd.DataFrame:
        sel = (df["fusion"] == fusion) & (df["member"] < 0)
        for k, v in where.items():
            sel &= df[k] == v
        return df[sel].set_index(keys)

    cal_none = ensemble(calibration, scaling="none")
    cal_temp = ensemble(calibration, scaling="temperature")
    sel = ensemble(selective)

    def at(df: pd.DataFrame, k: tuple[str, str], col: str) -> float:
        return float(df.at[k, col]) if k in df.index else np.nan

    rows = []
    for r in t1.itertuples(index=False):
        k = (r.dataset, r.arm)
        rows.append({
            "dataset": r.dataset, "arm": r.arm, "label": get_arm(r.arm).label, "fusion": fusion,
            "n_members": r.n_members, "accuracy": r.accuracy,
            "diff_vs_control": r.diff_vs_control, "control_ci_low": r.control_ci_low,
            "control_ci_high": r.control_ci_high, "control_seed_ci_low": r.control_seed_ci_low,
            "control_seed_ci_high": r.control_seed_ci_high,
            "ece": at(cal_none, k, "ece"), "ece_temperature": at(cal_temp, k, "ece"),
            "temperature": at(cal_temp, k, "temperature"), "aurc": at(sel, k, "aurc"),
            "member_acc_mean": r.member_acc_mean, "member_acc_sd": r.member_acc_sd,
            "confidence_level": r.confidence_level,
        })
    out = pd.DataFrame(rows, columns=cols)
    order = {a: i for i, a in enumerate(arms)}
    datasets = list(dict.fromkeys(t1["dataset"]))
    out = out.sort_values(["dataset", "arm"], key=lambda s: s.map(order) if s.name == "arm" else s.map(datasets.index),
                          kind="stable")
    return out.reset_index(drop=True)
