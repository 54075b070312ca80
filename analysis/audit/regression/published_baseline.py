"""The published Tables 1–2 as a baseline for ``dynloss compare --baseline published``.

The paper names datasets ``CIFAR10``, ``CIFAR100``, ``FashionMNIST`` and rows by threshold
(``None`` = cross-entropy); the cache names datasets ``cifar10``, ``cifar100``, ``fashion-mnist``
and arms ``ce``, ``dyn-<τ>``. :mod:`training.datasets` (``cache_name``) and :func:`arm_of` map one onto
the other.
Compared where both exist:

- Table 1 accuracy per dataset × arm (``ce``, ``dyn-0.6`` … ``dyn-0.9``) × fusion (Average, Vote,
  Weighted, MLP: the published in-sample super-learners);
- Table 2 Pearson r per dataset × fusion against our ``published (ce=-1)`` encoding (the encoding
  that reproduces the paper's Table 2, see :mod:`analysis.audit.published`), where our r uses the
  same five arms.

Everything else is skipped and said so: datasets the paper lacks (and paper datasets the results
lack), arms and fusions without a published counterpart (``ce-lr0.01``, ``ProbAverage``, the
out-of-bag super-learners), ``diff_vs_ce`` (not printed), other Table 2 encodings, and the
calibration and selective tables (the paper reports none).

The published numbers carry no interval: each cell's ``allowed`` difference is our interval's
share plus a stated tolerance (:data:`analysis.audit.regression.compare.DEFAULT_TOLERANCES`: 0.005 for
accuracy, 0.05 for r) plus half the printed resolution (1e-4 for accuracies, 1e-3 for r).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.audit.published import (
    PAPER_DIR,
    load_published_table1,
    load_published_table2,
)
from analysis.audit.regression.baseline import CellSet, UnusableInput
from analysis.audit.regression.compare import CELL_COLUMNS, KEYS
from training.datasets import cache_name, paper_datasets, paper_name

#: the encoding of our table2 that corresponds to the paper's Table 2
PUBLISHED_ENCODING = "published (ce=-1)"
RESOLUTION = {"accuracy": 1e-4, "pearson_r": 1e-3}


def arm_of(threshold: str) -> str:
    """Our arm for a threshold of the published Table 1.

    >>> arm_of("None"), arm_of("0.7")
    ('ce', 'dyn-0.7')
    """
    t = str(threshold).strip()
    return "ce" if t.lower() in ("none", "") else f"dyn-{float(t):g}"


def _cells(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for c in ("ci_low", "ci_high", "seed_ci_low", "seed_ci_high", "confidence"):
        df[c] = np.nan
    return df[list(CELL_COLUMNS)]


def published_cellset(paper_dir: str | Path = PAPER_DIR) -> CellSet:
    """All published cells in the cache's naming (no intervals; ``resolution`` as printed)."""
    t1, t2 = load_published_table1(paper_dir), load_published_table2(paper_dir)
    rows = [{"table": "table1", "metric": "accuracy", "dataset": cache_name(r.dataset),
             "arm": arm_of(r.threshold), "fusion": r.fusion, "detail": "", "value": float(r.accuracy),
             "resolution": RESOLUTION["accuracy"]} for r in t1.itertuples()]
    rows += [{"table": "table2", "metric": "pearson_r", "dataset": cache_name(r.dataset), "arm": "",
              "fusion": r.fusion, "detail": f"encoding={PUBLISHED_ENCODING}", "value": float(r.pearson_r),
              "resolution": RESOLUTION["pearson_r"]} for r in t2.itertuples()]
    cells = _cells(rows)
    meta = {"kind": "published", "source": "published Tables 1-2 (data/paper/)", "preset": None,
            "datasets": sorted(cells["dataset"].unique()), "n_test": {}, "cache_sha256": None,
            "code_revision": None, "created_utc": None, "seed": None, "confidence": None, "n_resamples": None,
            "published_arms": sorted(cells.loc[cells["table"] == "table1", "arm"].unique()),
            "published_fusions": sorted(cells["fusion"].unique())}
    return CellSet(cells, meta)


def _join(names) -> str:
    return ", ".join(sorted(str(n) for n in names))


