"""``dynloss``: the toolkit's import package, the entry points users call from Python.

The code lives in :mod:`training` (losses, datasets, training to cached logits) and
:mod:`analysis` (core, audit, report); this package names the public entry points in one place
and loads each on first use, so ``import dynloss`` is cheap (no torch, pandas or scipy)::

    import dynloss
    dynloss.train_preset("digits-tiny")            # training.executors
    tables = dynloss.analyze_preset("digits-tiny")  # analysis.core.pipeline
    dynloss.assert_within_noise("data/results/digits-tiny", "published")

``python -m dynloss`` is the ``dynloss`` command (:func:`analysis.cli.main`).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the module that defines it
_ENTRY_POINTS: dict[str, str] = {
    # training
    "get_preset": "training.presets",
    "get_arm": "training.arms",
    "train_preset": "training.executors",
    # analysis: core
    "load_preset": "analysis.core.reader",
    "analyze_preset": "analysis.core.pipeline",
    "AnalysisConfig": "analysis.core.config",
    # analysis: audit
    "evaluate_all": "analysis.audit",
    "registered_claims": "analysis.audit",
    "compare_results": "analysis.audit.regression",
    "assert_within_noise": "analysis.audit.regression",
    # analysis: report
    "render_report": "analysis.report.engine",
    # the command line
    "main": "analysis.cli",
}

__all__ = sorted(_ENTRY_POINTS)


def __getattr__(name: str) -> Any:
    module = _ENTRY_POINTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dynloss' has no attribute {name!r} (public names: {', '.join(__all__)})")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
