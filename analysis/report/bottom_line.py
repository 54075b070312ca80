"""The report's bottom line: a few sentences at the top of the first page, computed from the
results tables and the claim audit.

Pure functions build each sentence from frames and claim values (:func:`paper_sentence`,
:func:`gradient_sentence`, :func:`kind_sentence`, :func:`scale_sentence`, :func:`lr_frame` +
:func:`lr_sentence`, :func:`protocols_sentence`, :func:`stacking_sentence`,
:func:`table2_sentence`, :func:`verdicts_sentence`); :func:`bottom_line_markdown` loads the
inputs of one preset and joins them, grouped by the kind of evidence, strongest first
(:data:`analysis.audit.KINDS`): what holds exactly (exact mathematics: the gradient of the loss,
in words), then what the authors' records and code show, then what the proxy preset's runs show,
each group labelled.

The learning-rate sentence prefers the interval of Δ accuracy against ``ce-lr0.01`` over test
samples *and* training seeds (``control_seed_ci_low/high`` of ``table1.csv``: the two-level
members × samples bootstrap); without it, the paired interval over test samples only
(``control_ci_low/high`` of ``table1.csv``, else the ``bootstrap_ci.csv`` rows with
``quantity == "diff"`` and ``reference == "ce-lr0.01"``). The sentence names the interval used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.report.context import ReportContext, ResultsMissingError, load_result, project_root, reads
from analysis.report.table1 import with_control_columns
from training.arms import ARMS, CONTROL_ARM, REFERENCE_ARM

#: wording of the two kinds of interval the learning-rate sentence can use
INTERVAL_SEEDS = "over test samples and training seeds"
INTERVAL_SAMPLES = "over test samples only"

#: the paper's metadata (who, where), read at run time
PAPER_JSON = Path("data") / "paper" / "paper.json"

_PAPER_KEYS = ("what", "authors", "repository")


def load_paper(path: str | Path | None = None) -> dict[str, Any]:
    """The paper's metadata from ``data/paper/paper.json`` (``what``, ``authors``, ``repository``;
    ``title`` may be null: it is not invented).

    Raises
    ------
    ValueError
        When the file is missing, not JSON, or lacks a field (the message names the file).
    """
    path = Path(path) if path is not None else project_root() / PAPER_JSON
    from training.cache_format import read_json

    try:  # bad content: JsonFileError, a ValueError naming the file
        meta = read_json(path, max_bytes=2**20, what="paper metadata file", allow_nan=False)
    except FileNotFoundError:
        raise ValueError(f"{path} not found: expected the paper's metadata (JSON with {list(_PAPER_KEYS)})") from None
    missing = [k for k in _PAPER_KEYS if not isinstance(meta, dict) or not meta.get(k)]
    if missing:
        raise ValueError(f"{path}: expected non-empty fields {missing}")
    if not str(meta["repository"]).startswith("https://"):
        raise ValueError(f"{path}: expected `repository` to be an https:// address, got {meta['repository']!r}")
    return meta


def paper_sentence(paper: dict[str, Any]) -> str:
    """Which paper is audited: its description, authors, title when known, and repository."""
    title = f" (*{paper['title']}*)" if paper.get("title") else ""
    return (f"**Paper.** This report audits {paper['what']}{title} by {paper['authors']}, and its code at "
            f"<{paper['repository']}>.")


def scale_sentence(preset: str) -> str:
    """What the preset trains next to the paper's setting (numbers from :mod:`training.presets`)."""
    from training.presets import at_paper_scale, get_preset

    ours, paper = get_preset(preset), get_preset("paper")

    def setting(p) -> str:
        return (f"{p.model.label} base learners, {p.epochs} epochs, {p.members} members per arm, on "
                f"{', '.join(p.datasets)}")

    if at_paper_scale(ours):
        return f"**Scale.** Preset `{preset}` trains the paper's setting: {setting(ours)}."
    return (f"**Scale.** Preset `{preset}`: {setting(ours)}; the paper: {setting(paper)}. The numbers below "
            f"describe this smaller setting; they neither confirm nor refute the paper's at its scale.")


def _finite(*values: Any) -> bool:
    return all(v is not None and isinstance(v, (int, float)) and math.isfinite(v) for v in values)


