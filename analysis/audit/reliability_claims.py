"""The paper's motivation for the dynamic loss, decided from our caches: ``reliability``.

The paper (quoted in its corrections note, seed 000) says the loss "supports the creation of
soft-max scores that are more indicative of classifier prediction reliability, thus potentially
assisting in making incorrect and uncertain predictions more distinguishable from correct
predictions". Calibration (ECE, NLL, Brier) and selective prediction (AUROC, AURC) measure exactly
that; ``calibration_diff.csv`` (:mod:`analysis.core.reliability`) holds each dynamic arm's
difference from each cross-entropy arm per fusion, with paired bootstrap intervals.

The claim compares each dynamic arm with (a) cross-entropy at its tuned learning rate (the chosen
cross-entropy arm of ``lr_tuning.csv``) and (b) ``ce-lr0.01`` (the dynamic arms' own rate), over
the fusions of :data:`DECIDING_FUSIONS`. A cell is better (worse) when its 95 % interval excludes 0
on the better (worse) side of the metric; the interval is the two-level one (members × test
samples: it covers the training randomness) where the fusion has one, else the test-only one.
The verdict: :func:`reliability_verdict`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.audit import Finding, claim
from analysis.audit.cache_claims import _load, _load_optional, _r, preset_scope
from analysis.core.fusions import FUSIONS, PAPER_FUSIONS
from training.arms import ARMS, CONTROL_ARM
from training.paths import DataRoot

#: the fusions the verdict is taken over: the paper's four (the others are shown, not counted)
DECIDING_FUSIONS: tuple[str, ...] = tuple(PAPER_FUSIONS)
#: a cell's outcome: its interval excludes 0 on the better side, on the worse side, or neither
OUTCOMES: tuple[str, ...] = ("better", "worse", "n.s.")

QUOTE = ("This custom loss function supports the creation of soft-max scores that are more indicative of classifier "
         "prediction reliability, thus potentially assisting in making incorrect and uncertain predictions more "
         "distinguishable from correct predictions.")


def tuned_reference(tuning: pd.DataFrame, dataset: str) -> str | None:
    """The chosen cross-entropy arm of ``lr_tuning.csv`` for ``dataset`` (None without tuning)."""
    if tuning.empty:
        return None
    t = tuning[(tuning["dataset"] == dataset) & (tuning["chosen"] == 1)]
    ce = [r.arm for r in t.itertuples() if r.base_arm in ARMS and ARMS[r.base_arm].family == "ce"]
    return ce[0] if ce else None


def cell_outcomes(diff: pd.DataFrame) -> pd.DataFrame:
    """``calibration_diff`` rows with ``interval`` (``two-level`` where ``seed_ci_*`` is finite, else
    ``test-only``), ``low``/``high`` (that interval), ``gain`` (the difference signed so that > 0 is
    better: −diff for lower-is-better metrics) and ``outcome`` (:data:`OUTCOMES`: ``better`` when
    the interval lies entirely on the better side of 0, ``worse`` entirely on the worse side)."""
    d = diff.copy()
    seeded = np.isfinite(d["seed_ci_low"].to_numpy(float)) & np.isfinite(d["seed_ci_high"].to_numpy(float))
    d["interval"] = np.where(seeded, "two-level", "test-only")
    d["low"] = np.where(seeded, d["seed_ci_low"], d["ci_low"])
    d["high"] = np.where(seeded, d["seed_ci_high"], d["ci_high"])
    sign = np.where(d["direction"] == "higher", 1.0, -1.0)
    d["gain"] = sign * d["diff"]
    lo, hi = d["low"].to_numpy(float), d["high"].to_numpy(float)
    better = np.where(sign > 0, lo > 0, hi < 0)
    worse = np.where(sign > 0, hi < 0, lo > 0)
    d["outcome"] = np.where(better, "better", np.where(worse, "worse", "n.s."))
    return d


def deciding_cells(diff: pd.DataFrame, tuning: pd.DataFrame, *, fusions=DECIDING_FUSIONS) -> pd.DataFrame:
    """The cells the verdict counts: per dataset, every dynamic arm against the tuned cross-entropy
    arm and against ``ce-lr0.01`` (once when they are the same arm), in ``fusions``, each metric the
    fusion's confidence can be scored by (no NLL of vote fractions: a unanimous mistake sits at the
    clip; :attr:`analysis.core.metric_registry.Metric.on_votes`). Column ``role``: ``tuned``,
    ``control`` or ``tuned = control``."""
    from analysis.core.metric_registry import METRICS

    parts = []
    for ds, g in diff.groupby("dataset", sort=False):
        tuned = tuned_reference(tuning, ds)
        roles = {CONTROL_ARM: "control"}
        if tuned is not None:
            roles[tuned] = "tuned = control" if tuned == CONTROL_ARM else "tuned"
        sel = g[g["reference"].isin(roles) & g["fusion"].isin(fusions)]
        parts.append(sel.assign(role=sel["reference"].map(roles)))
    out = pd.concat(parts, ignore_index=True) if parts else diff.iloc[:0].assign(role=[])
    votes = out["fusion"].map(lambda f: f in FUSIONS and FUSIONS[f].inputs == "votes")
    scored = out["metric"].map(lambda m: METRICS[m].on_votes if m in METRICS else True)
    return cell_outcomes(out[~votes | scored].reset_index(drop=True))


def reliability_verdict(n_cells: int, n_better: int, n_worse: int) -> str:
    """``holds`` when at least half the cells are better and none worse; ``fails`` when none is
    better or more are worse than better; ``conditional`` otherwise (and for no cells).

    >>> reliability_verdict(76, 2, 37), reliability_verdict(20, 12, 0), reliability_verdict(20, 5, 5)
    ('fails', 'holds', 'conditional')
    """
    if n_cells == 0:
        return "conditional"
    if n_better >= n_cells / 2 and n_worse == 0:
        return "holds"
    if n_better == 0 or n_worse > n_better:
        return "fails"
    return "conditional"


def _counts(g: pd.DataFrame) -> dict:
    return {"n_cells": len(g), **{f"n_{o.replace('.', '').replace(' ', '')}": int((g["outcome"] == o).sum())
                                  for o in OUTCOMES},
            "mean_gain": _r(g["gain"].mean()) if len(g) else None}


@claim(
    "reliability",
    source="our caches",
    text=f"The dynamic loss makes the softmax scores more indicative of prediction reliability (the paper: "
         f"\u201c{QUOTE}\u201d): better calibration (ECE, NLL, Brier) and selective prediction (AUROC, AURC) than "
         f"cross-entropy.",
    reads=("calibration_diff",),
    kind="proxy preset",
    overturn="Dynamic arms whose ECE, NLL, Brier, AUROC and AURC intervals against the tuned cross-entropy lie on "
             "the better side in most cells, on the paper's networks and datasets.",
)
def evaluate_reliability(preset: str, root: DataRoot) -> Finding:
    diff = _load(root, preset, "calibration_diff")
    tuning = _load_optional(root, preset, "lr_tuning")
    cells = deciding_cells(diff, tuning)
    scope = preset_scope(preset)
    s = _counts(cells)
    verdict = reliability_verdict(s["n_cells"], s["n_better"], s["n_worse"])
    refs = {ds: tuned_reference(tuning, ds) for ds in dict.fromkeys(diff["dataset"])}
    per_metric = {m: _counts(g) for m, g in cells.groupby("metric", sort=False)}
    per_reference = {r: _counts(g) for r, g in cells.groupby("role", sort=False)}
    per_arm = {a: _counts(g) for a, g in cells.groupby("arm", sort=False)}
    values = {
        "preset": preset, "results": root.display(root.results_dir(preset)), "fusions": list(DECIDING_FUSIONS),
        "tuned_reference": refs, "control": CONTROL_ARM, **s, "per_metric": per_metric,
        "per_reference": per_reference, "per_arm": per_arm,
        "intervals": {k: int((cells["interval"] == k).sum()) for k in ("two-level", "test-only")},
        "confidence_level": _r(float(diff["confidence_level"].iloc[0])) if len(diff) else None,
        "cells": [{"dataset": r.dataset, "arm": r.arm, "reference": r.reference, "role": r.role, "fusion": r.fusion,
                   "metric": r.metric, "diff": _r(r.diff), "ci": [_r(r.low), _r(r.high)], "interval": r.interval,
                   "outcome": r.outcome} for r in cells.itertuples()],
        "rule": (f"each dynamic arm against the tuned cross-entropy arm (lr_tuning.csv) and {CONTROL_ARM}, "
                 f"fusions {'/'.join(DECIDING_FUSIONS)}, metrics ECE, NLL (not of vote fractions), Brier, AUROC, AURC: "
                 f"a cell is better (worse) when its 95 % paired bootstrap interval of the difference (two-level where "
                 f"the fusion can be re-fused, else over test samples) excludes 0 on the better (worse) side; holds "
                 f"if at least half the cells are better and none worse, fails if none is better or more are worse "
                 f"than better, conditional otherwise"),
    }

    def metric_text(m: str) -> str:
        v = per_metric[m]
        return f"{m.upper() if m != 'brier' else 'Brier'} {v['n_better']} better / {v['n_worse']} worse of {v['n_cells']}"

    avg = cells[(cells["fusion"] == "Average") & (cells["reference"] == CONTROL_ARM)
                & cells["metric"].isin(["ece", "auroc"])]
    shown = ", ".join(f"{r.arm} {r.metric.upper()} {r.diff:+.4f} [{r.low:+.4f}, {r.high:+.4f}]"
                      for r in avg.drop_duplicates(["arm", "metric"]).itertuples())
    ref_text = ", ".join(f"{ds}: {r}" + (", the same arm" if r == CONTROL_ARM else "") for ds, r in refs.items() if r) \
        or "none: no learning-rate tuning in these results"
    evidence = (
        f"Preset {preset} ({values['results']}); references: the tuned cross-entropy arm ({ref_text}) and "
        f"{CONTROL_ARM}. Over {s['n_cells']} cells (dynamic arm × reference × fusion × metric), {s['n_better']} "
        f"better, {s['n_worse']} worse, {s['n_ns']} not distinguishable at 95 % ("
        + "; ".join(metric_text(m) for m in per_metric)
        + "; per arm: " + ", ".join(f"{a} {v['n_better']} better / {v['n_worse']} worse" for a, v in per_arm.items())
        + f"). Average ensemble against {CONTROL_ARM} (difference, interval): {shown}. Intervals: "
        f"{values['intervals']['two-level']} two-level (members × test samples), "
        f"{values['intervals']['test-only']} over test samples only (learned fusions). {scope}"
    )
    return Finding(verdict=verdict, evidence=evidence, values=values)
