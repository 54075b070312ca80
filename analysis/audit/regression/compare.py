"""Two results sets compared cell by cell, each difference judged against the noise both carry.

Pure functions over frames: :func:`cells_from_tables` turns result tables into *cells* (one number
each, with the interval it carries), :func:`compare_cells` applies the rule below. Reading folders
and baseline files is :mod:`analysis.audit.regression.baseline`; the published tables enter through
:mod:`analysis.audit.regression.published_baseline`; ``dynloss compare`` is :mod:`analysis.audit.regression.compare_cli`.

Cells
-----
- ``table1`` ``accuracy`` (dataset × arm × fusion), interval ``ci_low``–``ci_high``, and
  ``diff_vs_ce``, interval ``diff_ci_low``–``diff_ci_high`` (paired bootstrap over test samples);
- ``table2`` ``pearson_r`` (dataset × fusion, ``detail`` = the encoding), interval
  ``r_boot_ci_low``–``r_boot_ci_high`` (the test-only paired bootstrap of r) and, where the fusion has
  one, the training-seed interval ``r_seed_ci_low``–``r_seed_ci_high`` (the Fisher-z interval describes
  five τ points, not the noise of a re-run);
- ``calibration`` and ``selective``: every metric whose record (:mod:`analysis.core.metric_registry`)
  has a ``tolerance`` (today ``ece``, ``ece_mass``, ``classwise_ece``, ``brier``, ``nll``; fused
  ensembles, ``detail`` = the scaling; and ``auroc``, ``aurc``), with that default tolerance. These
  tables carry no interval today; if ``<metric>_ci_low`` / ``<metric>_ci_high`` columns appear they
  are used.

Not compared: single-member rows (one per training seed), metrics without a tolerance (``mce``, a
maximum over bins) and, for a metric declared ``on_votes=False``, the rows of vote fractions (the
NLL of Vote's, dominated by unanimous mistakes at the 1e-15 clip): neither has a stable scale.

Training-seed intervals: where a table also has a two-level (members × test samples) interval,
``seed_<lo>`` / ``seed_<hi>`` (table1's ``seed_ci_low``, ``seed_ci_high`` of accuracy) or the one a
cell names (``diff_seed_ci_low``, ``diff_seed_ci_high`` of ``diff_vs_ce``; table2's ``r_seed_ci_low``,
``r_seed_ci_high``), the wider of the two
intervals is used for that side.

The rule ("within noise")
-------------------------
A side's standard error is its interval's half-width on the side facing the other value, divided
by the normal quantile of its own confidence level (``z = 1.96`` at 95 %); the whole interval's
half-width is used when the estimate lies outside its interval. With ``d = new - baseline``::

    allowed = z_level * sqrt(se_baseline**2 + se_new**2) + tolerance + (res_baseline + res_new) / 2

and a cell is within noise when ``|d| <= allowed`` (plus 1e-9 for the CSVs' 10 significant digits).
``z_level`` is the normal quantile of the comparison ``level`` (default 0.95): two independent
estimates with honest intervals agree in about ``level`` of the cells (checked by simulation in
``tests/test_compare.py``). ``tolerance`` (:data:`DEFAULT_TOLERANCES`, overridable) enters only
when a side carries no interval: the published tables and today's calibration and selective
tables. ``res`` is the resolution of printed numbers (1e-4 for the paper's accuracies).

A cell present on both sides is judged only when each side has a finite value and usable noise
(:func:`cell_problems`): otherwise its status is ``no number`` (a value null, NaN, ±inf) or
``invalid`` (an interval bound not finite, bounds reversed, a confidence outside (0, 1), a
resolution not finite or negative), a failure of the comparison, never agreement. A NaN in a
result table means "undefined there" (ce's difference to itself, r over too few arms): that row
is no cell, so a value that turned NaN shows as a cell on one side only.

With ``adjust="holm"`` each cell also gets ``p = 2 (1 - Φ(max(|d| - tolerance, 0) / se_d))`` and
Holm's step-down procedure at ``1 - level`` decides (:func:`analysis.core.stats.holm`, the one
McNemar's table uses), so that a re-run of many cells is flagged
with probability about ``1 - level`` in all, not per cell.

Caveat: the bootstrap intervals describe test-sample noise. Two results sets of one preset share
their test set, and when they come from the same cache (equal ``cache_sha256``) their intervals
are not independent at all: only the seeded steps (super-learner fits, temperature halves) or the
code can make them differ, so the rule is lenient there, and a flagged difference is real.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd
from scipy.stats import norm

from analysis.core.metric_registry import METRICS as METRIC_RECORDS
from analysis.core.registry import LiveMapping, LiveTuple
from analysis.core.stats import holm

KEYS: tuple[str, ...] = ("table", "metric", "dataset", "arm", "fusion", "detail")

#: columns of a cell frame (:func:`cells_from_tables`)
CELL_COLUMNS: dict[str, str] = {
    "table": "result table the cell comes from (table1, table2, calibration, selective)",
    "metric": "the column compared (accuracy, diff_vs_ce, pearson_r, ece, ...)",
    "dataset": "dataset name as in the cache",
    "arm": "arm ('' for table2)",
    "fusion": "fusion method",
    "detail": "further key: 'encoding=...' (table2), 'scaling=...' (calibration), else ''",
    "value": "the number",
    "ci_low": "lower bound of its bootstrap interval (NaN when none)",
    "ci_high": "upper bound of its bootstrap interval",
    "seed_ci_low": "lower bound of its training-seed interval (NaN when none)",
    "seed_ci_high": "upper bound of its training-seed interval",
    "confidence": "level of its intervals",
    "resolution": "rounding step of the printed value (0 when exact)",
}

#: columns of a comparison frame (:func:`compare_cells`)
COMPARISON_COLUMNS: dict[str, str] = {
    **{k: CELL_COLUMNS[k] for k in KEYS},
    "baseline": "value in the baseline",
    "new": "value in the results compared",
    "diff": "new - baseline",
    "se_baseline": "standard error of the baseline side (from its interval; NaN when none)",
    "se_new": "standard error of the new side",
    "allowed": "largest |diff| within noise at the comparison level (see the module docstring)",
    "z": "diff / sqrt(se_baseline^2 + se_new^2) (NaN without intervals)",
    "p_value": "two-sided normal p of |diff| beyond the tolerance (0 or 1 without intervals)",
    "rule": "'intervals', 'interval + tolerance' (one side has none) or 'tolerance' (neither has)",
    "status": "'agree', 'outside', 'no number', 'invalid', 'only in baseline' or 'only in results'",
    "problem": "why a cell is 'no number' or 'invalid' ('' otherwise)",
}

#: statuses of a cell on both sides that fail the comparison (never agreement): outside noise, a side
#: without a finite value ("no number"), a side whose interval, confidence or resolution is unusable
#: ("invalid")
FAILED = ("outside", "no number", "invalid")
MISSING = ("only in baseline", "only in results")
STATUS_ORDER = (*FAILED, *MISSING, "agree")

#: table1's and table2's quantities: tolerances where a side carries no interval (absolute)
_TABLE_TOLERANCES: dict[str, float] = {
    "accuracy": 0.005,  # half a percentage point (published Table 1 against a re-run)
    "diff_vs_ce": 0.005,
    "pearson_r": 0.05,  # published Table 2
}

#: tolerance added to ``allowed`` where a side carries no interval (absolute, in the metric's units):
#: table1's and table2's, then each compared metric's record (:mod:`analysis.core.metric_registry`)
DEFAULT_TOLERANCES: Mapping[str, float] = LiveMapping(lambda: {
    **_TABLE_TOLERANCES, **{m.name: m.tolerance for m in METRIC_RECORDS.values() if m.compared}})

#: the metrics compared (the names ``tolerances`` may use)
METRICS: LiveTuple = LiveTuple(lambda: tuple(DEFAULT_TOLERANCES))

_ATOL = 1e-9  # results CSVs keep 10 significant digits


def check_options(level: float, tolerances: Mapping[str, float] | None = None) -> None:
    """Refuse a comparison ``level`` outside (0, 1) and a tolerance of an unknown metric or that is not
    a finite number >= 0 (either would make every cell "agree" or none).

    >>> check_options(0.95, {"acuracy": 0.5})
    Traceback (most recent call last):
    ...
    ValueError: tolerance of 'acuracy': unknown metric (expected one of accuracy, diff_vs_ce, pearson_r, ece, ece_mass, classwise_ece, brier, nll, auroc, aurc)
    """
    if not (isinstance(level, Real) and 0 < level < 1):
        raise ValueError(f"Expected `level` in (0, 1), got {level!r}")
    for metric, value in (tolerances or {}).items():
        why = tolerance_problem(metric, value)
        if why:
            raise ValueError(f"tolerance of {metric!r}: {why}")


def tolerance_problem(metric: str, value) -> str | None:
    """What is wrong with a tolerance (an unknown metric, not a finite number >= 0), or None."""
    if metric not in METRICS:
        return f"unknown metric (expected one of {', '.join(METRICS)})"
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < np.inf:
        return f"expected a finite number >= 0, got {value!r}"
    return None


@dataclass(frozen=True)
class CellSpec:
    """Where a metric's cells live in a result table and which columns hold its interval."""

    table: str
    metric: str
    keys: tuple[str, ...]
    interval: tuple[str, str]
    detail: str | None = None  # column whose value becomes ``detail`` ("encoding", "scaling")
    seed_interval: tuple[str, str] | None = None  # training-seed interval; default ``seed_<lo>``, ``seed_<hi>``
    on_votes: bool = True  # False: rows with vote-fraction confidences are no cells

    def seed_columns(self) -> tuple[str, str]:
        return self.seed_interval or ("seed_" + self.interval[0], "seed_" + self.interval[1])


