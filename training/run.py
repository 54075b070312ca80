"""Train one group of runs (members of one arm on one dataset) and write each to the cache.

A group holds one run (the paper's WideResNet, one GPU per run) or several members of the same
arm trained at once (small batch-norm-free models: parameters stacked with
``torch.func.stack_module_state`` and evaluated under ``vmap``). Members of a group stay
independent: each has its own initialisation seed, its own split (``fit_index``), its own batch
order and augmentation draws, its own loss object; the summed loss has per-member gradients.

Schedule: AdamW (weight decay from the preset), learning rate linear from ``lr_start`` to the
arm's lr over ``warmup_epochs``, then cosine to ``lr_min``. An "epoch" is
``ceil(n_fit / batch_size)`` steps with ``n_fit`` the nominal fit size of the preset; each member
draws its batches from consecutive random permutations of its own ``fit_index``.

After training: raw logits on the full official training set and the test set, written with
:func:`training.cache_format.write_run`.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from training import cache_format
from training.datasets import (
    AUGMENTATIONS,
    ImageData,
    PaperAugment,
    batch_flip,
    load_dataset,
    resize_images,
)
from training.grid import RunSpec
from training.losses import SuperLoss, get_loss
from training.models import MLP, build_model
from training.presets import Preset
from training.provenance import versions
from training.slurm import task_record
from training.splits import Split, member_split


# ------------------------------------------------------------------------------------ schedule
def lr_at(step: int, *, total_steps: int, warmup_steps: int, lr: float, lr_start: float, lr_min: float) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up from ``lr_start``, then cosine to ``lr_min``.

    >>> lr_at(0, total_steps=10, warmup_steps=2, lr=0.1, lr_start=1e-5, lr_min=1e-9)
    1e-05
    >>> lr_at(2, total_steps=10, warmup_steps=2, lr=0.1, lr_start=1e-5, lr_min=1e-9)
    0.1
    """
    if step < warmup_steps:
        return lr_start + (lr - lr_start) * step / warmup_steps
    span = max(1, total_steps - 1 - warmup_steps)
    t = min(1.0, (step - warmup_steps) / span)
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * t))


def steps_per_epoch(preset: Preset, n_train: int) -> int:
    """Steps of one nominal epoch: the nominal fit size of a member over the batch size."""
    n_fit = round(preset.fit_fraction * n_train * (preset.k - 1) / preset.k)
    return max(1, math.ceil(n_fit / preset.batch_size))


