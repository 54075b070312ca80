"""Where our fusions still differ from the authors' code, with the effect measured on fmnist-mini.

The super-learners follow the authors' training recipe (:mod:`analysis.core.superlearner`:
AdamW at maximum lr 3e-4 with weight decay 0, batch 1024, 10 / 20 epochs, the per-epoch
warm-up-then-cosine rate of ``dynamic_loss:src/models.py:233-246``, no bias before batch norm, the
best validation epoch kept). :data:`SUPERLEARNER_DIFFERENCES` lists what remains different, in
the super-learners and in the static fusions they are compared with. It is data, kept apart from
the fitting code so that rewording it does not invalidate the stored fits
(:mod:`analysis.core.fit_store` keys on the fitting modules' source).

Authors' code: ``stfxecutables/dynamic_loss`` at ``b889790``; line numbers are those of the stored
copies read (``src/ensemble.py`` at ``2da97a1``), functions are named where no line was read.
Effects: measured once on the fmnist-mini cache (10 members per arm, 60k training and 10k test
rows; the commands are in the README section "Super-learners: the authors' recipe"), else
"not measured".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Difference:
    """One way our fusions differ from the authors' code.

    ``aspect``: what differs; ``authors``: what their code does, citing ``dynamic_loss:<file>[:line]``;
    ``ours``: what we do and where; ``effect``: its measured effect on fmnist-mini, or "not measured".
    """

    aspect: str
    authors: str
    ours: str
    effect: str


SUPERLEARNER_DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        aspect="Training recipe (matched by default)",
        authors="AdamW, max lr 3e-4, weight decay 0, batch 1024 (dynamic_loss:scripts/ensemble_test.py:250); "
                "warm-up 2 (Weighted) / 5 (MLP) epochs from 1e-5, cosine to 1e-9, per epoch "
                "(dynamic_loss:src/models.py:233-246); no bias before batch norm",
        ours="the same; the former recipe (constant lr 3e-4, about 100 / 25 steps per epoch, biased Linear "
             "layers) is `SuperLearnerConfig(**PREVIOUS_RECIPE)`",
        effect="former → authors' recipe, 6 paper arms: Weighted −0.048 to −0.021, Weighted-OOB −0.057 to −0.042, "
               "MLP −0.022 to −0.002, MLP-OOB −0.020 to −0.002 test accuracy; best epochs now 9–10 of 10 "
               "(Weighted) and 10–20 of 20 (MLP; before 4–20), as in the authors' weight-decay-0 records "
               "(9–10 and 13–20, `data/authors`)",
    ),
    Difference(
        aspect="Validation split, initialisation, batch order",
        authors="90/10 `random_split` without a generator and no `seed_everything` "
                "(dynamic_loss:src/loaders/ensemble.py `ensemble_loaders`, scripts/ensemble_test.py `ensemble_eval`): "
                "a new split and initialisation each run",
        ours="one seed per fit, from the root seed and (dataset, arm, kind, variant) (`analysis.core.fuse`)",
        effect="3 seeds, arm ce, in-sample: test accuracy 0.8144–0.8238 (Weighted), 0.8406–0.8483 (MLP, 4,000 rows)",
    ),
    Difference(
        aspect="MLP training rows on fmnist-mini",
        authors="all training rows (dynamic_loss:src/loaders/ensemble.py `EnsembleTrain`, FullTrain)",
        ours="a seeded subsample of 4,000 rows on fmnist-mini only (`Preset.mlp_rows`; `--mlp-rows 0`: all rows)",
        effect="arm ce, in-sample MLP, one seed: 0.8483 on 4,000 rows, 0.8642 on all 60,000 (+0.016; 6 s vs 72 s a fit on one thread)",
    ),
    Difference(
        aspect="Vote ties",
        authors="`scipy.stats.mode`: the lowest tied class (dynamic_loss:src/ensemble.py:83)",
        ours="the tied class with the larger mean logit, then the lowest (`analysis.core.fusion.vote_fusion`)",
        effect="96–160 of 10,000 test samples tied per arm; Vote accuracy ours minus lowest-class rule −0.0008 to +0.0011",
    ),
    Difference(
        aspect="Non-finite members in the static fusions",
        authors="kept: Vote takes `argmax` of NaN logits (dynamic_loss:src/ensemble.py:80), Average a "
                "per-element `np.nanmean` (dynamic_loss:src/ensemble.py:92); the super-learners drop them "
                "(dynamic_loss:src/loaders/ensemble.py `EnsembleTrain`)",
        ours="the member is dropped for every fusion and listed in `dropped_members.csv` (`--nonfinite drop`)",
        effect="none: no non-finite member on fmnist-mini",
    ),
    Difference(
        aspect="MLP's last batch of one row",
        authors="kept (`DataLoader` without `drop_last`, dynamic_loss:src/loaders/ensemble.py `ensemble_loaders`); "
                "batch norm fails on one row",
        ours="skipped by the MLP (`analysis.core.superlearner._train`)",
        effect="none at batch 1024 unless the fit rows are 1 more than a multiple of 1024; not met on fmnist-mini "
               "(its MLP fits 3,600 rows)",
    ),
    Difference(
        aspect="Weighted model",
        authors="`WeightedAggregator` (dynamic_loss:src/models.py, imported by scripts/ensemble_test.py); its "
                "definition is not in the stored copies read",
        ours="one Linear layer with bias, member logits to classes (`analysis.core.superlearner._build_model`)",
        effect="not measured",
    ),
    Difference(
        aspect="Device and arithmetic",
        authors="PyTorch Lightning on a GPU where one is present (dynamic_loss:scripts/ensemble_test.py `ensemble_eval`)",
        ours="torch on the CPU, float32, one thread per fit; bit-equal whether fitted alone or batched",
        effect="not measured (rounding only)",
    ),
    Difference(
        aspect="Leak-free variants",
        authors="in-sample training predictions only (dynamic_loss:src/loaders/ensemble.py `EnsembleTrain`)",
        ours="also out-of-bag fits, `Weighted-OOB` and `MLP-OOB`, reported beside the published ones",
        effect="reported in `superlearner_gap.csv` and the stacking table",
    ),
)


def differences_markdown() -> str:
    """:data:`SUPERLEARNER_DIFFERENCES` as a Markdown pipe table (the README shows it verbatim)."""
    rows = ["| aspect | authors | ours | effect on fmnist-mini |", "|---|---|---|---|"]
    rows += [f"| {d.aspect} | {d.authors} | {d.ours} | {d.effect} |" for d in SUPERLEARNER_DIFFERENCES]
    return "\n".join(rows)
