"""The regression feature, in one room: a results set compared with a baseline within its noise.

- :mod:`~analysis.audit.regression.compare`: the cells compared, their tolerances and the
  "within noise" rule (pure functions over frames);
- :mod:`~analysis.audit.regression.baseline`: what a baseline is (a results folder, a snapshot
  file) and how it is read and written;
- :mod:`~analysis.audit.regression.published_baseline`: the paper's Tables 1–2 as a baseline;
- :mod:`~analysis.audit.regression.results`: the one entry point (:func:`compare_results`,
  :func:`assert_within_noise`) the command line, the pytest fixture and the report share;
- :mod:`~analysis.audit.regression.compare_cli`, :mod:`~analysis.audit.regression.snapshot_cli`:
  ``dynloss compare`` and ``dynloss snapshot``;
- :mod:`~analysis.audit.regression.pytest_plugin`: the ``dynloss_regression`` fixture for users'
  own test suites.

Users' code imports the entry points from here::

    from analysis.audit.regression import assert_within_noise
"""

from __future__ import annotations

from typing import Any

__all__ = ["PUBLISHED", "Comparison", "assert_within_noise", "compare_results"]


def __getattr__(name: str) -> Any:
    # lazy, so that loading the pytest plugin (a submodule) does not import pandas into every test run
    if name in __all__:
        from analysis.audit.regression import results

        return getattr(results, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
