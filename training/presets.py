"""Presets: datasets, model, schedule, members, arms and compute resources, in one frozen place.

- ``digits-tiny``: scikit-learn's digits, a tiny MLP, 3 members; seconds on a CPU (tests). Its
  arms are the paper's, the dynamic arms at the text's lr 0.1 and the tuned arms, as fmnist-mini's.
- ``fmnist-mini``: the real Fashion-MNIST, an MLP, 10 members, the paper's arms, the related
  losses (:data:`training.arms.RELATED_ARMS`), the dynamic arms at the text's lr 0.1
  (:data:`training.arms.TEXT_PROTOCOL_ARMS`), and cross-entropy and the dynamic loss at τ = 0.7 each
  at its lr tuned on held-out training rows (:mod:`training.tuning`, 3 members per grid point);
  minutes on 2 CPU cores (default).
- ``paper``: CIFAR-10, CIFAR-100, Fashion-MNIST, WideResNet-16-8, 50 members, 50 epochs, batch
  1024, the paper's augmentation, inputs upsampled to 128×128 as the authors' training scripts ask
  (``--resize=128``; the paper's text does not say so); a GPU cluster (one GPU per run).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from training.arms import LR_GRID, RELATED_ARMS, TEXT_PROTOCOL_ARMS
from training.grid import DEFAULT_ARMS, RunSpec, get_arm, make_run_spec

if TYPE_CHECKING:
    from training.model_spec import ModelSpec


@dataclass(frozen=True)
class Resources:
    """Per-task resources for the slurm executor (one array task trains one group of runs): the
    defaults of ``dynloss train --executor slurm``, which ``--slurm-config FILE`` and the
    ``--slurm-*`` options override (:func:`training.slurm_jobs.resolve`). Not part of any run's spec.

    ``cpus`` is what a CPU task trains with: a preset that fixes ``cpu_threads`` asks for that many
    CPUs, so tasks run side by side on a node's cores. ``extra``: long-form ``#SBATCH`` directives
    (``--constraint=a100``); ``parallelism``: array tasks running at once.
    """

    gpus: int = 0
    cpus: int = 2
    mem_gb: int = 8
    timeout_min: int = 60
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    extra: tuple[str, ...] = ()
    parallelism: int = 256


@dataclass(frozen=True)
class Scale:
    """How a preset's base learners are trained, as far as comparing with the paper goes: the
    network, members per arm, epochs. A preset is **at the paper's scale** when these equal the
    ``paper`` preset's (WideResNet-16-8, 50 members, 50 epochs: the published setting); then its
    accuracies are like for like with the published ones, dataset by dataset. The datasets are not
    part of it: which of the paper's datasets a preset covers is said beside (``Preset.datasets``).
    """

    model: ModelSpec
    members: int
    epochs: int


@dataclass(frozen=True)
class Preset:
    """All knobs of a preset. Optimiser: AdamW; lr warms up linearly from ``lr_start`` over
    ``warmup_epochs`` to the arm's lr, then follows a cosine to ``lr_min``.

    ``tune``, ``lr_grid``, ``tuning_members``: the arms whose learning rate is chosen on held-out
    training rows before the preset's arms are trained (:mod:`training.tuning`); the chosen arms
    join the preset's. Not training knobs of a run (absent from :meth:`settings`): a tuning run is
    an ordinary run of its arm, with the preset's settings.

    ``resize`` is the side in pixels every image is resized to (bilinear) before the network, for
    training and inference alike (:func:`training.datasets.resize_images`); ``None`` keeps the native
    size. It enters :meth:`settings` only when set, so that the presets without it keep their spec
    hashes (and caches). ``paper`` resizes to 128 as the authors' base-learner scripts pass
    ``--resize=128``; ``dynloss train --resize PIXELS`` overrides it (:func:`with_resize`).

    ``mlp_rows`` is an analysis knob, not a training one (absent from :meth:`settings`): the cap on
    training rows of each MLP super-learner fit (a seeded subsample; 0 = all rows, as published).
    ``dynloss analyze`` and :func:`analysis.core.pipeline.analyze_preset` take it by default;
    ``--mlp-rows`` overrides it. fmnist-mini caps at 4,000 (all 60k rows would take about a minute
    per fit on two CPU cores); every other preset fits on all rows.
    """

    name: str
    datasets: tuple[str, ...]
    model: ModelSpec
    epochs: int
    batch_size: int
    members: int
    root_seed: int
    arms: tuple[str, ...] = DEFAULT_ARMS
    k: int = 50  # folds of the stratified k-fold (the paper: 50)
    fit_fraction: float = 0.8
    warmup_epochs: float = 5.0
    lr_start: float = 1e-5
    lr_min: float = 1e-9
    weight_decay: float = 0.05
    augmentation: str = "none"  # "none" | "flip" (cheap batched flips) | "paper" (flip, TrivialAugmentWide, Cutout 16)
    group_size: int = 1  # members of one (dataset, arm) trained together with vmap (batchable models)
    eval_batch_size: int = 2048
    loader_workers: int = 0  # DataLoader workers for the per-sample "paper" augmentation
    cpu_threads: int = 0  # torch threads per CPU run (0: torch's default). 1 keeps small models fast on a
    # shared machine (no OpenMP barriers to wait on) and makes results independent of the worker count
    local_workers: int = 1  # default worker processes of the local executor
    resources: Resources = Resources()
    mlp_rows: int = 0  # analysis: MLP super-learner row cap (0 = all rows, as published)
    tune: tuple[str, ...] = ()  # arms whose learning rate is tuned over `lr_grid` (training.tuning)
    lr_grid: tuple[float, ...] = LR_GRID
    tuning_members: int = 3  # members per (arm, lr) of the tuning runs
    resize: int | None = None  # side (pixels) images are resized to before the network; None: native size

    def __post_init__(self) -> None:
        if self.resize is not None and (isinstance(self.resize, bool) or not isinstance(self.resize, int)
                                        or self.resize < 1):
            raise ValueError(f"Expected preset `resize` None (native size) or an integer >= 1, got {self.resize!r}")

    @property
    def scale(self) -> Scale:
        """The preset's :class:`Scale` (compare with ``get_preset("paper").scale``: :func:`at_paper_scale`)."""
        return Scale(self.model, self.members, self.epochs)

    def settings(self) -> tuple[tuple[str, Any], ...]:
        """The training knobs recorded in every run spec (and its hash)."""
        d = asdict(self)
        for k in ("name", "datasets", "members", "root_seed", "arms", "resources", "group_size",
                  "loader_workers", "eval_batch_size", "local_workers", "mlp_rows", "tune", "lr_grid",
                  "tuning_members"):
            d.pop(k)
        if d["resize"] is None:  # absent at native size: the spec hashes of the presets without it stay
            d.pop("resize")
        return tuple(sorted((k, _freeze(v)) for k, v in d.items()))


