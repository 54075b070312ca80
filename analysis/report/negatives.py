"""Negative results in words, computed from the results tables where the numbers show them: the
learned fusions against plain Average (:func:`learned_vs_average` + :func:`learned_vs_average_sentence`),
the dynamic arms' calibration against the same-rate control ``ce-lr0.01``
(:func:`calibration_vs_control` + :func:`calibration_sentence`), and the leak-free learned fusions
of the dynamic arms against the control's (:func:`leak_free_vs_control` + :func:`leak_free_sentence`).

Each pair is a frame builder (frames in, frame out) and a sentence over that frame; the sentence
counts and quotes, it never asserts what the numbers do not show (a count of 0 is said as 0).
The loaders at the bottom read one preset's results for the pages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.core.fusions import FUSIONS
from analysis.report.context import ReportContext, load_result, reads
from analysis.report.statistics import CI_TEST_ONLY
from training.arms import ARM_ORDER, ARMS, CONTROL_ARM

#: the static fusion the learned ones are held against
BASELINE_FUSION = "Average"


def _learned(fusions: Sequence[str] | None) -> list[str]:
    return [f.name for f in FUSIONS.values() if f.learned] if fusions is None else list(fusions)


def _leak_free_learned() -> list[str]:
    return [f.name for f in FUSIONS.values() if f.learned and f.leak_free]


def _dynamic_paper_arms() -> list[str]:
    return [a for a in ARM_ORDER if ARMS[a].family == "dyn"]


def _num(x: float, digits: int = 4) -> str:
    """Signed with a true minus sign (as the pages print differences)."""
    return f"{x:+.{digits}f}".replace("-", "\u2212")


def _check(df: pd.DataFrame, name: str, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"Expected `{name}` to have columns {missing} (has {list(df.columns)})")


def learned_vs_average(table1: pd.DataFrame, *, fusions: Sequence[str] | None = None,
                       baseline: str = BASELINE_FUSION) -> pd.DataFrame:
    """Each learned fusion's accuracy minus the ``baseline`` fusion's (default Average) of the same
    members, for every paper arm that has both: ``dataset, arm, fusion, accuracy, baseline_accuracy,
    diff`` (point estimates of ``table1.csv``).

    Parameters
    ----------
    table1 : ``table1.csv`` (``dataset, arm, fusion, accuracy``).
    fusions : the learned fusions (default: every learned fusion of :data:`analysis.core.fusions.FUSIONS`).
    """
    _check(table1, "table1", ("dataset", "arm", "fusion", "accuracy"))
    t = table1[table1["arm"].isin(ARM_ORDER)]
    base = t[t["fusion"] == baseline].set_index(["dataset", "arm"])["accuracy"].rename("baseline_accuracy")
    ln = t[t["fusion"].isin(_learned(fusions))].dropna(subset=["accuracy"])
    out = ln[["dataset", "arm", "fusion", "accuracy"]].join(base, on=["dataset", "arm"], how="inner")
    out["diff"] = out["accuracy"] - out["baseline_accuracy"]
    return out.reset_index(drop=True)


def learned_vs_average_sentence(frame: pd.DataFrame, *, baseline: str = BASELINE_FUSION) -> str:
    """The learned fusions against ``baseline`` in words (from :func:`learned_vs_average`): per
    dataset, how many (arm, learned fusion) cells lie below, in how many arms every learned fusion
    does, and the range of the differences. Empty when the frame is (no learned fusion)."""
    if frame.empty:
        return ""
    parts = []
    for ds, g in frame.groupby("dataset", sort=False):
        below = int((g["diff"] < 0).sum())
        arms = g.groupby("arm", sort=False)["diff"].apply(lambda d: bool((d < 0).all()))
        fusions = ", ".join(dict.fromkeys(g["fusion"]))
        every = ("every arm" if arms.all() else f"{int(arms.sum())} of {len(arms)} arms")
        parts.append(
            f"On {ds}, {below} of {len(g)} (arm, learned fusion) cells score below plain {baseline} of the same "
            f"members ({fusions}; {len(arms)} arms), and in {every} all learned fusions do; differences "
            f"{_num(g['diff'].min())} to {_num(g['diff'].max())} (accuracy, point estimates).")
    return "**Learned fusions against " + baseline + ".** " + " ".join(parts)


def calibration_vs_control(calibration: pd.DataFrame, *, reference: str = CONTROL_ARM, fusion: str = BASELINE_FUSION,
                           metrics: Sequence[str] = ("ece", "nll", "brier")) -> pd.DataFrame:
    """Each dynamic paper arm's calibration (``fusion`` ensemble, member −1) minus ``reference``'s,
    before and after temperature scaling: ``dataset, scaling, arm, metric, value, reference_value,
    diff`` (lower is better for every metric here).

    Parameters
    ----------
    calibration : ``calibration.csv`` (``dataset, arm, fusion, member, scaling`` and the metrics).
    """
    _check(calibration, "calibration", ("dataset", "arm", "fusion", "member", "scaling", *metrics))
    c = calibration[(calibration["fusion"] == fusion) & (calibration["member"] == -1)]
    ref = c[c["arm"] == reference].set_index(["dataset", "scaling"])
    if ref.empty:
        raise ValueError(f"Expected rows of the reference arm {reference!r} in `calibration` (fusion {fusion!r})")
    rows = []
    for r in c[c["arm"].isin(_dynamic_paper_arms())].itertuples(index=False):
        key = (r.dataset, r.scaling)
        if key not in ref.index:
            continue
        for m in metrics:
            v, rv = float(getattr(r, m)), float(ref.loc[key, m])
            rows.append({"dataset": r.dataset, "scaling": r.scaling, "arm": r.arm, "metric": m, "value": v,
                         "reference_value": rv, "diff": v - rv})
    return pd.DataFrame(rows, columns=["dataset", "scaling", "arm", "metric", "value", "reference_value", "diff"])


_METRIC_NAMES = {"ece": "ECE", "nll": "NLL", "brier": "Brier score"}


def calibration_sentence(frame: pd.DataFrame, *, reference: str = CONTROL_ARM, fusion: str = BASELINE_FUSION) -> str:
    """The dynamic arms' calibration against ``reference`` in words (from :func:`calibration_vs_control`):
    per dataset, how many arms have a worse (higher) ECE before temperature scaling, with each arm's
    ECE beside the reference's, then the counts for NLL and Brier and for ECE after scaling."""
    if frame.empty:
        return ""
    parts = []
    for ds, g in frame.groupby("dataset", sort=False):
        pre = g[g["scaling"] == "none"]
        ece = pre[pre["metric"] == "ece"]
        if ece.empty:
            continue
        n = len(ece)
        worse = ece[ece["diff"] > 0]
        quoted = "; ".join(f"`{r.arm}` {r.value:.4f}" for r in ece.itertuples())
        text = (f"On {ds}, before temperature scaling, {len(worse)} of {n} dynamic arms have a higher ECE than "
                f"`{reference}` ({ece['reference_value'].iloc[0]:.4f}) in the {fusion} ensemble: {quoted}.")
        others = []
        for m in ("nll", "brier"):
            x = pre[pre["metric"] == m]
            if len(x):
                others.append(f"{_METRIC_NAMES[m]} higher in {int((x['diff'] > 0).sum())} of {len(x)}")
        post = g[(g["scaling"] == "temperature") & (g["metric"] == "ece")]
        if len(post):
            others.append(f"after temperature scaling ECE higher in {int((post['diff'] > 0).sum())} of {len(post)}")
        if others:
            joined = "; ".join(others)
            text += f" {joined[0].upper()}{joined[1:]} (point estimates on the test set)."
        parts.append(text)
    return ("**Calibration.** " + " ".join(parts)) if parts else ""


