"""The glossary page: every arm, fusion, metric and statistic by the name the tables use, written
from the registries that declare them (:data:`training.arms.ARMS`, :data:`analysis.core.fusions.FUSIONS`,
:data:`analysis.core.metric_registry.METRICS`, :data:`analysis.report.statistics.STATISTICS`), so
an arm or fusion added there gets its entry here; only the words no registry declares (τ, OOB,
Δ, the verdicts, ...) are written out in :data:`TERMS`.
"""

from __future__ import annotations

import pandas as pd

from analysis.core.fusions import FUSIONS
from analysis.core.metric_registry import METRICS
from analysis.report.statistics import STATISTICS
from training.arms import (ARMS, CONTROL_ARM, DEFAULT_ARMS, LR_GRID, REFERENCE_ARM, RELATED_ARMS,
                           TEXT_PROTOCOL_ARMS, Arm, at_lr)

#: each loss of :data:`training.arms.ARMS` (keyed by ``Arm.loss``, and for the dynamic loss by its
#: variant): its name in the arms' entries and what it is; a test checks every registered arm
#: finds its loss here
LOSSES: dict[str, tuple[str, str]] = {
    "ce": ("cross-entropy", "−log p_t per sample, the usual classification loss"),
    "dynamic/published": ("published dynamic loss", "the dynamic loss as the authors' PyTorch code computes it: "
                          "−log(0.1·p_t) while p_t ≤ τ, a constant once p_t > τ, so confident samples give "
                          "no gradient"),
    "dynamic/soft": ("soft dynamic loss", "−log(p_t^0.1) above τ instead of the constant"),
    "dynamic/keras": ("Keras dynamic loss", "the authors' original Keras form: Keras cross-entropy of the "
                      "renormalised target 1[p > τ] + 0.1·p·1[p ≤ τ], whose gradient above τ is small but not zero"),
    "poly1": ("Poly-1", "PolyLoss (Leng et al. 2022): cross-entropy + ε·(1 − p_t)"),
    "focal": ("focal loss", "Lin et al. 2017: −(1 − p_t)^γ·log p_t"),
    "label_smoothing": ("label smoothing", "cross-entropy against (1 − α)·one-hot + α/C"),
    "superloss": ("SuperLoss", "Castells et al. 2020: a per-sample confidence σ_i, computed from the loss and a "
                  "running threshold, scales each sample's loss"),
}

#: the words of the tables and pages that no registry declares: (term, kind, meaning)
TERMS: tuple[tuple[str, str, str], ...] = (
    ("τ (tau)", "notation", "the dynamic loss's threshold on p_t; the arm name carries it (dyn-0.7: τ = 0.7). Paper "
     "Table 1's rows are τ = 0.6 … 0.9 and “None” (plain cross-entropy, our ce)"),
    ("p_t", "notation", "the softmax probability a member gives the true class of a sample; a sample is "
     "“confident” when p_t > τ (strict, as in the authors' code)"),
    ("member", "notation", "one base learner of an ensemble: one training run of an arm on its own bootstrap "
     "split (member-000 …); a preset trains the same members for every arm"),
    ("preset", "notation", "what one `dynloss train` trains: datasets, model, epochs, members, arms "
     "(digits-tiny, fmnist-mini, paper; training/presets.py)"),
    ("Single", "fusion", "one member alone, no fusion (calibration and reliability rows only; `member` names it)"),
    ("OOB (out-of-bag)", "notation", "the training rows a member was not fitted on (about 45 % under the "
     "paper's bootstrap split); the -OOB super-learners see each member's logits only on such rows"),
    ("in-sample", "notation", "fitted on training predictions of rows the members were trained on, as "
     "published: such a super-learner learns from overconfident logits (the stacking-leak claim)"),
    ("leak-free", "notation", "a fusion whose fit never sees a member's logits on that member's own training "
     "rows: the static fusions and the -OOB super-learners (Table 1's `leak_free` column)"),
    ("super-learner", "notation", "a learned fusion (Weighted, MLP): a model fitted on the members' "
     "training-set logits"),
    ("Paper Table 1 / 2", "notation", "the tables printed in the paper (data/paper/), as published; "
     "“regenerated” tables are ours, from our cached members"),
    ("Δ vs ce, Δ vs ce-lr0.01", "notation", "accuracy minus that of the cross-entropy arm with the same "
     "fusion (table1.csv `diff_vs_ce`, `diff_vs_control`), paired over the same test samples"),
    ("test-only CI", "notation", "an interval over test samples only (members fixed): another test set of "
     "the same size"),
    ("seed CI", "notation", "a two-level interval over training seeds and test samples (`seed_ci_*`, "
     "`diff_seed_ci_*`, `control_seed_ci_*`): other members and another test set; static fusions only"),
    ("encoding", "notation", "how Paper Table 2 may have placed the cross-entropy (“None”) row on the τ axis "
     "when it correlated accuracy with τ: the text does not say, so each encoding is computed"),
    ("temperature scaling", "notation", "one temperature T fitted on half the test set (logits / T), "
     "scored on the other half and the other way round; “scaling=temperature” rows of calibration.csv"),
    ("risk–coverage", "notation", "the error rate among the predictions kept when only the most confident "
     "fraction (the coverage) is kept; AURC is its area"),
    ("✓ holds, ✗ fails, ◐ conditional", "verdict", "a claim's verdict, decided by computation (`dynloss audit`): "
     "conditional = true only under the condition its evidence states"),
    ("proxy preset", "verdict", "evidence from our own smaller runs (digits-tiny, fmnist-mini), not the "
     "paper's scale; the weakest kind of evidence a verdict can rest on"),
)

