"""The ``split_stats`` results table: the split fractions of every member, measured on the splits
the preset's cache holds (:func:`split_stats_table`).

The quantities are those of :func:`training.splits.split_stats` (the paper puts the distinct
fitted fraction at 49.4 %; the measurement and the closed form are ours). Every arm of a dataset
trains member ``k`` on the same split (its bootstrap seed derives from the dataset and the member
only, :mod:`training.grid`; the cache scan refuses a run whose split is not the preset's), so each
(dataset, member) is measured once: on the reference arm (:data:`training.arms.REFERENCE_ARM`)
when it holds that member, else on the first arm that does (column ``arm`` says which).
"""

from __future__ import annotations

import pandas as pd

from analysis.core.reader import PresetLogits
from training.arms import ARM_ORDER, REFERENCE_ARM
from training.splits import split_stats


def _arm_preference(arm: str) -> tuple[int, int, str]:
    """Sort key: the reference arm first, then the registry's order, then any other by name."""
    return (arm != REFERENCE_ARM, ARM_ORDER.index(arm) if arm in ARM_ORDER else len(ARM_ORDER), arm)


def split_stats_table(data: PresetLogits) -> pd.DataFrame:
    """One row per (dataset, member) analysed: ``dataset, member, arm, n_train`` and the fractions
    of :func:`training.splits.split_stats` (columns: :data:`analysis.core.schema.SPLIT_STATS_COLUMNS`).

    Measured on the aligned training rows (:class:`analysis.core.reader.ArmLogits` positions map
    one to one to the row ids of ``fit_index`` / ``val_index``, so the fractions are those of the ids).
    """
    from analysis.core.schema import SPLIT_STATS_COLUMNS

    rows = []
    for dataset in data.datasets:
        measured: set[int] = set()
        for arm in sorted(data.arm_names(dataset), key=_arm_preference):
            logits = data.arms[(dataset, arm)]
            n_train = int(logits.train_ids.size)
            for member, fit, val in zip(logits.members, logits.fit_positions, logits.val_positions):
                if member in measured:
                    continue
                measured.add(member)
                rows.append({"dataset": dataset, "member": member, "arm": arm, "n_train": n_train,
                             **split_stats(fit, val, n_train)})
    df = pd.DataFrame(rows, columns=list(SPLIT_STATS_COLUMNS))
    return df.sort_values(["dataset", "member"], kind="stable").reset_index(drop=True)
