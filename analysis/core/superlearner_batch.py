"""Many super-learners trained in lock-step: one forward and backward pass per step for all of them.

:func:`fit_superlearners` fits many super-learners at once. A :class:`Group` trains planned fits
(:func:`analysis.core.superlearner._plan`) whose model kind, shapes, batch size, epochs and
optimiser settings agree. Each model is built by :func:`analysis.core.superlearner._build_model`
under its own seed, exactly as when it is fitted alone; its parameters and buffers are then
stacked along a leading model axis ``G``.
Activations are laid out ``(rows, G, width)`` — the models' features side by side in each row —
and the forward pass walks the same module tree with batched operations:

- ``Linear``: per model the product and bias addition of ``F.linear`` (``addmm``; ``mm`` for a
  Linear without bias, as the MLP's before each BatchNorm) on its slice of
  the side-by-side layout, copied to the layout a lone fit hands BLAS (MKL's sums depend on the
  leading dimension), so a fit's bits depend neither on the group's size nor on its slot;
- ``BatchNorm1d``: one ``F.batch_norm`` over ``G · width`` channels: batch statistics and
  running statistics stay per model, since batch norm treats channels independently;
- ``Dropout``: each model draws its mask from its own generator, which continues the torch
  generator state its initialisation left behind — the masks a lone fit draws from the global
  generator;
- data order: each model's own ``torch.randperm`` generator; the loss is the sum over models of
  each model's mean cross-entropy, so each model's gradient is the one it gets alone;
- AdamW on the stacked tensors: its update is elementwise, hence per model; the group shares
  its per-epoch learning rates (part of ``group_key``), set at each epoch's start as in a lone fit.

Validation accuracy, best epoch (per model) and test prediction follow the lone fit's code. Every
operation computes, per model, the floating-point operations of the lone fit in the same order
(products of the same shapes through the same BLAS routine), so the results are equal bit for bit
(``tests/test_analysis_superlearner_batch.py``).
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from collections.abc import Sequence

import numpy as np

from analysis.core.superlearner import (
    PREDICT_BATCH,
    SuperLearnerResult,
    SuperLearnerTask,
    _fit_alone,
    _Plan,
    _plan,
    _residual_class,
    _torch_threads,
)
from training.logs import get_logger

#: multiply-adds per model and step from which a group of fits is split across threads
_SPLIT_MACS_PER_STEP = 10_000_000


def _as_alone(m):
    """A model's operand in the layout a lone fit hands BLAS: its rows (or, for a transposed operand,
    its columns) contiguous in a block of their own. MKL's sums depend on the leading dimension, so
    a model's slice of side-by-side activations (rows ``G`` times as far apart) would give results
    that depend on the group's size."""
    if m.is_contiguous() or m.t().is_contiguous():
        return m
    return m.contiguous() if m.stride(-1) == 1 else m.t().contiguous().t()


def _bmm_into(out, a, b, bias=None) -> None:
    """``out[g] = (bias[g] +) a[g] @ b[g]`` for each model ``g`` (strided views allowed), model by
    model with ``mm``/``addmm`` on operands laid out as in a lone fit (:func:`_as_alone`), so that
    each model's sums are those it gets alone, whatever the group's size (a batched ``bmm`` would
    see other leading dimensions, and ATen's batch-of-one and naive small-batch kernels other sums)."""
    import torch

    for g in range(a.shape[0]):
        x, y = _as_alone(a[g]), _as_alone(b[g])
        out[g].copy_(torch.mm(x, y) if bias is None else torch.addmm(bias[g], x, y))


@functools.cache
def _linear_function():
    """``F.linear`` for stacked models on side-by-side activations, (n, G, in) with weights
    (G, out, in) and biases (G, out) or None -> (n, G, out): forward and backward products per model
    as autograd forms them for ``F.linear`` (``addmm`` with ``weight.t()``, ``mm`` without bias), so
    each model's outputs and gradients are the ones it gets alone."""
    import torch

    class BatchedLinear(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, bias):
            ctx.save_for_backward(x, weight)
            out = x.new_empty(x.shape[0], x.shape[1], weight.shape[1])
            _bmm_into(out.transpose(0, 1), x.transpose(0, 1), weight.transpose(1, 2), bias)
            return out

        @staticmethod
        def backward(ctx, grad):
            x, weight = ctx.saved_tensors
            grad = grad.contiguous()
            grad_x = None
            if ctx.needs_input_grad[0]:
                grad_x = x.new_empty(x.shape)
                _bmm_into(grad_x.transpose(0, 1), grad.transpose(0, 1), weight)
            grad_w = weight.new_empty(weight.shape)
            _bmm_into(grad_w, grad.transpose(0, 1).transpose(1, 2), x.transpose(0, 1))
            if not ctx.needs_input_grad[2]:
                return grad_x, grad_w, None
            # per model (rows, out) summed over rows, as autograd sums a lone bias gradient (a sum
            # over the side-by-side layout would reduce (rows, G · out) blocks, in another order)
            return grad_x, grad_w, grad.transpose(0, 1).contiguous().sum(1)

    return BatchedLinear


