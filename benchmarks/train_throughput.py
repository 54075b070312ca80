"""Training throughput: WideResNet-16-8 images/s, and a group of members (batched products, vmap) versus one by one.

Usage: ``python benchmarks/train_throughput.py [--steps N] [--members G]``. Prints ratios, not
absolute claims: run it on the machine you care about. WRN-16-8 uses CUDA (bf16 autocast,
channels_last) when present, else the CPU with a small batch and few steps.
"""

from __future__ import annotations

import argparse
import time

import torch

from training.losses import get_loss
from training.models import ModelSpec, WideResNet, build_model
from training.presets import get_preset
from training.run import _Group


def wrn_images_per_s(device: torch.device, *, batch: int, steps: int, warmup: int = 2) -> float:
    torch.manual_seed(0)
    model = WideResNet(16, 8, 0.3, in_channels=3, num_classes=10).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    x = torch.randn(batch, 3, 32, 32, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t)


def member_training_rates(spec: ModelSpec, *, members: int, batch: int, steps: int, repeats: int = 3
                          ) -> dict[str, float]:
    """Member-images/s of training ``members`` models as one group (an MLP's batched products, and
    the generic vmap path) and one after another."""
    cpu = torch.device("cpu")
    loss = get_loss("dynamic", threshold=0.8, reduction="none")
    x = torch.randn(members, batch, 1, 28, 28)
    y = torch.randint(0, 10, (members, batch))

    def group_step(stacked: bool):
        torch.manual_seed(0)
        models = [build_model(spec, in_channels=1, image_size=(28, 28), num_classes=10) for _ in range(members)]
        group = _Group(models, cpu, channels_last=False, vmap=True, stacked=stacked)
        opt = torch.optim.AdamW(group.params, lr=1e-3, weight_decay=0.05, fused=True)

        def step():
            out = group(x)
            per_member = loss(out.flatten(0, 1), y.flatten()).view(members, -1).mean(1)
            opt.zero_grad(set_to_none=True)
            group.zero_grad()
            per_member.sum().backward()
            group.share_grads()  # each member's optimiser leaf gets its gradient slice, as in training
            opt.step()
        return step

    torch.manual_seed(0)
    singles = [build_model(spec, in_channels=1, image_size=(28, 28), num_classes=10) for _ in range(members)]
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.05, fused=True) for m in singles]

    def loop_step():
        for g, (m, o) in enumerate(zip(singles, opts)):
            lg = loss(m(x[g]), y[g]).mean()
            o.zero_grad(set_to_none=True)
            lg.backward()
            o.step()

    fns = {"group": group_step(True), "vmap": group_step(False), "loop": loop_step}
    for fn in fns.values():  # warm-up (allocator, thread pool)
        for _ in range(5):
            fn()
    best = dict.fromkeys(fns, 0.0)
    for _ in range(repeats):  # alternate and keep the best of each: robust to a shared, noisy machine
        for name, fn in fns.items():
            t = time.perf_counter()
            for _ in range(steps):
                fn()
            best[name] = max(best[name], members * batch * steps / (time.perf_counter() - t))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20, help="timed steps of the member comparison")
    ap.add_argument("--members", type=int, default=10, help="members trained together")
    ap.add_argument("--skip-wrn", action="store_true")
    args = ap.parse_args(argv)

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    if not args.skip_wrn:
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        batch, steps = (256, 20) if dev.type == "cuda" else (16, 3)
        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
        rate = wrn_images_per_s(dev, batch=batch, steps=steps)
        print(f"WRN-16-8 training on {name} (batch {batch}, {steps} steps): {rate:.1f} images/s "
              f"(a 50-epoch paper run of 40k fit images needs ~{50 * 39200 / rate / 3600:.2f} h)")
    spec = get_preset("fmnist-mini").model
    if get_preset("fmnist-mini").cpu_threads:
        torch.set_num_threads(get_preset("fmnist-mini").cpu_threads)  # as the preset trains
    r = member_training_rates(spec, members=args.members, batch=get_preset("fmnist-mini").batch_size,
                              steps=args.steps)
    print(f"fmnist-mini model {spec.kind}{tuple(spec.hidden)}, {args.members} members, batch "
          f"{get_preset('fmnist-mini').batch_size}, {torch.get_num_threads()} thread(s), member-images/s: "
          f"group (batched products) {r['group']:,.0f}, group under vmap {r['vmap']:,.0f}, one by one "
          f"{r['loop']:,.0f}; batched products / vmap x{r['group'] / r['vmap']:.2f}, "
          f"/ one by one x{r['group'] / r['loop']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
