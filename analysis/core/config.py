"""The knobs of ``dynloss analyze`` (:class:`AnalysisConfig`) and its seed streams.

Seeds: every random step draws from ``numpy.random.default_rng([seed, step, ...])`` with a fixed
step number (``S_BOOT``, ``S_SL``, ``S_TEMP``, ``S_SIZE``, ``S_SEED``, ``S_REL``), so each table is
reproducible on its own. ``S_SEED`` draws the members of Table 1's two-level (training-seed)
intervals; their test samples reuse the ``S_BOOT`` resamples. ``S_REL`` draws the test samples of
``calibration_diff`` (:mod:`analysis.core.reliability`), whose two-level intervals reuse the
``S_SEED`` member draws.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from training.arms import DEFAULT_ARMS

#: encodings of the ``ce`` arm on the τ axis for Table 2: label -> τ (None = excluded).
#: "published" is the value that reproduces the paper's Table 2 from its Table 1 (see
#: :mod:`analysis.audit.published`).
TABLE2_ENCODINGS: dict[str, float | None] = {"published (ce=-1)": -1.0, "ce-limit (ce=1.0)": 1.0, "ce excluded": None}


# seed streams (fixed step numbers)
S_BOOT, S_SL, S_TEMP, S_SIZE, S_SEED, S_REL = 1, 2, 3, 4, 5, 6
#: fewest training rows a super-learner can be fitted on (one to fit, one to choose the best epoch)
MIN_FIT_ROWS = 2


@dataclass(frozen=True)
class AnalysisConfig:
    """Every knob of :func:`analyze_preset` (saved in ``provenance.json``).

    Attributes
    ----------
    seed : root seed of all resampling and super-learner fits.
    n_resamples : bootstrap resamples (≥ 10,000 for reported CIs).
    n_seed_resamples : resamples of the two-level (members × test samples) intervals of Table 1
        (``seed_ci_*``, ``diff_seed_ci_*``, ``control_seed_ci_*``); each re-fuses the drawn members,
        so they cost more than test-only resamples. Their test samples are the first
        ``n_seed_resamples`` resamples of the test-only bootstrap. 0 leaves those columns NaN.
    n_reliability_resamples : test-sample resamples of ``calibration_diff``'s intervals on the
        differences of ECE, NLL, Brier, AUROC and AURC (:mod:`analysis.core.reliability`); 0 writes
        the table without rows.
    n_reliability_seed_resamples : of those, the first ones that also draw the members
        (two-level ``seed_ci_*``; each re-fuses and re-sorts the test set); 0 leaves them NaN.
    confidence : level of all confidence intervals.
    n_bins : calibration bins.
    superlearners : fit the learned fusions (Weighted, MLP; in-sample and out-of-bag).
    superlearner_arms : arms whose learned fusions are fitted (default: the paper's arms,
        :data:`training.arms.DEFAULT_ARMS`); other arms (the related losses) get the static fusions
        only. None fits every arm.
    superlearner_max_rows : per kind, cap on training rows a super-learner fits on (seeded
        subsample; a cap of None = all rows, as published). The default, None, takes the preset's
        caps (:meth:`for_preset`: the Weighted fits on all rows, the MLP on
        :attr:`training.presets.Preset.mlp_rows`). The MLP (≈ 0.8 M parameters) costs ~5 MFLOP
        per row and epoch: all 60k rows take about a minute per fit on two CPU cores, so
        fmnist-mini caps its MLP fits at 4,000 rows; the cap is recorded per fit (``n_fit_rows``).
    superlearner_batch_size : mini-batch size of the super-learner fits, capped at a fit's rows
        (default 1024, the authors'; None: about 100 (Weighted) / 25 (MLP) steps per epoch, the
        former rule; see :class:`analysis.core.superlearner.SuperLearnerConfig`).
    superlearner_epochs : per kind, epochs (None = published 10 / 20; tests use fewer).
    size_repeats : random member subsets per ensemble size.
    nonfinite : reader policy for members with NaN/inf logits ("drop" or "raise").
    allow_partial : analyse the complete runs of a cache that misses some runs of the grid or holds
        corrupt runs or unexpected entries (default: refuse). Recorded everywhere (see
        :class:`analysis.core.reader.CacheStatus`).
    allow_stale : include runs made with other settings than the preset's (default: refuse).
    table2_encodings : label -> τ of the ``ce`` arm for Table 2 (None = excluded).
    """

    seed: int = 0
    n_resamples: int = 10_000
    n_seed_resamples: int = 2_000
    n_reliability_resamples: int = 1_000
    n_reliability_seed_resamples: int = 200
    confidence: float = 0.95
    n_bins: int = 15
    superlearners: bool = True
    superlearner_arms: tuple[str, ...] | None = DEFAULT_ARMS
    superlearner_max_rows: tuple[tuple[str, int | None], ...] | None = None
    superlearner_batch_size: int | None = 1024
    superlearner_epochs: tuple[tuple[str, int | None], ...] = (("Weighted", None), ("MLP", None))
    size_repeats: int = 20
    nonfinite: str = "drop"
    allow_partial: bool = False
    allow_stale: bool = False
    table2_encodings: tuple[tuple[str, float | None], ...] = tuple(TABLE2_ENCODINGS.items())

    def __post_init__(self) -> None:
        # checked here, before minutes of loading and fitting, not deep inside the pipeline
        if self.seed < 0:
            raise ValueError(f"Expected `seed` >= 0 (a numpy seed), got {self.seed}")
        for kind, rows in self.superlearner_max_rows or ():
            if rows is not None and rows < MIN_FIT_ROWS:
                raise ValueError(f"Expected `superlearner_max_rows` of {kind} None or >= {MIN_FIT_ROWS} (one row "
                                 f"to fit, one to choose the best epoch), got {rows}")
        if self.n_resamples < 1:
            raise ValueError(f"Expected `n_resamples` >= 1, got {self.n_resamples}")
        if self.n_reliability_resamples < 0 or self.n_reliability_seed_resamples < 0:
            raise ValueError(f"Expected `n_reliability_resamples` and `n_reliability_seed_resamples` >= 0, got "
                             f"{self.n_reliability_resamples} and {self.n_reliability_seed_resamples}")
        if self.n_seed_resamples < 0:
            raise ValueError(f"Expected `n_seed_resamples` >= 0, got {self.n_seed_resamples}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"Expected `confidence` in (0, 1), got {self.confidence}")
        if self.n_bins < 1:
            raise ValueError(f"Expected `n_bins` >= 1, got {self.n_bins}")
        if self.nonfinite not in ("drop", "raise"):
            raise ValueError(f"Expected `nonfinite` to be 'drop' or 'raise', got {self.nonfinite!r}")

    def for_preset(self, preset: str) -> AnalysisConfig:
        """This config with the preset's values where it leaves them to the preset
        (``superlearner_max_rows`` None: :func:`preset_max_rows`); unchanged otherwise.

        >>> AnalysisConfig().for_preset("fmnist-mini").superlearner_max_rows
        (('Weighted', None), ('MLP', 4000))
        """
        if self.superlearner_max_rows is not None:
            return self
        return replace(self, superlearner_max_rows=preset_max_rows(preset))


def preset_max_rows(preset: str, mlp_rows: int | None = None) -> tuple[tuple[str, int | None], ...]:
    """The super-learners' row caps for ``preset``: Weighted on all rows, MLP on ``mlp_rows`` (the
    ``--mlp-rows`` option; default the preset's :attr:`training.presets.Preset.mlp_rows`, 0 for a
    preset that is not registered, e.g. a test's synthetic one); 0 means all rows (None).

    >>> preset_max_rows("digits-tiny"), preset_max_rows("fmnist-mini", 0)
    ((('Weighted', None), ('MLP', None)), (('Weighted', None), ('MLP', None)))
    """
    if mlp_rows is None:
        from training.presets import PRESET_NAMES, get_preset

        mlp_rows = get_preset(preset).mlp_rows if preset in PRESET_NAMES else 0
    return (("Weighted", None), ("MLP", mlp_rows or None))



def sub_seed(seed: int, *keys: int) -> int:
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def hash_str(s: str) -> int:
    """A small stable integer of a string (for seed keys; Python's ``hash`` is salted).

    >>> hash_str("Vote") == hash_str("Vote")
    True
    """
    import zlib

    return zlib.crc32(s.encode())

