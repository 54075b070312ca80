"""pytest plugin (entry point ``dynloss``): the ``dynloss_regression`` fixture for users' own CI.

::

    def test_numbers_agree_with_baseline(dynloss_regression):
        dynloss_regression.check("data/results/fmnist-mini")

``check(results, baseline=None, **options)`` asserts that the results folder agrees with the
baseline within noise (:func:`analysis.audit.regression.assert_within_noise`; the options are its
keywords: ``level``, ``adjust``, ``tolerances``, ``fail_on``); the assertion message lists the
failing cells. Without ``baseline`` it follows pytest-regressions' conventions: the baseline is
``<test dir>/<test module>/<test name>.json``; when that file is absent, or pytest-regressions'
``--force-regen`` / ``--regen-all`` is given, the snapshot of the results is written there and the
test fails once asking for a rerun. ``baseline`` may be a snapshot file, a results folder or
``"published"``.

Only the standard library and pytest are imported here (the plugin loads with every pytest run
where dynloss is installed); the comparison is imported when a test uses the fixture.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


class DynlossRegression:
    """Helper returned by the ``dynloss_regression`` fixture."""

    def __init__(self, request: pytest.FixtureRequest):
        self._request = request

    def _regen(self) -> bool:
        cfg = self._request.config
        return bool(cfg.getoption("force_regen", default=False) or cfg.getoption("regen_all", default=False))

    def default_path(self) -> Path:
        from analysis.audit.regression import default_baseline_path

        return default_baseline_path(self._request.node.path, self._request.node.name)

    def check(self, results: str | os.PathLike, baseline: str | os.PathLike | None = None, **options):
        """Assert ``results`` agree with ``baseline`` within noise; return the comparison."""
        from analysis.audit.regression import PUBLISHED, assert_within_noise
        from analysis.core.baseline import UnusableInput, write_snapshot

        path = self.default_path() if baseline is None else baseline
        if not (isinstance(path, str) and path == PUBLISHED):
            path = Path(path)
            if path.suffix == ".json" and (not path.exists() or self._regen()):
                path.parent.mkdir(parents=True, exist_ok=True)
                write_snapshot(results, path)
                pytest.fail(f"dynloss baseline written to {path} from {results}: check it, commit it and rerun",
                            pytrace=False)
        try:
            return assert_within_noise(results, path, **options)
        except UnusableInput as e:
            pytest.fail(f"dynloss compare: {e}", pytrace=False)


@pytest.fixture
def dynloss_regression(request: pytest.FixtureRequest) -> DynlossRegression:
    """Compare a results set with a committed baseline within noise (see the module docstring)."""
    return DynlossRegression(request)
