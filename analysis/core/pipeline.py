"""From a preset's cache to tidy tables: fusion, Tables 1–2, statistics, calibration, ensemble size.

:func:`analyze_preset` is the one entry point (the ``dynloss analyze`` command calls it). The
builders it uses are public too, each returning a long-form DataFrame whose columns are described
in :mod:`analysis.core.schema`.

Conventions
-----------
- Fusions: ``Average``, ``ProbAverage``, ``Vote`` (static, :mod:`analysis.core.fusion`), ``Weighted``
  and ``MLP`` (published in-sample super-learners) and ``Weighted-OOB``, ``MLP-OOB`` (leak-free,
  out-of-bag; :mod:`analysis.core.superlearner`).
- Arms: ``ce`` is the reference; ``dyn-<τ>`` carries threshold τ; ``ce-lr0.01`` is the
  learning-rate control. :func:`parse_arm` reads family and τ from the arm registry.
- Every accuracy and every difference to ``ce`` / ``ce-lr0.01`` has a paired percentile bootstrap
  CI over test samples; one resample matrix per dataset is shared by all its cells.
- Temperature scaling is cross-fitted over two seeded halves of the test set: T fitted on one half
  (NLL) is applied to the other, so every test sample is scored with a T that never saw it. The
  reported ``temperature`` is the mean of the two fits. Vote has no logits: not temperature-scaled.
- Seeds: every random step draws from ``numpy.random.default_rng([seed, step, ...])`` with a fixed
  step number, so each table is reproducible on its own.
"""

from __future__ import annotations

import gc
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.core import metrics as M
from analysis.core.fusion import STATIC_FUSIONS
from analysis.core.reader import ArmLogits, PresetLogits, load_preset
from analysis.core.stats import (
    bootstrap_accuracies,
    correlation_summary,
    mcnemar_test,
    percentile_interval,
)
from analysis.core.superlearner import (
    SuperLearnerConfig,
    SuperLearnerResult,
    SuperLearnerTask,
)
from analysis.core.superlearner_batch import fit_superlearners
from training.arms import CONTROL_ARM, REFERENCE_ARM, get_arm
from training.provenance import code_revision, versions

#: encodings of the ``ce`` arm on the τ axis for Table 2: label -> τ (None = excluded).
#: "published" is the value that reproduces the paper's Table 2 from its Table 1 (see
#: :mod:`analysis.audit.published`).
TABLE2_ENCODINGS: dict[str, float | None] = {"published (ce=-1)": -1.0, "ce-limit (ce=1.0)": 1.0, "ce excluded": None}

# seed streams (fixed step numbers)
_S_BOOT, _S_SL, _S_TEMP, _S_SIZE = 1, 2, 3, 4


