"""Columns of every CSV that ``dynloss analyze`` writes to ``data/results/<preset>/``.

Each ``*_COLUMNS`` dict maps column → description, in file order; :data:`RESULT_FILES` maps each
file (without ``.csv``) to its dict. All tables are long form: one row per observation.

Shared vocabulary
-----------------
- ``dataset`` — dataset name as in the cache (e.g. ``digits``, ``fmnist``).
- ``arm`` — loss configuration: ``ce``, ``dyn-<τ>``, ``ce-lr0.01`` (control), ...
- ``fusion`` — ``Average`` (mean raw logits), ``ProbAverage`` (mean probabilities), ``Vote``
  (modal class; ties → larger mean logit, then lowest class), ``Weighted`` / ``MLP`` (published
  super-learners fitted on in-sample training predictions), ``Weighted-OOB`` / ``MLP-OOB``
  (leak-free, fitted on out-of-bag training predictions), ``Single`` (one member; calibration only);
  every fusion is declared in :mod:`analysis.core.fusions`.
- the metric columns of ``calibration`` and ``selective`` come from the records of
  :mod:`analysis.core.metric_registry` (:data:`CALIBRATION_COLUMNS` and :data:`SELECTIVE_COLUMNS`
  are read live); :func:`result_frame` refuses a column the schema does not declare.
- ``member`` — member number; -1 on rows of a fused ensemble.
- CIs are paired percentile bootstrap intervals over test samples at ``confidence_level``;
  ``*seed_ci*`` columns are two-level intervals (members × test samples, see
  :mod:`analysis.core.seed_bootstrap`), which add the training randomness.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from analysis.core.fusions import FUSIONS, SEED_CI_FUSIONS, names
from analysis.core.registry import LiveMapping

_SEEDED, _LEARNED = ", ".join(SEED_CI_FUSIONS), names(learned=True)

_ARM = {
    "dataset": "dataset name as in the cache",
    "arm": "loss configuration (ce, dyn-<τ>, ce-lr0.01, ...)",
}

TABLE1_COLUMNS: dict[str, str] = {
    **_ARM,
    "loss": "loss family parsed from the arm name (ce, dyn, soft, ...)",
    "threshold": "dynamic-loss threshold τ parsed from the arm name; NaN for cross-entropy arms",
    "fusion": "fusion method (see module docstring)",
    "leak_free": "False only for the published in-sample super-learners "
                 f"({', '.join(n for n in _LEARNED if not FUSIONS[n].leak_free)})",
    "n_members": "members fused (after the non-finite policy)",
    "n_test": "test samples",
    "accuracy": "test accuracy of the fused prediction",
    "ci_low": "lower bound of the bootstrap CI of accuracy",
    "ci_high": "upper bound of the bootstrap CI of accuracy",
    "diff_vs_ce": "accuracy minus that of arm ce with the same fusion (NaN for ce itself)",
    "diff_ci_low": "lower bound of the paired bootstrap CI of diff_vs_ce",
    "diff_ci_high": "upper bound of the paired bootstrap CI of diff_vs_ce",
    "diff_vs_control": "accuracy minus that of the learning-rate control ce-lr0.01 with the same fusion (NaN for "
                       "ce-lr0.01 itself); the diff rows of bootstrap_ci with reference ce-lr0.01",
    "control_ci_low": "lower bound of the paired bootstrap CI of diff_vs_control (the resamples of diff_ci_*)",
    "control_ci_high": "upper bound of the paired bootstrap CI of diff_vs_control",
    "seed_ci_low": "lower bound of the two-level (training-seed) CI of accuracy: the arm's members resampled with "
                   "replacement and the test samples resampled (the first n_seed_resamples of the test-only "
                   "resamples; n_seed_resamples in provenance.json config), centred: the downward shift of ensembles with repeated "
                   "members is removed (analysis.core.tables.seed_accuracy_draws). Fusions with a batched re-fusion "
                   f"only ({_SEEDED}; analysis.core.fusions): NaN for the others, the learned fusions "
                   f"({', '.join(_LEARNED)}) among them, which would need a refit per member resample",
    "seed_ci_high": "upper bound of the two-level CI of accuracy (NaN for learned fusions)",
    "diff_seed_ci_low": "lower bound of the two-level CI of diff_vs_ce: each arm's members resampled independently, "
                        "test samples shared (paired); NaN for ce and for learned fusions",
    "diff_seed_ci_high": "upper bound of the two-level CI of diff_vs_ce",
    "control_seed_ci_low": "lower bound of the two-level CI of diff_vs_control (as diff_seed_ci_low, against "
                           "ce-lr0.01); NaN for ce-lr0.01 and for learned fusions",
    "control_seed_ci_high": "upper bound of the two-level CI of diff_vs_control",
    "member_acc_mean": "mean test accuracy of the arm's single members",
    "member_acc_sd": "standard deviation (ddof=1) of single-member accuracy",
    "member_acc_min": "lowest single-member accuracy",
    "member_acc_max": "highest single-member accuracy",
    "confidence_level": "level of the CIs (e.g. 0.95)",
    "n_resamples": "bootstrap resamples",
    "cache_state": "'complete' when every run of the arm's grid was analysed, current; else e.g. 'partial (2 of "
                   "3 members)' or 'stale (1 run)' (dynloss analyze --allow-partial / --allow-stale)",
}

TABLE2_COLUMNS: dict[str, str] = {
    "dataset": "dataset name",
    "fusion": "fusion method",
    "encoding": "how arm ce enters the τ axis: 'published (ce=-1)' (the value that reproduces the paper's "
                "Table 2), 'ce-limit (ce=1.0)' (dynamic loss at τ=1 has the CE gradient), 'ce excluded'",
    "ce_threshold": "τ given to arm ce (NaN when excluded)",
    "arms": "arms entering the correlation, ';'-separated",
    "n": "number of (τ, accuracy) points",
    "pearson_r": "Pearson correlation of accuracy with τ",
    "pearson_ci_low": "Fisher-z CI lower bound of r (NaN when n <= 3)",
    "pearson_ci_high": "Fisher-z CI upper bound of r",
    "pearson_p": "two-sided t-test p-value of r (scipy.stats.pearsonr)",
    "perm_p_two_sided": "exact permutation p (all n! orderings): share with |r| >= |r_obs|",
    "perm_p_greater": "exact permutation p, one-sided: share with r >= r_obs",
    "n_orderings": "orderings enumerated (120 for n=5)",
    "spearman_rho": "Spearman rank correlation",
    "spearman_p": "p-value of Spearman's rho (scipy)",
    "r_boot_ci_low": "test-only paired bootstrap percentile CI of r, lower bound: test samples resampled, the arms' "
                     "members fixed (ignores training randomness: far too narrow for r over five arms)",
    "r_boot_ci_high": "test-only paired bootstrap percentile CI of r, upper bound",
    "r_seed_ci_low": "two-level (training seeds and test samples) percentile CI of r, lower bound: each arm's "
                     "members resampled independently, test samples resampled and shared by the arms "
                     "(analysis.core.tables.seed_accuracy_draws); NaN for fusions without a re-fusion on "
                     "resampled members (the learned ones)",
    "r_seed_ci_high": "two-level (training seeds and test samples) percentile CI of r, upper bound",
}

BOOTSTRAP_CI_COLUMNS: dict[str, str] = {
    **_ARM,
    "fusion": "fusion method",
    "quantity": "'accuracy' or 'diff' (accuracy of arm minus accuracy of reference, same fusion)",
    "reference": "reference arm of a diff (ce, ce-lr0.01 or another cross-entropy arm); empty for accuracy",
    "estimate": "point estimate on the full test set",
    "ci_low": "percentile CI lower bound",
    "ci_high": "percentile CI upper bound",
    "se": "bootstrap standard error (sd of the resampled estimates)",
    "confidence_level": "CI level",
    "n_resamples": "bootstrap resamples (shared by every cell of a dataset: paired)",
}

MCNEMAR_COLUMNS: dict[str, str] = {
    **_ARM,
    "reference": "arm compared against (ce, ce-lr0.01 or another cross-entropy arm)",
    "fusion": "fusion method (same for both)",
    "accuracy": "accuracy of arm",
    "reference_accuracy": "accuracy of the reference arm",
    "n01": "test samples the arm gets right and the reference wrong",
    "n10": "test samples the arm gets wrong and the reference right",
    "statistic": "McNemar statistic (chi-square with continuity correction, or min(n01, n10) when exact)",
    "pvalue": "two-sided p-value (statsmodels mcnemar)",
    "pvalue_holm": "pvalue Holm-adjusted over the arms compared with the same reference (per dataset and fusion)",
    "exact": "1.0 when the exact binomial test was used (n01 + n10 < 25), else 0.0",
}

_CAL_KEYS = {
    **_ARM,
    "fusion": "fusion method, or Single for one member",
    "member": "member number for Single rows, -1 for fused ensembles",
}

def _with_metrics(table: str, fixed: dict[str, str]) -> LiveMapping:
    """``fixed`` then the column of every metric of ``table`` (:mod:`analysis.core.metric_registry`;
    a column in ``fixed`` keeps its description there)."""
    from analysis.core.metric_registry import metrics_of

    return LiveMapping(lambda: {**fixed, **{m.name: m.description for m in metrics_of(table) if m.name not in fixed}})


CALIBRATION_COLUMNS: LiveMapping = _with_metrics("calibration", {
    **_CAL_KEYS,
    "scaling": "'none' or 'temperature' (T cross-fitted over two seeded halves of the test set)",
    "temperature": "mean of the two fitted temperatures (NaN when scaling is none)",
    "confidence_kind": "'max_prob' (softmax) or 'vote_fraction' (Vote: share of members voting the class)",
})

RELIABILITY_COLUMNS: dict[str, str] = {
    **_CAL_KEYS,
    "scaling": "'none' or 'temperature'",
    "binning": "'width' (equal-width) or 'mass' (equal-mass)",
    "bin": "bin index 0..n_bins-1",
    "lower": "lower bin edge (equal-mass: smallest confidence in the bin)",
    "upper": "upper bin edge (equal-mass: largest confidence in the bin)",
    "count": "samples in the bin",
    "confidence": "mean confidence in the bin (NaN if empty)",
    "accuracy": "accuracy in the bin (NaN if empty)",
}

SELECTIVE_COLUMNS: LiveMapping = _with_metrics("selective", {
    **_CAL_KEYS,
    "confidence_kind": "confidence used to rank samples ('max_prob' or 'vote_fraction')",
    "accuracy": "accuracy at full coverage",
})

RISK_COVERAGE_COLUMNS: dict[str, str] = {
    **_CAL_KEYS,
    "coverage_target": "grid of coverages 0.01..1.00",
    "coverage": "achieved coverage: the first curve point at or above the target (tied confidences enter together)",
    "risk": "error rate among the accepted samples",
    "threshold": "confidence threshold: samples with confidence >= threshold are accepted",
}

ENSEMBLE_SIZE_COLUMNS: dict[str, str] = {
    **_ARM,
    "fusion": "Average or Vote",
    "n_members": "ensemble size k",
    "n_subsets": "random member subsets of size k evaluated (all when fewer exist)",
    "accuracy_mean": "mean test accuracy over subsets",
    "accuracy_q05": "5 % quantile of accuracy over subsets",
    "accuracy_q50": "median accuracy over subsets",
    "accuracy_q95": "95 % quantile of accuracy over subsets",
    "ece_mean": "mean top-label ECE (equal-width; Vote: vote-fraction confidence)",
    "ece_q05": "5 % quantile of ECE",
    "ece_q50": "median ECE",
    "ece_q95": "95 % quantile of ECE",
}

MEMBER_ACCURACY_COLUMNS: dict[str, str] = {
    **_ARM,
    "member": "member number",
    "accuracy": "single-member test accuracy",
    "nll": "single-member test NLL",
    "ece": "single-member top-label ECE (equal-width)",
}

SUPERLEARNER_GAP_COLUMNS: dict[str, str] = {
    **_ARM,
    "fusion": " or ".join(f"{', '.join(n for n in _LEARNED if FUSIONS[n].superlearner[1] == v)} ({v})"
                          for v in ("in-sample", "out-of-bag")),
    "kind": "Weighted or MLP",
    "variant": "'in-sample' (published) or 'out-of-bag' (leak-free)",
    "val_accuracy": "best accuracy on the 10 % validation split of the training predictions",
    "test_accuracy": "accuracy on the test set",
    "gap": "val_accuracy - test_accuracy (optimism of the validation estimate)",
    "best_epoch": "epoch (1-based) with the best validation accuracy, whose weights are kept",
    "epochs": "epochs trained",
    "n_fit_rows": "training rows the super-learner was fitted on",
    "n_val_rows": "validation rows",
    "fit_seconds": "wall time of the fit (fits trained together: their wall time divided by their number)",
}

DROPPED_COLUMNS: dict[str, str] = {
    **_ARM,
    "member": "member number dropped by the non-finite policy",
    "path": "its arrays.npz",
    "reason": "why (non-finite logits, with row counts)",
}

CACHE_STATUS_COLUMNS: dict[str, str] = {
    **_ARM,
    "member": "member number (every run of the preset's grid has a row)",
    "path": "the run's folder, relative to the preset's cache folder",
    "state": "complete, missing, incomplete, corrupt or stale (training.cache_state)",
    "included": "True when the run was analysed",
    "detail": "why a run is not complete (empty otherwise)",
}

RELATED_LOSSES_COLUMNS: dict[str, str] = {
    **_ARM,
    "label": "the arm in words (training.arms registry)",
    "fusion": "fusion method (Average)",
    "n_members": "members fused",
    "accuracy": "test accuracy of the fused prediction (as in table1)",
    "diff_vs_control": "accuracy minus that of the learning-rate control ce-lr0.01 (NaN for ce-lr0.01 itself)",
    "control_ci_low": "lower bound of the paired test-sample bootstrap CI of diff_vs_control",
    "control_ci_high": "upper bound of the paired test-sample bootstrap CI of diff_vs_control",
    "control_seed_ci_low": "lower bound of the two-level (members × test samples) CI of diff_vs_control",
    "control_seed_ci_high": "upper bound of the two-level CI of diff_vs_control",
    "ece": "top-label ECE (equal-width bins), no scaling (as in calibration)",
    "ece_temperature": "top-label ECE after cross-fitted temperature scaling",
    "temperature": "fitted temperature (mean of the two cross-fitted halves); > 1 means over-confident",
    "aurc": "area under the risk-coverage curve (lower is better; as in selective)",
    "member_acc_mean": "mean test accuracy of the arm's single members",
    "member_acc_sd": "standard deviation (ddof=1) of single-member accuracy",
    "confidence_level": "level of the CIs",
}

SPLIT_STATS_COLUMNS: dict[str, str] = {
    "dataset": "dataset name as in the cache",
    "member": "member number (its split is shared by every arm: measured once, analysis.core.splits)",
    "arm": "the arm whose cached run was measured (the reference arm ce when it holds the member)",
    "n_train": "rows of the official training set",
    "fit_distinct_fraction": "distinct fitted rows / n_train (the quantity the paper puts at 49.4 %)",
    "base_distinct_fraction": "distinct rows of the whole resample (fit and validation) / n_train",
    "val_distinct_fraction": "distinct validation rows / n_train",
    "val_overlap_fraction": "share of the distinct validation rows that are also fitted",
    "fit_duplicate_fraction": "share of the fitted rows that repeat an earlier fitted row",
}

LR_TUNING_COLUMNS: dict[str, str] = {
    "dataset": "dataset name",
    "base_arm": "the arm whose learning rate is tuned, as the preset names it (ce, dyn-0.7)",
    "lr": "learning rate of the grid point",
    "arm": "the arm at that learning rate (training.arms.at_lr)",
    "members": "tuning runs scored (members 0.. of the arm, trained into <cache>/_tuning/<preset>)",
    "held_out_accuracy": "mean over those runs of the accuracy on the training rows each was not fitted on",
    "held_out_sd": "sd of that accuracy over the runs (ddof 1; NaN for one run)",
    "held_out_rows": "held-out training rows of the last run scored",
    "chosen": "1.0 for the learning rate of the best mean held-out accuracy (ties: the smaller), else 0.0",
}

CALIBRATION_DIFF_COLUMNS: dict[str, str] = {
    "dataset": "dataset name as in the cache",
    "arm": "dynamic-loss arm (dyn-<τ>, and any tuned dynamic arm)",
    "reference": "cross-entropy arm compared against: ce-lr0.01 (the dynamic arms' learning rate) and the tuned "
                 "cross-entropy arm (the chosen ce arm of lr_tuning; once when they are the same arm)",
    "fusion": "fusion method (the same for both arms; every fusion but ProbAverage)",
    "metric": "ece, nll, brier (calibration, before temperature scaling), auroc or aurc (selective); as in "
              "calibration.csv / selective.csv (analysis.core.metric_registry)",
    "direction": "'lower' or 'higher' is better for the metric",
    "confidence_kind": "'max_prob' or 'vote_fraction' (Vote): the confidence the metric scores",
    "value": "the metric of arm on the full test set",
    "reference_value": "the metric of the reference arm",
    "diff": "value - reference_value (below 0 is better for 'lower' metrics)",
    "ci_low": "lower bound of the paired percentile bootstrap CI of diff over test samples (members fixed; the "
              "same resamples for every arm and fusion of a dataset)",
    "ci_high": "upper bound of that CI",
    "seed_ci_low": "lower bound of the two-level CI of diff: each arm's members resampled and re-fused, test samples "
                   "resampled, centred (analysis.core.reliability); NaN for learned fusions (a refit per draw)",
    "seed_ci_high": "upper bound of the two-level CI",
    "confidence_level": "level of the CIs",
    "n_resamples": "test-sample resamples (n_reliability_resamples)",
    "n_seed_resamples": "two-level resamples (n_reliability_seed_resamples)",
}

#: result file (without .csv) -> its column dictionary
RESULT_FILES: dict[str, Mapping[str, str]] = {
    "table1": TABLE1_COLUMNS,
    "table2": TABLE2_COLUMNS,
    "bootstrap_ci": BOOTSTRAP_CI_COLUMNS,
    "mcnemar": MCNEMAR_COLUMNS,
    "calibration": CALIBRATION_COLUMNS,
    "reliability": RELIABILITY_COLUMNS,
    "selective": SELECTIVE_COLUMNS,
    "risk_coverage": RISK_COVERAGE_COLUMNS,
    "ensemble_size": ENSEMBLE_SIZE_COLUMNS,
    "member_accuracy": MEMBER_ACCURACY_COLUMNS,
    "superlearner_gap": SUPERLEARNER_GAP_COLUMNS,
    "dropped_members": DROPPED_COLUMNS,
    "cache_status": CACHE_STATUS_COLUMNS,
    "related_losses": RELATED_LOSSES_COLUMNS,
    "split_stats": SPLIT_STATS_COLUMNS,
    "lr_tuning": LR_TUNING_COLUMNS,
    "calibration_diff": CALIBRATION_DIFF_COLUMNS,
}


def result_frame(name: str, rows: Sequence[dict]):
    """Result table ``name`` from its rows, columns in :data:`RESULT_FILES` order.

    Raises
    ------
    ValueError
        When a row holds a column the schema does not declare (a reindex would drop it silently).
    """
    import pandas as pd

    columns = list(RESULT_FILES[name])
    known = set(columns)
    extra = list(dict.fromkeys(c for r in rows for c in r if c not in known))
    if extra:
        raise ValueError(f"{name}.csv: column(s) {', '.join(map(repr, extra))} not declared in analysis.core.schema "
                         f"(a metric's column comes from its record in analysis.core.metric_registry.METRICS)")
    return pd.DataFrame(list(rows)).reindex(columns=columns)
