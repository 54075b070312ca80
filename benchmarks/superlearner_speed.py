"""Speed of the super-learner fits of ``dynloss analyze``: batched (all fits together) vs one by one.

Workload: the learned fusions of every arm, as ``dynloss analyze --preset fmnist-mini`` fits them:
per arm Weighted and MLP, each in-sample and out-of-bag (4 fits), the published recipe (10 / 20
epochs, AdamW lr 3e-4), MLP fits capped at 4,000 training rows. The logits are synthetic with
fmnist-mini's shapes (60,000 training and 10,000 test rows, 10 members, 10 classes, members fitted
on about 54 % of the rows, all arms sharing the members' fit rows), or a real cache with
``--cache`` (e.g. ``--cache data/cache --preset fmnist-mini``).

- batched: :func:`analysis.core.superlearner_batch.fit_superlearners` (fits of equal shape in lock-step
  with stacked parameters, in parallel threads, one per usable CPU: the default of ``dynloss
  analyze``), and the same with one thread (the gain of batching alone).
- sequential: the same function with ``batched=False`` — each fit alone, as before batching.

All are timed in full (``--arms`` fewer arms for a quicker run); wall and process CPU time are
printed (on a machine shared with other work, wall time depends on their load). Every fit's test
logits, validation history and best epoch are compared: batching must not change a single bit.

Run: ``.venv/bin/python benchmarks/superlearner_speed.py [--arms 6] [--cache DIR --preset NAME]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the synthetic-cache helpers
# (and benchmarks/, this script's own folder, is first on sys.path: machine_speed)
from machine_speed import matmul_peak
from synthetic import synthetic_logits

from analysis.core.config import AnalysisConfig
from analysis.core.fuse import superlearner_tasks
from analysis.core.reader import ArmLogits, load_preset
from analysis.core.superlearner import SuperLearnerTask
from analysis.core.superlearner_batch import fit_superlearners

ARM_SIGNALS = {"ce": 1.6, "dyn-0.6": 1.7, "dyn-0.7": 1.75, "dyn-0.8": 1.8, "dyn-0.9": 1.85, "ce-lr0.01": 1.65}


class _SyntheticArm:
    """What :func:`superlearner_tasks` reads from an :class:`ArmLogits`, from synthetic logits."""

    def __init__(self, name, train_logits, train_labels, test_logits, fit_mask):
        self.arm, self.train_logits, self.train_labels, self.test_logits = name, train_logits, train_labels, test_logits
        self._fit_mask = fit_mask

    def fit_mask(self) -> np.ndarray:
        return self._fit_mask


def synthetic_arms(n_arms: int, *, n_train: int, n_test: int, n_members: int, n_classes: int, seed: int):
    rng = np.random.default_rng(seed)
    y_train, y_test = rng.integers(0, n_classes, n_train), rng.integers(0, n_classes, n_test)
    fit = rng.random((n_members, n_train)) < 0.54  # the measured distinct fit fraction of the paper's split
    arms = []
    for name, signal in list(ARM_SIGNALS.items())[:n_arms]:
        train = synthetic_logits(y_train, n_members, n_classes, signal, rng, boost=fit * 1.5)
        test = synthetic_logits(y_test, n_members, n_classes, signal, rng)
        arms.append(_SyntheticArm(name, train, y_train, test, fit))
    return arms


def tasks_of(arms: list[ArmLogits], mlp_rows: int | None) -> list[SuperLearnerTask]:
    config = AnalysisConfig(superlearner_max_rows=(("Weighted", None), ("MLP", mlp_rows)))
    return [t for i, a in enumerate(arms) for _, t in superlearner_tasks(a, config=config, arm_index=i)]


def fit_flops(task: SuperLearnerTask, n_fit: int, n_val: int) -> float:
    """Floating-point operations of the matrix products of one fit: per epoch a training pass
    (forward and backward: 6 per weight and row) over the fit rows and a forward pass (2 per weight
    and row) over the validation rows, then one forward pass over the test rows."""
    from analysis.core.superlearner import _build_model

    n_members, _, n_classes = task.test_logits.shape
    model = _build_model(task.config.kind, n_members * n_classes, n_classes)
    weights = sum(m.weight.numel() for m in model.modules() if type(m).__name__ == "Linear")
    return weights * (task.config.n_epochs * (6 * n_fit + 2 * n_val) + 2 * task.test_logits.shape[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arms", type=int, default=6, help="arms (4 fits each; default 6, as fmnist-mini)")
    ap.add_argument("--mlp-rows", type=int, default=4000, help="MLP training-row cap (default 4000, as fmnist-mini)")
    ap.add_argument("--cache", type=Path, default=None, help="a cache root to read real logits from")
    ap.add_argument("--preset", default="fmnist-mini", help="preset read from --cache (default fmnist-mini)")
    ap.add_argument("--workers", type=int, default=None, help="threads of the batched fits (default: usable CPUs)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    if args.cache is not None:
        data = load_preset(args.cache, args.preset)
        arms = [data.arms[(ds, a)] for ds in data.datasets for a in data.arm_names(ds)][: args.arms]
        source = f"cache {args.cache}/{args.preset}"
    else:
        arms = synthetic_arms(args.arms, n_train=60_000, n_test=10_000, n_members=10, n_classes=10, seed=args.seed)
        source = "synthetic logits, 60000 train / 10000 test rows, 10 members, 10 classes"
    tasks = tasks_of(arms, args.mlp_rows)
    print(f"machine: {os.cpu_count()} CPUs; workload: {len(arms)} arms x 4 fits = {len(tasks)} super-learner fits "
          f"({source}; MLP rows capped at {args.mlp_rows})")

    workers = args.workers or len(os.sched_getaffinity(0))
    timed = {}
    for label, kwargs in ((f"batched, {workers} threads", dict(workers=workers)),
                          ("batched, 1 thread", dict(workers=1)), ("sequential", dict(batched=False))):
        if label == "batched, 1 thread" and workers == 1:
            continue
        t, c = time.perf_counter(), time.process_time()
        results = fit_superlearners(tasks, **kwargs)
        timed[label] = (time.perf_counter() - t, time.process_time() - c, results)
        print(f"{label + ':':22s} MEASURED {len(tasks)} fits in {timed[label][0]:6.1f} s "
              f"(process CPU time {timed[label][1]:6.1f} s)", flush=True)
    flops = sum(fit_flops(t, r.n_fit_rows, r.n_val_rows) for t, r in zip(tasks, timed[f"batched, {workers} threads"][2]))
    peak = matmul_peak(workers, size=1024, repeats=20, products=1)
    print(f"floor: the fits' matrix products are {flops / 1e12:.2f} TFLOP; this machine's fp32 matmul peak on "
          f"{workers} threads is {peak / 1e9:.0f} GFLOP/s, so no schedule of the same arithmetic beats "
          f"{flops / peak:.1f} s (batched: {timed[f'batched, {workers} threads'][0] / (flops / peak):.2f}x the floor)")
    reference = timed["sequential"][2]
    same = all(np.array_equal(a.logits, b.logits) and a.history == b.history and a.best_epoch == b.best_epoch
               for label, (_, _, results) in timed.items() for a, b in zip(results, reference))
    print(f"results identical (test logits, validation history, best epoch of every fit): {same}")
    t_seq = timed["sequential"][0]
    t_batched = timed[f"batched, {workers} threads"][0]
    print(f"batched {t_batched:.1f} s, sequential {t_seq:.1f} s, speed-up {t_seq / t_batched:.2f}x"
          + (f" (1 thread: {t_seq / timed['batched, 1 thread'][0]:.2f}x)" if "batched, 1 thread" in timed else ""))
    if not same:
        sys.exit(1)

if __name__ == "__main__":
    main()
