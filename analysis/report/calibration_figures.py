"""Figures of the calibration page: reliability gaps per arm, and curves shown as the reference
arm's absolute curve next to every other arm's difference from it (risk–coverage, ensemble size),
so that curves lying on top of each other become readable. Style (width, fonts, the arm → colour,
marker and line style mapping) from :mod:`analysis.report.figures`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from analysis.report.figures import ARM_STYLES, _check_columns, _figure, arm_legend_handle, arm_style, styled
from training.arms import CONTROL_ARM

#: colour of a reliability curve after temperature scaling, and of bins with too few samples
AFTER_SCALING_COLOR = "0.35"
SPARSE_COLOR = "0.72"
#: colour of the band and mean line that summarise several arms' differences
SPREAD_COLOR = "#D55E00"


def _arm_order(arms) -> list[str]:
    arms = list(dict.fromkeys(arms))
    return sorted(arms, key=lambda a: (list(ARM_STYLES).index(a) if a in ARM_STYLES else len(ARM_STYLES), a))


def reliability_figure(rel: pd.DataFrame) -> Figure:
    """Reliability gaps: mean confidence minus accuracy per confidence bin (0 = calibrated, above
    0 = over-confident, as the page's text and :func:`analysis.report.calibration.reliability_gaps`
    sign it), one panel per arm (rows of panels per dataset), before temperature scaling
    (the arm's colour and marker, solid) and after (grey, hollow, dashed). Bins flagged ``sparse``
    are grey crosses, not joined, clipped to the panel's range (which is set by the other bins).

    Parameters
    ----------
    rel : DataFrame with ``dataset``, ``arm``, ``confidence``, ``accuracy``; optional ``scaling``
        (``none`` / ``temperature``) and ``sparse`` (bool).
    """
    _check_columns(rel, ["dataset", "arm", "confidence", "accuracy"], name="rel")
    rel = rel.assign(scaling=rel["scaling"] if "scaling" in rel.columns else "none",
                     sparse=rel["sparse"].astype(bool) if "sparse" in rel.columns else False,
                     gap=rel["confidence"] - rel["accuracy"])
    datasets = list(dict.fromkeys(rel["dataset"]))
    arms = _arm_order(rel["arm"])
    ncols = min(len(arms), 3)
    nrows_per = int(np.ceil(len(arms) / ncols))
    dense = rel.loc[~rel["sparse"], "gap"].abs()
    lim = max(float(dense.max()) * 1.15 if len(dense) else 0.0, 0.02)
    x_low = max(np.floor(float(rel["confidence"].min()) * 10) / 10 - 0.02, 0.0) if len(rel) else 0.0
    with styled():
        fig, axes = _figure(ncols, nrows_per * len(datasets), height=0.7 + 1.85 * nrows_per * len(datasets),
                            sharex=True, sharey=True)
        for d, ds in enumerate(datasets):
            for i, arm in enumerate(arms):
                ax = axes[d * nrows_per + i // ncols, i % ncols]
                s = arm_style(arm)
                sub = rel[(rel["dataset"] == ds) & (rel["arm"] == arm)].sort_values("confidence")
                ax.axhline(0, color="0.5", linewidth=0.9)
                for scaling, g in sub.groupby("scaling", sort=False):
                    ok = g[~g["sparse"]]
                    before = scaling == "none"
                    color = s.color if before else AFTER_SCALING_COLOR
                    ax.plot(ok["confidence"], ok["gap"], color=color, linestyle="-" if before else "--",
                            linewidth=1.1, marker=s.marker if before else "o", markersize=3.5,
                            markerfacecolor=color if before else "none", markeredgecolor=color)
                    thin = g[g["sparse"]]
                    ax.scatter(thin["confidence"], thin["gap"].clip(-lim, lim), marker="x", s=14,
                               color=SPARSE_COLOR, linewidths=1.0, zorder=3)
                ax.set_xlim(x_low, 1.02)
                ax.set_ylim(-lim, lim)
                ax.set_title(f"{ds} · {arm}" if len(datasets) > 1 else str(arm), color=s.color)
                if d == len(datasets) - 1 and i // ncols == nrows_per - 1:
                    ax.set_xlabel("mean confidence in bin")
                if i % ncols == 0:
                    ax.set_ylabel("confidence − accuracy")
            for j in range(len(arms), nrows_per * ncols):
                axes[d * nrows_per + j // ncols, j % ncols].set_visible(False)
        handles = [Line2D([], [], color="0.15", marker="o", markersize=3.5, label="before scaling (arm's colour)"),
                   Line2D([], [], color=AFTER_SCALING_COLOR, linestyle="--", marker="o", markerfacecolor="none",
                          markersize=3.5, label="after temperature scaling"),
                   Line2D([], [], color=SPARSE_COLOR, marker="x", linestyle="none", label="bin with too few samples")]
        fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    return fig


def reference_difference_figure(absolute: pd.DataFrame, diff: pd.DataFrame, *, x: str, y: str, reference: str,
                                xlabel: str, ylabel: str, band: tuple[str, str] | None = None,
                                also_absolute: tuple[str, ...] = (), spread: pd.DataFrame | None = None,
                                integer_x: bool = False) -> Figure:
    """Left: the reference arm's absolute curve (with a band from the ``band`` columns when given),
    and those of the ``also_absolute`` arms (curves far from the reference, which would flatten
    the differences); right: every other arm's difference from the reference at the same ``x``
    (zero line = the reference). One row per dataset.

    Parameters
    ----------
    absolute : DataFrame with ``dataset``, ``arm``, ``x``, ``y`` (only the rows of ``reference``
        and ``also_absolute`` are drawn).
    diff : DataFrame with ``dataset``, ``arm``, ``x``, ``difference`` (arm minus reference); the
        ``also_absolute`` arms are left out of it.
    spread : DataFrame with ``dataset``, ``x``, ``mean``, ``low``, ``high``, optional
        When given, the right panels show it (a band from ``low`` to ``high`` over the arms and
        their ``mean`` as a line, as from :func:`analysis.report.calibration.difference_spread`)
        in place of one line per arm.
    integer_x : bool
        Ticks of ``x`` at whole numbers only (ensemble sizes).
    """
    _check_columns(absolute, ["dataset", "arm", x, y, *(band or ())], name="absolute")
    _check_columns(diff, ["dataset", "arm", x, "difference"], name="diff")
    ref = absolute[absolute["arm"] == reference]
    if ref.empty:
        raise ValueError(f"Expected rows of the reference arm {reference!r} in `absolute`; "
                         f"arms present: {sorted(absolute['arm'].unique())}")
    datasets = list(dict.fromkeys(absolute["dataset"]))
    diff = diff[~diff["arm"].isin(also_absolute)]
    arms = _arm_order(diff["arm"])
    extra = [a for a in also_absolute if a in set(absolute["arm"])]
    if spread is not None:
        _check_columns(spread, ["dataset", x, "mean", "low", "high"], name="spread")
    s_ref = arm_style(reference)
    with styled():
        fig, axes = _figure(2, len(datasets), height=0.5 + 2.5 * len(datasets), width_ratios=[1, 1.3])
        for r, ds in enumerate(datasets):
            ax = axes[r, 0]
            g = ref[ref["dataset"] == ds].sort_values(x)
            if band is not None:
                ax.fill_between(g[x], g[band[0]], g[band[1]], color=s_ref.color, alpha=0.15, linewidth=0)
            ax.plot(g[x], g[y], color=s_ref.color, linestyle=s_ref.linestyle, linewidth=1.4)
            for arm in extra:
                s = arm_style(arm)
                g = absolute[(absolute["dataset"] == ds) & (absolute["arm"] == arm)].sort_values(x)
                ax.plot(g[x], g[y], color=s.color, linestyle=s.linestyle, linewidth=1.3, marker=s.marker,
                        markersize=3.5, markevery=max(len(g) // 8, 1))
            title = f"{reference} (reference)" + (f", {', '.join(extra)}" if extra else "")
            ax.set_title(f"{ds} · {title}" if len(datasets) > 1 else title)
            ax.set_ylabel(ylabel)
            ax = axes[r, 1]
            ax.axhline(0, color=s_ref.color, linestyle=s_ref.linestyle, linewidth=1.1)
            if spread is not None:
                g = spread[spread["dataset"] == ds].sort_values(x)
                ax.fill_between(g[x], g["low"], g["high"], color=SPREAD_COLOR, alpha=0.3, linewidth=0)
                ax.plot(g[x], g["mean"], color=SPREAD_COLOR, linewidth=1.5)
            for arm in ([] if spread is not None else arms):
                s = arm_style(arm)
                g = diff[(diff["dataset"] == ds) & (diff["arm"] == arm)].sort_values(x)
                n = len(g)
                ax.plot(g[x], g["difference"], color=s.color, linestyle=s.linestyle, linewidth=1.3, marker=s.marker,
                        markersize=3.5, markevery=max(n // 8, 1))
            ax.set_title(f"{ds} · difference from {reference}" if len(datasets) > 1
                         else f"difference from {reference}")
            ax.set_ylabel(f"Δ {ylabel}")
            for a in axes[r]:
                a.set_xlabel(xlabel if r == len(datasets) - 1 else "")
                if integer_x:
                    a.xaxis.set_major_locator(MaxNLocator(integer=True))
        if spread is None:
            handles = [arm_legend_handle(a) for a in _arm_order([reference, *extra, *arms])]
        else:
            handles = [arm_legend_handle(a) for a in _arm_order([reference, *extra])]
            handles += [Patch(facecolor=SPREAD_COLOR, alpha=0.3, label=f"{', '.join(arms)}: lowest to highest"),
                        Line2D([], [], color=SPREAD_COLOR, linewidth=1.5, label="their mean")]
        fig.legend(handles=handles, loc="outside lower center", ncols=2 if spread is not None else min(len(handles), 4),
                   frameon=False)
    return fig


def risk_coverage_figure(rc: pd.DataFrame, diff: pd.DataFrame, spread: pd.DataFrame) -> Figure:
    """The page's risk–coverage figure: ``ce-lr0.01`` and ``ce`` absolute, the other arms' smoothed
    differences as a band (frames from :func:`analysis.report.calibration.risk_coverage_frames`)."""
    return reference_difference_figure(rc, diff, x="coverage_target", y="risk", reference=CONTROL_ARM,
                                       xlabel="coverage", ylabel="selective risk", also_absolute=("ce",),
                                       spread=spread)


def ensemble_size_figure(es: pd.DataFrame, diff: pd.DataFrame) -> Figure:
    """The page's ensemble-size figure: ``ce-lr0.01`` with its 5–95 % band and ``ce`` absolute,
    the other arms' differences per member count (frames from
    :func:`analysis.report.calibration.ensemble_size_frames`)."""
    return reference_difference_figure(es, diff, x="n_members", y="accuracy", reference=CONTROL_ARM,
                                       xlabel="ensemble size (members)", ylabel="test accuracy",
                                       band=("ci_low", "ci_high"), also_absolute=("ce",), integer_x=True)