class _Stacked:
    """The stacked parameters and buffers of ``G`` models of one architecture, and its forward pass
    on side-by-side activations ``(n, G, width)``."""

    def __init__(self, template, models: list, dropout_generators: list) -> None:
        import torch

        self.template = template
        self.params = {
            name: torch.stack([dict(m.named_parameters())[name].detach() for m in models]).requires_grad_()
            for name, _ in template.named_parameters()
        }
        self.buffers = {name: torch.stack([dict(m.named_buffers())[name] for m in models])
                        for name, _ in template.named_buffers()}
        self.generators = dropout_generators
        self.training = True

    def __call__(self, x):
        return self._forward(self.template, "", x)

    def _forward(self, module, prefix: str, x):
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        if isinstance(module, nn.Sequential):
            for name, child in module.named_children():
                x = self._forward(child, f"{prefix}{name}.", x)
            return x
        if isinstance(module, nn.Linear):
            return _linear_function().apply(x, self.params[prefix + "weight"], self.params.get(prefix + "bias"))
        if isinstance(module, nn.BatchNorm1d):
            n, g, width = x.shape
            if self.training:
                self.buffers[prefix + "num_batches_tracked"].add_(1)
            y = F.batch_norm(
                x.reshape(n, g * width), self.buffers[prefix + "running_mean"].view(-1),
                self.buffers[prefix + "running_var"].view(-1), self.params[prefix + "weight"].reshape(-1),
                self.params[prefix + "bias"].reshape(-1), self.training, module.momentum, module.eps,
            )
            return y.view(n, g, width)
        if isinstance(module, nn.LeakyReLU):
            return F.leaky_relu(x, module.negative_slope)
        if isinstance(module, nn.Dropout):
            if not self.training or module.p == 0:
                return x
            keep = 1 - module.p
            noise = torch.empty(x.shape)
            for g, gen in enumerate(self.generators):  # each model's (n, width) mask, drawn as alone
                noise[:, g].bernoulli_(keep, generator=gen)
            return x * noise.div_(keep)
        if isinstance(module, _residual_class()):
            return x + self._forward(module.body, prefix + "body.", x)
        raise TypeError(f"no batched form for {type(module).__name__}")

    def predict(self, x, batch: int = PREDICT_BATCH) -> np.ndarray:
        """(n, G, n_in) features -> (n, G, n_classes) float32 logits in eval mode (chunks as a lone fit)."""
        import torch

        self.training = False
        with torch.inference_mode():
            out = [self(x[i:i + batch]) for i in range(0, x.shape[0], batch)]
        return torch.cat(out).numpy()

    def state(self) -> dict:
        return {k: v.detach().clone() for k, v in (*self.params.items(), *self.buffers.items())}

    def save_model(self, dst: dict, g: int) -> None:
        """Copy model ``g``'s parameters and buffers into ``dst`` (a :meth:`state`)."""
        for k, v in (*self.params.items(), *self.buffers.items()):
            dst[k][g] = v.detach()[g]