def leak_free_vs_control(bootstrap_ci: pd.DataFrame, *, reference: str = CONTROL_ARM,
                         fusions: Sequence[str] | None = None) -> pd.DataFrame:
    """The leak-free learned fusions (default every learned, leak-free fusion: Weighted-OOB,
    MLP-OOB) of each dynamic paper arm minus the same fusion of ``reference`` (same learning rate),
    with the paired bootstrap interval over test samples: ``dataset, fusion, arm, diff, ci_low,
    ci_high, side`` (``side`` +1 above 0, −1 below, 0 covering 0).

    Parameters
    ----------
    bootstrap_ci : ``bootstrap_ci.csv`` (rows with ``quantity == "diff"``).
    """
    _check(bootstrap_ci, "bootstrap_ci", ("dataset", "arm", "fusion", "quantity", "reference", "estimate",
                                          "ci_low", "ci_high"))
    fusions = _leak_free_learned() if fusions is None else list(fusions)
    d = bootstrap_ci[(bootstrap_ci["quantity"] == "diff") & (bootstrap_ci["reference"] == reference)
                     & bootstrap_ci["fusion"].isin(fusions) & bootstrap_ci["arm"].isin(_dynamic_paper_arms())]
    out = pd.DataFrame({"dataset": d["dataset"], "fusion": d["fusion"], "arm": d["arm"], "diff": d["estimate"],
                        "ci_low": d["ci_low"], "ci_high": d["ci_high"]})
    out["side"] = np.where(out["ci_low"] > 0, 1, np.where(out["ci_high"] < 0, -1, 0))
    order = {f: i for i, f in enumerate(fusions)}
    return (out.assign(_f=out["fusion"].map(order)).sort_values(["dataset", "_f", "arm"], kind="stable")
            .drop(columns="_f").reset_index(drop=True))


