"""pytest plugin (entry point ``dynloss``): the ``dynloss_regression`` fixture for users' own CI.

::

    def test_numbers_agree_with_baseline(dynloss_regression):
        dynloss_regression.check("data/results/fmnist-mini")

``check(results, baseline=None, **options)`` asserts that the results folder agrees with the
baseline within noise (:func:`analysis.audit.regression.assert_within_noise`; the options are its
keywords: ``level``, ``adjust``, ``tolerances``, ``fail_on``); the assertion message lists the
failing cells: outside noise, without a number or invalid, and by default cells on one side only
(``fail_on="tables"`` reports those without failing). ``baseline`` may be a snapshot file, a results folder or ``"published"``; without
it, pytest-regressions' conventions hold: the file is ``<test dir>/<test module>/<test name>.json``,
written from the results (and the test failing once, asking for a check and a rerun) when absent;
with pytest-regressions active, ``--force-regen`` rewrites a snapshot baseline the results disagree
with (the test fails) and ``--regen-all`` rewrites every one (the tests pass).

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

    def _option(self, name: str) -> bool:
        # pytest-regressions' options, when that plugin is active (absent options read as False)
        return bool(self._request.config.getoption(name, default=False))

    def default_path(self) -> Path:
        from analysis.audit.regression.results import default_baseline_path

        return default_baseline_path(self._request.node.path, self._request.node.name)

    def check(self, results: str | os.PathLike, baseline: str | os.PathLike | None = None, **options):
        """Assert ``results`` agree with ``baseline`` within noise; return the comparison (None
        when the baseline was just written with ``--regen-all``)."""
        __tracebackhide__ = True  # failures point at the user's test, not at this helper
        from analysis.audit.regression.results import PUBLISHED, compare_results
        from analysis.audit.regression.baseline import UnusableInput, write_snapshot

        path = self.default_path() if baseline is None else baseline
        snapshot_file = not (isinstance(path, str) and path == PUBLISHED) and Path(path).suffix == ".json"

        def write(why: str) -> None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            try:
                write_snapshot(results, path)
            except UnusableInput as e:
                pytest.fail(f"dynloss snapshot: {e}", pytrace=False)
            if not self._option("regen_all"):
                pytest.fail(f"dynloss baseline {path} written from {results} ({why}): check it, commit it and rerun",
                            pytrace=False)

        if snapshot_file and (not Path(path).exists() or self._option("regen_all")):
            write("it did not exist" if not Path(path).exists() else "--regen-all")
            return None
        try:
            cmp = compare_results(results, path, **options)
        except UnusableInput as e:
            pytest.fail(f"dynloss compare: {e}", pytrace=False)
        if not cmp.ok and snapshot_file and self._option("force_regen"):
            write(f"--force-regen; it disagreed:\n{cmp.message()}")
        assert cmp.ok, cmp.message()
        return cmp


@pytest.fixture
def dynloss_regression(request: pytest.FixtureRequest) -> DynlossRegression:
    """Compare a results set with a committed baseline within noise (see the module docstring)."""
    return DynlossRegression(request)