def lr_frame(table1: pd.DataFrame, bootstrap_ci: pd.DataFrame | None = None, *,
             fusion: str = "Average") -> pd.DataFrame:
    """Each dynamic arm against ``ce-lr0.01`` (same learning rate) and against ``ce`` (as published)
    for one fusion: ``dataset, arm, diff_vs_control, control_low, control_high, interval,
    diff_vs_ce, ce_low, ce_high``.

    The control interval comes from ``table1``'s ``control_seed_ci_low/high`` (two-level:
    ``interval`` = :data:`INTERVAL_SEEDS`) when present and finite, else ``control_ci_low/high``,
    else ``bootstrap_ci`` (``quantity == "diff"``, ``reference == "ce-lr0.01"``, filled in by
    :func:`analysis.report.table1.with_control_columns` when table1 lacks those columns), both
    :data:`INTERVAL_SAMPLES`. Δ against ``ce`` uses ``diff_vs_ce``, ``diff_ci_low/high`` (test
    samples only).

    Raises
    ------
    ValueError
        When no dynamic arm of ``fusion`` is in ``table1``, or an arm has no Δ against the control
        in either table.
    """
    t1 = table1[(table1["fusion"] == fusion) & table1["arm"].map(lambda a: a in ARMS and ARMS[a].family == "dyn")]
    if t1.empty:
        raise ValueError(f"table1 has no dynamic arm with fusion {fusion!r}")
    t1 = with_control_columns(t1, bootstrap_ci)
    rows = []
    for r in t1.to_dict("records"):
        seeds = (r.get("control_seed_ci_low"), r.get("control_seed_ci_high"))
        samples = (r.get("control_ci_low"), r.get("control_ci_high"))
        diff = r.get("diff_vs_control")
        if _finite(diff, *seeds):
            (low, high), interval = seeds, INTERVAL_SEEDS
        elif _finite(diff, *samples):
            (low, high), interval = samples, INTERVAL_SAMPLES
        else:
            raise ValueError(f"No difference against {CONTROL_ARM} for {r['dataset']}/{r['arm']}/{fusion}: table1 "
                             f"has no diff_vs_control and bootstrap_ci no such row")
        rows.append({"dataset": r["dataset"], "arm": r["arm"], "diff_vs_control": float(diff),
                     "control_low": float(low), "control_high": float(high), "interval": interval,
                     "diff_vs_ce": float(r["diff_vs_ce"]), "ce_low": float(r["diff_ci_low"]),
                     "ce_high": float(r["diff_ci_high"])})
    return pd.DataFrame(rows).sort_values(["dataset", "arm"], kind="stable").reset_index(drop=True)


def _side(low: float, high: float) -> int:
    """+1 when an interval lies above 0, -1 below, 0 when it covers 0."""
    return 1 if low > 0 else (-1 if high < 0 else 0)


def _range(values: pd.Series) -> str:
    lo, hi = values.min(), values.max()
    return f"{lo:+.4f}" if lo == hi else f"{lo:+.4f} to {hi:+.4f}"


def lr_sentence(frame: pd.DataFrame, *, fusion: str = "Average") -> str:
    """The learning-rate result in words, from :func:`lr_frame`: per dataset, Δ accuracy against
    ``ce-lr0.01`` with its interval (named) per arm, next to Δ against ``ce``; a conclusion only
    when every interval against the control covers 0 and every one against ``ce`` lies above 0."""
    interval = " / ".join(dict.fromkeys(frame["interval"]))
    parts = []
    for dataset, g in frame.groupby("dataset", sort=False):
        arms = "; ".join(f"`{r.arm}` {r.diff_vs_control:+.4f} [{r.control_low:+.4f}, {r.control_high:+.4f}]"
                         for r in g.itertuples())
        sides = [_side(r.control_low, r.control_high) for r in g.itertuples()]
        ce_sides = [_side(r.ce_low, r.ce_high) for r in g.itertuples()]
        text = (f"On {dataset}, at the same learning rate (against `{CONTROL_ARM}`, cross-entropy at "
                f"{ARMS[CONTROL_ARM].lr:g}) the {len(g)} dynamic arms change {fusion}-fusion accuracy by "
                f"{_range(g['diff_vs_control'])}; {sides.count(1)} of their 95\u00a0% intervals ({interval}) lie "
                f"above 0 and {sides.count(-1)} below: {arms}. Against `{REFERENCE_ARM}` at the paper's "
                f"learning rate {ARMS[REFERENCE_ARM].lr:g} (the published comparison) they differ by "
                f"{_range(g['diff_vs_ce'])}, {ce_sides.count(1)} of {len(g)} intervals above 0 and "
                f"{ce_sides.count(-1)} below (over test samples only).")
        if all(x == 0 for x in sides) and all(x == 1 for x in ce_sides):
            text += (f" The gain over `{REFERENCE_ARM}` comes with the learning rate; the loss adds none that "
                     f"these intervals can tell.")
        parts.append(text)
    return "**Learning rate.** " + " ".join(parts)