@dataclass(frozen=True)
class AnalysisConfig:
    """Every knob of :func:`analyze_preset` (saved in ``provenance.json``).

    Attributes
    ----------
    seed : root seed of all resampling and super-learner fits.
    n_resamples : bootstrap resamples (≥ 10,000 for reported CIs).
    confidence : level of all confidence intervals.
    n_bins : calibration bins.
    superlearners : fit the learned fusions (Weighted, MLP; in-sample and out-of-bag).
    superlearner_max_rows : per kind, cap on training rows a super-learner fits on (seeded
        subsample; None = all rows, as published, the default). The MLP (≈ 0.8 M parameters)
        costs ~5 MFLOP per row and epoch: all 60k rows take about a minute per fit on two CPU
        cores, so ``dynloss analyze`` caps fmnist-mini's MLP fits at 4,000 rows (see
        :data:`analysis.core.cli.MLP_ROWS_BY_PRESET`); the cap is recorded per fit
        (``n_fit_rows``).
    superlearner_batch_size : mini-batch size of the super-learner fits (None: about 100 steps
        per epoch, see :class:`analysis.core.superlearner.SuperLearnerConfig`).
    superlearner_epochs : per kind, epochs (None = published 10 / 20; tests use fewer).
    size_repeats : random member subsets per ensemble size.
    nonfinite : reader policy for members with NaN/inf logits ("drop" or "raise").
    allow_partial : analyse the complete runs of a cache that misses some runs of the grid or holds
        corrupt runs or unexpected entries (default: refuse). Recorded everywhere (see
        :class:`analysis.core.reader.CacheStatus`).
    allow_stale : include runs made with other settings than the preset's (default: refuse).
    table2_encodings : label -> τ of the ``ce`` arm for Table 2 (None = excluded).
    """

    seed: int = 0
    n_resamples: int = 10_000
    confidence: float = 0.95
    n_bins: int = 15
    superlearners: bool = True
    superlearner_max_rows: tuple[tuple[str, int | None], ...] = (("Weighted", None), ("MLP", None))
    superlearner_batch_size: int | None = None
    superlearner_epochs: tuple[tuple[str, int | None], ...] = (("Weighted", None), ("MLP", None))
    size_repeats: int = 20
    nonfinite: str = "drop"
    allow_partial: bool = False
    allow_stale: bool = False
    table2_encodings: tuple[tuple[str, float | None], ...] = tuple(TABLE2_ENCODINGS.items())

    def __post_init__(self) -> None:
        # checked here, before minutes of loading and fitting, not deep inside the pipeline
        if self.n_resamples < 1:
            raise ValueError(f"Expected `n_resamples` >= 1, got {self.n_resamples}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"Expected `confidence` in (0, 1), got {self.confidence}")
        if self.n_bins < 1:
            raise ValueError(f"Expected `n_bins` >= 1, got {self.n_bins}")
        if self.nonfinite not in ("drop", "raise"):
            raise ValueError(f"Expected `nonfinite` to be 'drop' or 'raise', got {self.nonfinite!r}")


@dataclass
class FusionOutput:
    """Test-set output of one fusion of one arm: predictions, probability-like scores, logits
    (None for Vote) and the meaning of the confidence (``"max_prob"`` or ``"vote_fraction"``)."""

    preds: np.ndarray
    probs: np.ndarray
    logits: np.ndarray | None
    confidence_kind: str = "max_prob"


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


def _sub_seed(seed: int, *keys: int) -> int:
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


# ----------------------------------------------------------------------------- fusion
#: learned fusions of every arm, in table order: (name, kind, variant)
SUPERLEARNER_FUSIONS: tuple[tuple[str, str, str], ...] = (
    ("Weighted", "Weighted", "in-sample"), ("Weighted-OOB", "Weighted", "out-of-bag"),
    ("MLP", "MLP", "in-sample"), ("MLP-OOB", "MLP", "out-of-bag"),
)


def static_fusions(arm: ArmLogits) -> dict[str, FusionOutput]:
    """Average, ProbAverage and Vote of one arm on its test set."""
    out: dict[str, FusionOutput] = {}
    for name, f in STATIC_FUSIONS.items():
        preds, probs = f(arm.test_logits)
        if name == "Average":
            logits = arm.test_logits.mean(axis=0, dtype=np.float64)
        elif name == "ProbAverage":
            logits = np.log(np.clip(probs, 1e-300, None))
        else:
            logits = None
        out[name] = FusionOutput(preds, probs, logits, "vote_fraction" if name == "Vote" else "max_prob")
    return out


def superlearner_tasks(arm: ArmLogits, *, config: AnalysisConfig, arm_index: int = 0, dataset_index: int = 0
                       ) -> list[tuple[str, SuperLearnerTask]]:
    """The learned fusions of one arm as ``(fusion name, task)``, in :data:`SUPERLEARNER_FUSIONS` order.

    Each fit's seed is keyed by (dataset, arm, kind, variant), so it does not depend on which
    other fits run, or whether they run together.
    """
    caps, epochs = dict(config.superlearner_max_rows), dict(config.superlearner_epochs)
    mask = arm.fit_mask()
    kinds, variants = ("Weighted", "MLP"), ("in-sample", "out-of-bag")
    tasks = []
    for name, kind, variant in SUPERLEARNER_FUSIONS:
        cfg = SuperLearnerConfig(kind=kind, batch_size=config.superlearner_batch_size, max_fit_rows=caps.get(kind),
                                 epochs=epochs.get(kind))
        seed = _sub_seed(config.seed, _S_SL, dataset_index, arm_index, kinds.index(kind), variants.index(variant))
        tasks.append((name, SuperLearnerTask(arm.train_logits, arm.train_labels, arm.test_logits, config=cfg,
                                             seed=seed, variant=variant, fit_mask=mask)))
    return tasks


def fuse_arm(arm: ArmLogits, *, config: AnalysisConfig, arm_index: int = 0, dataset_index: int = 0
             ) -> tuple[dict[str, FusionOutput], list[dict]]:
    """All fusions of one arm on its test set, and the super-learner records (for the gap table)."""
    out = static_fusions(arm)
    records: list[dict] = []
    if config.superlearners:
        tasks = superlearner_tasks(arm, config=config, arm_index=arm_index, dataset_index=dataset_index)
        for (name, task), res in zip(tasks, fit_superlearners([t for _, t in tasks])):
            out[name], rec = _superlearner_output(arm, name, task, res)
            records.append(rec)
    return out, records


def _superlearner_output(arm: ArmLogits, name: str, task: SuperLearnerTask, res: SuperLearnerResult
                         ) -> tuple[FusionOutput, dict]:
    test_acc = float(np.mean(res.preds == arm.test_labels))
    return FusionOutput(res.preds, res.probs, res.logits), {
        "dataset": arm.dataset, "arm": arm.arm, "fusion": name, "kind": res.kind, "variant": res.variant,
        "val_accuracy": res.val_accuracy, "test_accuracy": test_acc, "gap": res.val_accuracy - test_acc,
        "best_epoch": res.best_epoch, "epochs": task.config.n_epochs, "n_fit_rows": res.n_fit_rows,
        "n_val_rows": res.n_val_rows, "fit_seconds": res.fit_seconds,
    }


def fuse_preset(data: PresetLogits, *, config: AnalysisConfig) -> tuple[dict, pd.DataFrame]:
    """Fusion outputs keyed ``(dataset, arm, fusion)`` and the super-learner gap table.

    The super-learners of all arms and datasets are fitted in one call of
    :func:`analysis.core.superlearner_batch.fit_superlearners` (fits of equal shape train together);
    each gets the result it would get alone.
    """
    keys = [(ds, arm) for ds in data.datasets for arm in data.arm_names(ds)]
    tasks: list[tuple[tuple[str, str], str, SuperLearnerTask]] = []
    if config.superlearners:
        for ds, arm in keys:
            a_i, d_i = data.arm_names(ds).index(arm), data.datasets.index(ds)
            tasks += [((ds, arm), name, t) for name, t in
                      superlearner_tasks(data.arms[(ds, arm)], config=config, arm_index=a_i, dataset_index=d_i)]
    results = fit_superlearners([t for _, _, t in tasks])
    learned: dict[tuple[str, str], list[tuple[str, FusionOutput, dict]]] = {}
    for (key, name, task), res in zip(tasks, results):
        learned.setdefault(key, []).append((name, *_superlearner_output(data.arms[key], name, task, res)))
    fused: dict[tuple[str, str, str], FusionOutput] = {}
    records: list[dict] = []
    for ds, arm in keys:  # table order: per arm, the static fusions, then the learned ones
        fused.update({(ds, arm, f): o for f, o in static_fusions(data.arms[(ds, arm)]).items()})
        for name, out, rec in learned.get((ds, arm), []):
            fused[(ds, arm, name)] = out
            records.append(rec)
    from analysis.core.schema import SUPERLEARNER_GAP_COLUMNS

    return fused, pd.DataFrame(records, columns=list(SUPERLEARNER_GAP_COLUMNS))


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
def accuracy_tables(data: PresetLogits, fused: dict, members: pd.DataFrame, *, config: AnalysisConfig
                    ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Table 1 (one row per dataset × arm × fusion) and the long bootstrap-CI table.

    Returns ``(table1, bootstrap_ci, draws)`` where ``draws[dataset]`` is ``(cells, matrix)``:
    the (dataset, arm, fusion) cells and their (n_resamples, n_cells) bootstrap accuracies.
    """
    t1_rows, ci_rows, draws_by_ds = [], [], {}
    spread = members.groupby(["dataset", "arm"])["accuracy"].agg(["mean", "std", "min", "max"])
    for d_i, ds in enumerate(data.datasets):
        cells = [k for k in fused if k[0] == ds]
        labels = data.arms[(ds, cells[0][1])].test_labels
        correct = np.stack([fused[c].preds == labels for c in cells])
        draws = bootstrap_accuracies(correct, rng=np.random.default_rng([config.seed, _S_BOOT, d_i]),
                                     n_resamples=config.n_resamples)
        draws_by_ds[ds] = (cells, draws)
        point = correct.mean(axis=1)
        lo, hi = percentile_interval(draws, confidence=config.confidence)
        col = {c: i for i, c in enumerate(cells)}
        for i, (_, arm, fusion) in enumerate(cells):
            pa = parse_arm(arm)
            row = {"dataset": ds, "arm": arm, "loss": pa["loss"], "threshold": pa["threshold"], "fusion": fusion,
                   "leak_free": fusion not in ("Weighted", "MLP"), "n_members": data.arms[(ds, arm)].n_members,
                   "n_test": labels.size, "accuracy": point[i], "ci_low": lo[i], "ci_high": hi[i]}
            ci_rows.append({"dataset": ds, "arm": arm, "fusion": fusion, "quantity": "accuracy", "reference": "",
                            "estimate": point[i], "ci_low": lo[i], "ci_high": hi[i], "se": draws[:, i].std(ddof=1)})
            for ref in (REFERENCE_ARM, CONTROL_ARM):
                j = col.get((ds, ref, fusion))
                key = "ce" if ref == REFERENCE_ARM else "control"
                if j is None or ref == arm:
                    if ref == REFERENCE_ARM:
                        row.update(diff_vs_ce=np.nan, diff_ci_low=np.nan, diff_ci_high=np.nan)
                    continue
                d = draws[:, i] - draws[:, j]
                dlo, dhi = percentile_interval(d[:, None], confidence=config.confidence)
                est = point[i] - point[j]
                ci_rows.append({"dataset": ds, "arm": arm, "fusion": fusion, "quantity": "diff", "reference": ref,
                                "estimate": est, "ci_low": dlo[0], "ci_high": dhi[0], "se": d.std(ddof=1)})
                if key == "ce":
                    row.update(diff_vs_ce=est, diff_ci_low=dlo[0], diff_ci_high=dhi[0])
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
    """McNemar tests of every arm against ``ce`` and against ``ce-lr0.01``, per dataset and fusion."""
    rows = []
    for (ds, arm, fusion), out in fused.items():
        labels = data.arms[(ds, arm)].test_labels
        for ref in (REFERENCE_ARM, CONTROL_ARM):
            if ref == arm or (ds, ref, fusion) not in fused:
                continue
            a = out.preds == labels
            b = fused[(ds, ref, fusion)].preds == labels
            r = mcnemar_test(a, b)
            rows.append({"dataset": ds, "arm": arm, "reference": ref, "fusion": fusion,
                         "accuracy": a.mean(), "reference_accuracy": b.mean(), **r})
    from statsmodels.stats.multitest import multipletests

    from analysis.core.schema import MCNEMAR_COLUMNS

    df = pd.DataFrame(rows)
    if not df.empty:  # Holm over the arms compared with one reference, per dataset and fusion
        # statsmodels' Holm runs gc.collect() on every call: with the heap frozen (objects alive now
        # are skipped by the collector), each collection is quick instead of walking torch and pandas
        gc.freeze()
        try:
            df["pvalue_holm"] = df.groupby(["dataset", "reference", "fusion"], sort=False)["pvalue"].transform(
                lambda p: multipletests(p.to_numpy(), method="holm")[1])
        finally:
            gc.unfreeze()
    return df.reindex(columns=list(MCNEMAR_COLUMNS))


# ----------------------------------------------------------------------------- Table 2
def table2(table1: pd.DataFrame, draws: dict | None = None, *, encodings: dict[str, float | None] | None = None,
           confidence: float = 0.95) -> pd.DataFrame:
    """Pearson r of ensemble accuracy against τ per dataset and fusion, for each ``ce`` encoding.

    Uses arm ``ce`` (placed at the encoding's τ, or left out) and the ``dyn-<τ>`` arms. With
    ``draws`` (from :func:`accuracy_tables`), adds a paired bootstrap interval of r.
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
            if draws is not None and ds in draws:
                cells, mat = draws[ds]
                idx = [cells.index((ds, a, fusion)) for a in sel["arm"]]
                y = mat[:, idx]
                xc = x - x.mean()
                yc = y - y.mean(axis=1, keepdims=True)
                with np.errstate(invalid="ignore", divide="ignore"):
                    r = (yc @ xc) / (np.linalg.norm(yc, axis=1) * np.linalg.norm(xc))
                lo, hi = np.nanquantile(r, [(1 - confidence) / 2, (1 + confidence) / 2])
                row.update(r_boot_ci_low=lo, r_boot_ci_high=hi)
            rows.append(row)
    from analysis.core.schema import TABLE2_COLUMNS

    return pd.DataFrame(rows).reindex(columns=list(TABLE2_COLUMNS))


# ----------------------------------------------------------------------------- calibration
def _calibration_metrics(labels, probs, preds, n_bins) -> dict:
    # top-label metrics use the fusion's own prediction (Vote breaks ties by mean logit, which the
    # argmax of its vote fractions would not); its confidence is the predicted class's score
    conf = probs[np.arange(labels.size), preds]
    correct = preds == labels
    return {"accuracy": float(correct.mean()),
            "ece": M.confidence_calibration_error(conf, correct, n_bins=n_bins),
            "ece_mass": M.confidence_calibration_error(conf, correct, n_bins=n_bins, binning="mass"),
            "classwise_ece": M.classwise_calibration_error(labels, probs, n_bins=n_bins),
            "mce": M.confidence_calibration_error(conf, correct, n_bins=n_bins, norm="max"),
            "brier": M.brier_score(labels, probs), "nll": M.nll(labels, probs)}


def cross_fitted_temperature(labels: np.ndarray, logits: np.ndarray, *, rng: np.random.Generator
                             ) -> tuple[np.ndarray, float]:
    """Temperature-scaled probabilities, T fitted on one random half of the samples and applied to
    the other (both ways). Returns ``(probs, mean T)``."""
    n = labels.size
    half = rng.permutation(n) < n // 2
    probs = np.empty(logits.shape, dtype=np.float64)
    temps = []
    for fit_part in (half, ~half):
        t = M.fit_temperature(labels[fit_part], logits[fit_part])
        probs[~fit_part] = M.softmax(logits[~fit_part] / t)
        temps.append(t)
    return probs, float(np.mean(temps))


def calibration_tables(data: PresetLogits, fused: dict, *, config: AnalysisConfig) -> dict[str, pd.DataFrame]:
    """calibration, reliability, selective and risk_coverage tables for fusions and single members."""
    cal, rel, sel, rc = [], [], [], []
    grid = np.linspace(0.01, 1.0, 100)

    def add(ds, arm, fusion, member, labels, probs, preds, logits, conf_kind, key):
        variants = [("none", probs, np.nan)]
        if logits is not None:
            p_t, t = cross_fitted_temperature(labels, logits, rng=np.random.default_rng([config.seed, _S_TEMP, *key]))
            variants.append(("temperature", p_t, t))
        base = {"dataset": ds, "arm": arm, "fusion": fusion, "member": member}
        for scaling, p, t in variants:
            cal.append({**base, "scaling": scaling, "temperature": t, "confidence_kind": conf_kind,
                        **_calibration_metrics(labels, p, preds, config.n_bins)})
            conf = p[np.arange(labels.size), preds]
            correct = preds == labels
            if member < 0:
                for binning in ("width", "mass"):
                    b = M.reliability_bins(conf, correct, n_bins=config.n_bins, binning=binning)
                    for k in range(config.n_bins):
                        rel.append({**base, "scaling": scaling, "binning": binning,
                                    **{c: b[c][k] for c in ("bin", "lower", "upper", "count", "confidence", "accuracy")}})
            if scaling == "none":
                sel.append({**base, "confidence_kind": conf_kind, "accuracy": correct.mean(),
                            "auroc": M.selective_auroc(correct, conf), "aurc": M.aurc_loss(correct, conf)})
                if member < 0:
                    curve = M.risk_coverage_curve(correct, conf)
                    pos = np.minimum(np.searchsorted(curve["coverage"], grid - 1e-12), curve["coverage"].size - 1)
                    for g, j in zip(grid, pos):
                        rc.append({**base, "coverage_target": g, "coverage": curve["coverage"][j],
                                   "risk": curve["risk"][j], "threshold": curve["threshold"][j]})

    for (ds, arm, fusion), o in fused.items():
        a = data.arms[(ds, arm)]
        add(ds, arm, fusion, -1, a.test_labels, o.probs, o.preds, o.logits, o.confidence_kind,
            (data.datasets.index(ds), data.arm_names(ds).index(arm), hash_str(fusion)))
    for (ds, arm), a in data.arms.items():
        for k, member in enumerate(a.members):
            logits = a.test_logits[k].astype(np.float64)
            add(ds, arm, "Single", member, a.test_labels, M.softmax(logits), logits.argmax(1), logits, "max_prob",
                (data.datasets.index(ds), data.arm_names(ds).index(arm), 1_000 + member))
    from analysis.core.schema import (
        CALIBRATION_COLUMNS,
        RELIABILITY_COLUMNS,
        RISK_COVERAGE_COLUMNS,
        SELECTIVE_COLUMNS,
    )

    return {"calibration": pd.DataFrame(cal).reindex(columns=list(CALIBRATION_COLUMNS)),
            "reliability": pd.DataFrame(rel).reindex(columns=list(RELIABILITY_COLUMNS)),
            "selective": pd.DataFrame(sel).reindex(columns=list(SELECTIVE_COLUMNS)),
            "risk_coverage": pd.DataFrame(rc).reindex(columns=list(RISK_COVERAGE_COLUMNS))}


def hash_str(s: str) -> int:
    """A small stable integer of a string (for seed keys; Python's ``hash`` is salted).

    >>> hash_str("Vote") == hash_str("Vote")
    True
    """
    import zlib

    return zlib.crc32(s.encode())


# ----------------------------------------------------------------------------- ensemble size
def ensemble_size_curves(data: PresetLogits, *, config: AnalysisConfig, sizes: list[int] | None = None) -> pd.DataFrame:
    """Accuracy and ECE of Average and Vote against the number of members (random subsets).

    For each size k, ``config.size_repeats`` seeded subsets of k members (without replacement; all
    distinct subsets when fewer exist) are fused. Bands are the 5 % and 95 % quantiles over subsets.
    """
    rows = []
    for (ds, arm), a in data.arms.items():
        m = a.n_members
        ks = sizes or sorted({k for k in (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, m) if k <= m})
        rng = np.random.default_rng([config.seed, _S_SIZE, data.datasets.index(ds), data.arm_names(ds).index(arm)])
        member_preds = a.test_logits.argmax(axis=2)
        for k in ks:
            n_rep = min(config.size_repeats, math.comb(m, k))
            subsets = _distinct_subsets(m, k, n_rep, rng)
            res = {"Average": [], "Vote": []}
            for s in subsets:
                for name, (preds, probs) in zip(res, subset_fusions(a.test_logits, member_preds, s)):
                    correct = preds == a.test_labels
                    res[name].append((correct.mean(), M.confidence_calibration_error(probs.max(1), correct, n_bins=config.n_bins)))
            for name, vals in res.items():
                v = np.array(vals)
                rows.append({"dataset": ds, "arm": arm, "fusion": name, "n_members": k, "n_subsets": len(v),
                             "accuracy_mean": v[:, 0].mean(), "accuracy_q05": np.quantile(v[:, 0], 0.05),
                             "accuracy_q50": np.quantile(v[:, 0], 0.5), "accuracy_q95": np.quantile(v[:, 0], 0.95),
                             "ece_mean": v[:, 1].mean(), "ece_q05": np.quantile(v[:, 1], 0.05),
                             "ece_q50": np.quantile(v[:, 1], 0.5), "ece_q95": np.quantile(v[:, 1], 0.95)})
    from analysis.core.schema import ENSEMBLE_SIZE_COLUMNS

    return pd.DataFrame(rows).reindex(columns=list(ENSEMBLE_SIZE_COLUMNS))


def subset_fusions(logits: np.ndarray, member_preds: np.ndarray, subset) -> tuple[tuple, tuple]:
    """``(average_fusion(logits[subset]), vote_fusion(logits[subset]))`` of
    :mod:`analysis.core.fusion`, equal to them bit for bit, sharing the subset's mean logits and
    reusing ``member_preds = logits.argmax(axis=2)`` (computed once for all subsets). No input
    checks: ``logits`` are the reader's finite test logits."""
    idx = list(subset)
    sub = logits[idx]
    _, n, c = sub.shape
    mean = sub.mean(axis=0, dtype=np.float64)
    counts = np.bincount((np.arange(n)[None, :] * c + member_preds[idx]).ravel(), minlength=n * c).reshape(n, c)
    tied = counts == counts.max(axis=1, keepdims=True)
    vote_preds = np.where(tied, mean, -np.inf).argmax(axis=1)
    return (mean.argmax(axis=1), M.softmax(mean)), (vote_preds, counts / len(idx))


def _distinct_subsets(m: int, k: int, n: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    if math.comb(m, k) <= n:
        import itertools

        return list(itertools.combinations(range(m), k))
    seen: set[tuple[int, ...]] = set()
    out = []
    while len(out) < n:
        s = tuple(sorted(rng.choice(m, size=k, replace=False).tolist()))
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


# ----------------------------------------------------------------------------- provenance + I/O
def provenance(data: PresetLogits, *, config: AnalysisConfig, seconds: float) -> dict:
    """Input checksums (per run and aggregate), code revision, config (seeds) and versions."""
    import hashlib

    runs = sorted(data.runs, key=lambda r: (r["dataset"], r["arm"], r["member"]))
    agg = hashlib.sha256("\n".join(f"{r['dataset']}/{r['arm']}/{r['member']}:{r['arrays_sha256']}" for r in runs).encode())
    status = data.status.to_dict() if data.status is not None else {"state": "complete"}
    return {"preset": data.preset, "cache_root": data.root, "runs": runs, "cache_sha256": agg.hexdigest(),
            "cache_state": status["state"], "cache_status": status,
            "dropped_members": data.dropped(), "code_revision": code_revision(), "config": asdict(config),
            "seed": config.seed, "versions": versions(), "seconds": round(seconds, 2),
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def cache_status_table(data: PresetLogits) -> pd.DataFrame:
    """One row per run of the preset's grid: its state in the cache and whether it was analysed."""
    from analysis.core.schema import CACHE_STATUS_COLUMNS

    rows = list(data.status.runs) if data.status is not None else [
        {"dataset": r["dataset"], "arm": r["arm"], "member": r["member"], "path": r["path"], "state": "complete",
         "included": True, "detail": ""} for r in data.runs]
    return pd.DataFrame(rows).reindex(columns=list(CACHE_STATUS_COLUMNS))


def write_results(tables: dict[str, pd.DataFrame], out_dir: str | os.PathLike, prov: dict | None = None) -> list[Path]:
    """Write the tables (``<name>.csv``) and ``provenance.json`` as one set.

    Everything goes to a temporary folder beside ``out_dir``; ``provenance.json``, written last,
    lists every file with its SHA-256 (``files``); the folder then replaces ``out_dir`` in one
    rename (:func:`analysis.core.results_set.swap_in`). A failure part way (full disk) leaves the
    previous set whole. ``out_dir`` must be new, empty or a results set (only result files).
    """
    from analysis.core.results_set import write_set

    return write_set(
        {f"{name}.csv": (lambda f, df=df: f.write(df.to_csv(index=False, float_format="%.10g").encode()))
         for name, df in tables.items()},
        out_dir, prov,
    )


def default_cache_root() -> Path:
    from training.paths import cache_root

    return cache_root()


def default_results_root() -> Path:
    from training.paths import results_root

    return results_root()


def analyze_preset(
    preset: str, cache_root: str | os.PathLike | None = None, out_dir: str | os.PathLike | None = None, *,
    seed: int = 0, config: AnalysisConfig | None = None, write: bool = True,
) -> dict[str, pd.DataFrame]:
    """Run the whole analysis of a preset's cache and (optionally) write its tidy CSVs.

    Parameters
    ----------
    preset : preset name (its runs live in ``cache_root/preset``).
    cache_root : cache root (default :func:`training.paths.cache_root`).
    out_dir : results folder (default :func:`training.paths.results_dir`).
    seed : root seed (ignored when ``config`` is given).
    config : all knobs; default ``AnalysisConfig(seed=seed)``.
    write : write the CSVs and ``provenance.json``.

    Returns
    -------
    dict name → DataFrame: table1, table2, bootstrap_ci, mcnemar, calibration, reliability,
    selective, risk_coverage, ensemble_size, member_accuracy, superlearner_gap, dropped_members,
    cache_status (columns: :mod:`analysis.core.schema`).

    Raises
    ------
    FileNotFoundError
        When the preset has no cache (the message names ``dynloss train --preset NAME``).
    """
    from analysis.core.schema import DROPPED_COLUMNS

    config = config or AnalysisConfig(seed=seed)
    t0 = time.perf_counter()
    cache_root = Path(cache_root) if cache_root is not None else default_cache_root()
    out = Path(out_dir) if out_dir is not None else default_results_root() / preset
    if write:  # a results folder that cannot take the set fails now, not after minutes of fitting
        from analysis.core.results_set import check_target

        check_target(out)
    data = load_preset(cache_root, preset, nonfinite=config.nonfinite, allow_partial=config.allow_partial,
                       allow_stale=config.allow_stale)
    fused, gap = fuse_preset(data, config=config)
    members = member_accuracy_table(data, n_bins=config.n_bins)
    t1, ci, draws = accuracy_tables(data, fused, members, config=config)
    tables = {
        "table1": t1,
        "table2": table2(t1, draws, encodings=dict(config.table2_encodings), confidence=config.confidence),
        "bootstrap_ci": ci,
        "mcnemar": mcnemar_table(data, fused),
        **calibration_tables(data, fused, config=config),
        "ensemble_size": ensemble_size_curves(data, config=config),
        "member_accuracy": members,
        "superlearner_gap": gap,
        "dropped_members": pd.DataFrame(data.dropped(), columns=list(DROPPED_COLUMNS)),
        "cache_status": cache_status_table(data),
    }
    if write:
        write_results(tables, out, provenance(data, config=config, seconds=time.perf_counter() - t0))
    return tables
