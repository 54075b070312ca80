"""Many super-learners trained in lock-step: one batched matrix product per layer for all of them.

:func:`train_group` trains a group of planned fits (:func:`analysis.core.superlearner._plan`)
whose model kind, shapes, batch size, epochs and optimiser settings agree. Each model is built
by :func:`analysis.core.superlearner._build_model` under its own seed, exactly as when it is
fitted alone; its parameters and buffers are then stacked along a leading model axis ``G``, and
the forward pass walks the same module tree with batched operations:

- ``Linear``: ``baddbmm`` over the stacked weights (per model the same product and bias
  addition as ``F.linear``);
- ``BatchNorm1d``: the ``G`` models' features side by side as ``G · width`` channels of one
  ``F.batch_norm`` call: batch statistics and running statistics stay per model, since batch
  norm treats channels independently;
- ``Dropout``: each model draws its mask from its own generator, which continues the torch
  generator state its initialisation left behind — the masks a lone fit draws from the global
  generator;
- data order: each model's own ``torch.randperm`` generator; the loss is the sum over models of
  each model's mean cross-entropy, so each model's gradient is the one it gets alone;
- AdamW on the stacked tensors: its update is elementwise, hence per model.

Validation accuracy, best epoch (per model) and test prediction follow the lone fit's code.
"""

from __future__ import annotations

import functools

import numpy as np

from analysis.core.superlearner import (
    PREDICT_BATCH,
    _build_model,
    _Plan,
    _residual_class,
)

#: products with fewer multiply-adds per model than this take ATen's naive batched kernel,
#: whose sums are ordered differently from a lone ``mm``; those are computed model by model
_SMALL_PRODUCT = 400


def _bmm(a, b):
    """``torch.bmm``, but model by model where ATen's batched kernel would not use ``mm``'s sums."""
    import torch

    if a.shape[1] * a.shape[2] * b.shape[2] < _SMALL_PRODUCT:
        return torch.stack([a[g].mm(b[g]) for g in range(a.shape[0])])
    return torch.bmm(a, b)


@functools.cache
def _linear_function():
    """``F.linear`` for stacked models, (G, n, in) x (G, out, in) + (G, out): forward and backward
    products per model as autograd forms them for ``F.linear`` (``addmm`` with ``weight.t()``), so
    each model's outputs and gradients are the ones it gets alone."""
    import torch

    class BatchedLinear(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, bias):
            ctx.save_for_backward(x, weight)
            if x.shape[1] * x.shape[2] * weight.shape[1] < _SMALL_PRODUCT:
                return torch.stack([torch.addmm(bias[g], x[g], weight[g].t()) for g in range(x.shape[0])])
            return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

        @staticmethod
        def backward(ctx, grad):
            x, weight = ctx.saved_tensors
            grad_x = _bmm(grad, weight) if ctx.needs_input_grad[0] else None
            return grad_x, _bmm(grad.transpose(1, 2), x), grad.sum(1)

    return BatchedLinear


class _Stacked:
    """The stacked parameters and buffers of ``G`` models of one architecture, and its forward pass."""

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
            return _linear_function().apply(x, self.params[prefix + "weight"], self.params[prefix + "bias"])
        if isinstance(module, nn.BatchNorm1d):
            g, n, width = x.shape
            running_mean, running_var = self.buffers[prefix + "running_mean"], self.buffers[prefix + "running_var"]
            if self.training:
                self.buffers[prefix + "num_batches_tracked"].add_(1)
            y = F.batch_norm(
                x.transpose(0, 1).reshape(n, g * width), running_mean.view(-1), running_var.view(-1),
                self.params[prefix + "weight"].reshape(-1), self.params[prefix + "bias"].reshape(-1),
                self.training, module.momentum, module.eps,
            )
            return y.reshape(n, g, width).transpose(0, 1)
        if isinstance(module, nn.LeakyReLU):
            return F.leaky_relu(x, module.negative_slope)
        if isinstance(module, nn.Dropout):
            if not self.training or module.p == 0:
                return x
            keep = 1 - module.p
            noise = torch.stack([torch.empty(x.shape[1:]).bernoulli_(keep, generator=gen) for gen in self.generators])
            return x * noise.div_(keep)
        if isinstance(module, _residual_class()):
            return x + self._forward(module.body, prefix + "body.", x)
        raise TypeError(f"no batched form for {type(module).__name__}")

    def predict(self, x, batch: int = PREDICT_BATCH) -> np.ndarray:
        """(G, n, n_in) features -> (G, n, n_classes) float32 logits in eval mode (chunks as a lone fit)."""
        import torch

        self.training = False
        with torch.inference_mode():
            out = [self(x[:, i:i + batch]) for i in range(0, x.shape[1], batch)]
        return torch.cat(out, dim=1).numpy()

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
        config, first = plans[0].config, plans[0]
        models, dropout_gens, self.order_gens = [], [], []
        for p in plans:  # each model's draws, in the order of a lone fit
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(p.rng.integers(2**31)))
                models.append(_build_model(config.kind, first.n_in, first.n_classes))
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
        opt = torch.optim.AdamW(list(net.params.values()), lr=config.lr, weight_decay=config.weight_decay,
                                foreach=True)
        feats = [p.features() for p in plans]
        x_fit, y_fit, x_val, x_test = (torch.stack([f[j] for f in feats]) for j in (0, 1, 2, 4))
        y_val = [f[3] for f in feats]
        del feats
        n_fit, batch_size = x_fit.shape[1], plans[0].batch_size()
        # batches are gathered from the models' rows laid end to end (one index_select per step)
        x_flat, y_flat = x_fit.reshape(n_models * n_fit, -1), y_fit.reshape(-1)
        offsets = torch.arange(n_models)[:, None] * n_fit
        best_acc, best_epoch = [-1.0] * n_models, [0] * n_models
        history: list[list[float]] = [[] for _ in plans]
        best_state = net.state()
        for epoch in range(1, config.n_epochs + 1):
            net.training = True
            orders = torch.stack([torch.randperm(n_fit, generator=g) for g in self.order_gens]) + offsets
            for i in range(0, n_fit, batch_size):
                idx = orders[:, i:i + batch_size]
                if idx.shape[1] < 2 and config.kind == "MLP":
                    continue  # batch norm needs two rows
                flat = idx.reshape(-1)
                out = net(x_flat.index_select(0, flat).view(n_models, idx.shape[1], -1))
                losses = F.cross_entropy(out.reshape(-1, out.shape[2]), y_flat.index_select(0, flat), reduction="none")
                loss = losses.view(n_models, -1).mean(1).sum()  # each model's gradient: that of its own mean
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            preds = net.predict(x_val).argmax(2)
            for g in range(n_models):
                acc = float(np.mean(preds[g] == y_val[g]))
                history[g].append(acc)
                if acc > best_acc[g]:
                    best_acc[g], best_epoch[g] = acc, epoch
                    net.save_model(best_state, g)
        with torch.no_grad():
            for k, v in (*net.params.items(), *net.buffers.items()):
                v.copy_(best_state[k])
        test_out = net.predict(x_test).astype(np.float64)
        return [(best_acc[g], best_epoch[g], history[g], test_out[g]) for g in range(n_models)]


def train_group(plans: list[_Plan]) -> list[tuple[float, int, list[float], np.ndarray]]:
    """Train planned fits with equal ``group_key`` together; per fit ``(best_acc, best_epoch, history, test_logits)``."""
    return Group(plans).run()
