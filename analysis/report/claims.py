"""The claim audit as the report shows it: verdict tables, claim values, gradient curves, the
split and published Table 2 evidence.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from analysis.report.context import ReportContext, ResultsMissingError, reads
from analysis.report.markdown import ZWSP, Table, escape

#: the audit module of the loss claims (the ids it registers select the loss-audit page's rows)
LOSS_CLAIMS_MODULE = "analysis.audit.loss_claims"


METHOD_CLAIMS_MODULES: tuple[str, ...] = ("analysis.audit.split_claims", "analysis.audit.table_claims",
                                          "analysis.audit.code_claims", "analysis.audit.note_claims")

#: the claims of the page on the authors' own results (their records, and our caches beside them)
AUTHORS_CLAIMS_MODULES: tuple[str, ...] = ("analysis.audit.authors_claims", "analysis.audit.cache_claims")


def _audit_state(ctx: ReportContext) -> tuple[tuple, str]:
    """The audited claims of the preset shown and a note on how they were obtained
    (:func:`analysis.audit.saved.audited_claims`: the saved audit where still valid, else evaluated
    now), made once per context (kept in ``ctx.memo``)."""
    if "audit" not in ctx.memo:
        ctx.memo["audit"] = _evaluate_audit(ctx)
    return ctx.memo["audit"]


def _evaluate_audit(ctx: ReportContext) -> tuple[tuple, str]:
    from analysis.audit.saved import audited_claims
    from analysis.audit.scope import results_scope
    from analysis.core.results_set import ResultsSetError

    try:
        scope = results_scope(ctx.preset, ctx.root)
    except ResultsSetError as e:
        raise ResultsMissingError(str(e)) from None
    return audited_claims(scope)


def _audit_results(ctx: ReportContext) -> tuple:
    """The audited claims (:func:`_audit_state`)."""
    return _audit_state(ctx)[0]


@reads("audit")
def audit_note(ctx: ReportContext) -> str:
    """A markdown paragraph saying which claims were evaluated again or not at all, and why ('' if none)."""
    note = _audit_state(ctx)[1]
    return f"\n*{escape(note)}*\n" if note else ""


def _module_claim_ids(module: str) -> list[str]:
    """Ids of the claims a module registers (a missing module is an error, never an empty list)."""
    from analysis.audit import module_claims

    return [spec.id for spec in module_claims(module)]


@reads("audit")
def claims_frame(ctx: ReportContext, *, modules: Sequence[str] | None = None) -> pd.DataFrame:
    """Every audited claim (or those of ``modules``): ``id, claim, verdict, source, evidence, kind,
    kind_label, overturn`` (``kind``: one of :data:`analysis.audit.KINDS`; ``kind_label``: as shown,
    ``proxy preset NAME`` for the claims read from a preset's results).

    Raises
    ------
    ResultsMissingError
        When no claim is registered (the audit is not built): run `dynloss audit`.
    """
    results = list(_audit_results(ctx))
    if modules is not None:
        keep = {i for m in modules for i in _module_claim_ids(m)}
        results = [r for r in results if r.id in keep]
    if not results:
        raise ResultsMissingError(
            f"No audited claims{' in ' + ', '.join(modules) if modules else ''}: `dynloss audit` lists none."
        )
    return pd.DataFrame([{"id": r.id, "claim": r.claim, "verdict": r.verdict, "source": r.source,
                          "evidence": r.evidence, "kind": r.kind, "kind_label": r.kind_label, "overturn": r.overturn}
                         for r in results])


#: symbol of each verdict: the verdict is never told by colour alone
VERDICT_SYMBOLS: dict[str, str] = {"holds": "✓", "fails": "✗", "conditional": "◐"}


def verdict_badge(verdict: str) -> str:
    """A verdict as markdown: symbol and word, joined by a no-break space, in a span of class
    ``verdict-<verdict>`` (coloured by reports/report.css, which both engines' pages use;
    reports/report.typ colours the same words in the PDF).

    >>> verdict_badge("fails")
    '[✗\\xa0fails]{.verdict-fails}'
    """
    if verdict not in VERDICT_SYMBOLS:
        raise ValueError(f"Expected a verdict in {tuple(VERDICT_SYMBOLS)}, got {verdict!r}")
    return f"[{VERDICT_SYMBOLS[verdict]}\u00a0{verdict}]{{.verdict-{verdict}}}"


#: the page, anchor and subject that show each claim's evidence (links are relative to the
#: project root, where index.qmd is; anchors are table/figure labels or section ids of that page)
EVIDENCE: dict[str, tuple[str, str, str]] = {
    "sign": ("reports/loss-audit.qmd", "tbl-gradient-ratio", "the loss corrected"),
    "fill-irrelevant": ("reports/loss-audit.qmd", "tbl-gradient-ratio", "the loss corrected"),
    "scale-2.3": ("reports/loss-audit.qmd", "tbl-gradient-ratio", "gradient ratios"),
    "zero-above": ("reports/loss-audit.qmd", "tbl-gradient-ratio", "gradient ratios"),
    "soft-0.1": ("reports/loss-audit.qmd", "tbl-gradient-ratio", "gradient ratios"),
    "relu-analogy": ("reports/loss-audit.qmd", "fig-emphasis", "emphasis curves"),
    "demo": ("reports/loss-audit.qmd", "tbl-loss-claims", "claims and evidence"),
    "prose-0.7": ("reports/loss-audit.qmd", "fig-emphasis", "emphasis curves"),
    "split-49.4": ("reports/methods-audit.qmd", "sec-split", "split arithmetic"),
    "table2-correlation": ("reports/methods-audit.qmd", "sec-table2-encoding", "Paper Table 2"),
    "table1-provenance": ("reports/authors.qmd", "sec-authors-provenance", "Paper Table 1 cells"),
    "stacking-validation": ("reports/authors.qmd", "sec-authors-validation", "validation vs test"),
    "pooled-shuffled": ("reports/authors.qmd", "sec-authors-pooled", "pooled and shuffled fits"),
    "lr-confound": ("reports/methods-audit.qmd", "sec-lr-confound", "learning-rate confound"),
    "stacking-leak": ("reports/methods-audit.qmd", "sec-stacking", "stacking"),
    "reliability": ("reports/calibration.qmd", "sec-reliability", "calibration and selective differences"),
    "protocol-lr": ("reports/methods-audit.qmd", "sec-protocol-lr", "learning rates in the authors' code"),
    "protocol-tuning": ("reports/methods-audit.qmd", "sec-protocol-tuning", "grid search in the authors' code"),
    "protocol-resize": ("reports/methods-audit.qmd", "sec-protocol-resize", "input size in the authors' code"),
    "protocol-superlearner": ("reports/methods-audit.qmd", "sec-protocol-superlearner",
                              "super-learners in the authors' code"),
    "threshold-list": ("reports/methods-audit.qmd", "sec-note-errors", "the note's threshold list"),
    "training-pair": ("reports/methods-audit.qmd", "sec-note-errors", "the note's training pair"),
    "sign-2.3": ("reports/methods-audit.qmd", "sec-note-errors", "the sign of the note's 2.3 step"),
}

#: the claims of the calibration page (the paper's motivation, decided from calibration_diff.csv)
RELIABILITY_CLAIMS_MODULE = "analysis.audit.reliability_claims"

#: where a claim missing from :data:`EVIDENCE` is shown: its module's claims table
MODULE_EVIDENCE: dict[str, tuple[str, str, str]] = {
    LOSS_CLAIMS_MODULE: ("reports/loss-audit.qmd", "tbl-loss-claims", "claims"),
    **{m: ("reports/methods-audit.qmd", "tbl-method-claims", "claims") for m in METHOD_CLAIMS_MODULES},
    **{m: ("reports/authors.qmd", "tbl-authors-claims", "claims") for m in AUTHORS_CLAIMS_MODULES},
    RELIABILITY_CLAIMS_MODULE: ("reports/calibration.qmd", "sec-reliability", "claims"),
}


#: a line break inside a table cell: pipe tables have none, so the PDF gets Typst's and the HTML
#: puts the ``.claim-id`` span on its own line by CSS
_CELL_BREAK = " `#linebreak()`{=typst}"


def _claim_modules() -> dict[str, str]:
    from analysis.audit import CLAIM_MODULES

    return {i: m for m in CLAIM_MODULES for i in _module_claim_ids(m)}


@functools.lru_cache(maxsize=None)
def _page_title(page: str) -> str:
    from analysis.report.context import project_root
    from analysis.report.qmd import read_qmd

    return read_qmd(project_root() / page).title


def evidence_link(claim_id: str) -> str:
    """A markdown link from a claim to the page section, table or figure that shows its evidence
    (relative to the project root: for the first page)."""
    where = EVIDENCE.get(claim_id) or MODULE_EVIDENCE.get(_claim_modules().get(claim_id, ""))
    if where is None:
        return "–"
    page, anchor, what = where
    return f"[{_page_title(page)}: {what}]({page}#{anchor})"


def source_cell(claim_id: str, source: str) -> str:
    """A claim's source as markdown: the source, and a link to the lines of the corrected-methods
    text that state the claim (``data/paper/corrections_note.json``) where the file lists them.

    >>> source_cell("split-49.4", "paper text").startswith("paper text · [notes.md:")
    True
    >>> source_cell("no-such-claim", "our caches")
    'our caches'
    """
    from analysis.audit.note import statement_url

    where = statement_url(claim_id)
    if where is None:
        return escape(source)
    label, url = where
    # a break point after the colon: "notes.md:123-134" is wider than the column on the PDF
    return f"{escape(source)} · [{label.replace(':', ':' + ZWSP)}]({url})"


@reads("audit", "paper:corrections_note.json")
def claims_table(ctx: ReportContext, *, modules: Sequence[str] | None = None, evidence: bool = True, links: bool = False) -> Table:
    """Claims for display: the verdict (symbol, word, colour class), the claim with a line under it
    holding its id (small type in HTML) and, with ``links``, a link to the section that shows its
    evidence (for the first page: links start at the project root), its source (with a link to the
    lines of the corrected-methods text that state the claim, :func:`source_cell`), the kind of
    evidence its verdict rests on (``evidence kind``: ``proxy preset NAME`` for our runs) and what
    would overturn it: a column ``overturned by`` of its own in the verdict table, or, with the
    evidence text (``evidence``), its last sentence (so the page tables stay five columns wide)."""
    df = claims_frame(ctx, modules=modules)
    under = [f"`{i}`" + (f" · {evidence_link(i)}" if links else "") for i in df["id"]]
    out = pd.DataFrame({
        "verdict": df["verdict"].map(verdict_badge),
        "claim": [f"{escape(c)}{_CELL_BREAK}[{u}]{{.claim-id}}" for c, u in zip(df["claim"], under)],
        "source": [source_cell(i, src) for i, src in zip(df["id"], df["source"])],
        "evidence kind": df["kind_label"],
    })
    if evidence:
        out["evidence"] = [evidence_cell(e, o) for e, o in zip(df["evidence"], df["overturn"])]
        return Table(out, markdown=("verdict", "claim", "source"), widths=PAGE_TABLE_WIDTHS)
    out["overturned by"] = df["overturn"]
    return Table(out, markdown=("verdict", "claim", "source"), widths=VERDICT_TABLE_WIDTHS)


#: the most words of evidence (with its "Overturned by" line) a page's claims table holds in a cell;
#: longer evidence keeps its first sentence there and is printed in full under the table
EVIDENCE_CELL_WORDS = 60
#: the most words of the first sentence kept in the cell
_SHORT_WORDS = 30


def _long(evidence: str, overturn: str) -> bool:
    return len(f"{evidence} {overturn}".split()) > EVIDENCE_CELL_WORDS


def evidence_cell(evidence: str, overturn: str) -> str:
    """A claim's evidence as a page's claims table shows it: in full with its "Overturned by" line
    when short, else its first sentence (at most 30 words), which :func:`evidence_notes` completes.

    >>> evidence_cell("Short. Very short.", "a proof")
    'Short. Very short. Overturned by: a proof'
    >>> evidence_cell("The first part of it holds ten words or so here; then " + "more " * 60, "x")
    'The first part of it holds ten words or so here … (in full under the table)'
    """
    if not _long(evidence, overturn):
        return f"{evidence} Overturned by: {overturn}"
    words = _URL_IN_TEXT.sub("", _first_sentence(evidence)).split()
    return " ".join(words[:_SHORT_WORDS]) + " … (in full under the table)"


#: a web address in evidence text (with the comma before it), and one alone
_URL_IN_TEXT = re.compile(r",? ?https?://[^\s),;]+")
_URL = re.compile(r"https?://[^\s),;]+")


def _with_links(text: str) -> str:
    """``text`` escaped for markdown (:func:`analysis.report.markdown.escape`), each web address
    in it a short link (``[link](url)``), so that no long address widens the page.

    >>> print(_with_links("see a_b.py:3, https://x.org/a_b"))
    see a\\_b.py:3, [link](https://x.org/a_b)
    """
    out, pos = [], 0
    for m in _URL.finditer(text):
        out += [escape(text[pos:m.start()]), f"[link]({m.group(0)})"]
        pos = m.end()
    return "".join(out + [escape(text[pos:])])


def _first_sentence(text: str, *, min_words: int = 10) -> str:
    """``text`` up to the first ``.`` or ``;`` followed by a space and outside brackets that ends at
    least ``min_words`` words.

    >>> _first_sentence("Above tau (p_t > tau; C = 10) it is 0.1. Then more.", min_words=3)
    'Above tau (p_t > tau; C = 10) it is 0.1'
    >>> _first_sentence("Preset x. It holds here. Then more.", min_words=3)
    'Preset x. It holds here'
    """
    depth = 0
    for i, c in enumerate(text):
        depth += (c in "([{") - (c in ")]}")
        if depth == 0 and c in ".;" and text[i + 1:i + 2] == " " and len(text[:i].split()) >= min_words:
            return text[:i]
    return text


@reads("audit")
def evidence_notes(ctx: ReportContext, *, modules: Sequence[str] | None = None) -> str:
    """The evidence that :func:`claims_table` shortens (longer than :data:`EVIDENCE_CELL_WORDS`
    words), in full, as a markdown list under the table: the claim's id, its evidence and what would
    overturn it ('' when every evidence fits its cell); folded in the HTML pages (``<details>``,
    "Evidence in full"), printed in the PDF under the same words."""
    df = claims_frame(ctx, modules=modules)
    items = [f"- `{i}`: {_with_links(e)} *Overturned by:* {_with_links(o)}"
             for i, e, o in zip(df["id"], df["evidence"], df["overturn"]) if _long(e, o)]
    if not items:
        return ""
    # folded in the HTML pages (a <details> element: keyboard and screen readers open it), printed
    # in the PDF (Typst drops the raw HTML tags and keeps the summary's words as the list's title)
    return ("\n<details class=\"evidence-notes\">\n<summary>Evidence in full</summary>\n\n"
            + "\n".join(items) + "\n\n</details>\n")


#: relative column widths of the verdict table (two long text columns: the claim widest; the
#: verdict wide enough for "◐ conditional" on one line)
VERDICT_TABLE_WIDTHS: tuple[tuple[str, int], ...] = (
    ("verdict", 17), ("claim", 38), ("source", 13), ("evidence kind", 16), ("overturned by", 32))
#: the same for a page's claims table, whose long text columns are the claim and the evidence (its
#: first sentence at most, :func:`evidence_cell`, so the two share the width)
PAGE_TABLE_WIDTHS: tuple[tuple[str, int], ...] = (
    ("verdict", 17), ("claim", 38), ("source", 13), ("evidence kind", 15), ("evidence", 38))


@reads("code:training/presets.py")
def scale_caveat_note(ctx: ReportContext) -> str:
    """The scale caveat as one short markdown paragraph (callout) for the pages that draw
    conclusions from a preset's runs: what the preset trains next to the paper and that its
    conclusions may not hold at the paper's scale (:func:`analysis.audit.cache_claims.scale_caveat`;
    '' at the paper's scale)."""
    from analysis.audit.cache_claims import scale_caveat

    text = scale_caveat(ctx.preset)
    return f"\n::: {{.callout-note}}\n**What this preset cannot settle.** {escape(text)}\n:::\n" if text else ""


@reads("audit")
def verdict_counts(ctx: ReportContext) -> pd.DataFrame:
    """Number of claims per verdict with their ids: ``verdict, claims, ids``."""
    df = claims_frame(ctx)
    out = (df.groupby("verdict", sort=False)["id"].agg(["count", lambda s: ", ".join(s)])
           .reset_index().rename(columns={"count": "claims", "<lambda_0>": "ids"}))
    order = {"fails": 0, "conditional": 1, "holds": 2}
    return out.sort_values("verdict", key=lambda s: s.map(order)).reset_index(drop=True)


@reads("audit")
def verdict_counts_table(ctx: ReportContext) -> Table:
    """:func:`verdict_counts` for display, the verdicts with their symbol and colour class."""
    df = verdict_counts(ctx)
    df["verdict"] = df["verdict"].map(verdict_badge)
    return Table(df, markdown=("verdict",))


@reads("audit")
def claim_values(ctx: ReportContext, claim_id: str) -> dict[str, Any]:
    """The deciding numbers of one audited claim (its ``values`` mapping)."""
    for r in _audit_results(ctx):
        if r.id == claim_id:
            return dict(r.values)
    raise KeyError(f"No audited claim {claim_id!r}; known: {[r.id for r in _audit_results(ctx)]}")


@reads("audit", "code:data/authors/code_facts.json")
def code_facts_table(ctx: ReportContext, claim_id: str) -> Table:
    """The facts from the authors' code that claim ``claim_id`` cites (its ``values["facts"]``), in
    that order: ``where`` (a link to the lines at their commit), ``excerpt`` (verbatim, as code) and
    ``what it says``."""
    from analysis.audit.authors_code import github_url, read_code_facts

    facts = read_code_facts()
    rows = []
    for fid in claim_values(ctx, claim_id)["facts"]:
        f = facts[fid]
        first, last = f.lines
        span = str(first) if first == last else f"{first}-{last}"
        at = "" if f.pinned else f" (at {f.commit[:7]})"
        rows.append({"where": f"[`{f.file}:{span}`]({github_url(f)}){at}",
                     "excerpt": " ".join(f"`{line}`" for line in f.excerpt.split("\n")),
                     "what it says": f.fact})
    return Table(pd.DataFrame(rows), markdown=("where", "excerpt"))


#: display names of the emphasis curves: (loss, variant) -> (name, panel)
CURVE_NAMES: dict[tuple[str, str], tuple[str, str]] = {
    ("ce", "-"): ("cross-entropy", "dynamic"),
    ("dynamic", "published"): ("dynamic, published (PyTorch)", "dynamic"),
    ("dynamic", "soft"): ("dynamic, soft", "dynamic"),
    ("dynamic", "keras"): ("dynamic, Keras original", "dynamic"),
    ("poly1", "-"): ("Poly-1 (ε=1)", "related"),
    ("polyn", "paper"): ("Poly-2, paper form", "related"),
    ("polyn", "blog"): ("Poly-2, blog form", "related"),
    ("focal", "-"): ("focal (γ=2)", "related"),
    ("label_smoothing", "-"): ("label smoothing (α=0.1)", "related"),
    ("superloss", "-"): ("SuperLoss (τ=log C)", "related"),
    ("dm", "-"): ("derivative manipulation (β=2, λ=1; max 1)", "related"),
}


@reads("code:training/losses/terms.py", "code:training/losses/superloss.py", "code:analysis/audit/gradients.py")
def emphasis_curves_frame(*, threshold: float = 0.7, n_points: int = 397, n_classes: int = 10) -> pd.DataFrame:
    """Emphasis curves of every loss and dynamic variant (from :func:`analysis.audit.gradients.emphasis_curves`)
    with display names: ``curve, group, loss, variant, p_t, emphasis``. Cross-entropy is drawn in
    both panels."""
    from analysis.audit.gradients import DEFAULT_CURVE_SPECS, CurveSpec, emphasis_curves

    specs = [CurveSpec(s.loss, s.variant, {**s.params, "threshold": threshold}) if s.loss == "dynamic" else s
             for s in DEFAULT_CURVE_SPECS]
    p_t = np.linspace(0.0025, 0.9975, n_points)
    df = emphasis_curves(p_t, n_classes=n_classes, specs=specs)
    # derivative manipulation normalises its weights over the batch (here: the grid), so its
    # scale depends on the grid size: show its shape, scaled to a maximum of 1
    dm = df["loss"] == "dm"
    if dm.any():
        df.loc[dm, "emphasis"] = df.loc[dm, "emphasis"] / df.loc[dm, "emphasis"].max()
    names = df.apply(lambda r: CURVE_NAMES.get((r["loss"], r["variant"]), (f"{r['loss']} {r['variant']}", "related")),
                     axis=1, result_type="expand")
    df["curve"], df["group"] = names[0], names[1]
    ce = df[df["loss"] == "ce"].assign(group="related")
    return pd.concat([df, ce], ignore_index=True)[["curve", "group", "loss", "variant", "p_t", "emphasis"]]


@reads("code:training/losses/terms.py", "code:training/losses/superloss.py", "code:analysis/audit/gradients.py")
def gradient_ratio_frame(*, threshold: float = 0.7, p_t: Sequence[float] = (0.3, 0.69, 0.71, 0.9),
                         n_classes: int = 10) -> pd.DataFrame:
    """Ratio of each dynamic variant's logit gradient to cross-entropy's at a few ``p_t``
    (rows: variants; columns: ``p_t = …``), from :func:`analysis.audit.gradients.emphasis_curves`."""
    from analysis.audit.gradients import CurveSpec, emphasis_curves

    specs = [CurveSpec("ce", "-")] + [CurveSpec("dynamic", v, {"threshold": threshold, "variant": v})
                                       for v in ("published", "soft", "keras")]
    df = emphasis_curves(np.asarray(p_t, dtype=float), n_classes=n_classes, specs=specs)
    ce = df[df["loss"] == "ce"].set_index("p_t")["emphasis"]
    rows = []
    for variant, g in df[df["loss"] == "dynamic"].groupby("variant", sort=False):
        ratio = g.set_index("p_t")["emphasis"] / ce
        row = {"variant": CURVE_NAMES[("dynamic", variant)][0]}
        row.update({f"p_t = {p:g}" + (" (≤ τ)" if p <= threshold else " (> τ)"): ratio[p] for p in p_t})
        rows.append(row)
    return pd.DataFrame(rows)


@reads("audit")
def split_audit_frame(ctx: ReportContext) -> pd.DataFrame:
    """Stated vs measured split fractions (claim ``split-49.4`` of the audit): ``quantity, stated,
    measured, theory``."""
    v = claim_values(ctx, "split-49.4")
    rows = [
        {"quantity": "distinct original rows in the fitted 80 % of a member",
         "stated": v["claimed_fit_distinct_fraction"], "measured": v["measured_fit_distinct_fraction"],
         "theory": v.get("theory_fit_distinct_fraction", np.nan)},
        {"quantity": "distinct original rows in the whole resample (fit ∪ validation)",
         "stated": 0.98 * 0.63, "measured": v.get("measured_base_distinct_fraction", np.nan), "theory": np.nan},
        {"quantity": "distinct validation rows that are also fitted (overlap)",
         "stated": np.nan, "measured": v.get("fit_val_overlap_fraction", np.nan), "theory": np.nan},
    ]
    return pd.DataFrame(rows)


def split_setting_note(ctx: ReportContext) -> str:
    """A markdown sentence with the setting the split fractions were measured in (claim ``split-49.4``)."""
    v = claim_values(ctx, "split-49.4")
    seeds = v.get("seeds") or []
    return (f"Measured on n = {v.get('n_train')} training rows with k = {v.get('k')} folds, over "
            f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))}).\n")


