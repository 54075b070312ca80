"""The super-learners train with the authors' recipe by default: the per-epoch learning rate of
pl_bolts' ``LinearWarmupCosineAnnealingLR`` (checked against a re-statement of its chainable form,
written here independently of the project's closed form), batches of 1024, no bias before batch
norm; and every remaining difference from the authors' code is tabled, in the README and on the
methods page."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from synthetic import synthetic_logits

from analysis.core.superlearner import (
    PREVIOUS_RECIPE,
    SuperLearnerConfig,
    SuperLearnerTask,
    _plan,
    fit_superlearner,
)
from analysis.core.superlearner_differences import SUPERLEARNER_DIFFERENCES, differences_markdown
from analysis.report.frames import superlearner_differences_frame

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _chainable_rates(base_lr, warmup, max_epochs, start, eta_min):
    """pl_bolts' LinearWarmupCosineAnnealingLR as a scheduler stepped once per epoch computes it:
    each epoch's rate from the previous one (its chainable ``get_lr``), not from a closed form."""
    lrs, lr = [], start
    for epoch in range(max_epochs):
        if epoch == 0:
            lr = start
        elif epoch < warmup:
            lr = lr + (base_lr - start) / (warmup - 1)
        elif epoch == warmup:
            lr = base_lr
        else:
            span = max_epochs - warmup
            ratio = (1 + math.cos(math.pi * (epoch - warmup) / span)) / (1 + math.cos(math.pi * (epoch - warmup - 1) / span))
            lr = ratio * (lr - eta_min) + eta_min
        lrs.append(lr)
    return lrs


@pytest.mark.parametrize(("kind", "epochs", "warmup"), [("Weighted", 10, 2), ("MLP", 20, 5)])
def test_default_schedule_is_the_authors_warmup_cosine_stepped_per_epoch(kind, epochs, warmup):
    cfg = SuperLearnerConfig(kind=kind)
    expected = _chainable_rates(3e-4, warmup, epochs, 1e-5, 1e-9)
    assert cfg.n_epochs == epochs
    np.testing.assert_allclose(cfg.learning_rates(), expected, rtol=1e-12, atol=0)
    assert cfg.learning_rates()[0] == 1e-5 and max(cfg.learning_rates()) == pytest.approx(3e-4, rel=1e-15)
    assert (cfg.lr, cfg.weight_decay, cfg.batch_size, cfg.val_fraction) == (3e-4, 0.0, 1024, 0.1)


def test_previous_recipe_stays_reachable_constant_rate_and_steps_per_epoch_batches():
    cfg = SuperLearnerConfig(kind="Weighted", **PREVIOUS_RECIPE)
    assert cfg.learning_rates() == (3e-4,) * 10
    y = np.zeros(20_000, dtype=int)
    plan = _plan(SuperLearnerTask(np.zeros((2, 20_000, 3)), y, np.zeros((2, 5, 3)), cfg, seed=0))
    assert plan.batch_size() == 18_000 // 100


def _data(n_train: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y, y_test = rng.integers(0, 4, n_train), rng.integers(0, 4, 60)
    return synthetic_logits(y, 3, 4, 1.0, rng), y, synthetic_logits(y_test, 3, 4, 1.0, rng)


@pytest.mark.parametrize(("n_train", "batch"), [(2_500, 1024), (500, 450)])
def test_default_batch_is_1024_capped_at_the_fit_rows(n_train, batch):
    train, y, test = _data(n_train)
    assert _plan(SuperLearnerTask(train, y, test, SuperLearnerConfig(), seed=0)).batch_size() == batch


def test_a_fit_trains_each_epoch_at_its_scheduled_rate_in_batches_of_1024(monkeypatch):
    seen: list[tuple[float, int]] = []
    rows: list[int] = []

    class Recording(torch.optim.AdamW):
        def step(self, closure=None):
            seen.append((self.param_groups[0]["lr"], rows[-1]))
            return super().step(closure)

    real_ce = torch.nn.functional.cross_entropy

    def ce(logits, target, *a, **k):
        rows.append(target.shape[0])
        return real_ce(logits, target, *a, **k)

    monkeypatch.setattr(torch.optim, "AdamW", Recording)
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", ce)
    train, y, test = _data(2_500)  # 2,250 fit rows: batches of 1024, 1024 and 202 per epoch
    cfg = SuperLearnerConfig(kind="Weighted", epochs=4)
    fit_superlearner(train, y, test, config=cfg, seed=3)
    lrs = cfg.learning_rates()
    assert seen == [(lrs[e], b) for e in range(4) for b in (1024, 1024, 202)]


def test_mlp_linear_layers_before_batch_norm_have_no_bias_and_the_output_layer_has_one():
    train, y, test = _data(300)
    for recipe, biased in (({}, False), (PREVIOUS_RECIPE, True)):
        model = _plan(SuperLearnerTask(train, y, test, SuperLearnerConfig(kind="MLP", **recipe), seed=0)).build_model()
        layers = [m for m in model.modules() if isinstance(m, (torch.nn.Linear, torch.nn.BatchNorm1d))]
        linears = [(m, nxt) for m, nxt in zip(layers, [*layers[1:], None]) if isinstance(m, torch.nn.Linear)]
        before_bn = [m for m, nxt in linears if isinstance(nxt, torch.nn.BatchNorm1d)]
        assert len(before_bn) == 6 and all((m.bias is not None) == biased for m in before_bn)
        assert linears[-1][1] is None and linears[-1][0].bias is not None  # the output layer
    weighted = _plan(SuperLearnerTask(train, y, test, SuperLearnerConfig(), seed=0)).build_model()
    assert isinstance(weighted, torch.nn.Linear) and weighted.bias is not None


def test_every_difference_from_the_authors_names_their_file_and_line_and_our_choice_and_its_effect():
    assert len(SUPERLEARNER_DIFFERENCES) >= 5
    aspects = [d.aspect for d in SUPERLEARNER_DIFFERENCES]
    assert len(set(aspects)) == len(aspects)
    for d in SUPERLEARNER_DIFFERENCES:
        assert all(str(v).strip() for v in (d.aspect, d.authors, d.ours, d.effect)), d
        assert re.search(r"dynamic_loss:[\w/]+\.py(:\d+)?", d.authors), d.aspect
    frame = superlearner_differences_frame()
    assert frame.columns.tolist() == ["aspect", "authors", "ours", "effect"]
    assert frame.values.tolist() == [[d.aspect, d.authors, d.ours, d.effect] for d in SUPERLEARNER_DIFFERENCES]


def test_the_readme_and_the_methods_page_show_the_differences_table():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert differences_markdown() in readme
    page = (ROOT / "reports" / "methods-audit.qmd").read_text(encoding="utf-8")
    cell = page[page.index("#| label: tbl-sl-differences"):]
    assert "frames.superlearner_differences_frame()" in cell[:cell.index("```")]
