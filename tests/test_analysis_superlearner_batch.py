"""Batched super-learner fits give every fit the result of fitting it alone, bit for bit.

The oracle is :func:`analysis.core.superlearner.fit_superlearner` (one model, ``nn.Module``s,
``torch.optim.AdamW``); :func:`analysis.core.superlearner.fit_superlearners` trains fits of equal
shape in lock-step with stacked parameters, in parallel threads.
"""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import synthetic_logits

from analysis.core.superlearner import (
    PREVIOUS_RECIPE,
    SuperLearnerConfig,
    SuperLearnerTask,
    fit_superlearner,
)
from analysis.core.superlearner_batch import fit_superlearners

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_TRAIN, N_TEST, N_MEMBERS, N_CLASSES = 557, 150, 4, 4


def _arms(n_arms: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y_train, y_test = rng.integers(0, N_CLASSES, N_TRAIN), rng.integers(0, N_CLASSES, N_TEST)
    fit = rng.random((N_MEMBERS, N_TRAIN)) < 0.55
    for k in range(n_arms):
        train = synthetic_logits(y_train, N_MEMBERS, N_CLASSES, 1.0 + 0.2 * k, rng, boost=fit * 2.0)
        test = synthetic_logits(y_test, N_MEMBERS, N_CLASSES, 1.0 + 0.2 * k, rng)
        yield train, y_train, test, fit


def _tasks(n_arms: int = 3) -> list[SuperLearnerTask]:
    """Both kinds and variants per arm, on the authors' schedule (warm-up then cosine, set per
    epoch; no bias before batch norm); in-sample fits with batches of 50 end on a one-row batch
    (501 fit rows): skipped by the MLP (batch norm), and a product small enough for ATen's naive
    batched kernel in the Weighted fit; a capped MLP fit (default batch 1024, capped at its 270
    fit rows) shares its shape with the other arms'; an MLP fit on the previous recipe (constant lr,
    biased Linear layers, about 25 steps per epoch) checks the biased path."""
    tasks = []
    for a, (train, y, test, fit) in enumerate(_arms(n_arms)):
        for kind, epochs in (("Weighted", 4), ("MLP", 3)):
            for v, variant in enumerate(("in-sample", "out-of-bag")):
                cfg = SuperLearnerConfig(kind=kind, epochs=epochs, batch_size=50)
                tasks.append(SuperLearnerTask(train, y, test, cfg, seed=100 * a + 10 * v + len(kind), variant=variant,
                                              fit_mask=fit))
        capped = SuperLearnerConfig(kind="MLP", epochs=2, max_fit_rows=300)
        tasks.append(SuperLearnerTask(train, y, test, capped, seed=7 + a, variant="out-of-bag", fit_mask=fit))
        previous = SuperLearnerConfig(kind="MLP", epochs=2, **PREVIOUS_RECIPE)
        tasks.append(SuperLearnerTask(train, y, test, previous, seed=50 + a, variant="out-of-bag", fit_mask=fit))
    return tasks


def _assert_same(a, b) -> None:
    assert (a.kind, a.variant, a.n_fit_rows, a.n_val_rows) == (b.kind, b.variant, b.n_fit_rows, b.n_val_rows)
    assert a.history == b.history and a.best_epoch == b.best_epoch and a.val_accuracy == b.val_accuracy
    assert np.array_equal(a.logits, b.logits) and np.array_equal(a.probs, b.probs)
    assert np.array_equal(a.preds, b.preds)


@pytest.fixture(scope="module")
def fitted():
    tasks = _tasks()
    alone = [fit_superlearner(t.train_logits, t.train_labels, t.test_logits, config=t.config, seed=t.seed,
                              variant=t.variant, fit_mask=t.fit_mask) for t in tasks]
    return tasks, alone


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_batched_fits_equal_each_fit_alone_bit_for_bit(fitted, workers):
    tasks, alone = fitted
    batched = fit_superlearners(tasks, workers=workers)
    assert len(batched) == len(tasks)
    for a, b in zip(alone, batched):
        _assert_same(a, b)
    # the fits are not trivially equal to each other: independent seeds and data
    assert len({r.logits.tobytes() for r in batched}) == len(batched)


def test_unbatched_path_is_the_lone_fit(fitted):
    tasks, alone = fitted
    for a, b in zip(alone, fit_superlearners(tasks[:4], batched=False)):
        _assert_same(a, b)


def test_a_fit_does_not_depend_on_the_fits_batched_with_it(fitted):
    tasks, alone = fitted
    # capped MLP fits (one shape) alone, in pairs and all three; in-sample MLP fits of two arms;
    # previous-recipe MLP fits of two arms
    for subset in ([4], [10, 4], [4, 10, 16], [2, 8], [5, 11]):
        for i, r in zip(subset, fit_superlearners([tasks[i] for i in subset], workers=1)):
            _assert_same(alone[i], r)


def test_batched_fit_validates_inputs_like_the_lone_fit():
    train, y, test, _ = next(_arms(1))
    cfg = SuperLearnerConfig(kind="Weighted", epochs=1)
    with pytest.raises(ValueError, match="needs `fit_mask`"):
        fit_superlearners([SuperLearnerTask(train, y, test, cfg, seed=0, variant="out-of-bag")])
    with pytest.raises(ValueError, match="Expected `train_labels`"):
        fit_superlearners([SuperLearnerTask(train, y[:-1], test, cfg, seed=0)])