@reads("paper:table1_accuracy.csv", "paper:table2_pearson.csv")
def table2_encoding_frame() -> pd.DataFrame:
    """Published Table 2 next to r regenerated from published Table 1 under each encoding of the
    cross-entropy row (from ``published_table2_audit``): one row per (dataset, fusion)."""
    from analysis.audit.published import published_table2_audit

    df = published_table2_audit()
    wide = df.pivot_table(index=["dataset", "fusion", "published_r"], columns="encoding", values="pearson_r",
                          sort=False).reset_index()
    wide.columns.name = None
    return wide


@reads("audit")
def table2_reproduction_note(ctx: ReportContext) -> str:
    """A markdown sentence: which τ for the cross-entropy row reproduces published Table 2 (from
    the ``table2-correlation`` claim's values)."""
    v = claim_values(ctx, "table2-correlation")
    others = v.get("named_encodings_not_reproducing")
    tail = f"; {', '.join(others)} do not" if others else ""
    return (f"The published correlations are reproduced ({v['cells_match_3dp']}/{v['n_cells']} cells to 3 decimals, "
            f"max |Δr| = {v['max_abs_diff']:.4f}) when the cross-entropy row is given "
            f"τ = {v['encoding_none_value']:g}{tail} (methods audit).\n")


@reads("paper:table1_accuracy.csv", "paper:table2_pearson.csv")
def table2_search_frame() -> pd.DataFrame:
    """Max |r − published r| for each τ given to the cross-entropy row (``published_encoding_search``)."""
    from analysis.audit.published import search_none_encoding

    return search_none_encoding()


