"""Fusion of every arm of a preset: the static fusions and the learned super-learners, as the
records of :mod:`analysis.core.fusions` declare them.

- static fusions (``Average``, ``ProbAverage``, ``Vote``; :mod:`analysis.core.fusion`): the
  record's ``function``; its ``inputs`` decide the output's logits and confidence kind;
- learned fusions (``Weighted`` and ``MLP``: the published in-sample super-learners; ``Weighted-OOB``,
  ``MLP-OOB``: leak-free, out-of-bag; :mod:`analysis.core.superlearner`), fitted in one batched call
  (:mod:`analysis.core.superlearner_batch`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.core.config import S_SL, AnalysisConfig, sub_seed
from analysis.core.fit_store import FitStore
from analysis.core.fusions import SUPERLEARNER_FUSIONS, static_records
from analysis.core.reader import ArmLogits, PresetLogits
from analysis.core.superlearner import (
    SuperLearnerConfig,
    SuperLearnerResult,
    SuperLearnerTask,
)
from analysis.core.superlearner_batch import fit_superlearners


@dataclass
class FusionOutput:
    """Test-set output of one fusion of one arm: predictions, probability-like scores, logits
    (None for Vote) and the meaning of the confidence (``"max_prob"`` or ``"vote_fraction"``)."""

    preds: np.ndarray
    probs: np.ndarray
    logits: np.ndarray | None
    confidence_kind: str = "max_prob"


def static_fusions(arm: ArmLogits) -> dict[str, FusionOutput]:
    """Every static fusion of :data:`analysis.core.fusions.FUSIONS` (Average, ProbAverage, Vote, ...)
    of one arm on its test set."""
    out: dict[str, FusionOutput] = {}
    for f in static_records():
        preds, probs = f.function(arm.test_logits)
        out[f.name] = FusionOutput(preds, probs, f.output_logits(arm.test_logits, probs), f.confidence_kind)
    return out


def superlearner_tasks(arm: ArmLogits, *, config: AnalysisConfig, arm_index: int = 0, dataset_index: int = 0
                       ) -> list[tuple[str, SuperLearnerTask]]:
    """The learned fusions of one arm as ``(fusion name, task)``, in :data:`SUPERLEARNER_FUSIONS` order.

    Row caps: ``config.superlearner_max_rows`` (left to the preset, None, it caps nothing:
    :func:`fuse_preset` resolves it with :meth:`AnalysisConfig.for_preset` first).
    Each fit's seed is keyed by (dataset, arm, kind, variant), so it does not depend on which
    other fits run, or whether they run together.
    """
    caps, epochs = dict(config.superlearner_max_rows or ()), dict(config.superlearner_epochs)
    mask = arm.fit_mask()
    kinds, variants = ("Weighted", "MLP"), ("in-sample", "out-of-bag")
    tasks = []
    for name, kind, variant in SUPERLEARNER_FUSIONS:
        cfg = SuperLearnerConfig(kind=kind, batch_size=config.superlearner_batch_size, max_fit_rows=caps.get(kind),
                                 epochs=epochs.get(kind))
        seed = sub_seed(config.seed, S_SL, dataset_index, arm_index, kinds.index(kind), variants.index(variant))
        tasks.append((name, SuperLearnerTask(arm.train_logits, arm.train_labels, arm.test_logits, config=cfg,
                                             seed=seed, variant=variant, fit_mask=mask)))
    return tasks


def _superlearner_output(arm: ArmLogits, name: str, task: SuperLearnerTask, res: SuperLearnerResult
                         ) -> tuple[FusionOutput, dict]:
    test_acc = float(np.mean(res.preds == arm.test_labels))
    return FusionOutput(res.preds, res.probs, res.logits), {
        "dataset": arm.dataset, "arm": arm.arm, "fusion": name, "kind": res.kind, "variant": res.variant,
        "val_accuracy": res.val_accuracy, "test_accuracy": test_acc, "gap": res.val_accuracy - test_acc,
        "best_epoch": res.best_epoch, "epochs": task.config.n_epochs, "n_fit_rows": res.n_fit_rows,
        "n_val_rows": res.n_val_rows, "fit_seconds": res.fit_seconds,
    }


def fuse_preset(data: PresetLogits, *, config: AnalysisConfig, fit_store: FitStore | None = None
                ) -> tuple[dict, pd.DataFrame]:
    """Fusion outputs keyed ``(dataset, arm, fusion)`` and the super-learner gap table.

    The super-learners of the arms in ``config.superlearner_arms`` are fitted in one call of
    :func:`analysis.core.superlearner_batch.fit_superlearners` (fits of equal shape train together);
    each gets the result it would get alone. With a ``fit_store``, fits stored by an earlier
    analysis with the same inputs and code are read back instead (:mod:`analysis.core.fit_store`).
    """
    config = config.for_preset(data.preset)  # the preset's row caps unless the config sets them
    keys = [(ds, arm) for ds in data.datasets for arm in data.arm_names(ds)]
    tasks: list[tuple[tuple[str, str], str, SuperLearnerTask]] = []
    if config.superlearners:
        for ds, arm in keys:
            if config.superlearner_arms is not None and arm not in config.superlearner_arms:
                continue  # static fusions only (the related losses)
            a_i, d_i = data.arm_names(ds).index(arm), data.datasets.index(ds)
            tasks += [((ds, arm), name, t) for name, t in
                      superlearner_tasks(data.arms[(ds, arm)], config=config, arm_index=a_i, dataset_index=d_i)]
    todo = [t for _, _, t in tasks]
    results = fit_store.fit(todo) if fit_store is not None else fit_superlearners(todo)
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

