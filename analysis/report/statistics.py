"""The statistics page: one record per interval and test the toolkit uses (:data:`STATISTICS`),
what each is used for, what randomness it covers and what it does not, and the labels the pages
use for them (:func:`holm_label`, :data:`CI_TEST_ONLY`, :data:`CI_SEEDS`). The page
(``reports/statistics.qmd``) and the README's "Statistics" subsection are written from these
records; every record names the functions that compute it (``implementation``), which a test
imports, so a record cannot outlive its code.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from analysis.core.config import AnalysisConfig
from analysis.core.stats import MCNEMAR_EXACT_BELOW
from analysis.report.context import ReportContext, ResultsMissingError, load_provenance, load_result, reads

#: the two kinds of interval a difference of accuracies can carry, as the tables name them
#: (the bottom line says "over test samples only" and "over test samples and training seeds")
CI_TEST_ONLY = "test samples only"
CI_SEEDS = "training seeds and test samples"
#: the same two in a table column's parentheses, where the width is short
CI_TEST_SHORT = "test samples"
CI_SEEDS_SHORT = "seeds + test samples"

#: the column of an unadjusted McNemar p-value
MCNEMAR_P = "McNemar p (two-sided, unadjusted)"

#: significance level of every test's label (the claims' ``ALPHA``)
ALPHA = 0.05

_DEFAULTS = AnalysisConfig()

#: half-width of the 95 % Fisher-z interval around r = 0 for n = 5: tanh(z_0.975 / √(5 − 3))
_FISHER_HALF_WIDTH_N5 = math.tanh(NormalDist().inv_cdf(0.975) / math.sqrt(5 - 3))


@dataclass(frozen=True)
class Statistic:
    """One interval or test.

    Attributes
    ----------
    key : short id (the page's section anchor is ``sec-stat-<key>``).
    name : its name on the page.
    kind : ``"interval"`` or ``"test"`` (or ``"adjustment"``).
    what : what it computes, in one or two sentences.
    used_for : where its numbers appear (result columns, tables, claims).
    covers : the randomness it accounts for.
    misses : what it does not account for (what a reader must not read into it).
    sided : the alternative (tests) or the coverage (intervals).
    implementation : dotted names of the functions that compute it (``module:attribute`` for
        functions of other libraries), checked importable by the tests.
    test_samples, training_seeds : whether it accounts for the test-sample noise, and for the
        training randomness of the members (the page's table).
    """

    key: str
    name: str
    kind: str
    what: str
    used_for: str
    covers: str
    misses: str
    sided: str
    implementation: tuple[str, ...]
    test_samples: bool = False
    training_seeds: bool = False


STATISTICS: tuple[Statistic, ...] = (
    Statistic(
        key="paired-bootstrap", name="Paired percentile bootstrap over test samples", kind="interval",
        what=(f"Draws the test samples with replacement ({_DEFAULTS.n_resamples:,} resamples by default) and "
              f"recomputes every cell's accuracy on each resample; the interval is the 2.5 % and 97.5 % "
              f"quantiles of the draws. All cells of a dataset share the resamples, so a difference of two "
              f"cells is bootstrapped as a difference on the same samples (paired)."),
        used_for=("accuracy intervals of regenerated Table 1 (`ci_low`, `ci_high`), every Δ accuracy against "
                  "`ce` and `ce-lr0.01` (`diff_ci_*`, `control_ci_*`, `bootstrap_ci.csv`), columns named "
                  f"\"{CI_TEST_ONLY}\"; the bootstrap interval of Table 2's r (`r_boot_ci_*`)"),
        covers="which test samples the test set happens to hold (test-set sampling noise)",
        misses=("training randomness: the members are held fixed (their initialisation, data order and "
                "bootstrap splits), so a rerun with other seeds can fall outside it; for Table 2's r it also "
                "holds the five arms fixed, so it is far narrower than an interval for a correlation of "
                "n = 5 points can honestly be (a test-only interval, not an interval on r's population value)"),
        sided="two-sided 95 % percentile interval",
        implementation=("analysis.core.stats.bootstrap_accuracies", "analysis.core.stats.percentile_interval",
                        "analysis.core.tables.accuracy_tables"), test_samples=True),
    Statistic(
        key="two-level-bootstrap", name="Two-level bootstrap over training seeds (members) and test samples",
        kind="interval",
        what=(f"Each of {_DEFAULTS.n_seed_resamples:,} resamples draws every arm's members with replacement "
              f"(independently per arm), re-fuses the drawn members, and scores them on the test samples of "
              f"the paired bootstrap's resample of the same number (shared by the arms, so differences stay "
              f"paired over samples). The downward shift of ensembles with repeated members is estimated on "
              f"the same resamples and removed, so identical members give the test-only interval exactly."),
        used_for=("Table 1's `seed_ci_*`, `diff_seed_ci_*`, `control_seed_ci_*` (static fusions only) and "
                  f"`related_losses.csv`'s `control_seed_ci_*`, columns named \"{CI_SEEDS}\"; the bottom line's "
                  f"interval against `ce-lr0.01` when present"),
        covers="training randomness as far as the arm's members sample it (initialisation, data order, each "
               "member's bootstrap split), and test-set sampling noise",
        misses=("learned fusions (a super-learner would need a refit per resample: NaN); randomness shared by "
                "all members of an arm (the root seed's splits, the learning-rate choice of the tuning); with "
                "few members per arm it is itself a rough estimate of the spread between reruns"),
        sided="two-sided 95 % percentile interval",
        implementation=("analysis.core.seed_bootstrap.resampled_fusion_accuracies",
                        "analysis.core.seed_bootstrap.member_count_draws", "analysis.core.tables.seed_accuracy_draws"),
        test_samples=True, training_seeds=True),
    Statistic(
        key="mcnemar", name="McNemar's test", kind="test",
        what=(f"Tests whether two classifiers scored on the same test samples have equal error rates, from "
              f"the discordant pairs only (n01: the first right and the second wrong; n10: the reverse): the "
              f"exact binomial test when n01 + n10 < {MCNEMAR_EXACT_BELOW}, else the chi-square test with "
              f"continuity correction (statsmodels)."),
        used_for="`mcnemar.csv` (every arm against `ce` and `ce-lr0.01`, per fusion); the headline table, the "
                 "learning-rate tests and protocols, the authors page's learning-rate table; `lr-confound`",
        covers="test-set sampling noise, paired (the same samples for both classifiers)",
        misses="training randomness (members fixed, as in the paired bootstrap); it tests equality, not the size "
               "of a difference (read the interval for that)",
        sided="two-sided",
        implementation=("analysis.core.stats.mcnemar_test", "analysis.core.tables.mcnemar_table",
                        "statsmodels.stats.contingency_tables:mcnemar"), test_samples=True),
    Statistic(
        key="holm", name="Holm's step-down adjustment", kind="adjustment",
        what=(f"Adjusts a family of p-values so that the chance of any false rejection in the family stays at "
              f"most α = {ALPHA:g} (statsmodels' `multipletests(method=\"holm\")`). A cell is labelled "
              f"better or worse only when its adjusted p is below α, else \"n.s. (Holm)\"; the intervals beside "
              f"it are not adjusted, so an interval can exclude 0 in a cell Holm leaves n.s."),
        used_for=("three families: `mcnemar.csv`'s `pvalue_holm` over every arm compared with one reference arm, "
                  "per dataset and fusion (the authors page's \"Holm p\"); the learning-rate protocols, over each "
                  "protocol's dynamic arms per dataset and fusion (`lr-confound`); `dynloss compare --adjust "
                  "holm`, over every compared cell"),
        covers="the multiplicity of the tests within one family",
        misses="tests of other families (e.g. across fusions, datasets or protocols), and the unadjusted intervals",
        sided="as its tests (two-sided McNemar)",
        implementation=("analysis.core.stats.holm", "analysis.audit.cache_claims.protocol_cells",
                        "statsmodels.stats.multitest:multipletests")),
    Statistic(
        key="permutation", name="Exact permutation test of Pearson r", kind="test",
        what=("Recomputes r of accuracy against τ for every one of the n! orderings of the accuracies (120 for "
              "the five rows of Table 2, 24 with the cross-entropy row left out); the two-sided p is the share of "
              "orderings with |r| at least the observed |r| (scipy's `permutation_test`, all orderings "
              "enumerated); the one-sided share (r at least the observed) is in `table2.csv` as `perm_p_greater`."),
        used_for=("regenerated Table 2's \"permutation p (two-sided)\" (`perm_p_two_sided`); claim "
                  "`table2-correlation` decides with the one-sided p (`perm_p_greater`: r at least the observed, "
                  "the paper claiming a positive correlation), and says so"),
        covers="the null hypothesis that accuracy is unrelated to τ, treating the n accuracies as exchangeable",
        misses=("the noise in each accuracy (test samples, training seeds); the smallest two-sided p is 1/n!, or "
                "2/n! when the τ values are evenly spaced (then the reversed order reaches |r| = 1 too): 2/120 ≈ "
                "0.017 for five points with cross-entropy at τ = 1, 2/24 ≈ 0.083 for τ 0.6–0.9 alone, so no "
                "four-point r can be significant at 5 % two-sided (one-sided, the smallest p is 1/n!: 1/24 ≈ 0.042)"),
        sided="two-sided (|r|) in the tables; one-sided (r ≥ observed) in `table2-correlation`",
        implementation=("analysis.core.stats.permutation_pvalues", "scipy.stats:permutation_test")),
    Statistic(
        key="fisher-z", name="Fisher-z interval of Pearson r", kind="interval",
        what=("The interval tanh(atanh(r) ± z/√(n − 3)) (scipy's `pearsonr(...).confidence_interval`), which "
              "assumes the n (τ, accuracy) points are a sample from a bivariate normal population."),
        used_for="regenerated Table 2's \"Fisher-z 95 % CI\" (`pearson_ci_*`); `table2-correlation`",
        covers="the sampling of the n points themselves, the uncertainty of a correlation over few points",
        misses=(f"whether the normal model fits five design points of τ; needs n > 3 and |r| < 1; with n = 5 it "
                f"is wide (±{_FISHER_HALF_WIDTH_N5:.2f} around r = 0), which is the honest width for five points"),
        sided="two-sided 95 %",
        implementation=("analysis.core.stats.correlation_summary", "scipy.stats:pearsonr")),
    Statistic(
        key="t-interval", name="t-interval of a mean gap (stacking-leak)", kind="interval",
        what=("The Student-t interval of the mean validation − test accuracy gap of the super-learner fits "
              "(`scipy.stats.ttest_1samp(...).confidence_interval`), in-sample, out-of-bag and their paired "
              "difference."),
        used_for="claim `stacking-leak` and the bottom line's stacking sentence",
        covers="the spread between fits (dataset × arm × super-learner), as if they were independent",
        misses=("the fits share members, training rows and the test set, so they are not independent and the "
                "interval is too narrow; no test-sample or training-seed resampling"),
        sided="two-sided 95 %",
        implementation=("analysis.audit.cache_claims._mean_ci", "scipy.stats:ttest_1samp")),
    Statistic(
        key="wilcoxon", name="Wilcoxon signed-rank test (stacking-leak)", kind="test",
        what="The signed-rank test that the in-sample minus out-of-bag gap of paired fits is centred on 0 "
             "(scipy's `wilcoxon`).",
        used_for="claim `stacking-leak`'s evidence (\"Wilcoxon p\")",
        covers="the signs and ranks of the paired gaps, without a normal model",
        misses="as the t-interval: the pairs are not independent; no test-sample or training-seed resampling",
        sided="two-sided",
        implementation=("analysis.audit.cache_claims.evaluate_stacking_leak", "scipy.stats:wilcoxon")),
)

#: the records by key
BY_KEY: dict[str, Statistic] = {s.key: s for s in STATISTICS}


def resolve(name: str):
    """The object a record's ``implementation`` entry names (``pkg.module.attr`` or ``pkg.module:attr``).

    Raises
    ------
    ValueError
        When the name is not ``module.attribute`` or ``module:attribute``.
    """
    module, sep, attr = name.partition(":") if ":" in name else name.rpartition(".")
    if not module or not attr or not sep:
        raise ValueError(f"Expected `name` as 'module.attribute' or 'module:attribute', got {name!r}")
    return getattr(importlib.import_module(module), attr)


def holm_label(direction: str, ci_low: float, ci_high: float) -> str:
    """The label of a Holm-adjusted test: ``better (Holm)``/``worse (Holm)``, else ``n.s. (Holm)``,
    with the unadjusted interval's side added when that interval excludes 0 (never a bare "n.s."
    next to an interval that excludes 0).

    >>> holm_label("n.s.", -0.0101, -0.0012)
    'n.s. (Holm); unadjusted CI below 0'
    >>> holm_label("worse", -0.03, -0.01), holm_label("n.s.", -0.01, 0.02)
    ('worse (Holm)', 'n.s. (Holm)')
    """
    if direction not in ("better", "worse", "n.s."):
        raise ValueError(f"Expected `direction` in ('better', 'worse', 'n.s.'), got {direction!r}")
    if direction != "n.s.":
        return f"{direction} (Holm)"
    side = "above" if ci_low > 0 else ("below" if ci_high < 0 else None)
    return "n.s. (Holm)" if side is None else f"n.s. (Holm); unadjusted CI {side} 0"


def methods_frame() -> pd.DataFrame:
    """One row per record: ``method, kind, test samples, training seeds, sided`` (whether it covers
    each kind of randomness: ✓ or –); the sections of :func:`methods_markdown` say the rest."""
    def mark(flag: bool) -> str:
        return "✓" if flag else "–"

    return pd.DataFrame({
        "method": [s.name for s in STATISTICS], "kind": [s.kind for s in STATISTICS],
        "test samples": [mark(s.test_samples) for s in STATISTICS],
        "training seeds": [mark(s.training_seeds) for s in STATISTICS],
        "sided": [s.sided for s in STATISTICS],
    })


def _impl(s: Statistic) -> str:
    return ", ".join(f"`{n}`" for n in s.implementation)


def applied_note(table1: pd.DataFrame | None, mcnemar: pd.DataFrame | None, table2: pd.DataFrame | None,
                 provenance: dict | None) -> dict[str, str]:
    """Per record key, a sentence on how it was applied to one results set (counts read from the
    tables; a key is absent when its table is). Pure: frames and the provenance dict in."""
    out: dict[str, str] = {}
    settings = (provenance or {}).get("config") or {}
    if table1 is not None and len(table1):
        n_res = int(table1["n_resamples"].iloc[0]) if "n_resamples" in table1 else None
        n_test = sorted({int(v) for v in table1["n_test"]}) if "n_test" in table1 else []
        level = float(table1["confidence_level"].iloc[0]) if "confidence_level" in table1 else None
        out["paired-bootstrap"] = (f"Here: {n_res:,} resamples of {', '.join(f'{n:,}' for n in n_test)} test samples"
                                   + (f", level {level:g}" if level is not None else "") + ".")
        if {"control_seed_ci_low", "seed_ci_low"} <= set(table1.columns):
            shown = table1.dropna(subset=["seed_ci_low"])
            n_seed = settings.get("n_seed_resamples") if isinstance(settings, dict) else None
            members = sorted({int(v) for v in shown["n_members"]}) if "n_members" in shown else []
            out["two-level-bootstrap"] = (
                f"Here: {len(shown)} of {len(table1)} Table 1 cells carry it"
                + (f", {int(n_seed):,} resamples" if n_seed else "")
                + (f", {'/'.join(str(m) for m in members)} members per arm" if members else "") + ".")
    if mcnemar is not None and len(mcnemar):
        exact = int((mcnemar["exact"] == 1).sum()) if "exact" in mcnemar else 0
        out["mcnemar"] = (f"Here: {len(mcnemar)} tests, {exact} of them exact (fewer than {MCNEMAR_EXACT_BELOW} "
                          f"discordant pairs).")
        if "pvalue_holm" in mcnemar:
            sizes = mcnemar.groupby(["dataset", "reference", "fusion"]).size()
            out["holm"] = (f"Here, `mcnemar.csv`: {len(sizes)} families (dataset × reference × fusion) of "
                           f"{'–'.join(str(v) for v in sorted({int(s) for s in (sizes.min(), sizes.max())}))} "
                           f"tests each; adjusted p below {ALPHA:g} in {int((mcnemar['pvalue_holm'] < ALPHA).sum())} "
                           f"tests, unadjusted in {int((mcnemar['pvalue'] < ALPHA).sum())}.")
    if table2 is not None and len(table2) and "n" in table2:
        ns = sorted({int(v) for v in table2["n"].dropna()})
        if ns:
            out["permutation"] = f"Here: n = {', '.join(map(str, ns))} points per cell of Table 2."
            out["fisher-z"] = out["permutation"]
    return out


def _optional(name: str, ctx: ReportContext) -> pd.DataFrame | None:
    try:
        return load_result(name, ctx)
    except ResultsMissingError:
        return None


@reads("table1", "mcnemar", "table2")
def methods_markdown(ctx: ReportContext | None = None) -> str:
    """The page's sections, one per record (``## name {#sec-stat-key}``): what it computes, where it
    is used, what it covers and what not, the sidedness, the code; with ``ctx``, how it was applied
    to that preset's results."""
    applied: dict[str, str] = {}
    if ctx is not None:
        try:
            prov = load_provenance(ctx)
        except (ResultsMissingError, ValueError, OSError):
            prov = None
        applied = applied_note(_optional("table1", ctx), _optional("mcnemar", ctx), _optional("table2", ctx), prov)
    parts = []
    for s in STATISTICS:
        parts.append(
            f"## {s.name} {{#sec-stat-{s.key}}}\n\n{s.what}\n\n"
            f"- **Used for:** {s.used_for}.\n- **Covers:** {s.covers}.\n- **Does not cover:** {s.misses}.\n"
            f"- **Sided:** {s.sided}.\n- **Code:** {_impl(s)}.\n"
            + (f"\n{applied[s.key]}\n" if s.key in applied else ""))
    return "\n".join(parts)


def readme_markdown() -> str:
    """The README's "Statistics" list: one line per record (name: used for)."""
    return "\n".join(f"- **{s.name}**: {s.used_for}." for s in STATISTICS) + "\n"


def bare_ns_next_to_excluding_interval(labels: pd.Series, ci_low: pd.Series, ci_high: pd.Series) -> np.ndarray:
    """Boolean mask: the label is a bare ``n.s.`` while its unadjusted interval excludes 0 (what the
    pages must never show)."""
    excl = (np.asarray(ci_low, dtype=float) > 0) | (np.asarray(ci_high, dtype=float) < 0)
    return (np.asarray(labels, dtype=object) == "n.s.") & excl
