"""The files the report ships beside its pages and the links the pages show to them
(:mod:`analysis.report.downloads`); the shipping itself is checked on a rendered report in
tests/test_report_render.py and tests/test_report_engine_parity.py."""

from __future__ import annotations

import pytest

from analysis.report import downloads
from analysis.report.context import report_context


def _ctx():
    return report_context({}, preset="digits-tiny")


def test_site_paths_mirror_the_data_root():
    ctx = _ctx()
    assert downloads.site_path(ctx, "table1") == "data/results/digits-tiny/table1.csv"
    assert downloads.site_path(ctx, "provenance.json") == "data/results/digits-tiny/provenance.json"
    assert downloads.site_path(ctx, "audit.json") == "data/results/audit.json"
    assert downloads.site_path(ctx, "paper:table2_pearson.csv") == "data/paper/table2_pearson.csv"
    assert downloads.site_path(ctx, "authors:pooled_shuffled.csv") == "data/authors/pooled_shuffled.csv"


@pytest.mark.parametrize("name", ["no_such_table", "authors:missing.csv", "paper:missing.csv"])
def test_a_name_that_is_no_shipped_file_is_refused_naming_it(name):
    with pytest.raises(ValueError, match=name.split(":")[-1].replace(".", r"\.")):
        downloads.site_path(_ctx(), name)


def test_the_data_line_groups_files_by_folder_with_links_relative_to_the_page():
    line = downloads.data_line(_ctx(), ["table1", "mcnemar", "audit.json", "table1"])
    assert line.strip() == ("*Data* (`data/results/digits-tiny/`): [table1.csv](../data/results/digits-tiny/table1.csv), "
                            "[mcnemar.csv](../data/results/digits-tiny/mcnemar.csv); (`data/results/`): "
                            "[audit.json](../data/results/audit.json).")
    with pytest.raises(ValueError, match="at least one file"):
        downloads.data_line(_ctx(), [])


def test_every_authors_listing_is_a_frame_of_the_records():
    for name in downloads.AUTHORS_FILES:
        assert len(downloads.authors_file(name)) > 0, name
