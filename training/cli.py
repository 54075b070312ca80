"""``dynloss train``: parse arguments and call :func:`training.executors.train_preset`."""

from __future__ import annotations

import argparse
import sys


def register(sub, *, name: str, help: str) -> None:
    from training.grid import ARMS
    from training.presets import PRESETS

    p = sub.add_parser(name, help=help, description=help)
    p.add_argument("--preset", required=True, choices=sorted(PRESETS), help="which preset to train")
    p.add_argument("--executor", default="local", choices=("local", "slurm"),
                   help="local: this machine; slurm: one submitit array job (default: local)")
    p.add_argument("--cache", default=None, help="cache root (default: <data root>/cache; see dynloss --data-dir)")
    p.add_argument("--raw-dir", "--data-root", dest="data_root", default=None,
                   help="where datasets live / are downloaded (default: <data root>/raw)")
    p.add_argument("--no-download", dest="download", action="store_false",
                   help="never download: fail with instructions when a dataset is missing (default: torchvision "
                        "downloads missing datasets into --data-root; Fashion-MNIST is first looked for in the "
                        "Debian package dataset-fashion-mnist)")
    p.add_argument("--members", type=int, default=None, help="members per arm (default: the preset's)")
    p.add_argument("--arms", default=None,
                   help=f"comma-separated arms (default: the preset's); known: {','.join(ARMS)}")
    p.add_argument("--datasets", default=None, help="comma-separated datasets (default: the preset's)")
    p.add_argument("--force", action="store_true", help="redo complete runs too")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes (default: the preset's; fmnist-mini uses 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_run)


def _split(s: str | None) -> tuple[str, ...] | None:
    return None if s is None else tuple(x.strip() for x in s.split(",") if x.strip())


def _run(args: argparse.Namespace) -> int:
    from training import paths
    from training.datasets import DataMissingError
    from training.executors import train_preset

    if args.cache is None:
        args.cache = str(paths.cache_root())
    if args.data_root is None:
        args.data_root = str(paths.raw_dir())

    try:
        summary = train_preset(
            args.preset, executor=args.executor, cache_root=args.cache, members=args.members,
            arms=_split(args.arms), datasets=_split(args.datasets), force=args.force, workers=args.workers,
            data_root=args.data_root, download=args.download, progress=not args.quiet,
        )
    except (DataMissingError, ValueError) as e:
        print(f"dynloss train: {e}", file=sys.stderr)
        return 2
    print(f"dynloss train --preset {summary.preset}: {summary.total} runs, {summary.skipped} already complete, "
          f"{summary.trained} trained; cache {args.cache}/{summary.preset}")
    return 0