def protocols_sentence(verdict: str | None, values: dict[str, Any]) -> str:
    """The dynamic loss against cross-entropy under each learning-rate protocol, in words, from the
    ``lr-confound`` claim's values (its ``protocols``, ``decided_by``, ``tuned_lr``); the protocol
    that decides the verdict first."""
    from analysis.audit.cache_claims import PROTOCOLS

    protocols = values.get("protocols") or {}
    if verdict is None or not protocols:
        return ("**Learning-rate protocols.** Not evaluated for this preset: its results hold no comparison of the "
                "dynamic arms with cross-entropy.")
    names = {"tuned": "each loss at its own tuned rate", "text": "every arm at the text's lr 0.1",
             "code": "the authors' code (cross-entropy 0.1, dynamic 0.01)", "control": "both at 0.01"}
    decided = values.get("decided_by", "control")
    order = [decided] + [p for p in PROTOCOLS if p != decided]
    parts = []
    for p in order:
        if p not in protocols:
            continue
        v = protocols[p]
        parts.append(f"{names[p]}: mean Δ {v['mean_diff']:+.4f}, {v['n_better']} of {v['n_cells']} arm × fusion cells "
                     f"better and {v['n_worse']} worse")
    tuned = ", ".join(f"`{k.split('/')[-1]}` lr {lr:g}" for k, lr in (values.get("tuned_lr") or {}).items())
    lead = (f"Tuned on held-out training rows ({tuned}), " if decided == "tuned" and tuned else "")
    return (f"**Learning-rate protocols.** {lead}the dynamic loss against cross-entropy (McNemar, Holm within each "
            f"protocol): " + "; ".join(parts) + f". `lr-confound` {verdict}, decided by the first.")


def stacking_sentence(verdict: str | None, values: dict[str, Any]) -> str:
    """The stacking-leak claim's evidence in a sentence (``values`` of claim ``stacking-leak``)."""
    if verdict is None:
        return ("**Stacking.** Not evaluated for this preset: its results have no super-learners "
                "(`superlearner_gap.csv`).")

    def ci(key: str) -> str:
        m, lo, hi = values[key]
        return f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]"

    return (f"**Stacking.** Super-learners fitted on the members' in-sample training predictions (as published) "
            f"score {ci('gap_in_sample')} higher on their validation split than on the test set; fitted on "
            f"out-of-bag predictions (leak-free), {ci('gap_out_of_bag')} (mean validation − test accuracy over "
            f"{values['n_pairs']} fits, 95\u00a0% t-intervals; in-sample larger in {values['n_in_sample_larger']} of "
            f"{values['n_pairs']}). The claim that they reach on the test set the validation accuracy they "
            f"were selected by **{verdict}**.")


def table2_sentence(verdict: str, values: dict[str, Any]) -> str:
    """The Paper Table 2 result (``values`` of claim ``table2-correlation``): the reproducing
    encoding, then the cross-entropy row at τ = 1 and left out, then the verdict over every encoding."""
    enc = values.get("encodings", {})
    ce1, exc = enc.get("None=1.0 (CE limit)"), enc.get("None excluded")
    tail = ""
    if ce1:
        tail += (f" With cross-entropy placed at its limit τ = 1 (where the dynamic loss is cross-entropy), r is "
                 f"negative in {ce1['cells_negative']} of {ce1['n_cells']} cells.")
    if exc:
        rng = (f" ({exc['strong_r_min']:.2f}–{exc['strong_r_max']:.2f})" if exc["cells_strong"] > 1 else "")
        tail += (f" With the row left out (four points each), r ≥ 0.7 in {exc['cells_strong']} of "
                 f"{exc['n_cells']} cells{rng}, but no permutation p can fall below 1/{exc['n_orderings']}.")
    return (f"**Paper Table 2.** Its correlations of accuracy with τ are reproduced from Paper Table 1 "
            f"({values['cells_match_3dp']} of {values['n_cells']} cells to 3 decimals) only when the "
            f"cross-entropy row is given τ = {values['encoding_none_value']:g}, a value no threshold on a "
            f"probability can take.{tail} Decided over every coding of that row, the claim of a strong positive "
            f"correlation {'is ' if verdict == 'conditional' else ''}**{verdict}**{_table2_condition(values)}.")