def _freeze(v: Any) -> Any:
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


#: preset name -> its :class:`Preset` fields, ``model`` as the :class:`training.model_spec.ModelSpec`
#: arguments: plain data, so that naming the presets (``dynloss train --help``) does not import torch
_PRESET_FIELDS: dict[str, dict[str, Any]] = {
    "digits-tiny": dict(
        datasets=("digits",), model=dict(kind="mlp", hidden=(32,)),
        epochs=8, batch_size=64, members=3, root_seed=20240601, warmup_epochs=1.0,
        group_size=10, eval_batch_size=4096, cpu_threads=1,
        resources=Resources(cpus=1, mem_gb=2, timeout_min=30),  # one thread, under 1 GB (peak RSS 0.8 GB)
        arms=DEFAULT_ARMS + TEXT_PROTOCOL_ARMS[1:], tune=("ce", "dyn-0.7"), tuning_members=2,
    ),
    "fmnist-mini": dict(
        datasets=("fashion-mnist",), model=dict(kind="mlp", hidden=(128,)),
        epochs=6, batch_size=256, members=10, root_seed=20240602, warmup_epochs=1.0,
        augmentation="none", group_size=10, eval_batch_size=4096, cpu_threads=1, local_workers=2, mlp_rows=4_000,
        resources=Resources(cpus=1, mem_gb=4),  # one thread; a group of 10 members peaks at 1.3 GB RSS
        # the paper's arms, the related losses under the same protocol (dyn-0.7 is in both), and the
        # dynamic arms at the text's lr 0.1; the lr of ce and dyn-0.7 is tuned (training.tuning)
        arms=tuple(dict.fromkeys(DEFAULT_ARMS + RELATED_ARMS + TEXT_PROTOCOL_ARMS)), tune=("ce", "dyn-0.7"),
    ),
    "paper": dict(
        datasets=("cifar10", "cifar100", "fashion-mnist"),
        model=dict(kind="wrn", depth=16, widen=8, dropout=0.3),
        epochs=50, batch_size=1024, members=50, root_seed=20240603, warmup_epochs=5.0,
        augmentation="paper", group_size=1, eval_batch_size=2048, loader_workers=8,
        resize=128,  # the authors' base-learner scripts pass --resize=128 to every run (see README)
        resources=Resources(gpus=1, cpus=10, mem_gb=32, timeout_min=120), tune=("ce", "dyn-0.7"),
    ),
}