@reads("paper:table1_accuracy.csv", "paper:table2_pearson.csv")
def table2_encoding_long() -> pd.DataFrame:
    """``published_table2_audit`` as loaded (long form), for the encoding figure."""
    from analysis.audit.published import published_table2_audit

    return published_table2_audit()


@reads("audit")
def table2_encoding_summary_frame(ctx: ReportContext) -> pd.DataFrame:
    """Per encoding of the cross-entropy row (claim ``table2-correlation``'s ``values["encodings"]``):
    points, cells with r ≥ 0.7, with r < 0 and with one-sided permutation p < 0.05 (of 12), the
    range of r, the smallest attainable p, and whether the encoding supports the claim."""
    v = claim_values(ctx, "table2-correlation")
    rows = []
    for label, e in v["encodings"].items():
        rows.append({"encoding": label + (" (reproduces Paper Table 2)" if e["reproduces"] else ""),
                     "points": e["n_points"], "r ≥ 0.7": f"{e['cells_strong']}/{e['n_cells']}",
                     "r < 0": f"{e['cells_negative']}/{e['n_cells']}",
                     "one-sided p < 0.05": f"{e['cells_perm_significant']}/{e['n_cells']}",
                     "r from": e["r_min"], "r to": e["r_max"], "smallest p": f"1/{e['n_orderings']}",
                     "claim": "supported" if e["supports"] else "contradicted"})
    return pd.DataFrame(rows)


