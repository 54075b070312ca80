"""Speed of the Table 1 bootstrap CIs: shared-resample matrix products vs a per-cell scipy loop.

Workload: a synthetic cache in memory with 10,000 test samples, 50 members, 6 arms and 4 fusion
columns (Average, ProbAverage, Vote, and member 0 standing in for a learned fusion — the bootstrap
cost does not depend on how the predictions were made). Every Table 1 cell gets a 95 % percentile
CI of its accuracy and every non-``ce`` cell a paired CI of its difference to ``ce`` (same fusion):
24 + 20 = 44 intervals, 10,000 resamples each.

- ours: :func:`analysis.core.stats.bootstrap_accuracies` (one resample-count matrix shared by all 24
  cells, accuracies by matrix product) + :func:`analysis.core.stats.percentile_interval`; measured in full.
- reference: ``scipy.stats.bootstrap(..., method="percentile")`` once per interval (paired for the
  differences). A few cells are measured; the full loop is extrapolated from their mean time
  unless ``--full-scipy`` is given.

Run: ``.venv/bin/python benchmarks/analysis_speed.py [--scipy-cells 3] [--full-scipy]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the synthetic-cache helpers
from synthetic import synthetic_logits

from analysis.core.fusion import average_fusion, prob_average_fusion, vote_fusion
from analysis.core.stats import bootstrap_accuracies, percentile_interval

ARMS = {"ce": 1.6, "dyn-0.6": 1.7, "dyn-0.7": 1.75, "dyn-0.8": 1.8, "dyn-0.9": 1.85, "ce-lr0.01": 1.65}


def build_correctness(n_test: int, n_members: int, n_classes: int, seed: int) -> tuple[list, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_test)
    cells, rows = [], []
    for arm, signal in ARMS.items():
        logits = synthetic_logits(labels, n_members, n_classes, signal, rng)
        preds = {"Average": average_fusion(logits)[0], "ProbAverage": prob_average_fusion(logits)[0],
                 "Vote": vote_fusion(logits)[0], "Member0": logits[0].argmax(1)}
        for fusion, p in preds.items():
            cells.append((arm, fusion))
            rows.append(p == labels)
    return cells, np.stack(rows)


def ours(cells, correct, *, n_resamples: int, seed: int) -> dict:
    draws = bootstrap_accuracies(correct, rng=np.random.default_rng(seed), n_resamples=n_resamples)
    lo, hi = percentile_interval(draws)
    col = {c: i for i, c in enumerate(cells)}
    out = {("acc",) + c: (lo[i], hi[i]) for i, c in enumerate(cells)}
    for (arm, fusion), i in col.items():
        if arm != "ce":
            d = draws[:, i] - draws[:, col[("ce", fusion)]]
            dlo, dhi = percentile_interval(d[:, None])
            out[("diff", arm, fusion)] = (dlo[0], dhi[0])
    return out


def scipy_jobs(cells, correct):
    col = {c: i for i, c in enumerate(cells)}
    jobs = [("acc",) + c for c in cells] + [("diff",) + c for c in cells if c[0] != "ce"]

    def run(job, n_resamples, seed):
        kind, arm, fusion = job
        rng = np.random.default_rng(seed)
        a = correct[col[(arm, fusion)]].astype(np.float64)
        if kind == "acc":
            res = sps.bootstrap((a,), np.mean, n_resamples=n_resamples, method="percentile", rng=rng)
        else:
            b = correct[col[("ce", fusion)]].astype(np.float64)
            res = sps.bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis) - y.mean(axis), paired=True,
                                n_resamples=n_resamples, method="percentile", rng=rng)
        return res.confidence_interval.low, res.confidence_interval.high

    return jobs, run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-test", type=int, default=10_000)
    ap.add_argument("--members", type=int, default=50)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--scipy-cells", type=int, default=4,
                    help="intervals timed with scipy, half accuracies and half paired diffs (then extrapolated)")
    ap.add_argument("--full-scipy", action="store_true", help="time the whole scipy loop instead of extrapolating")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    print(f"machine: {os.cpu_count()} CPUs; workload: {args.n_test} test samples, {args.members} members, "
          f"{len(ARMS)} arms x 4 fusions, {args.resamples} resamples")
    t = time.perf_counter()
    cells, correct = build_correctness(args.n_test, args.members, args.classes, args.seed)
    print(f"setup (synthetic logits + fusion, not timed below): {time.perf_counter() - t:.2f} s")

    t = time.perf_counter()
    cis = ours(cells, correct, n_resamples=args.resamples, seed=args.seed)
    t_ours = time.perf_counter() - t
    print(f"ours   MEASURED: {len(cis)} intervals ({len(cells)} accuracies + {len(cis) - len(cells)} paired diffs) "
          f"in {t_ours:.3f} s")

    jobs, run = scipy_jobs(cells, correct)
    acc_jobs = [j for j in jobs if j[0] == "acc"]
    diff_jobs = [j for j in jobs if j[0] == "diff"]
    k = max(2, args.scipy_cells)
    chosen = jobs if args.full_scipy else acc_jobs[: k // 2] + diff_jobs[: k - k // 2]
    run(jobs[0], 100, args.seed)  # untimed warm-up (imports, first allocations)
    times = []
    for j in chosen:
        t = time.perf_counter()
        lo, hi = run(j, args.resamples, args.seed)
        times.append(time.perf_counter() - t)
        mine = cis[j]
        print(f"scipy  MEASURED: {j} {times[-1]:.3f} s; CI scipy [{lo:.4f}, {hi:.4f}] vs ours [{mine[0]:.4f}, {mine[1]:.4f}]")
    if args.full_scipy:
        t_scipy, how = sum(times), "MEASURED"
    else:
        n_acc = sum(j[0] == "acc" for j in chosen)
        t_acc = float(np.mean(times[:n_acc]))
        t_diff = float(np.mean(times[n_acc:]))
        t_scipy = t_acc * len(acc_jobs) + t_diff * len(diff_jobs)
        how = (f"EXTRAPOLATED ({t_acc:.3f} s x {len(acc_jobs)} accuracy cells + {t_diff:.3f} s x "
               f"{len(diff_jobs)} diff cells, from the {len(times)} measured)")
    print(f"scipy  {how}: {len(jobs)} intervals in {t_scipy:.2f} s")
    print(f"speed-up: {t_scipy / t_ours:.1f}x; goal <= 5 s and >= 20x: "
          f"{'met' if t_ours <= 5 and t_scipy / t_ours >= 20 else 'NOT met'}")


if __name__ == "__main__":
    main()
