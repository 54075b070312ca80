"""The page on the authors' own results: their evaluation records (``data/authors/``) shaped for
display, and our caches' learning-rate comparison beside them. Frames in, frames out; the numbers
come from :mod:`analysis.audit.authors_tables`, :mod:`analysis.audit.authors_claims` and
:mod:`analysis.audit.cache_claims`.
"""

from __future__ import annotations

import functools

import pandas as pd

from analysis.report.context import ReportContext, load_result, reads


@functools.lru_cache(maxsize=1)
def _records() -> pd.DataFrame:
    from analysis.audit.authors import read_authors_records

    return read_authors_records()


@reads("authors:records")
def source_note() -> str:
    """A markdown paragraph: where the records come from, how many, and their checksum."""
    from analysis.audit.authors import SOURCE_COMMIT, SOURCE_REPOSITORY, records_digest

    rec = _records()
    n_static, n_learned = int((rec["kind"] == "static").sum()), int((rec["kind"] == "learned").sum())
    return (f"The {len(rec)} evaluation records ({n_static} static fusions, {n_learned} super-learner fits) come "
            f"unchanged from the authors' repository `{SOURCE_REPOSITORY}` at commit `{SOURCE_COMMIT[:12]}` "
            f"(MIT License; notice in `data/authors/LICENSE`); SHA-256 of the set `{records_digest()[:12]}`.\n")


@reads("authors:records", "paper:table1_accuracy.csv")
def provenance_summary_table() -> pd.DataFrame:
    """Where Paper Table 1's cells come from, per dataset and kind of fusion: cells, cells the
    selected record prints, the setting, the published range and the cells other settings print
    too (``data/authors/table1_provenance_summary.csv``, which also holds the largest
    |record − published|, float noise below 1e-7; the cell by
    cell listing is ``table1_provenance.csv``: :mod:`analysis.report.downloads`)."""
    from analysis.report.downloads import authors_file

    p = authors_file("table1_provenance_summary.csv")
    return pd.DataFrame({
        "dataset": p["dataset"], "fusions": p["kind"].map({"static": "Average, Vote", "learned": "Weighted, MLP"}),
        "cells given": p["given"].astype(str) + " / " + p["cells"].astype(str),
        "record's setting": p["setting"].str.replace("static fusion", "static (no training)", regex=False)
                                       .str.replace(r"wd=(\S+), (\w+) epoch", r"wd \1, \2 epoch", regex=True),
        "published": [f"{a:.4f}–{b:.4f}" for a, b in zip(p["published_min"], p["published_max"])],
        "also printed by another setting": p["coincidences"],
    })


@reads("authors:records", "paper:table1_accuracy.csv")
def rules_table() -> pd.DataFrame:
    """Selection rules (weight decay × epoch) of the learned cells and how many published cells each gives."""
    from analysis.audit.authors_tables import rule_candidates
    from analysis.audit.published import load_published_table1

    r = rule_candidates(_records(), load_published_table1())
    return pd.DataFrame({"weight decay": r["wd"].map(lambda w: f"{w:g}"), "epoch kept": r["epoch"],
                         "published cells given": r["cells_given"].astype(str) + " / " + r["n_cells"].astype(str)})


@reads("authors:records")
def validation_frame() -> pd.DataFrame:
    """Validation and test accuracy of every learned evaluation (``validation_vs_test``), for the figure."""
    from analysis.audit.authors_tables import validation_vs_test

    return validation_vs_test(_records())


@reads("authors:records")
def gap_table() -> pd.DataFrame:
    """Validation − test accuracy of the super-learners per dataset (evaluations that ran): the mean
    gap at the kept epoch, its range and twice the standard error of a validation accuracy first
    (the columns a narrow screen shows), then the counts and the other means."""
    from analysis.report.downloads import authors_file

    g = authors_file("validation_gap_summary.csv")  # as shipped
    return pd.DataFrame({
        "dataset": g["dataset"], "mean gap": g["gap_best_mean"],
        "range": [f"[{a:+.4f}, {b:+.4f}]" for a, b in zip(g["gap_best_min"], g["gap_best_max"])],
        "2 SE": 2 * g["val_se"], "val > test": g["n_positive"].astype(str) + " / " + g["n"].astype(str),
        "last epoch": g["gap_last_mean"], "CE": g["gap_ce_mean"], "dynamic": g["gap_dynamic_mean"],
    })


def _failed() -> pd.DataFrame:
    vt = validation_frame()
    f = vt[vt["failed"]]
    return pd.DataFrame({"record": f["record"], "dataset": f["dataset"], "fusion": f["fusion"],
                         "τ": f["threshold"], "variant": f["variant"], "weight decay": f["wd"].map(lambda w: f"{w:g}"),
                         "validation": f["val_best"], "test": f["test_best"]}).reset_index(drop=True)


