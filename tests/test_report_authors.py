"""Report helpers of the page on the authors' own results: tables shaped from the records, the
validation-against-test figure, and record names surviving markdown."""

from __future__ import annotations

import numpy as np

from analysis.report import authors, figures
from analysis.report.markdown import show


def test_provenance_table_has_one_row_per_published_cell_with_its_record():
    t = authors.provenance_table()
    assert len(t) == 60 and t["record"].str.match(r"^\d{4}\.\d{2}\.\d{2}--").all()
    assert (t["record value"].astype(float).round(4) == t["published"]).all()


def test_record_names_keep_their_double_hyphen_in_markdown():
    md = show(authors.provenance_table().head(1)).to_markdown()
    assert "2022.12.12-\\-04-59-56.128557" in md  # pandoc prints "--", not an en dash


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
    failed = authors.failed_table()
    assert len(failed) == 8 and np.allclose(failed["test"], 0.01, atol=1e-6)  # chance on CIFAR100
    fig = figures.validation_test_figure(authors.validation_frame())
    n_points = sum(len(c.get_offsets()) for ax in fig.axes for c in ax.collections)
    assert n_points == 120
