"""The related-losses page: the ``related_losses`` results table shaped for display, its figure and
the sentences that read it. No metric is computed here (:mod:`analysis.core.related` did).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.report.context import ReportContext, load_result, reads
from analysis.report.figures import FULL_WIDTH, styled
from training.arms import CONTROL_ARM, DEFAULT_ARMS, RELATED_ARMS

#: the related arms outside the paper's grid (the ones a preset may lack)
EXTRA_ARMS: tuple[str, ...] = tuple(a for a in RELATED_ARMS if a not in DEFAULT_ARMS)

#: the two intervals of the figure: (label, colour, line width); Okabe–Ito colours (colour-blind safe)
TEST_ONLY = ("95 % CI, test samples only", "#0072B2", 4.5)
SEED = ("95 % CI, training seeds and test samples", "#E69F00", 1.4)


@reads("related_losses")
def related_results(ctx: ReportContext) -> pd.DataFrame:
    """The ``related_losses`` table of a preset, as written by ``dynloss analyze``."""
    return load_result("related_losses", ctx)


def _interval(lo: float, hi: float) -> str:
    return "–" if pd.isna(lo) or pd.isna(hi) else f"[{lo:+.4f}, {hi:+.4f}]"


@reads("related_losses")
def related_table(ctx: ReportContext, *, part: str = "accuracy") -> pd.DataFrame:
    """One of the page's two tables of a preset (:func:`related_frame` of its ``related_losses``)."""
    return related_frame(related_results(ctx), part=part)


def related_frame(rel: pd.DataFrame, *, part: str = "accuracy") -> pd.DataFrame:
    """A table of the page, one row per dataset and loss, columns named in plain words (the dataset
    column only when there are several): ``part="accuracy"`` (members, accuracy, the difference to
    ce-lr0.01 with both intervals, single members) or ``"calibration"`` (ECE before and after
    temperature scaling, the temperature, AURC)."""
    cols: dict[str, object] = {"dataset": rel["dataset"], "loss": rel["label"]}
    if part == "accuracy":
        cols.update({
            "members": rel["n_members"],
            "accuracy": rel["accuracy"],
            "Δ vs ce-lr0.01": rel["diff_vs_control"],
            "95 % CI, test samples": [_interval(a, b) for a, b in zip(rel["control_ci_low"], rel["control_ci_high"])],
            "95 % CI, seeds and test samples": [_interval(a, b) for a, b in
                                                zip(rel["control_seed_ci_low"], rel["control_seed_ci_high"])],
            "single members: accuracy mean ± sd": [f"{m:.4f} ± {s:.4f}" if pd.notna(s) else f"{m:.4f}"
                                                   for m, s in zip(rel["member_acc_mean"], rel["member_acc_sd"])],
        })
    elif part == "calibration":
        cols.update({"ECE": rel["ece"], "ECE after temperature scaling": rel["ece_temperature"],
                     "temperature": rel["temperature"], "AURC": rel["aurc"]})
    else:
        raise ValueError(f"Expected `part` 'accuracy' or 'calibration', got {part!r}")
    out = pd.DataFrame(cols)
    return out if rel["dataset"].nunique() > 1 else out.drop(columns="dataset")


def related_figure(rel: pd.DataFrame) -> Figure:
    """Δ accuracy vs ``ce-lr0.01`` per arm (Average fusion) with both intervals: a thick bar for the
    test-sample interval, a thin line with caps for the two-level (seed) interval; a vertical line
    at 0 (the control). One panel per dataset; legend below the panels."""
    arms = rel[rel["arm"] != CONTROL_ARM]
    datasets = list(dict.fromkeys(rel["dataset"]))
    with styled():
        n_rows = max(1, arms.groupby("dataset").size().max() if not arms.empty else 1)
        fig = Figure(figsize=(FULL_WIDTH, 0.42 * n_rows + 1.9), layout="constrained")
        axes = fig.subplots(1, len(datasets), squeeze=False, sharey=False)[0]
        for ax, ds in zip(axes, datasets):
            g = arms[arms["dataset"] == ds].iloc[::-1]  # first arm on top
            y = np.arange(len(g))
            ax.axvline(0, color="0.25", linewidth=1.0, zorder=1)
            if g.empty:
                ax.text(0.5, 0.5, "no related arm analysed", ha="center", va="center", transform=ax.transAxes)
                ax.set_yticks([])
            else:
                d = g["diff_vs_control"].to_numpy(float)
                for (label, colour, width), lo, hi, cap in (
                        (SEED, g["control_seed_ci_low"], g["control_seed_ci_high"], 3.0),
                        (TEST_ONLY, g["control_ci_low"], g["control_ci_high"], 0.0)):
                    ax.errorbar(d, y, xerr=np.clip(np.vstack([d - lo.to_numpy(float), hi.to_numpy(float) - d]), 0, None),
                                fmt="none", ecolor=colour, elinewidth=width, capsize=cap, capthick=width, zorder=2)
                ax.plot(d, y, "o", color="black", markersize=3.5, zorder=3)
                ax.set_yticks(y, g["label"].astype(str).tolist())
            ax.set_ylim(-0.7, max(len(g), 1) - 0.3)
            ax.set_title(str(ds))
            ax.set_xlabel("Δ accuracy vs ce-lr0.01 (Average)")
        handles = [Line2D([], [], color=TEST_ONLY[1], linewidth=TEST_ONLY[2], label=TEST_ONLY[0]),
                   Line2D([], [], color=SEED[1], linewidth=SEED[2], marker="|", markersize=8, label=SEED[0]),
                   Line2D([], [], color="0.25", linewidth=1.0, label="ce-lr0.01 (Δ = 0)"),
                   Line2D([], [], color="black", marker="o", linestyle="none", markersize=3.5, label="estimate")]
        fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    return fig


