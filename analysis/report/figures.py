"""Seaborn/Matplotlib figures of the report. Each function takes tidy DataFrames and returns a
Matplotlib :class:`~matplotlib.figure.Figure` built without pyplot (no global figure registry, so a
report cell that returns the figure shows it exactly once, in Quarto and in the offline renderer).

One look for every figure: :data:`FULL_WIDTH` inches wide (``fig-width`` of ``_quarto.yml``), font
sizes in :data:`FONT_RC`, chosen so that the smallest text (:data:`SMALL_PT`: ticks, legends,
annotations) prints at :data:`MIN_PRINT_PT` or more where the PDF is narrowest (Quarto's A4 page
prints a full-width figure :data:`PRINT_WIDTH` inches wide), and one arm → colour, marker and line
style mapping, :data:`ARM_STYLES` (Okabe–Ito colours, colour-blind safe; marker and line style
differ too, so no figure relies on colour alone).

No metric is computed here: inputs come from ``dynloss analyze`` results, :mod:`analysis.audit.gradients`
or :mod:`analysis.audit.published`, shaped by :mod:`analysis.report.frames` and :mod:`analysis.report.claims`.
The calibration figures are in :mod:`analysis.report.calibration_figures`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

#: width of every full-width figure, inches
FULL_WIDTH: float = 7.0
#: the text width of the narrower PDF (Quarto's Typst book on A4: 8.27 in less two 1.25 in margins),
#: at which a full-width figure prints; the offline PDF's column is wider (6.85 in)
PRINT_WIDTH: float = 8.27 - 2 * 1.25
#: the smallest size of any figure text once printed, pt
MIN_PRINT_PT: float = 8.0
#: the smallest font of the figures at FULL_WIDTH (ticks, legends, annotations), pt: 8 pt printed
SMALL_PT: float = 10.0
#: font sizes in pt at FULL_WIDTH (SMALL_PT × PRINT_WIDTH / FULL_WIDTH ≥ MIN_PRINT_PT)
FONT_RC: dict[str, float] = {
    "font.size": 10.5, "axes.titlesize": 10.5, "axes.labelsize": 10.5, "xtick.labelsize": SMALL_PT,
    "ytick.labelsize": SMALL_PT, "legend.fontsize": SMALL_PT, "legend.title_fontsize": SMALL_PT,
}
#: the look of every figure (applied per figure through a context manager, not globally)
THEME: dict = {"style": "whitegrid", "context": "paper", "rc": FONT_RC}

#: the Okabe–Ito palette (colour-blind safe)
OKABE_ITO: dict[str, str] = {
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7",
}


@dataclass(frozen=True)
class ArmStyle:
    """How one arm is drawn in every figure."""

    color: str
    marker: str
    linestyle: str | tuple


#: THE arm → style mapping of the report (the paper's arms, in training.arms.ARM_ORDER)
ARM_STYLES: dict[str, ArmStyle] = {
    "ce": ArmStyle(OKABE_ITO["black"], "s", "--"),
    "ce-lr0.01": ArmStyle(OKABE_ITO["blue"], "D", "-"),
    "dyn-0.6": ArmStyle(OKABE_ITO["orange"], "o", "-."),
    "dyn-0.7": ArmStyle(OKABE_ITO["bluish green"], "^", ":"),
    "dyn-0.8": ArmStyle(OKABE_ITO["vermillion"], "v", (0, (5, 1.5, 1, 1.5))),
    "dyn-0.9": ArmStyle(OKABE_ITO["reddish purple"], "P", (0, (3, 1, 1, 1, 1, 1))),
}
_OTHER_ARM = ArmStyle("#7F7F7F", "X", (0, (1, 1)))


def arm_style(arm: str) -> ArmStyle:
    """The style of ``arm`` (grey crosses for an arm outside the paper's set)."""
    return ARM_STYLES.get(arm, _OTHER_ARM)


def arm_legend_handle(arm: str, *, line: bool = True) -> Line2D:
    """A legend entry showing ``arm``'s colour, marker and (when ``line``) line style."""
    s = arm_style(arm)
    return Line2D([], [], color=s.color, marker=s.marker, linestyle=s.linestyle if line else "none",
                  markersize=5, linewidth=1.3, label=arm)


@contextmanager
def styled() -> Iterator[None]:
    with sns.axes_style(THEME["style"]), sns.plotting_context(THEME["context"], rc=THEME["rc"]):
        yield


def _figure(ncols: int = 1, nrows: int = 1, *, width: float = FULL_WIDTH, height: float = 3.0, **kw,
            ) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _check_columns(df: pd.DataFrame, columns: Sequence[str], *, name: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"Expected `{name}` to have columns {list(columns)}; missing {missing} (has {list(df.columns)})")


#: loss curves (not arms): cross-entropy is black and solid in every panel, the others cycle
_CURVE_COLORS = [OKABE_ITO[k] for k in ("vermillion", "sky blue", "orange", "bluish green", "reddish purple",
                                         "blue")] + ["#7F7F7F"]
_CURVE_DASHES = ["--", "-.", ":", (0, (5, 1.5, 1, 1.5)), (0, (3, 1, 1, 1, 1, 1)), (0, (6, 2)), (0, (1, 1))]


def _draw_curves(ax, df: pd.DataFrame, y: str, names: Sequence[str], *, reference: str = "cross-entropy",
                 ) -> list[Line2D]:
    handles = []
    others = [n for n in names if n != reference]
    for name in ([reference] if reference in names else []) + others:
        g = df[df["curve"] == name].sort_values("p_t")
        if name == reference:
            color, dash = OKABE_ITO["black"], "-"
        else:
            i = others.index(name)
            color, dash = _CURVE_COLORS[i % len(_CURVE_COLORS)], _CURVE_DASHES[i % len(_CURVE_DASHES)]
        (ln,) = ax.plot(g["p_t"], g[y], color=color, linestyle=dash, linewidth=1.5, label=name,
                        zorder=1.9 if name == reference else 2.0)
        handles.append(ln)
    return handles


def emphasis_figure(curves: pd.DataFrame, ratio: pd.DataFrame | None = None, *,
                    threshold: float | None = None) -> Figure:
    """Emphasis ``|dL/dz_t|`` against ``p_t``. Top: the dynamic-loss variants next to
    cross-entropy, and (when ``ratio`` is given) their ratio to cross-entropy's emphasis on a
    symmetric-log axis, where 1, 0.1 and 0 are all visible. Bottom: the related losses. Legends sit
    outside the panels.

    Parameters
    ----------
    curves : DataFrame with columns ``curve`` (display name), ``group`` (``"dynamic"`` or
        ``"related"``), ``p_t``, ``emphasis``.
    ratio : DataFrame with ``curve``, ``p_t``, ``ratio`` (the dynamic group's emphasis over
        cross-entropy's), as from :func:`analysis.report.frames.emphasis_ratio_frame`.
    threshold : float, optional
        τ of the dynamic curves, drawn as a vertical line.
    """
    _check_columns(curves, ["curve", "group", "p_t", "emphasis"], name="curves")
    if ratio is not None:
        _check_columns(ratio, ["curve", "p_t", "ratio"], name="ratio")
    dyn = curves[curves["group"] == "dynamic"]
    rel = curves[curves["group"] == "related"]
    dyn_names = list(dict.fromkeys(dyn["curve"]))
    rel_names = list(dict.fromkeys(rel["curve"]))
    with styled():
        fig = Figure(figsize=(FULL_WIDTH, 5.6), layout="constrained")
        top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])
        axes = top.subplots(1, 2 if ratio is not None else 1, squeeze=False)[0]
        handles = _draw_curves(axes[0], dyn, "emphasis", dyn_names)
        axes[0].set_ylabel(r"emphasis $|\partial L/\partial z_t|$")
        axes[0].set_title("Dynamic-loss variants vs cross-entropy")
        if ratio is not None:
            ax = axes[1]
            _draw_curves(ax, ratio, "ratio", dyn_names)
            ax.set_yscale("symlog", linthresh=0.01, linscale=0.6)
            ax.set_ylim(-0.002, 2.0)
            ax.set_yticks([0, 0.01, 0.1, 1], ["0", "0.01", "0.1", "1"])
            ax.set_ylabel("ratio to cross-entropy (symlog)")
            ax.set_title("Gradient relative to cross-entropy")
        for ax in axes:
            ax.set_xlim(0, 1)
            ax.set_xlabel("true-class probability $p_t$")
            if threshold is not None:
                ax.axvline(threshold, color="0.4", linestyle=":", linewidth=1)
                ax.annotate(f"τ = {threshold:g}", (threshold, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(3, -10), textcoords="offset points", color="0.3", fontsize=SMALL_PT)
        top.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 2), frameon=False)
        ax = bottom.subplots(1, 1)
        rel_handles = _draw_curves(ax, rel, "emphasis", rel_names)
        ax.set_xlim(0, 1)
        ax.set_xlabel("true-class probability $p_t$")
        ax.set_ylabel(r"emphasis $|\partial L/\partial z_t|$")
        ax.set_title("Related losses")
        bottom.legend(handles=rel_handles, loc="outside right center", frameon=False, fontsize=SMALL_PT,
                      handlelength=1.8)
    return fig