def index_stream(fit_index: np.ndarray, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless batches of ``fit_index`` rows from consecutive random permutations."""
    idx = torch.as_tensor(fit_index, dtype=torch.long)
    buf = idx[torch.randperm(idx.numel(), generator=generator)]
    while True:
        while buf.numel() < batch_size:
            buf = torch.cat([buf, idx[torch.randperm(idx.numel(), generator=generator)]])
        yield buf[:batch_size]
        buf = buf[batch_size:]


# --------------------------------------------------------------------------------- environment
@contextlib.contextmanager
def _compute_mode(device: torch.device, cpu_threads: int = 0) -> Iterator[None]:
    """Deterministic algorithms (and ``cpu_threads`` threads if > 0) on CPU; cudnn.benchmark on
    CUDA. Restores the previous settings."""
    det, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    bench = torch.backends.cudnn.benchmark
    threads = torch.get_num_threads()
    try:
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        else:
            torch.use_deterministic_algorithms(True)
            if cpu_threads > 0:
                torch.set_num_threads(cpu_threads)
        yield
    finally:
        torch.use_deterministic_algorithms(det, warn_only=warn)
        torch.backends.cudnn.benchmark = bench
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ------------------------------------------------------------------------------------ training
class _Group:
    """The members of a group as one callable ``forward(x) -> logits``.

    ``x`` is (G, B, C, H, W) (each member its own batch) or (B, C, H, W) (the same batch for all);
    the output is (G, B, num_classes).

    A batchable model (``vmap=True``) always goes through ``vmap``, even alone, except an MLP,
    whose layers are one batched product each (:class:`_StackedLinear`; about 30 % less time per
    step on a CPU, ``benchmarks/train_throughput.py``). Its parameters are stacked (G, ...) leaves
    for the forward and backward passes, while the optimiser gets one leaf per member and
    parameter, a view sharing the stacked storage (``params``), with the member's
    slice of the gradient (:meth:`share_grads`). CPU kernels vectorise a tensor from its first
    element, so an element's arithmetic (vector lanes or scalar tail) depends on its position in
    the tensor: updating the stacked tensors as a whole would make a member's bits depend on the
    group size and its slot. Updated one member at a time, a member's result is bit-identical in
    any group, alone, or resumed.
    """

    def __init__(self, models: list[torch.nn.Module], device: torch.device, channels_last: bool,
                 vmap: bool | None = None, stacked: bool = True):
        self.n = len(models)
        self.channels_last = channels_last
        self.vmap = self.n > 1 if vmap is None else vmap
        self.linears: list[tuple[str, str]] | None = None
        if self.n > 1 and not self.vmap:
            raise ValueError("A group of several members trains under vmap")
        if not self.vmap:
            self.model = models[0].to(device)
            if channels_last:
                self.model = self.model.to(memory_format=torch.channels_last)
            self.params = list(self.model.parameters())
        else:
            from torch.func import functional_call, stack_module_state

            params, buffers = stack_module_state(models)
            self.stacked = {k: v.to(device).detach().requires_grad_() for k, v in params.items()}
            self.buffers = {k: v.to(device) for k, v in buffers.items()}
            self.member_params = [[v.detach()[g].requires_grad_() for v in self.stacked.values()]
                                  for g in range(self.n)]
            base = models[0].to("meta")
            # an MLP's layers go through one batched product each (:class:`_StackedLinear`) unless
            # ``stacked=False`` (the generic vmap path, for comparison)
            if stacked and isinstance(base, MLP):
                self.linears = [(f"{n}.weight", f"{n}.bias") for n, m in base.named_modules()
                                if isinstance(m, torch.nn.Linear)]

            def f(p, b, x):
                return functional_call(base, (p, b), (x,))

            self._each = torch.vmap(f, in_dims=(0, 0, 0))
            self._shared = torch.vmap(f, in_dims=(0, 0, None))
            self.params = [p for ps in self.member_params for p in ps]

    def zero_grad(self) -> None:
        if self.vmap:
            for v in self.stacked.values():
                v.grad = None

    def share_grads(self) -> None:
        """Give each member's optimiser leaf its slice of the stacked gradient (a view, no copy)."""
        if self.vmap:
            for g, ps in enumerate(self.member_params):
                for p, v in zip(ps, self.stacked.values()):
                    p.grad = None if v.grad is None else v.grad[g]

    def train(self, mode: bool) -> None:
        if not self.vmap:
            self.model.train(mode)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.vmap:
            x = x[0] if x.ndim == 5 else x
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.model(x)[None]
        if self.linears is not None:
            h = x.flatten(2) if x.ndim == 5 else x.flatten(1).expand(self.n, -1, -1)
            for i, (w, b) in enumerate(self.linears):
                h = _StackedLinear.apply(h, self.stacked[w], self.stacked[b])
                if i + 1 < len(self.linears):
                    h = torch.relu(h)
            return h
        if x.ndim == 5:
            return self._each(self.stacked, self.buffers, x)
        return self._shared(self.stacked, self.buffers, x)


class _StackedLinear(torch.autograd.Function):
    """``F.linear`` of each member on its own rows: x (G, B, in), weight (G, out, in) and bias
    (G, out) -> (G, B, out), one ``baddbmm``.

    The backward pass forms the weight gradient as ``grad^T @ x``, already in the (G, out, in)
    layout of the stacked leaf (autograd would otherwise transpose-copy it), and skips the input
    gradient of the first layer (its input is data). Each member's products are computed as when
    it is alone (same shapes, one matrix of the batch each), so its bits do not depend on its group.
    Under autocast (bf16 on CUDA) the forward product runs in the autocast dtype; the backward
    products, which run outside autocast, take the gradient's dtype, and autograd returns each
    parameter's gradient in the parameter's dtype.
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):
        x, weight = (t.to(grad.dtype) for t in ctx.saved_tensors)
        grad_x = torch.bmm(grad, weight) if ctx.needs_input_grad[0] else None
        return grad_x, torch.bmm(grad.transpose(1, 2), x), grad.sum(1)


class _AugmentedRows(torch.utils.data.Dataset):
    """Rows of a uint8 image tensor through the paper's per-sample augmentation (DataLoader use)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels, self.aug = images, labels, PaperAugment()

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        return self.aug(self.images[i]), self.labels[i]


def _resized(x_uint8: torch.Tensor, resize: int | None) -> torch.Tensor:
    """``x_uint8`` resized to ``resize`` pixels (:func:`training.datasets.resize_images`), or as it is."""
    return x_uint8 if resize is None else resize_images(x_uint8, resize)


def _normalise(x_uint8: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x_uint8.float() / 255.0 - mean) / std


def train_group(
    preset: Preset,
    specs: list[RunSpec],
    *,
    cache_root: str | os.PathLike,
    data: ImageData | None = None,
    data_root: str | os.PathLike = "data/raw",
    download: bool = False,
    device: torch.device | str | None = None,
    progress: bool = True,
    submitted: dict | None = None,
) -> list[Path]:
    """Train the runs of one group (same dataset and arm) and write one cache entry per run.

    Parameters
    ----------
    preset : the preset the runs belong to.
    specs : runs of one (dataset, arm); several only for batchable models.
    cache_root : root of the cache (``<root>/<preset>/<dataset>/<arm>/member-<k>/``).
    data : the loaded dataset (loaded from ``data_root`` when None).
    device : "cuda", "cpu" or None (CUDA when available).
    submitted : what a submitting ``dynloss train`` passed to its slurm task
        (:func:`training.slurm.submitter`): its command line is recorded as ``argv``.

    Returns
    -------
    Paths of the written ``run.json`` files, in the order of ``specs``.
    """
    if not specs:
        return []
    ds, arm = specs[0].dataset, specs[0].arm
    if any(s.dataset != ds or s.arm != arm or s.preset != preset.name for s in specs):
        raise ValueError(f"Expected one (preset, dataset, arm) per group, got {[s.key for s in specs]}")
    if preset.augmentation not in AUGMENTATIONS:
        raise ValueError(f"Expected preset `augmentation` in {AUGMENTATIONS}, got {preset.augmentation!r}")
    if len(specs) > 1 and not preset.model.batchable:
        raise ValueError(f"Model kind {preset.model.kind!r} trains one run per group, got {len(specs)}")
    device = torch.device(device) if device is not None else default_device()
    data = data if data is not None and data.name == ds else load_dataset(ds, data_root, download=download)
    t0 = time.perf_counter()
    rng_devices = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with _compute_mode(device, preset.cpu_threads), torch.random.fork_rng(devices=rng_devices):
        # the global generator (dropout) starts from the run's seed, whatever ran before in this process
        torch.manual_seed(specs[0].seed + 4)
        result = _train(preset, specs, data, device, progress)
        threads = torch.get_num_threads()
    t_all = time.perf_counter() - t0
    paths = []
    for g, s in enumerate(specs):
        paths.append(_write(preset, s, result, g, data, device, cache_root, t_all, threads, submitted))
    return paths


def _train(preset: Preset, specs: list[RunSpec], data: ImageData, device: torch.device, progress: bool) -> dict:
    from tqdm.auto import tqdm

    cuda = device.type == "cuda"
    G = len(specs)
    arm = specs[0].arm
    n_train = data.train_labels.size
    splits: list[Split] = [
        member_split(data.train_labels, k=preset.k, member=s.member, partition_seed=s.partition_seed,
                     bootstrap_seed=s.bootstrap_seed, fit_fraction=preset.fit_fraction)
        for s in specs
    ]
    image_size = data.image_size if preset.resize is None else (preset.resize, preset.resize)
    models = []
    for s in specs:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s.seed)
            models.append(build_model(preset.model, in_channels=data.in_channels, image_size=image_size,
                                      num_classes=data.num_classes))
    group = _Group(models, device, channels_last=cuda, vmap=preset.model.batchable)
    opt = torch.optim.AdamW(group.params, lr=preset.lr_start, weight_decay=preset.weight_decay, fused=True)
    losses = [get_loss(arm.loss, **arm.loss_kwargs()) for _ in specs]
    # losses whose terms depend on each sample alone are evaluated once on all members' samples
    # (per-sample terms, mean per member); not SuperLoss with a moving threshold (per-member state
    # from its batch means) nor derivative manipulation (weights normalised over the batch, which
    # would couple the members). SuperLoss with a fixed threshold, as the superloss arm, is per sample.
    batch_coupled = (isinstance(losses[0], SuperLoss) and losses[0].ema) or arm.loss == "dm"
    shared_loss = None if batch_coupled else get_loss(arm.loss, reduction="none", **arm.loss_kwargs())
    for fn in (*losses, shared_loss):
        if isinstance(fn, torch.nn.Module):
            fn.to(device)

    mean = torch.tensor(data.mean, device=device).view(-1, 1, 1)
    std = torch.tensor(data.std, device=device).view(-1, 1, 1)
    train_u8 = torch.from_numpy(data.train_images)
    train_y = torch.from_numpy(data.train_labels).to(device)
    spe = steps_per_epoch(preset, n_train)
    total = spe * preset.epochs
    warm = round(preset.warmup_epochs * spe)
    gens = [torch.Generator().manual_seed(s.seed) for s in specs]
    streams = [index_stream(sp.fit_index, preset.batch_size, gen) for sp, gen in zip(splits, gens)]
    flip_gens = [torch.Generator(device=device).manual_seed(s.seed + 1) for s in specs]

    if preset.augmentation == "paper":
        if G != 1:
            raise ValueError("The paper's per-sample augmentation trains one run per group")
        batches = [next(streams[0]) for _ in range(total)]
        loader_gen = torch.Generator().manual_seed(specs[0].seed + 2)
        loader = torch.utils.data.DataLoader(
            _AugmentedRows(train_u8, torch.from_numpy(data.train_labels)), batch_sampler=batches,
            num_workers=preset.loader_workers, generator=loader_gen, pin_memory=cuda,
            persistent_workers=False, prefetch_factor=4 if preset.loader_workers else None,
        )

        def batch_iter():
            with torch.random.fork_rng(devices=[]):  # workers-free loading draws from the global RNG
                torch.manual_seed(specs[0].seed + 3)
                for xb, yb in loader:
                    xb = _normalise(_resized(xb.to(device, non_blocking=True), preset.resize), mean, std)
                    yield xb[None], yb.to(device, non_blocking=True)[None]
    else:
        # at the native size the whole training set is normalised once; resized, each batch is
        # gathered as uint8, flipped, resized (as the authors do: after augmentation) and normalised
        train_x = _normalise(train_u8.to(device), mean, std) if preset.resize is None else train_u8.to(device)

        def batch_iter():
            for _ in range(total):
                idx = torch.stack([next(st) for st in streams]).to(device)  # (G, B)
                xb = train_x.index_select(0, idx.flatten()).view(*idx.shape, *train_x.shape[1:])
                if preset.augmentation == "flip":
                    xb = torch.stack([batch_flip(xb[g], fg) for g, fg in enumerate(flip_gens)])
                if preset.resize is not None:
                    xb = _normalise(resize_images(xb, preset.resize), mean, std)
                yield xb, train_y[idx]

    diverged = [False] * G
    loss_sum = torch.zeros(G, dtype=torch.float64)
    correct = torch.zeros(G, dtype=torch.float64)
    seen = 0
    epoch_losses: list[list[float]] = []
    group.train(True)
    bar = tqdm(total=preset.epochs, desc=f"{specs[0].dataset}/{arm.name} ×{G}", unit="epoch", leave=False,
               disable=not progress)
    t_train = time.perf_counter()
    for step, (xb, yb) in enumerate(batch_iter()):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, total_steps=total, warmup_steps=warm, lr=arm.lr, lr_start=preset.lr_start,
                             lr_min=preset.lr_min)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            out = group(xb)
        out = out.float()
        finite = torch.isfinite(out).flatten(1).all(1).tolist()
        if shared_loss is not None and all(finite):
            per_member = shared_loss(out.flatten(0, 1), yb.flatten()).view(G, -1).mean(1)
        else:
            per_member = []
            for g in range(G):
                if not finite[g]:
                    diverged[g] = True
                    per_member.append(out.new_zeros(()))  # a diverged member no longer learns
                else:
                    per_member.append(losses[g](out[g], yb[g]))
            per_member = torch.stack(per_member)
        opt.zero_grad(set_to_none=True)
        group.zero_grad()
        if not all(diverged):
            per_member.sum().backward()
            group.share_grads()
            opt.step()
        loss_sum += per_member.detach().double().cpu()
        with torch.no_grad():
            correct += (out.argmax(-1) == yb).sum(1).double().cpu()
        seen += yb.shape[1]
        if (step + 1) % spe == 0:
            epoch_losses.append((loss_sum / spe).tolist())
            bar.set_postfix(loss=f"{float(loss_sum.mean() / spe):.3f}", acc=f"{float(correct.mean() / seen):.3f}")
            if step + 1 < total:
                loss_sum.zero_()
                correct.zero_()
                seen = 0
            bar.update(1)
    bar.close()
    t_train = time.perf_counter() - t_train

    t_inf = time.perf_counter()
    group.train(False)
    train_logits = _infer(group, data.train_images, mean, std, device, preset.eval_batch_size, preset.resize)
    test_logits = _infer(group, data.test_images, mean, std, device, preset.eval_batch_size, preset.resize)
    t_inf = time.perf_counter() - t_inf
    return {
        "splits": splits, "train_logits": train_logits, "test_logits": test_logits, "diverged": diverged,
        "last_epoch_loss": (loss_sum / spe).tolist(), "last_epoch_fit_accuracy": (correct / max(seen, 1)).tolist(),
        "epoch_losses": epoch_losses, "train_s": t_train, "infer_s": t_inf, "steps": total, "steps_per_epoch": spe,
    }


