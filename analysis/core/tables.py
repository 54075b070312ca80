"""Table 1 (accuracy with paired bootstrap intervals), the McNemar tests, Table 2 (Pearson r of
accuracy against τ) and the per-member accuracies, from the fused test predictions.

Every accuracy and every difference to ``ce`` / ``ce-lr0.01`` has a paired percentile bootstrap
CI over test samples; one resample matrix per dataset is shared by all its cells.

The static fusions also get two-level (training-seed) intervals (:func:`seed_accuracy_draws`):
each resample draws every arm's members with replacement, independently per arm, and the test
samples of the test-only bootstrap's resample of the same number, shared by all arms. So the
seed intervals differ from the test-only ones by the member draw alone, and differences between
arms stay paired over test samples. The draws are centred (the weaker ensembles of repeated
members shift them down; that shift is removed). The fusions re-fused are those whose record
(:mod:`analysis.core.fusions`) declares a batched ``resampled`` function; the others (the learned
fusions, which would need a refit per resample) get NaN.

Table 2's r gets the same two kinds of interval: test-only (r of every test-only bootstrap resample
of the arms' accuracies) and training-seed (r of every two-level resample), NaN where the fusion
has no two-level draws.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from analysis.core import metrics as M
from analysis.core.config import (
    S_BOOT,
    S_SEED,
    TABLE2_ENCODINGS,
    AnalysisConfig,
    hash_str,
)
from analysis.core.fusions import FUSIONS, SEED_CI_FUSIONS
from analysis.core.reader import PresetLogits
from analysis.core.seed_bootstrap import member_count_draws
from analysis.core.stats import (
    bootstrap_accuracies,
    bootstrap_counts,
    correlation_summary,
    holm,
    mcnemar_test,
    percentile_interval,
)
from training.arms import CONTROL_ARM, REFERENCE_ARM, get_arm


def parse_arm(arm: str) -> dict:
    """The table columns of an arm, from the registry :mod:`training.arms`: family (``loss``
    column), threshold τ (NaN when the arm has none) and learning-rate tag.

    >>> parse_arm("dyn-0.7")
    {'arm': 'dyn-0.7', 'loss': 'dyn', 'threshold': 0.7, 'lr_tag': ''}
    >>> parse_arm("ce-lr0.01")["threshold"]
    nan

    Raises
    ------
    ValueError
        For an arm the registry does not know (the message lists the known arms).
    """
    a = get_arm(arm)
    return {"arm": arm, "loss": a.family, "threshold": float("nan") if a.threshold is None else float(a.threshold),
            "lr_tag": a.lr_tag}


def reference_arms(arms) -> list[str]:
    """The arms every other arm is compared with: ``ce`` and ``ce-lr0.01``, then every other
    cross-entropy arm present (the tuned protocol's cross-entropy may sit at another rate).

    >>> reference_arms(["dyn-0.7", "ce-lr0.001", "ce", "ce-lr0.01"])
    ['ce', 'ce-lr0.01', 'ce-lr0.001']
    """
    arms = list(arms)
    others = sorted(a for a in arms if a not in (REFERENCE_ARM, CONTROL_ARM) and get_arm(a).family == "ce")
    return [r for r in (REFERENCE_ARM, CONTROL_ARM) if r in arms] + others


# ----------------------------------------------------------------------------- members
def member_accuracy_table(data: PresetLogits, *, n_bins: int = 15) -> pd.DataFrame:
    """One row per kept member: dataset, arm, member, accuracy, nll, ece."""
    rows = []
    for (ds, arm), a in data.arms.items():
        for k, member in enumerate(a.members):
            probs = M.softmax(a.test_logits[k])
            rows.append({"dataset": ds, "arm": arm, "member": member,
                         "accuracy": M.accuracy(a.test_labels, probs.argmax(1)),
                         "nll": M.nll(a.test_labels, probs),
                         "ece": M.expected_calibration_error(a.test_labels, probs, n_bins=n_bins)})
    return pd.DataFrame(rows, columns=["dataset", "arm", "member", "accuracy", "nll", "ece"])


# ----------------------------------------------------------------------------- Table 1 + bootstrap
class AccuracyDraws(NamedTuple):
    """The resampled accuracies of one dataset's cells, as :func:`accuracy_tables` drew them.

    ``cells``: the (dataset, arm, fusion) cells, in column order of ``test``; ``test``: the
    test-only paired bootstrap, ``(n_resamples, n_cells)``; ``seed``: the two-level (members ×
    test samples) draws of :func:`seed_accuracy_draws`, cell -> ``(n_seed_resamples,)``, for the
    fusions that have them (empty when ``n_seed_resamples`` is 0).
    """

    cells: list
    test: np.ndarray
    seed: dict




def seed_accuracy_draws(data: PresetLogits, fused: dict, dataset: str, *, config: AnalysisConfig
                        ) -> dict[tuple[str, str, str], np.ndarray]:
    """Two-level resampled accuracies ``(n_seed_resamples,)`` of every cell of a dataset whose fusion
    is in :data:`analysis.core.fusions.SEED_CI_FUSIONS` (declares a batched ``resampled``), centred.

    Resample ``b`` weights each arm's members by its own draw (``S_SEED`` stream keyed by dataset
    and arm name: independent between arms, the same for the arm's fusions) and the test samples by
    resample ``b`` of the test-only bootstrap (``S_BOOT`` stream of :func:`accuracy_tables`).

    Centring: members drawn with replacement repeat some members and miss others, and an ensemble
    of fewer distinct members is weaker, so the raw draws sit below the ensemble's accuracy (by
    about the gain of fusion over its members times the share of missed members). That shift is not
    training randomness: it is estimated as the mean over resamples of (resampled ensemble − all
    members, on the same test samples) and removed, so only the spread is taken from the member
    draws. With identical members the draws equal the test-only ones exactly.
    """
    b = config.n_seed_resamples
    seeded = set(SEED_CI_FUSIONS)
    cells = [c for c in fused if c[0] == dataset and c[2] in seeded]
    if b == 0 or not cells:
        return {}
    labels = data.arms[cells[0][:2]].test_labels
    correct = {c: (fused[c].preds == labels).astype(np.float64) for c in cells}
    d_i = data.datasets.index(dataset)
    arms = {a for _, a, _ in cells}
    weights = {a: member_count_draws(data.arms[(dataset, a)].n_members, b,
                                     np.random.default_rng([config.seed, S_SEED, d_i, hash_str(a)])) for a in arms}
    rng = np.random.default_rng([config.seed, S_BOOT, d_i])
    counts = np.empty((b, labels.size), dtype=np.uint8)  # a sample is drawn far fewer than 256 times
    for start, block in bootstrap_counts(labels.size, rng=rng, n_resamples=b):
        if block.max() > 255:
            raise ValueError(f"Expected bootstrap counts below 256, got {int(block.max())}")
        counts[start:start + block.shape[0]] = block
    n = np.full(b, float(labels.size))
    out, every = {}, {}
    # the products are small (resamples × members by members × samples·classes): one BLAS thread is
    # several times faster than OpenBLAS's threads on a shared 2-core machine, and never slower
    with threadpool_limits(limits=1, user_api="blas"):
        for c in cells:
            out[c] = FUSIONS[c[2]].resampled(data.arms[c[:2]].test_logits, labels, member_counts=weights[c[1]],
                                             sample_counts=counts)
            every[c] = np.concatenate([counts[r:r + 500].astype(np.float32) @ correct[c].astype(np.float32)
                                       for r in range(0, b, 500)]) / n  # all members, the same samples
    return {c: x - (x - every[c]).mean() for c, x in out.items()}


def accuracy_tables(data: PresetLogits, fused: dict, members: pd.DataFrame, *, config: AnalysisConfig
                    ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Table 1 (one row per dataset × arm × fusion) and the long bootstrap-CI table.

    Returns ``(table1, bootstrap_ci, draws)`` where ``draws[dataset]`` is an :class:`AccuracyDraws`:
    the (dataset, arm, fusion) cells, their (n_resamples, n_cells) test-only bootstrap accuracies
    and their two-level (training-seed) draws where the fusion has them.
    """
    t1_rows, ci_rows, draws_by_ds = [], [], {}
    spread = members.groupby(["dataset", "arm"])["accuracy"].agg(["mean", "std", "min", "max"])
    for d_i, ds in enumerate(data.datasets):
        cells = [k for k in fused if k[0] == ds]
        labels = data.arms[(ds, cells[0][1])].test_labels
        correct = np.stack([fused[c].preds == labels for c in cells])
        draws = bootstrap_accuracies(correct, rng=np.random.default_rng([config.seed, S_BOOT, d_i]),
                                     n_resamples=config.n_resamples)
        point = correct.mean(axis=1)
        lo, hi = percentile_interval(draws, confidence=config.confidence)
        col = {c: i for i, c in enumerate(cells)}
        refs = reference_arms(dict.fromkeys(c[1] for c in cells))
        seed = seed_accuracy_draws(data, fused, ds, config=config)
        draws_by_ds[ds] = AccuracyDraws(cells, draws, seed)

        def seed_interval(x: np.ndarray | None) -> tuple[float, float]:
            if x is None:
                return np.nan, np.nan
            s_lo, s_hi = percentile_interval(x[:, None], confidence=config.confidence)
            return s_lo[0], s_hi[0]

        for i, (_, arm, fusion) in enumerate(cells):
            pa = parse_arm(arm)
            row = {"dataset": ds, "arm": arm, "loss": pa["loss"], "threshold": pa["threshold"], "fusion": fusion,
                   "leak_free": FUSIONS[fusion].leak_free, "n_members": data.arms[(ds, arm)].n_members,
                   "n_test": labels.size, "accuracy": point[i], "ci_low": lo[i], "ci_high": hi[i]}
            own = seed.get((ds, arm, fusion))
            row["seed_ci_low"], row["seed_ci_high"] = seed_interval(own)
            ci_rows.append({"dataset": ds, "arm": arm, "fusion": fusion, "quantity": "accuracy", "reference": "",
                            "estimate": point[i], "ci_low": lo[i], "ci_high": hi[i], "se": draws[:, i].std(ddof=1)})
            named = {REFERENCE_ARM: ("diff_vs_ce", "diff_ci_low", "diff_ci_high", "diff_seed_ci_low",
                                     "diff_seed_ci_high"),
                     CONTROL_ARM: ("diff_vs_control", "control_ci_low", "control_ci_high", "control_seed_ci_low",
                                   "control_seed_ci_high")}  # the two references with Table 1 columns
            for cols in named.values():
                row.update(dict.fromkeys(cols, np.nan))
            for ref in refs:
                j = col.get((ds, ref, fusion))
                if j is None or ref == arm:
                    continue
                d = draws[:, i] - draws[:, j]
                dlo, dhi = percentile_interval(d[:, None], confidence=config.confidence)
                est = point[i] - point[j]
                ci_rows.append({"dataset": ds, "arm": arm, "fusion": fusion, "quantity": "diff", "reference": ref,
                                "estimate": est, "ci_low": dlo[0], "ci_high": dhi[0], "se": d.std(ddof=1)})
                other = seed.get((ds, ref, fusion))
                s_lo, s_hi = seed_interval(None if own is None or other is None else own - other)
                if ref in named:
                    row.update(zip(named[ref], (est, dlo[0], dhi[0], s_lo, s_hi)))
            s = spread.loc[(ds, arm)] if (ds, arm) in spread.index else None
            row.update(member_acc_mean=np.nan if s is None else s["mean"], member_acc_sd=np.nan if s is None else s["std"],
                       member_acc_min=np.nan if s is None else s["min"], member_acc_max=np.nan if s is None else s["max"])
            row["cache_state"] = data.status.arm_state(ds, arm) if data.status is not None else "complete"
            t1_rows.append(row)
    from analysis.core.schema import BOOTSTRAP_CI_COLUMNS, TABLE1_COLUMNS

    t1 = pd.DataFrame(t1_rows).reindex(columns=list(TABLE1_COLUMNS))
    t1["confidence_level"] = config.confidence
    t1["n_resamples"] = config.n_resamples
    ci = pd.DataFrame(ci_rows).reindex(columns=list(BOOTSTRAP_CI_COLUMNS))
    ci["confidence_level"] = config.confidence
    ci["n_resamples"] = config.n_resamples
    return t1, ci, draws_by_ds


