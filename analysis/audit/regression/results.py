"""Regression-testing a results set: compare it with a baseline and gate on the verdict.

One entry point for the command line (``dynloss compare``), the pytest fixture
(:mod:`analysis.audit.regression.pytest_plugin`), the report's "Compared with" section and users' own code::

    from analysis.audit.regression import assert_within_noise
    assert_within_noise("data/results/fmnist-mini", "baselines/fmnist-mini.json")

A baseline is a results folder, a snapshot file (``dynloss snapshot``) or ``"published"`` (the
paper's Tables 1–2, :mod:`analysis.audit.regression.published_baseline`). The rule deciding "within noise"
is documented in :mod:`analysis.audit.regression.compare`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.audit.regression.baseline import (
    CellSet,
    UnusableInput,
    check_comparable,
    load_cellset,
)
from analysis.audit.regression.compare import (
    CELL_TABLES,
    DEFAULT_TOLERANCES,
    FAILED,
    MISSING,
    check_options,
    compare_cells,
    failure_lines,
    summary_counts,
)

PUBLISHED = "published"
#: what ``fail_on`` may name: result tables (their cells outside noise, without a number or invalid
#: fail), ``missing`` (cells on one side only fail), ``tables`` (every table), ``all`` (every table
#: and missing: the default), ``none``
FAIL_ON_CHOICES: tuple[str, ...] = (*CELL_TABLES, "missing", "tables", "all", "none")


@dataclass(frozen=True)
class Comparison:
    """The verdict on every cell and what went into it."""

    frame: pd.DataFrame
    baseline: CellSet
    results: CellSet
    level: float
    adjust: str
    tolerances: dict[str, float]
    fail_on: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def skipped(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.baseline.skipped + self.results.skipped))

    @property
    def failing(self) -> pd.DataFrame:
        """Rows that make the comparison fail under ``fail_on``."""
        f = self.frame
        gate = f["table"].isin(self.fail_on) & f["status"].isin(FAILED)
        if "missing" in self.fail_on:
            gate |= f["status"].isin(MISSING)
        return f[gate]

    @property
    def ok(self) -> bool:
        return self.failing.empty

    def summary(self) -> pd.DataFrame:
        return summary_counts(self.frame)

    def rule_text(self) -> str:
        adj = "Holm-adjusted over the compared cells" if self.adjust == "holm" else "per cell"
        return (f"|new - baseline| <= z·sqrt(se_baseline² + se_new²) + tolerance at level {self.level:g} ({adj}); "
                "se from each side's bootstrap interval (the training-seed interval where wider); "
                "a stated tolerance only where a side carries no interval")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (strict JSON: a number that is not finite becomes null, its cell's ``status``
        and ``problem`` say why): rule, both sides' provenance, summary, skipped, notes, every cell."""
        cells = self.frame.astype(object)
        return _finite_or_null({
            "ok": self.ok, "level": self.level, "adjust": self.adjust, "fail_on": list(self.fail_on),
            "rule": self.rule_text(), "tolerances": self.tolerances,
            "baseline": _public_meta(self.baseline.meta), "results": _public_meta(self.results.meta),
            "summary": self.summary().to_dict("records"), "skipped": list(self.skipped), "notes": list(self.notes),
            "cells": cells.to_dict("records"),
        })

    def message(self, limit: int = 30) -> str:
        """Multi-line text naming the failing cells (for assertion messages)."""
        bad = self.failing
        head = (f"{len(bad)} cell(s) of {self.results.meta['source']} disagree with the baseline "
                f"{self.baseline.meta['source']} ({self.rule_text()}):")
        return "\n".join([head, *("  " + s for s in failure_lines(bad, statuses=(*FAILED, *MISSING), limit=limit))])


def _finite_or_null(obj: Any) -> Any:
    """``obj`` with every float that is not finite (NaN, ±inf, also numpy's) replaced by None."""
    if isinstance(obj, Mapping):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalar
        obj = obj.item()
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj


def _public_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in ("published_arms", "published_fusions")}