def against_published(results: CellSet, paper_dir: str | Path = PAPER_DIR) -> tuple[CellSet, CellSet]:
    """The published baseline and the results restricted to the cells the paper has.

    Returns ``(baseline, results)``; both carry ``skipped``: one line per thing not compared.

    Raises
    ------
    UnusableInput
        When no dataset of the results appears in the paper.
    """
    pub = published_cellset(paper_dir)
    ours = results.cells
    skipped: list[str] = []
    common = sorted(set(results.meta["datasets"]) & set(pub.meta["datasets"]))
    if not common:
        raise UnusableInput(
            f"no dataset of the results ({_join(results.meta['datasets'])}, {results.meta['source']}) appears in "
            f"the published tables ({_join(d.paper_name for d in paper_datasets())}; as "
            f"{_join(d.name for d in paper_datasets())} in the cache)")
    extra = sorted(set(results.meta["datasets"]) - set(common))
    if extra:
        skipped.append(f"datasets {_join(extra)}: not in the paper")
    absent = sorted(set(pub.meta["datasets"]) - set(common))
    if absent:
        skipped.append(f"published datasets {_join(paper_name(d) for d in absent)}: not in these results")
    in_scope = ours["dataset"].isin(common)
    t1 = in_scope & (ours["table"] == "table1") & (ours["metric"] == "accuracy")
    arms = set(ours.loc[t1, "arm"]) - set(pub.meta["published_arms"])
    if arms:
        skipped.append(f"arms {_join(arms)}: no published counterpart")
    fusions = set(ours.loc[in_scope & ours["table"].isin(["table1", "table2"]), "fusion"]) - set(pub.meta["published_fusions"])
    if fusions:
        skipped.append(f"fusions {_join(fusions)}: not in the paper")
    if (in_scope & (ours["metric"] == "diff_vs_ce")).any():
        skipped.append("table1 diff_vs_ce: the paper prints no differences")
    t2 = in_scope & (ours["table"] == "table2")
    other_enc = set(ours.loc[t2, "detail"]) - {f"encoding={PUBLISHED_ENCODING}"}
    if other_enc:
        skipped.append(f"table2 {_join(e.split('=', 1)[1] for e in other_enc)}: the paper's Table 2 places ce at τ = -1 "
                       f"(`dynloss audit --ids table2-correlation`)")
    other_tables = sorted(set(ours.loc[in_scope, "table"]) - {"table1", "table2"})
    if other_tables:
        skipped.append(f"{_join(other_tables)}: the paper reports no calibration or selective metrics")
    # our r of the published encoding must use the paper's five arms to be the same statistic
    arms_of_r = _table2_arms(results)
    bad_r = [k for k, a in arms_of_r.items() if k[0] in common and a != ";".join(pub.meta["published_arms"])]
    for ds, fu in bad_r:
        skipped.append(f"table2 {ds}/{fu}: r over arms {arms_of_r[(ds, fu)] or 'none'}, not the paper's five")
    pub_keys = pub.cells[pub.cells["dataset"].isin(common)]
    for ds, fu in bad_r:
        pub_keys = pub_keys[~((pub_keys["table"] == "table2") & (pub_keys["dataset"] == ds) & (pub_keys["fusion"] == fu))]
    keep = ours.merge(pub_keys[list(KEYS)], on=list(KEYS), how="inner")
    base = CellSet(pub_keys.reset_index(drop=True), {**pub.meta, "datasets": common}, tuple(skipped))
    res = CellSet(keep[list(CELL_COLUMNS)], {**results.meta, "datasets": common}, tuple(skipped))
    return base, res


def _table2_arms(results: CellSet) -> dict[tuple[str, str], str]:
    """(dataset, fusion) -> ';'-joined arms of our r under the published encoding, sorted.

    Read from the results' Table 1 cells: the r of a fusion uses arm ce and the dyn arms present.
    """
    c = results.cells
    t1 = c[(c["table"] == "table1") & (c["metric"] == "accuracy")]
    out = {}
    for (ds, fu), g in t1.groupby(["dataset", "fusion"]):
        arms = sorted(a for a in g["arm"] if a == "ce" or a.startswith("dyn-"))
        out[(ds, fu)] = ";".join(arms)
    return out