def mcnemar_table(data: PresetLogits, fused: dict) -> pd.DataFrame:
    """McNemar tests of every arm against each reference arm (:func:`reference_arms`: ``ce``,
    ``ce-lr0.01`` and any other cross-entropy arm), per dataset and fusion."""
    rows = []
    refs = {ds: reference_arms(dict.fromkeys(a for d, a, _ in fused if d == ds)) for ds in data.datasets}
    for (ds, arm, fusion), out in fused.items():
        labels = data.arms[(ds, arm)].test_labels
        for ref in refs[ds]:
            if ref == arm or (ds, ref, fusion) not in fused:
                continue
            a = out.preds == labels
            b = fused[(ds, ref, fusion)].preds == labels
            r = mcnemar_test(a, b)
            rows.append({"dataset": ds, "arm": arm, "reference": ref, "fusion": fusion,
                         "accuracy": a.mean(), "reference_accuracy": b.mean(), **r})
    from analysis.core.schema import MCNEMAR_COLUMNS

    df = pd.DataFrame(rows)
    if not df.empty:  # Holm over the arms compared with one reference, per dataset and fusion
        df["pvalue_holm"] = df.groupby(["dataset", "reference", "fusion"], sort=False)["pvalue"].transform(
            lambda p: holm(p.to_numpy())[1])
    return df.reindex(columns=list(MCNEMAR_COLUMNS))


