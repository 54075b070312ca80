"""The docstring examples of the analysis modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

#: modules with docstring examples (reader and synthetic have none: listing them passed vacuously)
MODULES = ("analysis.core.metrics", "analysis.core.fusion", "analysis.core.stats", "analysis.audit.published", "analysis.core.config", "analysis.core.tables",
           "analysis.core.superlearner", "analysis.report.qmd", "analysis.audit.authors_code",
           "analysis.audit.code_claims", "analysis.audit.note", "analysis.audit.note_claims",
           "analysis.audit.table_claims", "analysis.report.bottom_line", "analysis.report.claims")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