@reads("audit")
def table2_verdict_note(ctx: ReportContext) -> str:
    """A markdown sentence: the ``table2-correlation`` verdict and the encodings on each side."""
    from analysis.audit.table_claims import STRONG_R

    results = {r.id: r for r in _audit_results(ctx)}
    r = results["table2-correlation"]
    v = r.values
    sup, con = v.get("supporting_encodings", []), v.get("contradicting_encodings", [])
    sides = (f" A majority of cells has r ≥ {STRONG_R} under {', '.join(sup) or 'no encoding'}, and not under "
             f"{', '.join(con) or 'any'}.")
    return f"Decided over every encoding, the claim of a strong positive correlation is **{r.verdict}**.{sides}\n"


#: the claims of the corrections note's further errors, in the order the methods page lists them
NOTE_ERROR_CLAIMS: tuple[str, ...] = ("threshold-list", "training-pair", "sign-2.3")


@reads("audit", "paper:corrections_note.json")
def note_errors_table(ctx: ReportContext) -> Table:
    """The corrections note's further errors: per claim, its lines (a link at the note's commit),
    the note's words (verbatim, as code) and what the audit computed (the verdict and the numbers)."""
    rows = []
    results = {r.id: r for r in _audit_results(ctx)}
    for cid in NOTE_ERROR_CLAIMS:
        r = results[cid]
        v = r.values
        if cid == "threshold-list":
            found = (f"{len(v['written'])} entries, {len(v['distinct'])} distinct: {v['models_from_written_list']} "
                     f"models, not {v['stated_models']}; Paper Table 1, the paper preset and the authors' scripts "
                     f"use τ = {', '.join(f'{t:g}' for t in v['table1_thresholds'])}")
        elif cid == "training-pair":
            found = (f"inputs of x_{v['inputs_of']} ({v['n_inputs']:,} rows) with labels of y_{v['labels_of']} "
                     f"({v['n_labels']:,}); row by row a label matches its input in {v['label_agreement_first_n']:.1%} "
                     f"(chance {v['chance_agreement']:.0%})")
        else:
            half = next(e for e in v["evaluated"] if e["p"] == 0.5)
            found = (f"log(0.1) = {v['log_0.1']:.4f}; at ŷ = 0.5 the left side is {half['log_0.1_times_y_log_p']:+.4f}, "
                     f"the written right side {half['written_c_times_y_log_p']:+.4f}").replace("-", "−")
        rows.append({"verdict": verdict_badge(r.verdict), "claim": f"`{cid}`",
                     "lines": f"[{v['source_lines']}]({v['source_url']})",
                     "the note writes": f"`{v['quote']}`", "computed": found})
    return Table(pd.DataFrame(rows), markdown=("verdict", "claim", "lines", "the note writes"))