# ----------------------------------------------------------------------------- Table 2
def resampled_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of ``x`` ``(k,)`` with each row of ``y`` ``(B, k)`` (NaN where a row is constant).

    >>> resampled_pearson(np.array([0.0, 1.0, 2.0]), np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])).round(6).tolist()
    [1.0, -1.0]
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 2 or y.shape[1] != x.size:
        raise ValueError(f"Expected `x` (k,) and `y` (B, k), got {x.shape} and {y.shape}")
    xc = x - x.mean()
    yc = y - y.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (yc @ xc) / (np.linalg.norm(yc, axis=1) * np.linalg.norm(xc))


def table2(table1: pd.DataFrame, draws: dict | None = None, *, encodings: dict[str, float | None] | None = None,
           confidence: float = 0.95) -> pd.DataFrame:
    """Pearson r of ensemble accuracy against τ per dataset and fusion, for each ``ce`` encoding.

    Uses arm ``ce`` (placed at the encoding's τ, or left out) and the ``dyn-<τ>`` arms. With
    ``draws`` (:class:`AccuracyDraws` per dataset, from :func:`accuracy_tables`), adds two
    percentile intervals of r:

    - ``r_boot_ci_*``: test samples resampled, the arms' members fixed (**test-only**): it ignores
      that a rerun with other training seeds gives other ensembles, so with five points it is far
      too narrow to speak of the arms' r;
    - ``r_seed_ci_*``: the two-level draws (each arm's members resampled independently, test
      samples resampled and shared by the arms): r of every resample over the same arms. Only for
      fusions with a re-fusion on resampled members (:data:`analysis.core.fusions.SEED_CI_FUSIONS`);
      NaN for the learned ones.
    """
    encodings = dict(TABLE2_ENCODINGS if encodings is None else encodings)
    rows = []
    for (ds, fusion), g in table1.groupby(["dataset", "fusion"], sort=False):
        for label, none_value in encodings.items():
            sel = g[(g["loss"] == "dyn") | (g["arm"] == REFERENCE_ARM)]
            x = np.where(sel["arm"] == REFERENCE_ARM, np.nan if none_value is None else none_value, sel["threshold"])
            keep = ~np.isnan(x)
            x, sel = x[keep], sel[keep]
            row = {"dataset": ds, "fusion": fusion, "encoding": label,
                   "ce_threshold": np.nan if none_value is None else none_value, "arms": ";".join(sel["arm"])}
            if len(sel) < 3:
                rows.append(row)
                continue
            row.update(correlation_summary(x, sel["accuracy"].to_numpy(dtype=float), confidence=confidence))
            q = [(1 - confidence) / 2, (1 + confidence) / 2]
            if draws is not None and ds in draws:
                d = draws[ds]
                keys = [(ds, a, fusion) for a in sel["arm"]]
                r = resampled_pearson(x, d.test[:, [d.cells.index(k) for k in keys]])
                row["r_boot_ci_low"], row["r_boot_ci_high"] = np.nanquantile(r, q)
                if d.seed and all(k in d.seed for k in keys):
                    r = resampled_pearson(x, np.stack([d.seed[k] for k in keys], axis=1))
                    row["r_seed_ci_low"], row["r_seed_ci_high"] = np.nanquantile(r, q)
            rows.append(row)
    from analysis.core.schema import TABLE2_COLUMNS

    return pd.DataFrame(rows).reindex(columns=list(TABLE2_COLUMNS))


# ----------------------------------------------------------------------------- lr tuning
def lr_tuning_table(choices) -> pd.DataFrame:
    """``lr_tuning.csv``: the held-out scores of every grid point of the learning-rate tuning and
    the choice (:func:`training.tuning.read_selection`; None or empty: a table without rows)."""
    from analysis.core.schema import result_frame

    rows = []
    for c in choices or ():
        for lr, arm, accs, n_rows in c.scores:
            a = np.asarray(accs, dtype=float)
            rows.append({"dataset": c.dataset, "base_arm": c.base, "lr": lr, "arm": arm, "members": a.size,
                         "held_out_accuracy": a.mean(), "held_out_sd": a.std(ddof=1) if a.size > 1 else np.nan,
                         "held_out_rows": n_rows, "chosen": float(arm == c.chosen)})
    return result_frame("lr_tuning", rows)