_T1 = ("dataset", "arm", "fusion")
_TABLE_SPECS: tuple[CellSpec, ...] = (
    CellSpec("table1", "accuracy", _T1, ("ci_low", "ci_high")),
    CellSpec("table1", "diff_vs_ce", _T1, ("diff_ci_low", "diff_ci_high"),
             seed_interval=("diff_seed_ci_low", "diff_seed_ci_high")),
    CellSpec("table2", "pearson_r", ("dataset", "fusion"), ("r_boot_ci_low", "r_boot_ci_high"), "encoding",
             seed_interval=("r_seed_ci_low", "r_seed_ci_high")),
)
_METRIC_TABLES: tuple[str, ...] = ("calibration", "selective")  # metric cells, in this order


def _cell_specs() -> tuple[CellSpec, ...]:
    return (*_TABLE_SPECS, *(
        CellSpec(t, m.name, _T1, (f"{m.name}_ci_low", f"{m.name}_ci_high"), "scaling" if t == "calibration" else None,
                 on_votes=m.on_votes)
        for t in _METRIC_TABLES for m in METRIC_RECORDS.values() if m.compared and t in m.tables))


#: every kind of cell: table1's and table2's, then each compared metric's in the tables it writes
CELL_SPECS: LiveTuple = LiveTuple(_cell_specs)

