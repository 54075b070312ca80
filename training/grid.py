"""Arms, run specs and seed derivation: a preset expands to a grid of (dataset, member, arm) runs.

Seeds: one root seed per preset. With :class:`numpy.random.SeedSequence` keyed by stable
integers of the names,

- ``partition_seed`` depends on (root, dataset): the stratified k-fold partition;
- ``bootstrap_seed`` depends on (root, dataset, member): the member's resample — so every arm of
  member ``i`` shares the same training subset, as in the paper ("each base training subset
  yielded 5 models");
- ``seed`` depends on (root, dataset, member, arm): initialisation, batch order, augmentation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from training.arms import ARMS, DEFAULT_ARMS, Arm, get_arm  # noqa: F401 (re-exported: the registry lives in training.arms)

_TAG_PARTITION, _TAG_BOOTSTRAP, _TAG_RUN = 1, 2, 3

#: revision of the training procedure, part of every run's fingerprint (``spec_hash``): raised when
#: the same settings would give other arrays, so that runs made before become stale. 2: each member
#: of a vmap group keeps its own parameter tensors (bit-identical in any group), seeded dropout.
TRAINER_VERSION = 2


def _key(name: str) -> int:
    """Stable 32-bit integer of a name (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def _seed(root: int, *key: int) -> int:
    return int(np.random.SeedSequence(entropy=root, spawn_key=key).generate_state(1, dtype=np.uint32)[0])


def partition_seed(root: int, dataset: str) -> int:
    """Seed of the stratified k-fold partition of a dataset (shared by all members and arms)."""
    return _seed(root, _TAG_PARTITION, _key(dataset))


def bootstrap_seed(root: int, dataset: str, member: int) -> int:
    """Seed of member ``member``'s bootstrap resample (shared by all arms)."""
    return _seed(root, _TAG_BOOTSTRAP, _key(dataset), member)


def run_seed(root: int, dataset: str, member: int, arm: str) -> int:
    """Seed of one run: initialisation, batch order and augmentation."""
    return _seed(root, _TAG_RUN, _key(dataset), member, _key(arm))


def _thaw(v: Any) -> Any:
    """Nested (key, value) pairs back to dicts, for JSON (settings are frozen to stay hashable)."""
    if isinstance(v, tuple) and v and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in v):
        return {k: _thaw(x) for k, x in v}
    if isinstance(v, tuple):
        return [_thaw(x) for x in v]
    return v


@dataclass(frozen=True)
class RunSpec:
    """Everything that identifies one run (one member of one arm on one dataset of a preset)."""

    preset: str
    dataset: str
    arm: Arm
    member: int
    root_seed: int
    seed: int
    partition_seed: int
    bootstrap_seed: int
    settings: tuple[tuple[str, Any], ...] = field(default=())  # the preset's training knobs
    trainer: int = TRAINER_VERSION

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.dataset, self.arm.name, self.member)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["arm"] = {"name": self.arm.name, "loss": self.arm.loss, "lr": self.arm.lr,
                    "loss_params": dict(self.arm.loss_params)}
        d["settings"] = {k: _thaw(v) for k, v in self.settings}
        return d

    def spec_hash(self) -> str:
        """SHA-256 of the canonical JSON of :meth:`to_dict`; a cached run with another hash is redone."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()


def make_run_spec(preset: str, dataset: str, arm: str, member: int, *, root_seed: int,
                  settings: tuple[tuple[str, Any], ...] = ()) -> RunSpec:
    """Build the spec of one run with its derived seeds."""
    return RunSpec(
        preset=preset, dataset=dataset, arm=get_arm(arm), member=member, root_seed=root_seed,
        seed=run_seed(root_seed, dataset, member, arm),
        partition_seed=partition_seed(root_seed, dataset),
        bootstrap_seed=bootstrap_seed(root_seed, dataset, member),
        settings=settings,
    )