def parse_fail_on(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """Tables whose failing cells fail the comparison (plus ``missing``: cells on one side only).

    >>> parse_fail_on("table1,missing")
    ('table1', 'missing')
    >>> parse_fail_on("all")
    ('table1', 'table2', 'calibration', 'selective', 'missing')
    >>> parse_fail_on("tables")
    ('table1', 'table2', 'calibration', 'selective')
    """
    items = ["all"] if value is None else [value] if isinstance(value, str) else list(value)
    names = [p.strip() for s in items for p in str(s).split(",") if p.strip()]
    bad = [n for n in names if n not in FAIL_ON_CHOICES]
    if bad or not names:
        raise ValueError(f"Expected fail_on among {', '.join(FAIL_ON_CHOICES)}, got {', '.join(bad) or repr(value)}")
    if "none" in names:
        return ()
    out: list[str] = []
    for n in names:
        out.extend({"all": (*CELL_TABLES, "missing"), "tables": CELL_TABLES}.get(n, (n,)))
    return tuple(dict.fromkeys(out))


def load_sides(results: str | os.PathLike | CellSet, baseline: str | os.PathLike | CellSet
               ) -> tuple[CellSet, CellSet, list[str]]:
    """Both sides, checked comparable; ``baseline`` may be ``"published"``. Returns ``(baseline, results, notes)``."""
    res = results if isinstance(results, CellSet) else load_cellset(results)
    if isinstance(baseline, str) and baseline == PUBLISHED:
        from analysis.audit.regression.published_baseline import against_published

        base, res = against_published(res)
        return base, res, []
    base = baseline if isinstance(baseline, CellSet) else load_cellset(baseline)
    notes = check_comparable(base, res)
    if base.cells.empty or res.cells.empty:
        empty = base if base.cells.empty else res
        raise UnusableInput(f"{empty.meta['source']}: no comparable cells")
    return base, res, notes


def compare_results(
    results: str | os.PathLike | CellSet, baseline: str | os.PathLike | CellSet, *, level: float = 0.95,
    adjust: str = "none", tolerances: Mapping[str, float] | None = None,
    fail_on: str | Iterable[str] | None = "all",
) -> Comparison:
    """Compare a results set (folder or snapshot) with a baseline (folder, snapshot or ``"published"``).

    ``tolerances`` updates :data:`analysis.audit.regression.compare.DEFAULT_TOLERANCES` (metric -> value).
    ``fail_on`` (:func:`parse_fail_on`): by default every table's cells outside noise, without a
    number or invalid, and cells on one side only, fail the comparison.

    Raises
    ------
    UnusableInput
        Missing files, different presets or dataset sets, an unreadable baseline (one line).
    ValueError
        A ``level``, ``tolerances`` or ``fail_on`` the comparison cannot use (checked first).
    """
    check_options(level, tolerances)
    tol = {**DEFAULT_TOLERANCES, **dict(tolerances or {})}
    gate = parse_fail_on(fail_on)
    base, res, notes = load_sides(results, baseline)
    frame = compare_cells(base.cells, res.cells, level=level, tolerances=tol, adjust=adjust)
    if frame.empty:
        raise UnusableInput(f"no cell of {res.meta['source']} can be compared with {base.meta['source']}")
    return Comparison(frame, base, res, level, adjust, tol, gate, tuple(notes))


def assert_within_noise(
    results: str | os.PathLike, baseline: str | os.PathLike, *, level: float = 0.95, adjust: str = "none",
    tolerances: Mapping[str, float] | None = None, fail_on: str | Iterable[str] | None = "all",
) -> Comparison:
    """Assert that a results set agrees with a baseline within noise; return the comparison.

    Raises
    ------
    AssertionError
        Listing the failing cells (outside noise, without a number, invalid, and by default cells
        on one side only), largest excess first.
    analysis.audit.regression.baseline.UnusableInput
        When the two cannot be compared at all.
    """
    cmp = compare_results(results, baseline, level=level, adjust=adjust, tolerances=tolerances, fail_on=fail_on)
    if not cmp.ok:
        raise AssertionError(cmp.message())
    return cmp


def default_baseline_path(test_file: str | os.PathLike, test_name: str) -> Path:
    """Where a test's baseline lives, as pytest-regressions places its files:
    ``<test dir>/<test module>/<test name>.json`` (non-word characters of the name become ``_``).

    >>> default_baseline_path("tests/test_numbers.py", "test_x[a-b]").as_posix()
    'tests/test_numbers/test_x_a_b_.json'
    """
    import re

    p = Path(test_file)
    return p.parent / p.stem / (re.sub(r"\W", "_", test_name) + ".json")
