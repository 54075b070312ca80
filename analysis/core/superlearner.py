"""Learned fusion ("super-learners") over flattened member logits, trained with torch on the CPU.

Two models take the raw logits of all members, flattened to ``n_members · n_classes`` features:

- **Weighted** — one linear layer (features → classes).
- **MLP** — Linear→BatchNorm→LeakyReLU to 512, a residual block of two
  [Linear, BatchNorm, LeakyReLU, Dropout 0.5] at 512, Linear→BatchNorm→LeakyReLU to 256, the same
  block at 256, then Linear to the classes (6 hidden layers).

Training follows the authors' code (``dynamic_loss`` at commit ``b889790``, whose line numbers are
cited; the stored copies read, ``src/models.py`` at ``ea49764`` and ``scripts/ensemble_test.py`` at
``2da97a1``, hold the same statements): AdamW (torch defaults otherwise), maximum lr 3e-4, weight decay 0, batch
size 1024 (``dynamic_loss:scripts/ensemble_test.py:250``, ``--batch_size=1024 --lr=3e-4 --wd=0``),
10 (Weighted) / 20 (MLP) epochs (``get_epochs``), a per-epoch learning rate from pl_bolts'
``LinearWarmupCosineAnnealingLR`` with 2 warm-up epochs for 10 epochs or fewer, else 5,
``warmup_start_lr`` 1e-5, ``eta_min`` 1e-9, stepped once per epoch
(``dynamic_loss:src/models.py:233-246``; restated in :func:`epoch_learning_rates`, pl_bolts is not
a dependency), the Linear layers before each BatchNorm without bias (``BetterLinear``,
``MlpBlock``), and the epoch with the best validation accuracy kept (their ``ModelCheckpoint``
on ``val/acc``). Ours: the 10 % validation split, initialisation and batch order are seeded (the
authors' ``random_split`` is not), a batch size capped at the number of fit rows, and a last batch
of one row skipped by the MLP (batch norm needs two). Every remaining difference from the authors'
code, with its measured effect, is in
:data:`analysis.core.superlearner_differences.SUPERLEARNER_DIFFERENCES`.
The recipe this module used before (constant lr 3e-4, batch ``clip(n_fit // steps, 32, 4096)``,
biased Linear layers) stays reachable: ``SuperLearnerConfig(**PREVIOUS_RECIPE)``.

Two variants of the training features:

- ``"in-sample"`` (published): the members' predictions on the official training rows, including
  rows the members were fitted on. Those predictions are optimistic, so the super-learner learns to
  trust members more than it should, and its validation accuracy (on equally optimistic rows)
  overstates its test accuracy.
- ``"out-of-bag"`` (leak-free, ours): for each training row, a member's logits are used only if
  the member was *not* fitted on that row (per its ``fit_index``); the slots of members that were
  fitted on the row are filled with the mean logits of the row's out-of-bag members, and rows with
  no out-of-bag member are left out. Every feature is then an out-of-sample prediction, as at test
  time. We chose this over cross-fitting because cross-fitting would need base learners refitted
  per fold — not available from the cache — whereas the out-of-bag rows come with the paper's
  bootstrap split (each member misses about 45 % of the training rows). Its cost: imputed slots
  copy other members, so training features are less diverse than test features (conservative).

Validation-minus-test accuracy of the two variants measures the leak.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Kind = Literal["Weighted", "MLP"]
Variant = Literal["in-sample", "out-of-bag"]

DEFAULT_EPOCHS: dict[str, int] = {"Weighted": 10, "MLP": 20}
DEFAULT_STEPS_PER_EPOCH: dict[str, int] = {"Weighted": 100, "MLP": 25}
PREDICT_BATCH = 8192  # rows per forward pass when predicting (validation, test)
LR_SCHEDULES = ("warmup-cosine", "constant")

#: the recipe of this module before it followed the authors' schedule: ``SuperLearnerConfig(**PREVIOUS_RECIPE)``
PREVIOUS_RECIPE: dict = {"lr_schedule": "constant", "batch_size": None, "bias_before_norm": True}


def authors_warmup_epochs(epochs: int) -> int:
    """Warm-up epochs of the authors' schedule: 2 for 10 epochs or fewer, else 5
    (``dynamic_loss:src/models.py:233``).

    >>> authors_warmup_epochs(10), authors_warmup_epochs(20)
    (2, 5)
    """
    return 2 if epochs <= 10 else 5


def epoch_learning_rates(lr: float, epochs: int, *, warmup_epochs: int, warmup_start_lr: float,
                         lr_min: float) -> tuple[float, ...]:
    """The learning rate of each epoch (0-based) under a linear warm-up then a cosine decay,
    as pl_bolts' ``LinearWarmupCosineAnnealingLR`` stepped once per epoch gives it (its closed
    form, restated here):

    - epoch ``e < w`` (``w = warmup_epochs``): ``warmup_start_lr + e · (lr − warmup_start_lr) / (w − 1)``
      (``w = 1``: ``warmup_start_lr``);
    - epoch ``e ≥ w``: ``lr_min + (lr − lr_min) · (1 + cos(π (e − w) / (epochs − w))) / 2``.

    So the first epoch trains at ``warmup_start_lr``, epochs ``w − 1`` and ``w`` at ``lr``, and the
    last one above ``lr_min`` (the cosine reaches it only at epoch ``epochs``, never trained).

    >>> [f"{x:.3g}" for x in epoch_learning_rates(3e-4, 4, warmup_epochs=2, warmup_start_lr=1e-5, lr_min=0.0)]
    ['1e-05', '0.0003', '0.0003', '0.00015']
    """
    import math

    if epochs < 1:
        raise ValueError(f"Expected `epochs` >= 1, got {epochs}")
    if not 0 <= warmup_epochs < epochs:
        raise ValueError(f"Expected `warmup_epochs` in [0, {epochs}), got {warmup_epochs}")
    out = []
    for e in range(epochs):
        if e < warmup_epochs:
            out.append(warmup_start_lr + e * (lr - warmup_start_lr) / max(1, warmup_epochs - 1))
        else:
            cos = math.cos(math.pi * (e - warmup_epochs) / (epochs - warmup_epochs))
            out.append(lr_min + 0.5 * (lr - lr_min) * (1 + cos))
    return tuple(out)


@dataclass(frozen=True)
class SuperLearnerConfig:
    """Training knobs of a super-learner (defaults: the authors' recipe; see the module docstring).

    Attributes
    ----------
    kind : ``"Weighted"`` or ``"MLP"``.
    epochs : training epochs (default 10 for Weighted, 20 for MLP; authors' ``get_epochs``).
    lr : maximum learning rate of AdamW (authors: 3e-4).
    weight_decay : AdamW's (authors: 0).
    lr_schedule : ``"warmup-cosine"`` (authors': :func:`epoch_learning_rates`, set once per epoch)
        or ``"constant"`` (``lr`` throughout; this module's former recipe).
    warmup_epochs : warm-up epochs of ``"warmup-cosine"`` (None: the authors' 2 for ≤ 10 epochs, else 5).
    warmup_start_lr, lr_min : the schedule's first and floor learning rates (authors: 1e-5, 1e-9).
    batch_size : mini-batch size (authors: 1024), capped at the number of fit rows. ``None`` picks
        about ``steps_per_epoch`` steps per epoch, ``clip(n_fit_rows // steps_per_epoch, 32, 4096)``
        (this module's former rule, ours).
    steps_per_epoch : target optimiser steps per epoch when ``batch_size`` is None (default:
        100 for Weighted, 25 for MLP).
    bias_before_norm : give the MLP's Linear layers that feed a BatchNorm a bias (authors: no,
        ``bias=False``; the bias is cancelled by the batch mean in training anyway). The last
        Linear and the Weighted model keep theirs.
    val_fraction : share of the (used) training rows held out to choose the best epoch (authors: 0.1).
    max_fit_rows : fit on a seeded subsample of at most this many training rows (None = all).
    num_threads : torch intra-op threads during the fit (restored afterwards; None = leave as is).
        One thread is the default: on a shared 2-core machine, two spinning threads per process
        slow every process down.
    """

    kind: Kind = "Weighted"
    epochs: int | None = None
    lr: float = 3e-4
    weight_decay: float = 0.0
    lr_schedule: str = "warmup-cosine"
    warmup_epochs: int | None = None
    warmup_start_lr: float = 1e-5
    lr_min: float = 1e-9
    batch_size: int | None = 1024
    steps_per_epoch: int | None = None
    bias_before_norm: bool = False
    val_fraction: float = 0.1
    max_fit_rows: int | None = None
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        if self.kind not in DEFAULT_EPOCHS:
            raise ValueError(f"Expected `kind` in {sorted(DEFAULT_EPOCHS)}, got {self.kind!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"Expected `val_fraction` in (0, 1), got {self.val_fraction}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"Expected `lr_schedule` in {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"Expected `batch_size` None or >= 1, got {self.batch_size}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"Expected `epochs` None or >= 1, got {self.epochs}")
        self.learning_rates()  # checks warmup_epochs against the epochs

    @property
    def n_epochs(self) -> int:
        return self.epochs if self.epochs is not None else DEFAULT_EPOCHS[self.kind]

    def learning_rates(self) -> tuple[float, ...]:
        """The learning rate of each epoch (0-based), as the fit sets it at the epoch's start.

        >>> len(SuperLearnerConfig(kind="MLP").learning_rates())
        20
        """
        n = self.n_epochs
        if self.lr_schedule == "constant":
            return (self.lr,) * n
        # the authors' rule capped below the epochs (a short test fit); a value set is checked as is
        warmup = min(authors_warmup_epochs(n), n - 1) if self.warmup_epochs is None else self.warmup_epochs
        return epoch_learning_rates(self.lr, n, warmup_epochs=warmup,
                                    warmup_start_lr=self.warmup_start_lr, lr_min=self.lr_min)


@dataclass
class SuperLearnerResult:
    """A fitted super-learner's test predictions and its training record.

    ``val_accuracy`` is the best validation accuracy (at ``best_epoch``, 1-based); ``history`` the
    validation accuracy of each epoch; ``n_fit_rows`` / ``n_val_rows`` the rows trained / validated on;
    ``fit_seconds`` the wall time of the training (for fits trained together, their group's wall time
    divided by the number of fits in it).
    """

    kind: str
    variant: str
    preds: np.ndarray
    probs: np.ndarray
    logits: np.ndarray
    val_accuracy: float
    best_epoch: int
    n_fit_rows: int
    n_val_rows: int
    history: list[float] = field(default_factory=list)
    fit_seconds: float = float("nan")


def flatten_members(logits: np.ndarray) -> np.ndarray:
    """(n_members, n_samples, n_classes) → (n_samples, n_members · n_classes), member-major.

    >>> flatten_members(np.zeros((2, 3, 4))).shape
    (3, 8)
    """
    logits = np.asarray(logits)
    if logits.ndim != 3:
        raise ValueError(f"Expected `logits` of shape (n_members, n_samples, n_classes), got {logits.shape}")
    m, n, c = logits.shape
    return np.ascontiguousarray(logits.transpose(1, 0, 2).reshape(n, m * c), dtype=np.float32)


def out_of_bag_logits(logits: np.ndarray, fit_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training logits with in-sample slots replaced by the mean of the row's out-of-bag members.

    Parameters
    ----------
    logits : (n_members, n_samples, n_classes) training-set logits.
    fit_mask : bool (n_members, n_samples), True where the member was fitted on the row.

    Returns
    -------
    oob_logits : same shape as ``logits``.
    usable : bool (n_samples,), rows with at least one out-of-bag member.
    """
    logits = np.asarray(logits, dtype=np.float32)
    fit_mask = np.asarray(fit_mask, dtype=bool)
    if fit_mask.shape != logits.shape[:2]:
        raise ValueError(f"Expected `fit_mask` of shape {logits.shape[:2]}, got {fit_mask.shape}")
    oob = ~fit_mask
    n_oob = oob.sum(axis=0)
    usable = n_oob > 0
    mean_oob = np.einsum("mn,mnc->nc", oob.astype(np.float32), logits) / np.maximum(n_oob, 1)[:, None]
    out = np.where(fit_mask[:, :, None], mean_oob[None], logits)
    return out.astype(np.float32), usable


@functools.cache
def _residual_class():
    """The residual block of the MLP (a class built once, on first use: torch is imported lazily)."""
    import torch.nn as nn

    class Residual(nn.Module):
        def __init__(self, width: int, bias: bool = False) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Linear(width, width, bias=bias), nn.BatchNorm1d(width), nn.LeakyReLU(), nn.Dropout(0.5),
                nn.Linear(width, width, bias=bias), nn.BatchNorm1d(width), nn.LeakyReLU(), nn.Dropout(0.5),
            )

        def forward(self, x):
            return x + self.body(x)

    return Residual


def _build_model(kind: str, n_in: int, n_classes: int, *, bias_before_norm: bool = False):
    """The model of ``kind``; ``bias_before_norm`` gives the Linear layers that feed a BatchNorm a
    bias (the authors' have none: ``BetterLinear`` and ``MlpBlock`` in ``dynamic_loss:src/models.py``)."""
    import torch.nn as nn

    if kind == "Weighted":
        return nn.Linear(n_in, n_classes)
    residual, b = _residual_class(), bias_before_norm
    return nn.Sequential(
        nn.Linear(n_in, 512, bias=b), nn.BatchNorm1d(512), nn.LeakyReLU(), residual(512, b),
        nn.Linear(512, 256, bias=b), nn.BatchNorm1d(256), nn.LeakyReLU(), residual(256, b),
        nn.Linear(256, n_classes),
    )


def _predict_logits(model, x, batch: int = PREDICT_BATCH) -> np.ndarray:
    import torch

    model.eval()
    with torch.inference_mode():
        out = [model(x[i:i + batch]) for i in range(0, x.shape[0], batch)]
    return torch.cat(out).numpy()


@dataclass(frozen=True)
class SuperLearnerTask:
    """One super-learner fit: the inputs of :func:`fit_superlearner`, for
    :func:`analysis.core.superlearner_batch.fit_superlearners`."""

    train_logits: np.ndarray
    train_labels: np.ndarray
    test_logits: np.ndarray
    config: SuperLearnerConfig
    seed: int
    variant: Variant = "in-sample"
    fit_mask: np.ndarray | None = None


@dataclass
class _Plan:
    """A validated task with its rows drawn: features are materialised only when it is trained.

    ``rng`` is the task's generator after the row subsample and the validation split; training draws
    the initialisation seed and the batch-order seed from it, in that order.
    """

    config: SuperLearnerConfig
    variant: str
    train_logits: np.ndarray  # (n_members, n_train, n_classes), out-of-bag filled for that variant
    train_labels: np.ndarray
    test_logits: np.ndarray
    fit_rows: np.ndarray
    val_rows: np.ndarray
    rng: np.random.Generator

    @property
    def n_in(self) -> int:
        return self.train_logits.shape[0] * self.train_logits.shape[2]

    @property
    def n_classes(self) -> int:
        return self.train_logits.shape[2]

    def batch_size(self) -> int:
        """The configured batch size capped at the fit rows, or (None) about ``steps_per_epoch`` steps."""
        if self.config.batch_size is not None:
            return min(self.config.batch_size, int(self.fit_rows.size))
        steps = self.config.steps_per_epoch or DEFAULT_STEPS_PER_EPOCH[self.config.kind]
        return int(np.clip(self.fit_rows.size // steps, 32, 4096))

    def build_model(self):
        """This fit's model (draws its initialisation from torch's global generator)."""
        c = self.config
        return _build_model(c.kind, self.n_in, self.n_classes, bias_before_norm=c.bias_before_norm)

    def macs_per_row(self) -> int:
        """Multiply-adds of one forward pass of one row."""
        if self.config.kind == "Weighted":
            return self.n_in * self.n_classes
        return self.n_in * 512 + 2 * 512 * 512 + 512 * 256 + 2 * 256 * 256 + 256 * self.n_classes

    def cost(self) -> float:
        """Relative training cost of the fit (multiply-adds per row times rows and epochs)."""
        return float(self.macs_per_row()) * self.fit_rows.size * self.config.n_epochs

    def group_key(self) -> tuple:
        """Tasks with equal keys train in lock-step: same model, shapes, batches and optimiser."""
        c = self.config
        return (c.kind, c.learning_rates(), c.weight_decay, c.bias_before_norm, self.batch_size(), self.n_in,
                self.n_classes, self.fit_rows.size, self.val_rows.size, self.test_logits.shape[1])

    def features(self) -> tuple:
        """``(x_fit, y_fit, x_val, y_val, x_test)``: float32 tensors, int64 ``y_fit``, numpy ``y_val``."""
        import torch

        feats = flatten_members(self.train_logits)
        return (torch.from_numpy(feats[self.fit_rows]),
                torch.from_numpy(self.train_labels[self.fit_rows].astype(np.int64)),
                torch.from_numpy(feats[self.val_rows]), self.train_labels[self.val_rows],
                torch.from_numpy(flatten_members(self.test_logits)))

    def result(self, best_acc: float, best_epoch: int, history: list[float], test_out: np.ndarray, *,
               seconds: float = float("nan")) -> SuperLearnerResult:
        from analysis.core.metrics import softmax

        return SuperLearnerResult(
            kind=self.config.kind, variant=self.variant, preds=test_out.argmax(1), probs=softmax(test_out),
            logits=test_out, val_accuracy=best_acc, best_epoch=best_epoch, n_fit_rows=int(self.fit_rows.size),
            n_val_rows=int(self.val_rows.size), history=history, fit_seconds=seconds,
        )


def _plan(task: SuperLearnerTask) -> _Plan:
    """Validate a task, build its out-of-bag features if asked, draw its subsample and validation rows."""
    config, variant = task.config, task.variant
    train_logits = np.asarray(task.train_logits, dtype=np.float32)
    test_logits = np.asarray(task.test_logits, dtype=np.float32)
    train_labels = np.asarray(task.train_labels)
    if train_logits.ndim != 3 or test_logits.ndim != 3 or train_logits.shape[0] != test_logits.shape[0] \
            or train_logits.shape[2] != test_logits.shape[2]:
        raise ValueError(
            f"Expected `train_logits` and `test_logits` of shape (n_members, n, n_classes) with equal members and "
            f"classes, got {train_logits.shape} and {test_logits.shape}"
        )
    if train_labels.shape != (train_logits.shape[1],):
        raise ValueError(f"Expected `train_labels` of shape ({train_logits.shape[1]},), got {train_labels.shape}")
    if not (np.all(np.isfinite(train_logits)) and np.all(np.isfinite(test_logits))):
        raise ValueError("Expected finite logits; drop non-finite members first")
    rows = np.arange(train_logits.shape[1])
    if variant == "out-of-bag":
        if task.fit_mask is None:
            raise ValueError("variant='out-of-bag' needs `fit_mask` (n_members, n_train)")
        train_logits, usable = out_of_bag_logits(train_logits, task.fit_mask)
        rows = rows[usable]
    elif variant != "in-sample":
        raise ValueError(f"Expected `variant` to be 'in-sample' or 'out-of-bag', got {variant!r}")
    rng = np.random.default_rng(task.seed)
    if config.max_fit_rows is not None and rows.size > config.max_fit_rows:
        rows = np.sort(rng.choice(rows, size=config.max_fit_rows, replace=False))
    perm = rng.permutation(rows)
    n_val = max(1, int(round(config.val_fraction * perm.size)))
    return _Plan(config, variant, train_logits, train_labels, test_logits, fit_rows=perm[n_val:],
                 val_rows=perm[:n_val], rng=rng)


@contextlib.contextmanager
def _torch_threads(n: int | None):
    import torch

    prev = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def fit_superlearner(
    train_logits: np.ndarray, train_labels: np.ndarray, test_logits: np.ndarray, *,
    config: SuperLearnerConfig, seed: int, variant: Variant = "in-sample", fit_mask: np.ndarray | None = None,
) -> SuperLearnerResult:
    """Fit one super-learner on training-set member logits and predict the test set.

    This is the reference implementation, one model at a time;
    :func:`analysis.core.superlearner_batch.fit_superlearners` trains many at once and gives each
    the result this function gives it.

    Parameters
    ----------
    train_logits : (n_members, n_train, n_classes) raw logits on the official training rows.
    train_labels : (n_train,) int labels.
    test_logits : (n_members, n_test, n_classes) raw logits on the test rows.
    config : model kind and training knobs.
    seed : seeds the row subsample, the validation split, initialisation, dropout and batch order.
    variant : ``"in-sample"`` (published) or ``"out-of-bag"`` (leak-free; needs ``fit_mask``).
    fit_mask : bool (n_members, n_train), True where a member was fitted on the row.

    Returns
    -------
    SuperLearnerResult with test ``preds``, softmax ``probs`` and raw ``logits``.
    """
    plan = _plan(SuperLearnerTask(train_logits, train_labels, test_logits, config, seed, variant, fit_mask))
    return _fit_alone(plan)


def _fit_alone(plan: _Plan) -> SuperLearnerResult:
    t0 = time.perf_counter()
    with _torch_threads(plan.config.num_threads):
        out = _train(plan, *plan.features())
    return plan.result(*out, seconds=time.perf_counter() - t0)


def _train(plan: _Plan, x_fit, y_fit, x_val, y_val, x_test):
    """One model (the recipe of the config): returns ``(best_acc, best_epoch, history, test_logits)``."""
    import torch
    import torch.nn.functional as F

    config, rng = plan.config, plan.rng
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(2**31)))
        model = plan.build_model()
        lrs = config.learning_rates()
        opt = torch.optim.AdamW(model.parameters(), lr=lrs[0], weight_decay=config.weight_decay)
        batch_size = plan.batch_size()
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        best_acc, best_epoch, best_state, history = -1.0, 0, None, []
        for epoch in range(1, config.n_epochs + 1):
            for group in opt.param_groups:  # the epoch's rate, as a per-epoch scheduler sets it
                group["lr"] = lrs[epoch - 1]
            model.train()
            order = torch.randperm(x_fit.shape[0], generator=gen)
            for i in range(0, order.numel(), batch_size):
                idx = order[i:i + batch_size]
                if idx.numel() < 2 and config.kind == "MLP":
                    continue  # batch norm needs two rows
                loss = F.cross_entropy(model(x_fit[idx]), y_fit[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            acc = float(np.mean(_predict_logits(model, x_val).argmax(1) == y_val))
            history.append(acc)
            if acc > best_acc:
                best_acc, best_epoch, best_state = acc, epoch, copy.deepcopy(model.state_dict())
        model.load_state_dict(best_state)
        test_out = _predict_logits(model, x_test).astype(np.float64)
    return best_acc, best_epoch, history, test_out