def leak_free_sentence(frame: pd.DataFrame, *, reference: str = CONTROL_ARM) -> str:
    """The leak-free learned fusions of the dynamic arms against ``reference``'s in words (from
    :func:`leak_free_vs_control`): per dataset and fusion, each arm's Δ with its interval and how
    many intervals lie below 0 and above."""
    if frame.empty:
        return ""
    parts = []
    for (ds, fusion), g in frame.groupby(["dataset", "fusion"], sort=False):
        cells = "; ".join(f"`{r.arm}` {_num(r.diff)} [{_num(r.ci_low)}, {_num(r.ci_high)}]" for r in g.itertuples())
        below, above = int((g["side"] == -1).sum()), int((g["side"] == 1).sum())
        parts.append(f"On {ds}, leak-free {fusion} of the {len(g)} dynamic arms minus {fusion} of `{reference}`: "
                     f"{below} of {len(g)} intervals below 0, {above} above ({cells}).")
    return (f"**Leak-free learned fusions at the same learning rate.** " + " ".join(parts)
            + f" Paired bootstrap 95\u00a0% intervals over {CI_TEST_ONLY}.")


# ------------------------------------------------------------------ loaders for the page cells
@reads("table1")
def learned_vs_average_note(ctx: ReportContext) -> str:
    """:func:`learned_vs_average_sentence` of the preset, as a paragraph."""
    text = learned_vs_average_sentence(learned_vs_average(load_result("table1", ctx)))
    return f"{text}\n" if text else ""


@reads("calibration")
def calibration_note(ctx: ReportContext) -> str:
    """:func:`calibration_sentence` of the preset, as a paragraph (saying so when the preset has no
    ``ce-lr0.01`` to compare with)."""
    cal = load_result("calibration", ctx)
    if not (cal["arm"] == CONTROL_ARM).any():
        return f"**Calibration.** Not compared: preset {ctx.preset} has no `{CONTROL_ARM}` arm.\n"
    text = calibration_sentence(calibration_vs_control(cal))
    return f"{text}\n" if text else ""


@reads("bootstrap_ci")
def leak_free_note(ctx: ReportContext) -> str:
    """:func:`leak_free_sentence` of the preset, as a paragraph."""
    text = leak_free_sentence(leak_free_vs_control(load_result("bootstrap_ci", ctx)))
    return f"{text}\n" if text else ""


@reads("table1", "calibration", "bootstrap_ci")
def negatives_markdown(ctx: ReportContext) -> str:
    """The three negatives of the preset as a markdown list (those its results show)."""
    lines = [s.strip() for s in (learned_vs_average_note(ctx), calibration_note(ctx), leak_free_note(ctx)) if s.strip()]
    return "".join(f"- {line}\n" for line in lines)