def coding_words(labels: list[str], encodings: dict[str, dict]) -> str:
    """Codings of the cross-entropy row in words: "left out" and "at τ = a, b or c".

    >>> coding_words(["x", "y", "z"], {"x": {"none_value": None}, "y": {"none_value": 0.0}, "z": {"none_value": -1.0}})
    'left out or at τ = 0 or −1'
    """
    taus = [encodings[e]["none_value"] for e in labels]
    at = [f"{t:g}".replace("-", "−") for t in taus if t is not None]
    parts = ["left out"] * (None in taus)
    if at:
        parts.append("at τ = " + (", ".join(at[:-1]) + " or " + at[-1] if len(at) > 1 else at[0]))
    return " or ".join(parts)


def _table2_condition(values: dict[str, Any]) -> str:
    """Which codings support and which contradict the Table 2 claim, as a parenthesis ('' when one side is empty)."""
    sup, con = values.get("supporting_encodings") or [], values.get("contradicting_encodings") or []
    enc = values.get("encodings") or {}
    if not sup or not con or not all(e in enc for e in sup + con):
        return ""
    return f": supported with the row {coding_words(sup, enc)}, contradicted {coding_words(con, enc)}"


def gradient_sentence(scale: dict[str, Any], zero: dict[str, Any]) -> str:
    """The most solid finding in words: below τ the published dynamic loss's gradient equals
    cross-entropy's (ratio exactly 1), above τ it is zero, from the values of claims ``scale-2.3``
    (``grad_ratio_below_min/max``) and ``zero-above`` (``published.max_grad_l1``). The words
    "exactly 1" and "exactly zero" are used only when the computed numbers are (within 1e-12)."""
    from analysis.audit.loss_grids import CLASS_COUNTS, THRESHOLDS

    lo, hi = float(scale["grad_ratio_below_min"]), float(scale["grad_ratio_below_max"])
    above = float(zero["published"]["max_grad_l1"])
    grid = (f"{len(CLASS_COUNTS) * len(THRESHOLDS)} settings: {', '.join(map(str, CLASS_COUNTS))} classes × "
            f"τ = {', '.join(f'{t:g}' for t in THRESHOLDS)}")
    one = max(abs(lo - 1.0), abs(hi - 1.0)) < 1e-12
    below = (f"Below the threshold τ the published dynamic loss's gradient equals cross-entropy's: their ratio is "
             f"exactly 1 ({grid})" if one else
             f"Below the threshold τ the ratio of the published dynamic loss's gradient to cross-entropy's is "
             f"{lo:.6g} to {hi:.6g} ({grid})")
    zero_text = ("above τ it is exactly zero" if above < 1e-12 else
                 f"above τ its largest norm is {above:.3g}, not zero")
    tail = (" So the loss trains like cross-entropy on the samples below τ and ignores those above; the "
            "corrections note's \u201c≈\u00a02.3\u00a0×\u201d is an added constant, −log\u00a00.1, not a "
            "factor on the gradient." if one and above < 1e-12 else "")
    return f"{below}; {zero_text}.{tail}"


def kind_sentence(claims: pd.DataFrame, kinds: tuple[str, ...]) -> str:
    """The verdicts of the claims whose kind of evidence is in ``kinds`` (``claims``: ``id, verdict,
    kind``), in words: ``"hold: `a`, `b`; fail: `c`"`` ('' when none)."""
    g = claims[claims["kind"].isin(kinds)]
    words = {"holds": "hold", "fails": "fail", "conditional": "conditional"}
    parts = [f"{words[v]}: {', '.join(f'`{i}`' for i in g.loc[g['verdict'] == v, 'id'])}"
             for v in ("holds", "fails", "conditional") if (g["verdict"] == v).any()]
    return "; ".join(parts)