#: result tables read for cells
CELL_TABLES: LiveTuple = LiveTuple(lambda: tuple(dict.fromkeys(s.table for s in CELL_SPECS)))


def _col(df: pd.DataFrame, name: str, table: str = "") -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), np.nan)
    col = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(col) & df[name].notna().to_numpy()
    if bad.any():
        raise ValueError(f"{table}.csv column {name}: {df[name][bad].iloc[0]!r} is not a number")
    return col


def cells_from_table(name: str, df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """The cells of one result table (columns :data:`CELL_COLUMNS`).

    ``confidence`` is used where the table has no ``confidence_level`` column (table2).

    >>> t1 = pd.DataFrame({"dataset": ["d"], "arm": ["ce"], "fusion": ["Vote"], "accuracy": [0.9],
    ...                    "ci_low": [0.88], "ci_high": [0.92], "diff_vs_ce": [np.nan]})
    >>> cells_from_table("table1", t1)[["metric", "value", "ci_high"]].to_dict("records")
    [{'metric': 'accuracy', 'value': 0.9, 'ci_high': 0.92}]
    """
    frames = []
    if "member" in df.columns:  # calibration / selective: fused ensembles only
        df = df[df["member"] < 0]
    for spec in (s for s in CELL_SPECS if s.table == name):
        if spec.metric not in df.columns:
            continue
        sub = df
        if not spec.on_votes and "confidence_kind" in df.columns:
            sub = df[df["confidence_kind"] != "vote_fraction"]
        sub = sub[~np.isnan(_col(sub, spec.metric, name))]  # NaN: undefined there (ce's diff to itself)
        lo, hi = spec.interval
        conf = _col(sub, "confidence_level", name) if "confidence_level" in sub.columns else np.full(len(sub), confidence)
        frames.append(pd.DataFrame({
            "table": name, "metric": spec.metric,
            "dataset": sub["dataset"].astype(str).to_numpy(),
            "arm": sub["arm"].astype(str).to_numpy() if "arm" in spec.keys else "",
            "fusion": sub["fusion"].astype(str).to_numpy(),
            "detail": [f"{spec.detail}={v}" for v in sub[spec.detail]] if spec.detail else "",
            **{c: _col(sub, col, name) for c, col in (("value", spec.metric), ("ci_low", lo), ("ci_high", hi),
                                                      ("seed_ci_low", spec.seed_columns()[0]),
                                                      ("seed_ci_high", spec.seed_columns()[1]))},
            "confidence": conf, "resolution": 0.0,
        }))
    if not frames:
        return pd.DataFrame(columns=list(CELL_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(CELL_COLUMNS)]


def cells_from_tables(tables: Mapping[str, pd.DataFrame], *, confidence: float = 0.95) -> pd.DataFrame:
    """Every cell of a results set: the tables of :data:`CELL_TABLES` that are present."""
    frames = [cells_from_table(n, tables[n], confidence=confidence) for n in CELL_TABLES if n in tables]
    frames = [f for f in frames if len(f)]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(CELL_COLUMNS))
    check_unique(out, "the result tables")
    return out


def check_unique(cells: pd.DataFrame, where: str) -> None:
    """Refuse two cells with one key (:data:`KEYS`): a comparison would pair each with both."""
    dup = cells.duplicated(list(KEYS), keep=False)
    if dup.any():
        first = cells[dup].iloc[0]
        raise ValueError(f"Duplicate cell {'/'.join(str(first[k]) for k in KEYS)} in {where}")


def cell_problems(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(status, problem)`` per cell of a cell frame: ``"no number"`` where the value is not a finite
    number (null, NaN, ±inf), ``"invalid"`` where an interval is not two finite bounds in order (a
    missing interval is both bounds NaN), an interval's confidence is not in (0, 1) or the resolution
    is not a finite number >= 0; ``""`` for a usable cell. ``problem`` says which, with the numbers.

    >>> t = pd.DataFrame({"value": [0.9, np.nan, 0.9], "ci_low": [0.8, 0.8, 0.8], "ci_high": [0.95, 0.95, np.inf],
    ...                   "seed_ci_low": np.nan, "seed_ci_high": np.nan, "confidence": 0.95, "resolution": 0.0})
    >>> cell_problems(t)[0].tolist()
    ['', 'no number', 'invalid']
    """
    n = len(cells)
    status, problem = np.full(n, "", dtype=object), np.full(n, "", dtype=object)

    def flag(mask, what, text):
        new = mask & (status == "")
        status[new] = what
        problem[new] = [text(i) for i in np.flatnonzero(new)]

    def num(c):
        return cells[c].to_numpy(dtype=float)

    value, conf, res = num("value"), num("confidence"), num("resolution")
    flag(~np.isfinite(value), "no number", lambda i: f"value {value[i]} is not a finite number")
    has_interval = np.zeros(n, dtype=bool)
    for lo_c, hi_c in (("ci_low", "ci_high"), ("seed_ci_low", "seed_ci_high")):
        lo, hi = num(lo_c), num(hi_c)
        absent = np.isnan(lo) & np.isnan(hi)
        has_interval |= ~absent
        flag(~absent & ~(np.isfinite(lo) & np.isfinite(hi) & (lo <= hi)), "invalid",
             lambda i, lo=lo, hi=hi, c=lo_c: f"{c.removesuffix('_low')} [{lo[i]}, {hi[i]}] is not two finite bounds in order")
    flag(has_interval & ~((conf > 0) & (conf < 1)), "invalid", lambda i: f"confidence {conf[i]} is not in (0, 1)")
    flag(~(np.isfinite(res) & (res >= 0)), "invalid", lambda i: f"resolution {res[i]} is not a finite number >= 0")
    return status, problem


def side_se(value, ci_low, ci_high, confidence, toward) -> np.ndarray:
    """Standard error of one side from its interval: the half-width facing ``toward`` (the other
    side's value) over the normal quantile of ``confidence``; the whole interval's half-width when
    the estimate lies outside it. NaN where there is no interval.

    >>> side_se([0.9], [0.85], [0.92], [0.95], [0.8]).round(4).tolist()  # lower half: 0.05 / 1.96
    [0.0255]
    """
    v, lo, hi, c, t = (np.asarray(a, dtype=float) for a in (value, ci_low, ci_high, confidence, toward))
    z = norm.ppf((1 + c) / 2)
    half = np.where(t >= v, hi - v, v - lo)
    inside = (lo <= v) & (v <= hi) & (half > 0)
    return np.where(inside, half, (hi - lo) / 2) / z


def _se(cells: pd.DataFrame, toward: np.ndarray) -> np.ndarray:
    args = (cells["value"], cells["confidence"], toward)
    boot = side_se(args[0], cells["ci_low"], cells["ci_high"], args[1], args[2])
    seed = side_se(args[0], cells["seed_ci_low"], cells["seed_ci_high"], args[1], args[2])
    with np.errstate(invalid="ignore"):
        return np.fmax(boot, seed)  # the wider interval; NaN only when neither exists


def compare_cells(
    baseline: pd.DataFrame, new: pd.DataFrame, *, level: float = 0.95,
    tolerances: Mapping[str, float] | None = None, adjust: str = "none",
) -> pd.DataFrame:
    """Every cell of either side with the verdict of the rule (module docstring).

    Parameters
    ----------
    baseline, new : cell frames (:data:`CELL_COLUMNS`).
    level : comparison level in (0, 1): share of cells two independent estimates agree in.
    tolerances : metric -> tolerance where a side has no interval (default
        :data:`DEFAULT_TOLERANCES`; a metric absent here gets 0).
    adjust : ``"none"`` (each cell at ``level``) or ``"holm"`` (family-wise over the compared cells).

    Returns
    -------
    DataFrame with :data:`COMPARISON_COLUMNS`, cells outside noise first (largest |z| first),
    then cells without a usable number or interval (never agreement: ``no number``, ``invalid``,
    see :func:`cell_problems`), then cells on one side only, then the agreeing cells.
    """
    check_options(level, tolerances)
    if adjust not in ("none", "holm"):
        raise ValueError(f"Expected `adjust` to be 'none' or 'holm', got {adjust!r}")
    tol_by_metric = dict(DEFAULT_TOLERANCES if tolerances is None else tolerances)
    m = baseline.merge(new, on=list(KEYS), how="outer", suffixes=("_b", "_n"), indicator=True)
    both = (m["_merge"] == "both").to_numpy()
    vb, vn = m["value_b"].to_numpy(dtype=float), m["value_n"].to_numpy(dtype=float)
    side_b = m[[c for c in m.columns if c.endswith("_b")]].rename(columns=lambda c: c[:-2])
    side_n = m[[c for c in m.columns if c.endswith("_n")]].rename(columns=lambda c: c[:-2])
    (st_b, why_b), (st_n, why_n) = cell_problems(side_b), cell_problems(side_n)
    st_b[(m["_merge"] == "right_only").to_numpy()] = ""  # an absent side has no problem, it is missing
    st_n[(m["_merge"] == "left_only").to_numpy()] = ""
    bad = np.where((st_b == "no number") | (st_n == "no number"), "no number",
                   np.where((st_b != "") | (st_n != ""), "invalid", ""))
    status = np.where(bad != "", bad, np.where(both, "", np.where(m["_merge"] == "left_only", *MISSING))).astype(object)
    problem = ["; ".join([f"baseline {wb}"] * bool(sb) + [f"results {wn}"] * bool(sn))
               for sb, wb, sn, wn in zip(st_b, why_b, st_n, why_n)]
    judged = status == ""  # on both sides, each with a usable number and noise
    with np.errstate(invalid="ignore", over="ignore"):  # the cells not judged may hold inf
        se_b, se_n = _se(side_b, vn), _se(side_n, vb)
        se_d = np.sqrt(np.nan_to_num(se_b) ** 2 + np.nan_to_num(se_n) ** 2)
    has_b, has_n = np.isfinite(se_b), np.isfinite(se_n)
    stated = np.array([tol_by_metric.get(x, 0.0) for x in m["metric"]], dtype=float)
    res = np.nan_to_num(side_b["resolution"].to_numpy(dtype=float)) + np.nan_to_num(side_n["resolution"].to_numpy(dtype=float))
    tol = np.where(has_b & has_n, 0.0, stated) + res / 2 + _ATOL
    z_level = norm.ppf((1 + level) / 2)
    with np.errstate(invalid="ignore"):
        d = vn - vb
    allowed = z_level * se_d + tol
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = np.maximum(np.abs(d) - tol, 0.0)
        z = np.where(se_d > 0, d / se_d, np.nan)
        p = np.where(se_d > 0, 2 * norm.sf(excess / np.where(se_d > 0, se_d, 1.0)), np.where(excess > 0, 0.0, 1.0))
        outside = np.abs(d) > allowed
    if adjust == "holm" and judged.any():
        outside = np.zeros_like(outside)
        outside[judged] = holm(p[judged], 1 - level)[0]
    status[judged] = np.where(outside[judged], "outside", "agree")
    rule = np.where(has_b & has_n, "intervals", np.where(has_b | has_n, "interval + tolerance", "tolerance"))
    out = pd.DataFrame({
        **{k: m[k].to_numpy() for k in KEYS}, "baseline": vb, "new": vn, "diff": d,
        "se_baseline": se_b, "se_new": se_n, "allowed": allowed, "z": z, "p_value": p,
        "rule": np.where(judged, rule, ""), "status": status.astype(str), "problem": problem,
    })
    for c in ("allowed", "z", "p_value", "se_baseline", "se_new", "diff"):
        out.loc[~judged, c] = np.nan
    return outside_first(out)


def outside_first(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by status (:data:`STATUS_ORDER`), outside cells by decreasing ``|diff| / allowed``."""
    rank = frame["status"].map({s: i for i, s in enumerate(STATUS_ORDER)})
    with np.errstate(invalid="ignore", divide="ignore"):
        severity = -(frame["diff"].abs() / frame["allowed"]).fillna(0.0)
    order = np.lexsort((frame.index.to_numpy(), severity.to_numpy(), rank.to_numpy()))
    return frame.iloc[order].reset_index(drop=True)


def summary_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Per table: cells compared (not on one side only), then the count of each status."""
    columns = ["table", "compared", "agree", *FAILED, *MISSING]
    rows = []
    for table in dict.fromkeys([*CELL_TABLES, *frame["table"]]):
        s = frame.loc[frame["table"] == table, "status"]
        if len(s):
            rows.append({"table": table, "compared": int((~s.isin(MISSING)).sum()),
                         **{c: int((s == c).sum()) for c in columns[2:]}})
    return pd.DataFrame(rows, columns=columns)


def status_counts(frame: pd.DataFrame) -> str:
    """The count of each status among ``frame``'s rows, failures first.

    >>> status_counts(pd.DataFrame({"status": ["no number", "outside", "no number"]}))
    '1 outside noise, 2 no number'
    """
    counts = frame["status"].value_counts()
    return ", ".join(f"{counts[s]} {'outside noise' if s == 'outside' else s}" for s in STATUS_ORDER if s in counts)


def cell_label(row) -> str:
    """``dataset/arm/fusion detail`` of a comparison row, for messages."""
    parts = [str(row["dataset"]), str(row["arm"]), str(row["fusion"])]
    label = "/".join(p for p in parts if p)
    return f"{label} [{row['detail']}]" if row["detail"] else label


def failure_lines(frame: pd.DataFrame, *, statuses=FAILED, limit: int = 30) -> list[str]:
    """One line per failing cell: ``table metric cell: baseline -> new (diff, allowed ±a)``, or its
    status and what is wrong with it."""
    lines = []
    bad = frame[frame["status"].isin(statuses)]
    for _, r in bad.head(limit).iterrows():
        if r["status"] == "outside":
            lines.append(f"{r['table']} {r['metric']} {cell_label(r)}: {r['baseline']:.6g} -> {r['new']:.6g} "
                         f"(diff {r['diff']:+.4g}, allowed ±{r['allowed']:.4g}, {r['rule']})")
        else:
            lines.append(f"{r['table']} {r['metric']} {cell_label(r)}: {r['status']}"
                         + (f" ({r['problem']})" if r.get("problem") else ""))
    if len(bad) > limit:
        lines.append(f"... and {len(bad) - limit} more")
    return lines
