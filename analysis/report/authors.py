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
def provenance_table() -> pd.DataFrame:
    """Every published Table 1 cell with the record that gives it and that record's setting:
    ``cell`` (dataset, fusion, τ), ``published``, ``record`` (its file name without ``.json``),
    ``setting``, ``record value`` (6 decimals), ``also printed by`` (records of other settings)."""
    from analysis.audit.authors_tables import table1_provenance
    from analysis.audit.published import load_published_table1

    p = table1_provenance(_records(), load_published_table1())
    # "<record> (ordered, wd=0.05, best)" -> "wd 0.05, best": the record ids are in the claim's values
    also = p["also_given_by"].str.replace(r"\S+ \((?:ordered, )?wd=([^,]+), (\w+)\)", r"wd \1, \2", regex=True)
    return pd.DataFrame({
        "cell": p["dataset"] + " " + p["fusion"] + " " + p["threshold"], "published": p["published"],
        "record": p["record"],
        "setting": p["setting"].str.replace("static fusion", "static", regex=False)
                               .str.replace(r"wd=(\S+), (\w+) epoch", r"wd \1, \2", regex=True),
        "record value": p["value"].map(lambda v: f"{v:.6f}"), "also printed by": also.replace("", "–"),
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
    """Validation − test accuracy of the super-learners per dataset (evaluations that ran)."""
    from analysis.audit.authors_claims import gap_summary
    from analysis.audit.authors_tables import validation_vs_test

    g = gap_summary(validation_vs_test(_records()))
    return pd.DataFrame({
        "dataset": g["dataset"], "evaluations": g["n"], "validation > test": g["n_positive"],
        "mean gap (kept epoch)": g["gap_best_mean"], "min gap": g["gap_best_min"], "max gap": g["gap_best_max"],
        "mean gap (last epoch)": g["gap_last_mean"], "mean gap, CE": g["gap_ce_mean"],
        "mean gap, dynamic": g["gap_dynamic_mean"], "2 SE of a validation accuracy": 2 * g["val_se"],
    })


@reads("authors:records")
def failed_table() -> pd.DataFrame:
    """The learned evaluations that failed (non-finite loss), with their recorded accuracies."""
    vt = validation_frame()
    f = vt[vt["failed"]]
    return pd.DataFrame({"record": f["record"], "dataset": f["dataset"], "fusion": f["fusion"],
                         "τ": f["threshold"], "variant": f["variant"], "weight decay": f["wd"].map(lambda w: f"{w:g}"),
                         "validation": f["val_best"], "test": f["test_best"]}).reset_index(drop=True)


@reads("authors:records")
def pooled_shuffled_table() -> pd.DataFrame:
    """Pooled and member-shuffled evaluations beside their member-ordered twins (same weight decay 0.05)."""
    from analysis.audit.authors_tables import pooled_shuffled_comparison

    c = pooled_shuffled_comparison(_records())
    return pd.DataFrame({
        "variant": c["variant"], "dataset": c["dataset"], "fusion": c["fusion"], "τ": c["threshold"],
        "test": c["test"].where(~c["failed"]), "failed": c["failed"].map({True: "yes", False: ""}),
        "ordered test": c["ordered_test"], "Δ vs ordered": c["diff_vs_ordered"].round(4),
        "Δ vs CE (this variant)": c["diff_vs_ce"].round(4), "Δ vs CE (ordered)": c["ordered_diff_vs_ce"].round(4),
    })


@reads("bootstrap_ci", "mcnemar")
def lr_confound_table(ctx: ReportContext) -> pd.DataFrame:
    """Each dynamic arm against ``ce`` and ``ce-lr0.01`` in the paper's four fusions: difference,
    paired 95 % CI over test samples (unadjusted), McNemar p (unadjusted) and its Holm adjustment
    (``mcnemar.csv``'s family: every arm against one reference, per dataset and fusion), and the
    label at 5 % from the adjusted p (:func:`analysis.report.statistics.holm_label`: an "n.s." whose
    unadjusted interval excludes 0 says so)."""
    from analysis.audit.cache_claims import dynamic_vs_references
    from analysis.report.statistics import CI_TEST_ONLY, MCNEMAR_P, holm_label

    t = dynamic_vs_references(load_result("bootstrap_ci", ctx), load_result("mcnemar", ctx))
    ci = [f"[{a:+.4f}, {b:+.4f}]" for a, b in zip(t["ci_low"], t["ci_high"])]
    label = [holm_label(d, a, b) for d, a, b in zip(t["direction"], t["ci_low"], t["ci_high"])]
    return pd.DataFrame({"dataset": t["dataset"], "versus": t["reference"], "fusion": t["fusion"], "arm": t["arm"],
                         "Δ accuracy": t["diff"], f"95 % CI, {CI_TEST_ONLY} (unadjusted)": ci,
                         MCNEMAR_P: t["pvalue"], "Holm p (adjusted)": t["p_holm"],
                         "at 5 % (Holm)": label})