def verdicts_sentence(claims: pd.DataFrame) -> str:
    """Counts of the verdicts, the ids of the claims that fail and, when ``claims`` has a ``kind``
    column, the number of claims per kind of evidence (``claims``: ``id, verdict[, kind]``)."""
    counts = claims["verdict"].value_counts()
    n = {v: int(counts.get(v, 0)) for v in ("holds", "fails", "conditional")}
    fails = claims.loc[claims["verdict"] == "fails", "id"].tolist()
    failing = f" Failing: {', '.join(f'`{i}`' for i in fails)}." if fails else " None fails."
    by_kind = ""
    if "kind" in claims.columns:
        from analysis.audit import KINDS

        k = claims["kind"].value_counts()
        by_kind = " By kind of evidence: " + "; ".join(f"{kind}: {int(k[kind])}" for kind in KINDS if kind in k) + "."
    return (f"**Verdicts.** {len(claims)} claims audited: {n['holds']} hold, {n['fails']} fail, "
            f"{n['conditional']} conditional.{failing}{by_kind}")


def _item(label: str, text: str, subitems: Sequence[str] = ()) -> str:
    """A list item led by its bold label, with indented sub-items."""
    head = f"- **{label}** {text}".rstrip()
    return "\n".join([head] + [f"  - {t}" for t in subitems])


@reads("table1", "bootstrap_ci", "audit")
def bottom_line_markdown(ctx: ReportContext) -> str:
    """The bottom line of one preset as a markdown list, grouped by the kind of evidence, strongest
    first: the paper; what holds exactly (exact mathematics: the gradient of the loss in words);
    what the authors' records and code show (Paper Table 2); what the proxy preset shows (scale,
    learning rate, protocols, stacking); the verdicts."""
    from analysis.audit import KINDS, PROXY
    from analysis.audit.cache_claims import scale_caveat
    from analysis.report.claims import _audit_results

    exact, records, code = KINDS[0], KINDS[1], KINDS[2]
    preset = ctx.preset
    results = {r.id: r for r in _audit_results(ctx)}
    frame = pd.DataFrame([{"id": r.id, "verdict": r.verdict, "kind": r.kind} for r in results.values()],
                         columns=["id", "verdict", "kind"])
    items = ["- " + paper_sentence(load_paper())]

    scale, zero = results.get("scale-2.3"), results.get("zero-above")
    exact_text = gradient_sentence(scale.values, zero.values) if scale and zero else ""
    verdicts = kind_sentence(frame, (exact,))
    items.append(_item("What holds exactly (exact mathematics, whatever is trained).",
                       " ".join(t for t in (exact_text, f"Claims decided so: {verdicts}." if verdicts else "") if t)))

    t2 = results.get("table2-correlation")
    on_records, on_code = kind_sentence(frame, (records,)), kind_sentence(frame, (code,))
    said = " ".join(t for t in (
        f"Claims decided from their records (published tables, evaluation logs): {on_records}." if on_records else "",
        f"From their code (at the cited commit): {on_code}." if on_code else "") if t)
    items.append(_item("What the authors' records and code show.", said,
                       [table2_sentence(t2.verdict, t2.values)] if t2 is not None else []))

    try:
        lr_text = lr_sentence(lr_frame(load_result("table1", ctx), load_result("bootstrap_ci", ctx)))
    except ValueError as e:
        raise ResultsMissingError(f"{e}: rerun `dynloss analyze --preset {preset}`") from None
    lr, leak = results.get("lr-confound"), results.get("stacking-leak")
    on_proxy = kind_sentence(frame, (PROXY,))
    caveat = scale_caveat(preset)
    label = (f"What proxy preset `{preset}` shows." if caveat else f"What preset `{preset}` shows (the paper's setting).")
    proxy_lead = " ".join(t for t in (f"Claims decided so: {on_proxy}." if on_proxy else "",
                                      "A run at the paper's scale could overturn them." if caveat else "") if t)
    items.append(_item(label, proxy_lead, [
        scale_sentence(preset), lr_text,
        protocols_sentence(lr.verdict if lr else None, lr.values if lr else {}),
        stacking_sentence(leak.verdict if leak else None, leak.values if leak else {}),
    ]))
    items.append("- " + verdicts_sentence(frame))
    return "\n".join(items) + "\n"
