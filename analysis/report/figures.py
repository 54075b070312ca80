"""Seaborn figures of the report. Each function takes tidy DataFrames and returns a Matplotlib
:class:`~matplotlib.figure.Figure` built without pyplot (no global figure registry, so a report
cell that returns the figure shows it exactly once, in Quarto and in the offline renderer).

No metric is computed here: inputs come from ``dynloss analyze`` results, :mod:`analysis.audit.gradients`
or :mod:`analysis.audit.published`, shaped by :mod:`analysis.report.frames` and :mod:`analysis.report.claims`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

#: the look of every figure (applied per figure through a context manager, not globally)
THEME: dict = {"style": "whitegrid", "context": "paper", "font_scale": 1.05}


def _figure(ncols: int = 1, nrows: int = 1, *, width: float = 7.0, height: float = 3.6, **kw) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _check_columns(df: pd.DataFrame, columns: Sequence[str], *, name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"Expected `{name}` to have columns {list(columns)}; missing {missing} (has {list(df.columns)})")


def emphasis_figure(curves: pd.DataFrame, *, threshold: float | None = None) -> Figure:
    """Emphasis ``|dL/dz_t|`` against ``p_t``: dynamic-loss variants next to cross-entropy (left),
    the related losses (right).

    Parameters
    ----------
    curves : DataFrame with columns ``curve`` (display name), ``group`` (``"dynamic"`` or
        ``"related"``), ``p_t``, ``emphasis``.
    threshold : float, optional
        τ of the dynamic curves, drawn as a vertical line.
    """
    _check_columns(curves, ["curve", "group", "p_t", "emphasis"], name="curves")
    with sns.axes_style(THEME["style"]), sns.plotting_context(THEME["context"], font_scale=THEME["font_scale"]):
        fig, axes = _figure(2, width=10.0, height=3.9)
        for ax, group, title in zip(axes[0], ("dynamic", "related"),
                                    ("Dynamic-loss variants vs cross-entropy", "Related losses")):
            sub = curves[curves["group"] == group]
            sns.lineplot(data=sub, x="p_t", y="emphasis", hue="curve", style="curve", ax=ax, linewidth=1.8,
                         errorbar=None)
            if threshold is not None and group == "dynamic":
                ax.axvline(threshold, color="0.4", linestyle=":", linewidth=1)
                ax.annotate(f"τ = {threshold:g}", (threshold, ax.get_ylim()[1] * 0.92), xytext=(4, 0),
                            textcoords="offset points", fontsize=8, color="0.3")
            ax.set_title(title)
            ax.set_xlabel("true-class probability $p_t$")
            ax.set_ylabel(r"emphasis $|\partial L/\partial z_t|$")
            ax.set_xlim(0, 1)
            ax.legend(title=None, fontsize=7.5, frameon=True)
    return fig


def table2_encoding_figure(search: pd.DataFrame, audit: pd.DataFrame) -> Figure:
    """How Table 2 depends on the τ given to the cross-entropy row.

    Parameters
    ----------
    search : DataFrame with ``none_value`` and ``max_abs_diff`` (one row per grid value; rows
        with NaN ``none_value`` are ignored), as from :func:`analysis.audit.published.search_none_encoding`.
    audit : DataFrame with ``dataset``, ``fusion``, ``encoding``, ``pearson_r``, ``published_r``.
    """
    _check_columns(search, ["none_value", "max_abs_diff"], name="search")
    _check_columns(audit, ["dataset", "fusion", "encoding", "pearson_r", "published_r"], name="audit")
    grid = search.dropna(subset=["none_value"]).drop_duplicates("none_value").sort_values("none_value")
    cells = audit.assign(cell=audit["dataset"] + " · " + audit["fusion"])
    with sns.axes_style(THEME["style"]), sns.plotting_context(THEME["context"], font_scale=THEME["font_scale"]):
        fig, axes = _figure(2, width=11.5, height=4.2, width_ratios=[1, 1.5])
        ax = axes[0, 0]
        sns.lineplot(data=grid, x="none_value", y="max_abs_diff", ax=ax, color="C0", linewidth=1.5)
        best = grid.loc[grid["max_abs_diff"].idxmin()]
        ax.scatter([best["none_value"]], [best["max_abs_diff"]], color="C3", zorder=3,
                   label=f"best: τ(None) = {best['none_value']:g}")
        ax.set_yscale("log")
        ax.set_xlabel("τ assigned to the cross-entropy row")
        ax.set_ylabel("max |r − published r| over 12 cells")
        ax.set_title("Which encoding reproduces Table 2")
        ax.legend(fontsize=8)
        ax = axes[0, 1]
        sns.stripplot(data=cells, x="pearson_r", y="cell", hue="encoding", ax=ax, jitter=False, size=5, alpha=0.85,
                      dodge=False)
        pub = cells.drop_duplicates("cell")
        ax.scatter(pub["published_r"], pub["cell"], marker="x", color="black", s=40, zorder=4, label="published")
        ax.set_xlabel("Pearson r (threshold vs accuracy)")
        ax.set_ylabel("")
        ax.set_title("r per cell under each encoding")
        handles, labels = ax.get_legend_handles_labels()
        ax.get_legend().remove()
        fig.legend(handles, labels, fontsize=7.5, title="τ given to the CE row", loc="outside right upper")
    return fig


def accuracy_vs_threshold_figure(acc: pd.DataFrame) -> Figure:
    """Ensemble accuracy against τ with confidence intervals, one line per fusion, one panel per
    dataset.

    Parameters
    ----------
    acc : DataFrame with ``dataset``, ``fusion``, ``tau`` (numeric; the cross-entropy arm drawn at
        its own position), ``accuracy``, ``ci_low``, ``ci_high``; optional ``arm_label`` used
        for tick labels.
    """
    _check_columns(acc, ["dataset", "fusion", "tau", "accuracy", "ci_low", "ci_high"], name="acc")
    datasets = list(dict.fromkeys(acc["dataset"]))
    fusions = list(dict.fromkeys(acc["fusion"]))
    palette = dict(zip(fusions, sns.color_palette("colorblind", len(fusions))))
    with sns.axes_style(THEME["style"]), sns.plotting_context(THEME["context"], font_scale=THEME["font_scale"]):
        fig, axes = _figure(len(datasets), width=min(4.6 * len(datasets), 11.0) + 1.8, height=3.6)
        offsets = np.linspace(-0.012, 0.012, len(fusions)) if len(fusions) > 1 else [0.0]
        for ax, ds in zip(axes[0], datasets):
            sub = acc[acc["dataset"] == ds]
            for off, fu in zip(offsets, fusions):
                g = sub[sub["fusion"] == fu].sort_values("tau")
                if g.empty:
                    continue
                x = g["tau"].to_numpy(float) + off
                y = g["accuracy"].to_numpy(float)
                yerr = np.vstack([y - g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float) - y])
                ax.errorbar(x, y, yerr=np.clip(yerr, 0, None), marker="o", markersize=3.5, capsize=2.5,
                            linewidth=1.3, color=palette[fu], label=fu)
            if "arm_label" in sub.columns:
                ticks = sub.drop_duplicates("tau").sort_values("tau")
                ax.set_xticks(ticks["tau"].to_numpy(float), ticks["arm_label"].astype(str).tolist(), rotation=30,
                              fontsize=7.5)
            ax.set_title(str(ds))
            ax.set_xlabel("arm (dynamic-loss τ)")
            ax.set_ylabel("test accuracy")
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, title="fusion", fontsize=7.5, loc="outside right upper")
    return fig


def reliability_figure(rel: pd.DataFrame) -> Figure:
    """Reliability diagrams: accuracy against mean confidence per bin, one panel per arm (rows:
    datasets), one line per ``scaling`` (before / after temperature scaling); marker area grows
    with the bin's sample count. The diagonal is perfect calibration.

    Parameters
    ----------
    rel : DataFrame with ``dataset``, ``arm``, ``confidence``, ``accuracy``; optional
        ``scaling`` and ``count``.
    """
    _check_columns(rel, ["dataset", "arm", "confidence", "accuracy"], name="rel")
    rel = rel.assign(scaling=rel["scaling"] if "scaling" in rel.columns else "none")
    datasets = list(dict.fromkeys(rel["dataset"]))
    arms = list(dict.fromkeys(rel["arm"]))
    ncols = min(len(arms), 3)
    nrows_per = int(np.ceil(len(arms) / ncols))
    palette = dict(zip(dict.fromkeys(rel["scaling"]), sns.color_palette("colorblind")))
    with sns.axes_style(THEME["style"]), sns.plotting_context(THEME["context"], font_scale=THEME["font_scale"]):
        fig, axes = _figure(ncols, nrows_per * len(datasets), width=3.0 * ncols + 0.8,
                            height=2.7 * nrows_per * len(datasets), sharex=True, sharey=True)
        for d, ds in enumerate(datasets):
            for i, arm in enumerate(arms):
                ax = axes[d * nrows_per + i // ncols, i % ncols]
                sub = rel[(rel["dataset"] == ds) & (rel["arm"] == arm)].sort_values("confidence")
                ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1)
                for scaling, g in sub.groupby("scaling", sort=False):
                    size = (12 + 60 * g["count"] / max(g["count"].max(), 1)) if "count" in g.columns else 20
                    ax.plot(g["confidence"], g["accuracy"], color=palette[scaling], linewidth=1.1, alpha=0.8)
                    ax.scatter(g["confidence"], g["accuracy"], s=size, color=palette[scaling], alpha=0.8,
                               label=f"scaling: {scaling}")
                ax.set_xlim(0, 1.02)
                ax.set_ylim(-0.02, 1.02)
                ax.set_title(f"{ds} · {arm}" if len(datasets) > 1 else str(arm))
                ax.set_xlabel("mean confidence in bin")
                ax.set_ylabel("accuracy in bin")
            for j in range(len(arms), nrows_per * ncols):
                axes[d * nrows_per + j // ncols, j % ncols].set_visible(False)
        axes[0, 0].legend(fontsize=7, loc="upper left")
    return fig


def risk_coverage_figure(rc: pd.DataFrame) -> Figure:
    """Risk–coverage curves (selective risk against coverage), one line per arm and panel per dataset.

    Parameters
    ----------
    rc : DataFrame with ``dataset``, ``arm``, ``coverage``, ``risk``.
    """
    _check_columns(rc, ["dataset", "arm", "coverage", "risk"], name="rc")
    datasets = list(dict.fromkeys(rc["dataset"]))
    arms = list(dict.fromkeys(rc["arm"]))  # legend in the order the rows come (not by coverage)
    with sns.axes_style(THEME["style"]), sns.plotting_context(THEME["context"], font_scale=THEME["font_scale"]):
        fig, axes = _figure(len(datasets), width=min(4.0 * len(datasets), 11.0) + 1.0, height=3.6)
        for ax, ds in zip(axes[0], datasets):
            sub = rc[rc["dataset"] == ds].sort_values("coverage")
            sns.lineplot(data=sub, x="coverage", y="risk", hue="arm", style="arm", hue_order=arms, style_order=arms,
                         ax=ax, errorbar=None, linewidth=1.3)
            ax.set_xlim(0, 1)
            ax.set_ylim(bottom=0)
            ax.set_title(str(ds))
            ax.set_xlabel("coverage")
            ax.set_ylabel("selective risk (error rate)")
            ax.legend(title=None, fontsize=7)
    return fig


def ensemble_size_figure(es: pd.DataFrame) -> Figure:
    """Accuracy against the number of members, one line per arm (fusion in the line style when
    there are several), one panel per dataset; a band when ``ci_low``/``ci_high`` are given.

    Parameters
    ----------
    es : DataFrame with ``dataset``, ``arm``, ``n_members``, ``accuracy``; optional ``fusion``,
        ``ci_low``, ``ci_high``.
    """
    _check_columns(es, ["dataset", "arm", "n_members", "accuracy"], name="es")
    datasets = list(dict.fromkeys(es["dataset"]))
    style = "fusion" if "fusion" in es.columns and es["fusion"].nunique() > 1 else None
    with sns.axes_style(THEME["style"]), sns.plotting_context(THEME["context"], font_scale=THEME["font_scale"]):
        fig, axes = _figure(len(datasets), width=min(4.0 * len(datasets), 11.0) + 1.0, height=3.6)
        arms = list(dict.fromkeys(es["arm"]))
        palette = dict(zip(arms, sns.color_palette("colorblind", len(arms))))
        for ax, ds in zip(axes[0], datasets):
            sub = es[es["dataset"] == ds].sort_values("n_members")
            sns.lineplot(data=sub, x="n_members", y="accuracy", hue="arm", hue_order=arms, style=style, ax=ax,
                         errorbar=None, palette=palette, linewidth=1.3, marker="o", markersize=3.5)
            if {"ci_low", "ci_high"} <= set(sub.columns) and style is None:
                for arm, g in sub.groupby("arm", sort=False):
                    ax.fill_between(g["n_members"], g["ci_low"], g["ci_high"], color=palette[arm], alpha=0.15,
                                    linewidth=0)
            ax.set_title(str(ds))
            ax.set_xlabel("ensemble size (members)")
            ax.set_ylabel("test accuracy")
            ax.legend(title=None, fontsize=7)
    return fig


def validation_test_figure(vt: pd.DataFrame) -> Figure:
    """Validation against test accuracy of super-learner fits, one panel per dataset, with the
    line y = x: points above it validated better than they tested.

    Parameters
    ----------
    vt : DataFrame with ``dataset``, ``fusion``, ``variant``, ``test_best``, ``val_best``; rows with
        a true ``failed`` column are left out (their accuracies are at chance).
    """
    _check_columns(vt, ["dataset", "fusion", "variant", "test_best", "val_best"], name="vt")
    if "failed" in vt.columns:
        vt = vt[~vt["failed"].astype(bool)]
    datasets = sorted(vt["dataset"].unique())
    fusions = list(dict.fromkeys(vt["fusion"]))
    variants = list(dict.fromkeys(vt["variant"]))
    with sns.axes_style(THEME["style"]), sns.plotting_context(THEME["context"], font_scale=THEME["font_scale"]):
        fig, axes = _figure(len(datasets), width=min(3.6 * len(datasets), 11.0), height=3.6)
        for i, (ax, ds) in enumerate(zip(axes[0], datasets)):
            sub = vt[vt["dataset"] == ds]
            sns.scatterplot(data=sub, x="test_best", y="val_best", hue="fusion", hue_order=fusions, style="variant",
                            style_order=variants, palette="colorblind", s=28, alpha=0.85, ax=ax,
                            legend=i == len(datasets) - 1)
            lo = float(min(sub["test_best"].min(), sub["val_best"].min()))
            hi = float(max(sub["test_best"].max(), sub["val_best"].max()))
            pad = 0.05 * (hi - lo) + 1e-3
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.4", linestyle="--", linewidth=1,
                    label="y = x")
            ax.set_xlim(lo - pad, hi + pad)
            ax.set_ylim(lo - pad, hi + pad)
            ax.set_aspect("equal")
            ax.set_title(str(ds))
            ax.set_xlabel("test accuracy")
            ax.set_ylabel("validation accuracy" if i == 0 else "")
        if len(datasets):
            axes[0][-1].legend(fontsize=7, loc="lower right")
    return fig
