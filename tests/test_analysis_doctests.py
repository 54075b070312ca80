"""The docstring examples of the analysis modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ("analysis.metrics", "analysis.fusion", "analysis.stats", "analysis.published", "analysis.pipeline",
           "analysis.superlearner", "analysis.reader", "analysis.synthetic")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
