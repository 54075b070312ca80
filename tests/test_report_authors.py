"""Report helpers of the page on the authors' own results: tables shaped from the records, the
validation-against-test figure, and record names surviving markdown."""

from __future__ import annotations

import numpy as np

from analysis.report import authors, downloads, figures
from analysis.report.markdown import show


def test_the_shipped_provenance_listing_has_one_row_per_published_cell_with_its_record():
    t = downloads.authors_file("table1_provenance.csv")
    assert len(t) == 60 and t["record"].str.match(r"^\d{4}\.\d{2}\.\d{2}--").all()
    assert (t["value"].round(4) == t["published"]).all() and t["given"].all()


def test_the_page_summarises_the_provenance_listing_per_dataset_and_kind_of_fusion():
    listing = downloads.authors_file("table1_provenance.csv")
    shown = authors.provenance_summary_table()
    assert len(shown) == 6 and shown["cells given"].tolist() == ["10 / 10"] * 6  # 60 cells, each given
    learned = listing[listing["setting"] != "static fusion"]
    coincidences = learned.groupby("dataset")["also_given_by"].apply(lambda s: int((s != "").sum()))
    got = shown[shown["fusions"] == "Weighted, MLP"].set_index("dataset")["also printed by another setting"]
    assert got.to_dict() == coincidences.to_dict() and sum(got) == 3
    ranges = listing.groupby("dataset")["published"].agg(["min", "max"])
    static = shown[shown["fusions"] == "Average, Vote"].set_index("dataset")["published"]
    for ds, text in static.items():
        lo, hi = map(float, text.split("–"))
        sub = listing[(listing["dataset"] == ds) & (listing["setting"] == "static fusion")]["published"]
        assert (lo, hi) == (sub.min(), sub.max()) and ranges.loc[ds, "min"] <= lo


def test_the_pooled_and_shuffled_summary_equals_pandas_over_the_shipped_listing():
    listing = downloads.authors_file("pooled_shuffled.csv")
    shown = authors.pooled_shuffled_summary_table().set_index(["variant", "dataset"])
    assert len(listing) == 34 and len(shown) == listing.groupby(["variant", "dataset"]).ngroups
    for (variant, ds), g in listing.groupby(["variant", "dataset"]):
        ran = g[~g["failed"]]
        row = shown.loc[(variant, ds)]
        assert row["fits (failed)"] == (f"{len(g)} ({g['failed'].sum()})" if g["failed"].any() else str(len(g)))
        np.testing.assert_allclose(row["Δ vs ordered, mean"], ran["diff_vs_ordered"].mean())
        gain = ran.dropna(subset=["diff_vs_ce"])
        assert row["dynamic > CE"] == f"{(gain['diff_vs_ce'] > 0).sum()} / {len(gain)}"


def test_failed_fits_drop_the_columns_they_share_and_say_them_once():
    shown, note = authors.failed_table(), authors.failed_note()
    assert {"dataset", "weight decay", "test"}.isdisjoint(shown.columns) and "validation" in shown.columns
    assert note.strip() == "Every row of the failed fits: dataset CIFAR100, weight decay 0.05, test 0.0100."


def test_record_names_keep_their_double_hyphen_in_markdown():
    md = show(authors.failed_table().head(1)).to_markdown()
    assert "2022.12.11-\\-20-45-49.296402" in md  # pandoc prints "--", not an en dash


def test_validation_figure_has_a_panel_per_dataset_with_the_identity_line():
    vt = authors.validation_frame()
    fig = figures.validation_test_figure(vt)
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in axes] == ["CIFAR10", "CIFAR100", "FashionMNIST"]
    for ax in axes:
        line = next(ln for ln in ax.get_lines() if ln.get_label() == "y = x")
        x, y = line.get_data()
        assert np.allclose(x, y)
        pts = np.vstack([c.get_offsets() for c in ax.collections])
        assert (pts[:, 1] > pts[:, 0]).all()  # every fit that ran validates above its test accuracy


def test_failed_fits_are_listed_apart_and_left_out_of_the_figure():
    failed = authors.validation_frame().query("failed")
    assert len(failed) == 8 and np.allclose(failed["test_best"], 0.01, atol=1e-6)  # chance on CIFAR100
    assert len(authors.failed_table()) == 8
    fig = figures.validation_test_figure(authors.validation_frame())
    n_points = sum(len(c.get_offsets()) for ax in fig.axes for c in ax.collections)
    assert n_points == 120
