"""``dynloss train``: parse and check arguments, call :func:`training.executors.train_preset`.

SIGINT and SIGTERM stop the training with one line on stderr (exit status 130 / 143): worker
processes are killed, complete runs are kept and no partial run is left (``run.json`` is written
last). Errors are one line naming the argument or path: exit status 2 for bad input, 3 for the
environment (full disk, read-only folder, permissions, an unreadable run, the cache locked by another
process, ``--executor slurm`` without a SLURM: :mod:`training.slurm`; under ``--executor slurm``:
sbatch's refusal, a GPU no node has, a task that failed, was cancelled or timed out). A run reached
through a symbolic link is refused (exit status 2) before anything is trained; a read-only cache
whose runs are all complete is "nothing to train" (exit status 0). Under ``--executor slurm`` a
signal or a failed task cancels the array job ``train`` submitted (:mod:`training.slurm_jobs`), and
the line says so.
"""

from __future__ import annotations

import argparse
import signal

from training.cache_state import MAX_MEMBERS  # noqa: F401 (re-exported: above it --members needs --many-members)
from training.logs import get_logger

log = get_logger("train")


class Stopped(BaseException):
    """SIGTERM received (SIGINT arrives as KeyboardInterrupt)."""


def register(sub, *, name: str, help: str) -> None:
    from training.argtypes import int_at_least, one_line_errors, preset_arg
    from training.grid import ARMS
    from training.presets import PRESET_NAMES  # names only

    p = one_line_errors(sub.add_parser(name, help=help, description=help))
    p.add_argument("--preset", required=True, type=preset_arg, choices=sorted(PRESET_NAMES), help="which preset to train")
    p.add_argument("--executor", default="local", choices=("local", "slurm"),
                   help="local: this machine; slurm: one submitit array job on the SLURM cluster that sbatch "
                        "reaches (stops, exit status 3, when there is none; never a local fallback) (default: local)")
    p.add_argument("--cache", default=None, help="cache root (default: <data root>/cache; see dynloss --data-dir)")
    p.add_argument("--raw-dir", "--data-root", dest="data_root", default=None,
                   help="where datasets live / are downloaded (default: <data root>/raw)")
    p.add_argument("--no-download", dest="download", action="store_false",
                   help="never download: fail with instructions when a dataset is missing (default: torchvision "
                        "downloads missing datasets into --data-root; Fashion-MNIST is first looked for in the "
                        "Debian package dataset-fashion-mnist)")
    p.add_argument("--members", type=int, default=None,
                   help=f"members per arm (default: the preset's; more than {MAX_MEMBERS} needs --many-members)")
    p.add_argument("--many-members", action="store_true",
                   help=f"confirm a --members above {MAX_MEMBERS} (a grid that large takes a long time to plan and train)")
    p.add_argument("--arms", default=None,
                   help=f"comma-separated arms (default: the preset's); known: {','.join(ARMS)}")
    p.add_argument("--datasets", default=None, help="comma-separated datasets (default: the preset's)")
    p.add_argument("--resize", type=int_at_least(0, " pixels (0 = native size)"), default=None, metavar="PIXELS",
                   help="resize every image to PIXELS x PIXELS (bilinear) for training and inference; 0 = the "
                        "native size (default: the preset's: paper 128 as the authors' scripts, the others native). "
                        "Runs at another size than the preset's are stale to it (another spec hash)")
    p.add_argument("--force", action="store_true", help="redo complete runs too")
    p.add_argument("--workers", type=int, default=None,
                   help="local worker processes, >= 1 (default: the preset's; fmnist-mini uses 2)")
    p.add_argument("--wait", action="store_true",
                   help="wait while another `dynloss train` of this preset holds its cache (default: stop, naming it)")
    p.add_argument("--no-tune", dest="tune", action="store_false",
                   help="skip the learning-rate tuning of the preset's tuned arms (training.tuning): train the "
                        "preset's arms and those an earlier tuning chose (default: tune first, when the preset "
                        "tunes and --arms is not given)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _slurm_options(p)
    p.set_defaults(func=_run)


#: --slurm-KEY option -> (metavar, help); the key is that of training.slurm_jobs.PARSERS
_SLURM_HELP: dict[str, tuple[str, str]] = {
    "partition": ("NAME", "sbatch --partition (default: the preset's, else the cluster's default)"),
    "account": ("NAME", "sbatch --account"),
    "qos": ("NAME", "sbatch --qos"),
    "time": ("TIME", "time limit per task: minutes, HH:MM:SS or D-HH:MM:SS (default: the preset's)"),
    "mem": ("SIZE", "memory per task, e.g. 8G or 512M (default: the preset's)"),
    "cpus": ("N", "CPUs per task (default: the preset's; the CPU presets ask for the 1 thread they train with)"),
    "gres": ("GRES", "generic resources per task, e.g. gpu:1, or none (default: the preset's GPUs)"),
    "extra": ("DIRECTIVE", "an extra #SBATCH directive in long form, e.g. --slurm-extra=--constraint=a100 "
                           "(repeatable)"),
    "parallelism": ("N", "array tasks running at once (default: the preset's, 256)"),
}


def _slurm_options(p: argparse.ArgumentParser) -> None:
    from training.argtypes import checked, path_arg
    from training.slurm_jobs import PARSERS

    g = p.add_argument_group("SLURM (with --executor slurm; the command line overrides --slurm-config, which "
                             "overrides the preset's Resources)")
    for key, (metavar, text) in _SLURM_HELP.items():
        g.add_argument(f"--slurm-{key}", dest=f"slurm_{key}", type=checked(PARSERS[key]), metavar=metavar, help=text,
                       default=[] if key == "extra" else None, action="append" if key == "extra" else "store")
    g.add_argument("--slurm-config", type=path_arg, default=None, metavar="FILE",
                   help="a TOML or JSON file of the same keys (partition, account, qos, time, mem, cpus, gres, "
                        "extra: a list, parallelism)")


def slurm_layers(args: argparse.Namespace) -> dict[str, dict]:
    """The SLURM parameters asked for, as :func:`training.executors.train_preset`'s ``slurm``
    (the file's, then the command line's); ``ValueError`` when one is given without ``--executor
    slurm``, or the file is bad (naming it)."""
    from training.slurm_jobs import read_config

    given = {key: getattr(args, f"slurm_{key}") for key in _SLURM_HELP}
    given["extra"] = tuple(given["extra"]) or None
    named = [f"--slurm-{k}" for k, v in given.items() if v is not None]
    if args.slurm_config is not None:
        named.append("--slurm-config")
    if named and args.executor != "slurm":
        raise ValueError(f"{', '.join(named)}: SLURM parameters apply to --executor slurm only")
    layers: dict[str, dict] = {}
    if args.slurm_config is not None:
        try:
            layers[f"--slurm-config {args.slurm_config}"] = read_config(args.slurm_config)
        except OSError as e:
            raise ValueError(f"--slurm-config {args.slurm_config}: {e.strerror or e}") from None
    layers["the command line"] = {k: v for k, v in given.items() if v is not None}
    return layers


def parse_list(option: str, value: str | None, known: tuple[str, ...] | None = None) -> tuple[str, ...] | None:
    """A comma-separated option as a tuple: None stays None; an empty list, a repeated or (with
    ``known``) an unknown name raise ``ValueError`` naming the option.

    >>> parse_list("--arms", "ce, dyn-0.7")
    ('ce', 'dyn-0.7')
    """
    if value is None:
        return None
    items = tuple(x.strip() for x in value.split(","))
    if not any(items) or any(not x for x in items):
        raise ValueError(f"{option}: expected a comma-separated list of names, got {value!r}")
    seen: set[str] = set()
    for x in items:
        if x in seen:
            raise ValueError(f"{option}: {x!r} is given twice")
        seen.add(x)
        if known is not None and x not in known:
            raise ValueError(f"{option}: unknown name {x!r}; expected some of {', '.join(known)}")
    return items


def check_args(args: argparse.Namespace) -> None:
    """Refuse bad arguments before anything is read or trained (``ValueError`` naming the option)."""
    from training.datasets import DATASETS
    from training.grid import ARMS

    from training.paths import folder

    for option, value in (("--cache", args.cache), ("--raw-dir", args.data_root)):
        if value is not None:
            folder(value, option)  # an empty path is refused (FileNotFoundError naming the option)
    args.arms_t = parse_list("--arms", args.arms, tuple(ARMS))
    args.datasets_t = parse_list("--datasets", args.datasets, DATASETS)
    if args.members is not None:
        if args.members < 1:
            raise ValueError(f"--members: expected >= 1, got {args.members}")
        if args.members > MAX_MEMBERS and not args.many_members:
            raise ValueError(f"--members {args.members} is above {MAX_MEMBERS} per arm (the paper trains 50); "
                             f"pass --many-members to confirm")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers: expected >= 1 worker process, got {args.workers}")
    args.slurm = slurm_layers(args)


def _on_sigterm(signum, frame):
    raise Stopped()


def _with_tuned_arms(args: argparse.Namespace, preset, options: dict) -> tuple[str, ...] | None:
    """The preset's arms and the arms its learning-rate tuning chose (tuning first unless --no-tune);
    None (the preset's arms) when the preset tunes nothing or nothing was chosen yet."""
    from training.presets import get_preset
    from training.tuning import chosen_arms, describe, read_selection, tune_preset, tuning_arms

    preset = get_preset(preset) if isinstance(preset, str) else preset
    if not preset.tune:
        return None
    say = (lambda m: None) if args.quiet else log.info  # --quiet: errors only on stderr
    if args.tune:
        say(f"dynloss train: tuning the learning rate of {', '.join(preset.tune)} over "
            f"{', '.join(f'{x:g}' for x in preset.lr_grid)} ({preset.tuning_members} members each, "
            f"{len(tuning_arms(preset))} arms) on held-out training rows")
        choices = tune_preset(preset, cache_root=args.cache, datasets=args.datasets_t, members=args.members,
                              **options)
    else:
        choices = read_selection(args.cache, preset)
        if choices is None:
            say("dynloss train: --no-tune and no recorded tuning: training the preset's arms only")
            return None
    args.tuned = describe(choices)
    return tuple(dict.fromkeys(preset.arms + chosen_arms(choices)))


def _run(args: argparse.Namespace) -> int:
    try:
        check_args(args)
    except ValueError as e:
        log.error(f"dynloss train: {e}")
        return 2
    from training.cache_format import UnreadableError
    from training.cache_lock import CacheLockedError
    from training.datasets import DataMissingError
    from training.executors import train_preset
    from training.slurm import SlurmMissingError
    from training.slurm_jobs import SlurmError

    if args.cache is None:
        args.cache = str(args.paths.cache)
    if args.data_root is None:
        args.data_root = str(args.paths.raw)
    preset = args.preset
    if getattr(args, "resize", None) is not None:
        from training.presets import get_preset, with_resize

        preset = with_resize(get_preset(args.preset), args.resize)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    options = dict(executor=args.executor, force=args.force, workers=args.workers, data_root=args.data_root,
                   download=args.download, progress=not args.quiet, wait_for_lock=args.wait,
                   on_wait=lambda m: log.info(f"dynloss train: {m}"), slurm=args.slurm)
    try:
        if args.executor == "slurm":  # before the tuning says anything (train_preset checks again)
            from training.slurm import require_slurm

            require_slurm()
        arms = args.arms_t if args.arms_t is not None else _with_tuned_arms(args, preset, options)
        summary = train_preset(preset, cache_root=args.cache, members=args.members, arms=arms,
                               datasets=args.datasets_t, **options)
    except (DataMissingError, ValueError) as e:
        log.error(f"dynloss train: {e}")
        return 2
    except (CacheLockedError, UnreadableError, SlurmMissingError, SlurmError) as e:
        log.error(f"dynloss train: {e}")
        return 3
    except (KeyboardInterrupt, Stopped) as e:
        name = "SIGTERM" if isinstance(e, Stopped) else "SIGINT"
        notes = "".join(f"; {n}" for n in getattr(e, "__notes__", ()))
        log.error(f"dynloss train: stopped by {name}{notes}; complete runs are kept and no partial run was written: "
                  f"rerun the same command to finish")
        return 143 if isinstance(e, Stopped) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    if getattr(args, "tuned", None):
        print(f"learning rates chosen on held-out training rows (the chosen arms are trained beside the preset's):\n"
              f"{args.tuned}")
    repaired = "".join(f", {n} {state}" for state, n in sorted(summary.repaired.items()))
    print(f"dynloss train --preset {summary.preset}: {summary.total} runs, {summary.skipped} already complete, "
          f"{summary.trained} trained{' (redone: ' + repaired[2:] + ')' if repaired else ''}; "
          f"cache {args.cache}/{summary.preset}"
          f"{'; nothing to train (the cache is read-only, so it was not locked)' if summary.read_only else ''}")
    return 0