@torch.no_grad()
def _infer(group: _Group, images: np.ndarray, mean, std, device, batch_size: int,
           resize: int | None = None) -> np.ndarray:
    """Logits (G, N, C) float32 of every member on ``images`` (no augmentation; resized to
    ``resize`` pixels as in training when not None)."""
    outs = []
    for i in range(0, images.shape[0], batch_size):
        xb = _normalise(_resized(torch.from_numpy(images[i : i + batch_size]).to(device), resize), mean, std)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            outs.append(group(xb).float().cpu())
    return torch.cat(outs, dim=1).numpy()


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean()) if labels.size else float("nan")


def _write(preset: Preset, spec: RunSpec, r: dict, g: int, data: ImageData, device: torch.device,
           cache_root, t_all: float, threads: int, submitted: dict | None) -> Path:
    sp = r["splits"][g]
    train_logits = np.ascontiguousarray(r["train_logits"][g], dtype=np.float32)
    test_logits = np.ascontiguousarray(r["test_logits"][g], dtype=np.float32)
    arrays = {
        "train_logits": train_logits, "test_logits": test_logits,
        "train_labels": data.train_labels.astype(np.int64), "test_labels": data.test_labels.astype(np.int64),
        "train_ids": np.arange(data.train_labels.size, dtype=np.int64),
        "test_ids": np.arange(data.test_labels.size, dtype=np.int64),
        "fit_index": sp.fit_index, "val_index": sp.val_index,
    }
    fit_u = np.unique(sp.fit_index)
    n = len(r["splits"])
    meta: dict[str, Any] = {
        "spec": spec.to_dict(),
        "spec_hash": spec.spec_hash(),
        "seed": spec.seed,
        "preset": preset.name, "dataset": spec.dataset, "arm": spec.arm.name, "member": spec.member,
        "num_classes": data.num_classes,
        "versions": versions(),
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "host": platform.node(),
        # the user's command: the submitting `dynloss train`'s, not submitit's `_submit.py`
        "argv": list(submitted["argv"]) if submitted else sys.argv,
        "executor": "slurm" if submitted else "local",
        "slurm": task_record(),  # job, array and task ids, node; None outside a SLURM job
        "torch_threads": threads,
        "group_size": n,
        "timings": {"group_train_s": r["train_s"], "group_infer_s": r["infer_s"], "group_total_s": t_all,
                    "train_s_per_member": r["train_s"] / n, "steps": r["steps"],
                    "steps_per_epoch": r["steps_per_epoch"]},
        "metrics": {
            "test_accuracy": _accuracy(test_logits, data.test_labels),
            "train_accuracy": _accuracy(train_logits, data.train_labels),
            "fit_accuracy": _accuracy(train_logits[fit_u], data.train_labels[fit_u]),
            "val_accuracy": _accuracy(train_logits[np.unique(sp.val_index)], data.train_labels[np.unique(sp.val_index)]),
            "last_epoch_loss": r["last_epoch_loss"][g],
            "last_epoch_fit_accuracy_running": r["last_epoch_fit_accuracy"][g],
            "epoch_losses": [e[g] for e in r["epoch_losses"]],
            "diverged": bool(r["diverged"][g] or not np.isfinite(test_logits).all()),
        },
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    path = cache_format.run_dir(cache_root, preset.name, spec.dataset, spec.arm.name, spec.member)
    return cache_format.write_run(path, arrays, meta)