class Group:
    """Planned fits with equal ``group_key``, their models built and stacked (:meth:`run` trains them).

    Building draws each model's initialisation from torch's global generator, so groups are built
    one at a time; :meth:`run` touches only the group's own generators, so groups may run in
    parallel threads (with one torch thread each, every product is the one a lone fit computes).
    """

    def __init__(self, plans: list[_Plan]) -> None:
        import torch

        keys = {p.group_key() for p in plans}
        if len(keys) != 1:
            raise ValueError(f"Expected plans with one group key, got {len(keys)}")
        self.plans = plans
        models, dropout_gens, self.order_gens = [], [], []
        for p in plans:  # each model's draws, in the order of a lone fit
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(p.rng.integers(2**31)))
                models.append(p.build_model())
                gen = torch.Generator()
                gen.set_state(torch.get_rng_state())
                dropout_gens.append(gen)
            self.order_gens.append(torch.Generator().manual_seed(int(p.rng.integers(2**31))))
        self.net = _Stacked(models[0], models, dropout_gens)

    def run(self) -> list[tuple[float, int, list[float], np.ndarray]]:
        """Train; per fit ``(best_acc, best_epoch, history, test_logits)``."""
        import torch
        import torch.nn.functional as F

        plans, net = self.plans, self.net
        config, n_models = plans[0].config, len(plans)
        # foreach: the same elementwise operations as the default single-tensor AdamW (equal results)
        lrs = config.learning_rates()  # equal in the group (group_key)
        opt = torch.optim.AdamW(list(net.params.values()), lr=lrs[0], weight_decay=config.weight_decay,
                                foreach=True)
        feats = [p.features() for p in plans]
        x_fit, y_fit = (torch.stack([f[j] for f in feats]) for j in (0, 1))
        x_val, x_test = (torch.stack([f[j] for f in feats], dim=1) for j in (2, 4))  # (n, G, n_in)
        y_val = [f[3] for f in feats]
        del feats
        n_fit, batch_size = x_fit.shape[1], plans[0].batch_size()
        # batches are gathered row by row for all models from their rows laid end to end
        x_flat, y_flat = x_fit.reshape(n_models * n_fit, -1), y_fit.reshape(-1)
        offsets = torch.arange(n_models)[:, None] * n_fit
        best_acc, best_epoch = [-1.0] * n_models, [0] * n_models
        history: list[list[float]] = [[] for _ in plans]
        best_state = net.state()
        for epoch in range(1, config.n_epochs + 1):
            for group in opt.param_groups:
                group["lr"] = lrs[epoch - 1]
            net.training = True
            orders = torch.stack([torch.randperm(n_fit, generator=g) for g in self.order_gens]) + offsets
            for i in range(0, n_fit, batch_size):
                idx = orders[:, i:i + batch_size]
                if idx.shape[1] < 2 and config.kind == "MLP":
                    continue  # batch norm needs two rows
                flat = idx.t().reshape(-1)  # row-major over (batch row, model)
                out = net(x_flat.index_select(0, flat).view(idx.shape[1], n_models, -1))
                losses = F.cross_entropy(out.reshape(-1, out.shape[2]), y_flat.index_select(0, flat), reduction="none")
                loss = losses.view(-1, n_models).mean(0).sum()  # each model's gradient: that of its own mean
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            preds = net.predict(x_val).argmax(2)
            for g in range(n_models):
                acc = float(np.mean(preds[:, g] == y_val[g]))
                history[g].append(acc)
                if acc > best_acc[g]:
                    best_acc[g], best_epoch[g] = acc, epoch
                    net.save_model(best_state, g)
        with torch.no_grad():
            for k, v in (*net.params.items(), *net.buffers.items()):
                v.copy_(best_state[k])
        test_out = net.predict(x_test).astype(np.float64)
        return [(best_acc[g], best_epoch[g], history[g], np.ascontiguousarray(test_out[:, g]))
                for g in range(n_models)]


def train_group(plans: list[_Plan]) -> list[tuple[float, int, list[float], np.ndarray]]:
    """Train planned fits with equal ``group_key`` together; per fit ``(best_acc, best_epoch, history, test_logits)``."""
    return Group(plans).run()


def fit_superlearners(tasks: Sequence[SuperLearnerTask], *, batched: bool = True, workers: int | None = None
                      ) -> list[SuperLearnerResult]:
    """Fit many super-learners; results in the order of ``tasks``.

    With ``batched`` (the default), tasks whose model, shapes and optimiser settings agree (see
    ``_Plan.group_key``) train together in a :class:`Group`: their parameters are stacked and each
    step runs one forward and backward pass for all of them.
    The models stay independent (own initialisation, data order, batch-norm statistics, dropout
    masks, best epoch), and each gets the result :func:`fit_superlearner` gives it alone (tested).
    Groups with large products (the MLP's) are split into ``workers`` parts (default: the CPUs this
    process may use); parts train in parallel threads, each running torch with the first task's
    ``config.num_threads`` threads (default 1), so the results do not depend on ``workers``.
    ``batched=False`` fits the tasks one by one with :func:`fit_superlearner`'s code.
    """
    plans = [_plan(t) for t in tasks]
    if not batched:
        return [_fit_alone(p) for p in plans]
    from concurrent.futures import ThreadPoolExecutor

    workers = workers or _usable_cpus()
    by_key: dict[tuple, list[int]] = {}
    for i, p in enumerate(plans):
        by_key.setdefault(p.group_key(), []).append(i)
    parts = []
    for idx in by_key.values():
        # a group is split across threads only when its products are large enough that each
        # thread computes more than it waits for the interpreter (not worth it for Weighted fits)
        p = plans[idx[0]]
        n = min(workers, len(idx)) if p.macs_per_row() * p.batch_size() >= _SPLIT_MACS_PER_STEP else 1
        parts += [idx[j::n] for j in range(n)]
    parts.sort(key=lambda idx: -len(idx) * plans[idx[0]].cost())  # longest first
    results: list[SuperLearnerResult | None] = [None] * len(plans)
    done, log = itertools.count(1), get_logger("analyze")

    def run(idx: list[int], group) -> None:
        t0 = time.perf_counter()
        outs = group.run()
        seconds = (time.perf_counter() - t0) / len(idx)
        log.info(f"super-learners: batch {next(done)} of {len(parts)} done ({len(idx)} "
                 f"{plans[idx[0]].config.kind} fits, {seconds * len(idx):.1f} s)")
        for i, out in zip(idx, outs):
            results[i] = plans[i].result(*out, seconds=seconds)

    with _torch_threads(plans[0].config.num_threads if plans else None), ThreadPoolExecutor(workers) as pool:
        # groups are built here, one after another (initialisation uses torch's global generator)
        futures = [pool.submit(run, idx, Group([plans[i] for i in idx])) for idx in parts]
        for f in futures:
            f.result()
    return results  # type: ignore[return-value]


def _usable_cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