#: marker, colour and vertical offset of each encoding of the cross-entropy row in Table 2
_ENCODING_MARKERS = ["o", "s", "^", "D", "v", "P"]
_ENCODING_COLORS = [OKABE_ITO[k] for k in ("orange", "blue", "bluish green", "reddish purple", "sky blue",
                                            "vermillion")]


def table2_encoding_figure(search: pd.DataFrame, audit: pd.DataFrame) -> Figure:
    """How Table 2 depends on the τ given to the cross-entropy row. Left: the largest deviation
    from the published r over a grid of values. Right: r per cell under each encoding, each
    encoding a hollow marker of its own shape on its own row offset, drawn above the published
    value (a black cross on the cell's line), so an encoding that reproduces it stays visible.

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
    names = list(dict.fromkeys(cells["cell"]))
    encodings = list(dict.fromkeys(cells["encoding"]))
    ypos = {c: i for i, c in enumerate(names)}
    # one row per cell, 0.42 in high: the published r on the top line of its row, then each encoding
    # on its own line, 0.76 / len(encodings) of a row apart (5.7 pt for five, more than a marker)
    lines = np.linspace(-0.38, 0.38, len(encodings) + 1)
    published_off, offsets = lines[0], lines[1:]
    with styled():
        fig, axes = _figure(2, width=FULL_WIDTH, height=max(3.6, 0.42 * len(names) + 1.9), width_ratios=[1, 1.35])
        ax = axes[0, 0]
        ax.plot(grid["none_value"], grid["max_abs_diff"], color=OKABE_ITO["blue"], linewidth=1.4)
        best = grid.loc[grid["max_abs_diff"].idxmin()]
        ax.scatter([best["none_value"]], [best["max_abs_diff"]], color=OKABE_ITO["vermillion"], marker="D", s=28,
                   zorder=3)
        ax.annotate(f"best τ = {best['none_value']:g}".replace("-", "−"), (best["none_value"], best["max_abs_diff"]),
                    xytext=(6, 16), textcoords="offset points", ha="left", va="bottom", fontsize=SMALL_PT)
        ax.set_yscale("log")
        ax.set_xlabel("τ assigned to the cross-entropy row")
        ax.set_ylabel(f"max |r − published r| over {len(names)} cells")
        ax.set_title("Which τ reproduces Paper Table 2")
        ax = axes[0, 1]
        pub = cells.drop_duplicates("cell")
        ax.scatter(pub["published_r"], [ypos[c] + published_off for c in pub["cell"]], marker="x", color="black", s=30,
                   linewidths=1.2, zorder=2, label="published r")
        for k, (enc, off) in enumerate(zip(encodings, offsets)):
            g = cells[cells["encoding"] == enc]
            ax.scatter(g["pearson_r"], [ypos[c] + off for c in g["cell"]], marker=_ENCODING_MARKERS[k % 6],
                       facecolors="none", edgecolors=_ENCODING_COLORS[k % 6], s=18, linewidths=1.1, zorder=3,
                       label=str(enc))
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.set_xlabel("Pearson r (threshold vs accuracy)")
        ax.set_title("r per cell under each encoding")
        fig.legend(*ax.get_legend_handles_labels(), title="τ given to the CE row", loc="outside lower center",
                   ncols=3, frameon=False)
        ax.grid(axis="y", visible=False)
        for i in range(len(names)):  # a faint band per cell, so each cell's markers read as one group
            if i % 2 == 0:
                ax.axhspan(i - 0.5, i + 0.5, color="0.94", zorder=0, linewidth=0)
    return fig


def accuracy_vs_threshold_figure(acc: pd.DataFrame) -> Figure:
    """Regenerated ensemble accuracy against τ, one panel per fusion (rows: datasets). The
    dynamic arms are points with their 95 % interval at their τ (not joined: they are separate
    models); the cross-entropy arms, which have no τ, are horizontal lines with their interval as
    a band across the panel.

    Parameters
    ----------
    acc : DataFrame with ``dataset``, ``fusion``, ``arm``, ``tau`` (NaN for the cross-entropy
        arms), ``accuracy``, ``ci_low``, ``ci_high``.
    """
    _check_columns(acc, ["dataset", "fusion", "arm", "tau", "accuracy", "ci_low", "ci_high"], name="acc")
    datasets = list(dict.fromkeys(acc["dataset"]))
    fusions = list(dict.fromkeys(acc["fusion"]))
    taus = np.sort(acc["tau"].dropna().unique())
    pad = 0.6 * (np.diff(taus).min() if len(taus) > 1 else 0.1)
    with styled():
        fig, axes = _figure(len(fusions), len(datasets), height=0.6 + 2.3 * len(datasets), sharey="row")
        handles: dict[str, object] = {}
        for r, ds in enumerate(datasets):
            for c, fu in enumerate(fusions):
                ax = axes[r, c]
                sub = acc[(acc["dataset"] == ds) & (acc["fusion"] == fu)]
                for row in sub[sub["tau"].isna()].itertuples(index=False):
                    s = arm_style(row.arm)
                    ax.axhspan(row.ci_low, row.ci_high, color=s.color, alpha=0.14, linewidth=0)
                    ax.axhline(row.accuracy, color=s.color, linestyle=s.linestyle, linewidth=1.2)
                    handles.setdefault(row.arm, (Patch(facecolor=s.color, alpha=0.25),
                                                 Line2D([], [], color=s.color, linestyle=s.linestyle)))
                for row in sub[sub["tau"].notna()].itertuples(index=False):
                    s = arm_style(row.arm)
                    ax.errorbar([row.tau], [row.accuracy], yerr=[[max(row.accuracy - row.ci_low, 0)],
                                                                 [max(row.ci_high - row.accuracy, 0)]],
                                color=s.color, marker=s.marker, markersize=5, capsize=2.5, linestyle="none",
                                elinewidth=1.1)
                    handles.setdefault(row.arm, arm_legend_handle(row.arm, line=False))
                if len(taus):
                    ax.set_xlim(taus[0] - pad, taus[-1] + pad)
                    ax.set_xticks(taus, [f"{t:g}" for t in taus])
                ax.set_title(f"{ds} · {fu}" if len(datasets) > 1 else str(fu))
                ax.set_xlabel("τ" if r == len(datasets) - 1 else "")
                ax.set_ylabel("test accuracy" if c == 0 else "")
        order = sorted(handles, key=lambda a: list(ARM_STYLES).index(a) if a in ARM_STYLES else len(ARM_STYLES))
        labels = [f"{a} (95 % CI band)" if isinstance(handles[a], tuple) else a for a in order]
        fig.legend([handles[a] for a in order], labels, loc="outside lower center", ncols=min(len(order), 3),
                   frameon=False, handlelength=2.4)
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
    palette = dict(zip(fusions, _ENCODING_COLORS))
    with styled():
        fig, axes = _figure(max(len(datasets), 1), width=FULL_WIDTH, height=2.6)
        for i, (ax, ds) in enumerate(zip(axes[0], datasets)):
            sub = vt[vt["dataset"] == ds]
            sns.scatterplot(data=sub, x="test_best", y="val_best", hue="fusion", hue_order=fusions, style="variant",
                            style_order=variants, palette=palette, s=22, alpha=0.85, ax=ax, legend=i == 0)
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
            handles, labels = axes[0][0].get_legend_handles_labels()
            axes[0][0].get_legend().remove()
            fig.legend(handles, labels, loc="outside right center", frameon=False)
    return fig