def _names(rows: pd.DataFrame) -> str:
    items = [f"{r.label} ({r.diff_vs_control:+.4f})" for r in rows.itertuples()]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@reads("related_losses")
def related_note(ctx: ReportContext, *, rel: pd.DataFrame | None = None) -> str:
    """Two to four sentences read off the table: which arms differ from ``ce-lr0.01`` by the seed
    interval, which are better or worse calibrated, and how to train the arms the preset lacks."""
    preset = ctx.preset
    rel = related_results(ctx) if rel is None else rel
    parts = []
    for ds, g in rel.groupby("dataset", sort=False):
        ctrl = g[g["arm"] == CONTROL_ARM]
        arms = g[g["arm"] != CONTROL_ARM]
        if ctrl.empty or arms.empty:
            parts.append(f"{ds}: no comparison with ce-lr0.01 (the control or the related arms are missing).")
            continue
        lo, hi = arms["control_seed_ci_low"], arms["control_seed_ci_high"]
        better, worse = arms[lo > 0], arms[hi < 0]
        if better.empty and worse.empty:
            s = (f"On {ds}, no related loss differs from cross-entropy at the same learning rate (ce-lr0.01) in "
                 f"Average-ensemble accuracy once training seeds are resampled: every seed interval of Δ holds 0")
        else:
            said = []
            if not better.empty:
                said.append(f"{_names(better)} {'is' if len(better) == 1 else 'are'} more accurate")
            if not worse.empty:
                said.append(f"{_names(worse)} {'is' if len(worse) == 1 else 'are'} less accurate")
            rest = len(arms) - len(better) - len(worse)
            s = (f"On {ds}, {' and '.join(said)} than ce-lr0.01 with the seed interval excluding 0; "
                 f"the other {rest} {'arm' if rest == 1 else 'arms'} cannot be told apart from it" if rest else
                 f"On {ds}, {' and '.join(said)} than ce-lr0.01 with the seed interval excluding 0")
        test_only = arms[((arms["control_ci_low"] > 0) | (arms["control_ci_high"] < 0)) & ~((lo > 0) | (hi < 0))]
        if not test_only.empty:
            s += (f" ({len(test_only)} more {'differs' if len(test_only) == 1 else 'differ'} by the test-sample "
                  f"interval alone, which ignores training randomness)")
        parts.append(s + ".")
        ece0 = float(ctrl["ece"].iloc[0])
        lower, higher = arms[arms["ece"] < ece0], arms[arms["ece"] > ece0]
        n_lower = "none" if lower.empty else f"{len(lower)}"
        cal = (f"Before temperature scaling, {n_lower} of the {len(arms)} related arms {'is' if len(lower) < 2 else 'are'} "
               f"better calibrated than ce-lr0.01 (ECE {ece0:.4f})")
        if not lower.empty:
            best = lower.loc[lower["ece"].idxmin()]
            cal += f", the best being {best['label']} with ECE {best['ece']:.4f}"
        if not higher.empty:
            worst = higher.loc[higher["ece"].idxmax()]
            cal += f"; the worst is {worst['label']} with ECE {worst['ece']:.4f}"
        t_ece = g["ece_temperature"]
        cal += (f"; after temperature scaling the ECEs range from {t_ece.min():.4f} to {t_ece.max():.4f} "
                f"(ce-lr0.01: {float(ctrl['ece_temperature'].iloc[0]):.4f}; fitted temperatures "
                f"{g['temperature'].min():.2f} to {g['temperature'].max():.2f}).")
        parts.append(cal)
    missing = [a for a in EXTRA_ARMS if a not in set(rel["arm"])]
    if missing:
        parts.append(f"Preset **{preset}** has no {', '.join(f'`{a}`' for a in missing)}: train them with "
                     f"`dynloss train --preset {preset} --arms {','.join((CONTROL_ARM, *RELATED_ARMS))}`, then run "
                     f"`dynloss analyze --preset {preset}`.")
    return " ".join(parts) + "\n"