@reads("authors:records")
def failed_table() -> pd.DataFrame:
    """The learned evaluations that failed (non-finite loss), with their recorded accuracies; the
    columns with one value on every row are left to :func:`failed_note`."""
    from analysis.report.frames import without_constant_columns

    return without_constant_columns(_failed(), keep=("record", "validation"))


@reads("authors:records")
def failed_note() -> str:
    """A markdown sentence: what every failed fit shares (the columns :func:`failed_table` drops)."""
    from analysis.report.frames import constant_note

    return constant_note(_failed(), "the failed fits", keep=("record", "validation"))


@reads("authors:records")
def pooled_shuffled_summary_table() -> pd.DataFrame:
    """Pooled and member-shuffled fits against their member-ordered twins (weight decay 0.05), per
    variant and dataset (``data/authors/pooled_shuffled_summary.csv``; fit by fit:
    ``pooled_shuffled.csv``)."""
    from analysis.report.downloads import authors_file

    c = authors_file("pooled_shuffled_summary.csv")
    return pd.DataFrame({
        "variant": c["variant"], "dataset": c["dataset"],
        "fits (failed)": [f"{n} ({f})" if f else str(n) for n, f in zip(c["fits"], c["failed"])],
        "Δ vs ordered, mean": c["diff_vs_ordered_mean"],
        "Δ vs ordered, range": [f"[{a:+.4f}, {b:+.4f}]" for a, b in zip(c["diff_vs_ordered_min"], c["diff_vs_ordered_max"])],
        "dynamic > CE": c["dynamic_better"].astype(str) + " / " + c["dynamic_fits"].astype(str),
        "dynamic − CE, mean": c["diff_vs_ce_mean"], "same, ordered twins": c["ordered_diff_vs_ce_mean"],
    })


def _lr_confound(ctx: ReportContext) -> pd.DataFrame:
    from analysis.audit.cache_claims import dynamic_vs_references
    from analysis.report.statistics import CI_TEST_ONLY, MCNEMAR_P, holm_label

    t = dynamic_vs_references(load_result("bootstrap_ci", ctx), load_result("mcnemar", ctx))
    ci = [f"[{a:+.4f}, {b:+.4f}]" for a, b in zip(t["ci_low"], t["ci_high"])]
    label = [holm_label(d, a, b) for d, a, b in zip(t["direction"], t["ci_low"], t["ci_high"])]
    return pd.DataFrame({"arm": t["arm"], "Δ accuracy": t["diff"], f"95 % CI, {CI_TEST_ONLY} (unadjusted)": ci,
                         "at 5 % (Holm)": label, "versus": t["reference"], "fusion": t["fusion"],
                         "dataset": t["dataset"], MCNEMAR_P: t["pvalue"], "Holm p (adjusted)": t["p_holm"]})


#: relative widths of the learning-rate table's columns: the arm and the reference on one line
#: ("dyn-0.7", "ce-lr0.01" break at their hyphen in a narrower column), the label the widest
LR_WIDTHS: tuple[tuple[str, int], ...] = (
    ("arm", 11), ("Δ accuracy", 10), ("95 % CI, test samples only (unadjusted)", 18), ("at 5 % (Holm)", 20),
    ("versus", 12), ("fusion", 11), ("dataset", 10), ("McNemar p (two-sided, unadjusted)", 12),
    ("Holm p (adjusted)", 11))

#: the columns of the learning-rate table that are never dropped (its numbers and labels): only the
#: dataset, the reference or the fusion go into the sentence above it when one value fills them
_LR_KEY = ("arm", "Δ accuracy", "95 % CI, test samples only (unadjusted)", "at 5 % (Holm)",
           "McNemar p (two-sided, unadjusted)", "Holm p (adjusted)")


@reads("bootstrap_ci", "mcnemar")
def lr_confound_table(ctx: ReportContext) -> pd.DataFrame:
    """Each dynamic arm against ``ce`` and ``ce-lr0.01`` in the paper's four fusions: the arm, then
    the difference, its paired 95 % CI over test samples (unadjusted) and the label at 5 % from the
    Holm-adjusted p (:func:`analysis.report.statistics.holm_label`: an "n.s." whose unadjusted
    interval excludes 0 says so), first, where a narrow screen shows them; then the reference, the
    fusion, McNemar's p (unadjusted) and its Holm adjustment (``mcnemar.csv``'s family: every arm
    against one reference, per dataset and fusion). Columns with one value on every row (one
    dataset) are left to :func:`lr_confound_note`."""
    from analysis.report.frames import without_constant_columns

    return without_constant_columns(_lr_confound(ctx), keep=_LR_KEY)


@reads("bootstrap_ci", "mcnemar")
def lr_confound_note(ctx: ReportContext) -> str:
    """A markdown sentence: the columns :func:`lr_confound_table` drops, with their one value."""
    from analysis.report.frames import constant_note

    return constant_note(_lr_confound(ctx), "the table below", keep=_LR_KEY)