_KINDS = ("loss", "arm", "fusion", "metric", "statistic", "notation", "verdict")


def arm_meaning(arm: Arm) -> str:
    """What an arm trains and why it is in the grid, from its record and the arm tuples of
    :mod:`training.arms`.

    >>> arm_meaning(ARMS["ce-lr0.01"]).split(";")[0]
    'cross-entropy at lr 0.01'
    """
    loss = arm.loss if arm.loss != "dynamic" else f"dynamic/{arm.loss_kwargs()['variant']}"
    what = LOSSES[loss][0]
    params = {k: v for k, v in arm.loss_params if k not in ("variant",)}
    shown = ", ".join(f"{'τ' if k == 'threshold' else k} = {v:g}" for k, v in params.items())
    parts = [f"{what}{f' ({shown})' if shown else ''} at lr {arm.lr:g}"]
    tuning = {at_lr(a, lr) for a in (REFERENCE_ARM, "dyn-0.7") for lr in LR_GRID}
    if arm.name == REFERENCE_ARM:
        parts.append("the paper's “None” row (the text's lr for cross-entropy); the reference of Δ vs ce")
    if arm.name == CONTROL_ARM:
        parts.append("the learning-rate control: cross-entropy at the dynamic arms' lr, which separates the loss "
                     "from the learning-rate change")
    if arm.name in DEFAULT_ARMS and arm.threshold is not None:
        parts.append("a row of Paper Table 1, at the authors' code's lr 0.01 (the text says 0.1)")
    if arm.name in TEXT_PROTOCOL_ARMS and arm.name != REFERENCE_ARM:
        parts.append("the text's protocol: every arm at lr 0.1")
    if arm.name in RELATED_ARMS:
        parts.append("a related loss, compared with ce-lr0.01 under one protocol")
    if arm.name in tuning and arm.name not in DEFAULT_ARMS:
        parts.append("a point of the learning-rate tuning grid")
    return "; ".join(parts)


def glossary_frame() -> pd.DataFrame:
    """Every term of the tables, ``term, kind, meaning``: losses (:data:`LOSSES`), then arms,
    fusions, metrics and statistics from their registries, then :data:`TERMS`.

    >>> g = glossary_frame()
    >>> {"ce", "ce-lr0.01", "dyn-0.7", "ProbAverage", "MLP-OOB", "ECE", "seed CI"} <= set(g["term"])
    True
    """
    rows = [{"term": name, "kind": "loss", "meaning": meaning} for name, meaning in LOSSES.values()]
    rows += [{"term": a.name, "kind": "arm", "meaning": arm_meaning(a)} for a in ARMS.values()]
    rows += [{"term": f.name, "kind": "fusion",
              "meaning": f"{f.label}" + ("; one of the paper's four fusions" if f.published else "")
              + ("; learned (a super-learner)" if f.learned else "; static (a fixed rule)")}
             for f in sorted(FUSIONS.values(), key=lambda f: f.order)]
    rows += [{"term": m.label if m.label != m.name else m.name, "kind": "metric",
              "meaning": f"{m.description} (`{m.name}`; {m.direction} is better)"} for m in METRICS.values()]
    rows += [{"term": s.name, "kind": "statistic",
              "meaning": f"{s.what.split('. ')[0].rstrip('.')} ([statistics page](statistics.qmd#sec-stat-{s.key}))"}
             for s in STATISTICS]
    rows += [{"term": t, "kind": k, "meaning": m} for t, k, m in TERMS]
    frame = pd.DataFrame(rows, columns=["term", "kind", "meaning"])
    return frame.sort_values("kind", key=lambda s: s.map(_KINDS.index), kind="stable").reset_index(drop=True)


def glossary_table(*kinds: str):
    """The entries of ``kinds`` as the page shows them (meanings are markdown: code spans and links).

    Raises
    ------
    ValueError
        When a kind is unknown (the message lists the known ones).
    """
    from analysis.report.markdown import Table

    unknown = [k for k in kinds if k not in _KINDS]
    if unknown or not kinds:
        raise ValueError(f"Expected kinds among {list(_KINDS)}, got {list(kinds)}")
    frame = glossary_frame()
    frame = frame[frame["kind"].isin(kinds)].reset_index(drop=True)
    if len(kinds) == 1:
        frame = frame.drop(columns="kind")
    return Table(frame, markdown=("meaning",), widths=(("term", 14), ("kind", 6), ("meaning", 60)))