#: the preset names, without building the presets
PRESET_NAMES: tuple[str, ...] = tuple(_PRESET_FIELDS)


@functools.cache
def all_presets() -> dict[str, Preset]:
    """Every preset by name (built on first use)."""
    from training.model_spec import ModelSpec

    return {name: Preset(name=name, **{**fields, "model": ModelSpec(**fields["model"])})
            for name, fields in _PRESET_FIELDS.items()}


def __getattr__(name: str) -> Any:
    if name == "PRESETS":  # `from training.presets import PRESETS` keeps working (built on first access)
        return all_presets()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_preset(name: str) -> Preset:
    if name not in PRESET_NAMES:
        raise ValueError(f"Unknown preset {name!r}; expected one of {sorted(PRESET_NAMES)}")
    return all_presets()[name]


def at_paper_scale(preset: Preset) -> bool:
    """Whether ``preset`` trains at the paper's scale (:class:`Scale`: model, members, epochs equal
    to the ``paper`` preset's).

    >>> at_paper_scale(get_preset("paper")), at_paper_scale(get_preset("fmnist-mini"))
    (True, False)
    """
    return preset.scale == get_preset("paper").scale


def expand(preset: Preset, *, members: int | None = None, arms: tuple[str, ...] | None = None,
           datasets: tuple[str, ...] | None = None) -> list[RunSpec]:
    """All run specs of a preset: dataset × member × arm, in that nesting order.

    >>> len(expand(get_preset("digits-tiny")))  # 10 arms × 3 members
    30
    """
    members = preset.members if members is None else members
    arms = preset.arms if arms is None else tuple(arms)
    datasets = preset.datasets if datasets is None else tuple(datasets)
    if members < 1:
        raise ValueError(f"Expected `members` >= 1, got {members}")
    for what, names in (("arms", arms), ("datasets", datasets)):
        if not names:
            raise ValueError(f"Expected at least one of `{what}`, got none")
        if len(set(names)) != len(names):
            raise ValueError(f"Expected distinct `{what}`, got {list(names)}")
    for a in arms:
        get_arm(a)
    settings = preset.settings()
    return [
        make_run_spec(preset.name, ds, arm, m, root_seed=preset.root_seed, settings=settings)
        for ds in datasets
        for m in range(members)
        for arm in arms
    ]


def group_runs(preset: Preset, specs: list[RunSpec]) -> list[list[RunSpec]]:
    """Jobs: runs of one (dataset, arm), chunked into groups of ``preset.group_size`` members."""
    by_key: dict[tuple[str, str], list[RunSpec]] = {}
    for s in specs:
        by_key.setdefault((s.dataset, s.arm.name), []).append(s)
    jobs = []
    for group in by_key.values():
        group.sort(key=lambda s: s.member)
        for i in range(0, len(group), preset.group_size):
            jobs.append(group[i : i + preset.group_size])
    return jobs


def with_resize(preset: Preset, pixels: int) -> Preset:
    """``preset`` with its images resized to ``pixels``×``pixels`` (``0``: the native size), as
    ``dynloss train --resize`` asks. The name stays: runs at another size than the preset's own are
    stale to it (another ``spec_hash``).

    >>> with_resize(get_preset("paper"), 0).resize is None, with_resize(get_preset("paper"), 32).resize
    (True, 32)
    """
    if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 0:
        raise ValueError(f"Expected `pixels` an integer >= 0 (0 = native size), got {pixels!r}")
    return replace(preset, resize=pixels or None)


def with_overrides(preset: Preset, **changes: Any) -> Preset:
    """A copy of a preset with some fields changed (tests, benchmarks)."""
    return replace(preset, **changes)
