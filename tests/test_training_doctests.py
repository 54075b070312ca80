"""The docstring examples of the training modules run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ("training.losses", "training.losses.functional", "training.losses.superloss", "training.losses.derivative",
           "training.splits", "training.models", "training.presets", "training.run",
           "training.cache_format", "training.slurm", "training.slurm_jobs", "training.argtypes")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
