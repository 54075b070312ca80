"""The verdict list as the report shows it: verdict badges, and each claim's link to the page and
anchor that show its evidence."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analysis.audit import registered_claims
from analysis.report import claims
from analysis.report.qmd import read_qmd

ROOT = Path(__file__).resolve().parents[1]


def _anchors(page: Path) -> set[str]:
    """Labels of the page's chunks and explicit ids of its headings (``{#sec-…}``)."""
    doc = read_qmd(page)
    labels = {c.label for c in doc.chunks if c.label}
    ids = {m for b in doc.blocks if not hasattr(b, "code") for m in re.findall(r"\{#([\w-]+)[^}]*\}", b.text)}
    return labels | ids


def test_every_claim_links_to_an_anchor_that_exists_on_its_page():
    ids = [s.id for s in registered_claims()]
    assert set(ids) <= set(claims.EVIDENCE), set(ids) - set(claims.EVIDENCE)
    for claim_id in ids:
        page, anchor, _ = claims.EVIDENCE[claim_id]
        assert anchor in _anchors(ROOT / page), (claim_id, page, anchor)
        link = claims.evidence_link(claim_id)
        assert link.endswith(f"]({page}#{anchor})")
        assert link.startswith(f"[{read_qmd(ROOT / page).title}: ")


def test_module_fallbacks_point_at_each_pages_claims_table():
    for page, anchor, _ in claims.MODULE_EVIDENCE.values():
        assert anchor in _anchors(ROOT / page)


@pytest.mark.parametrize("verdict, symbol", [("holds", "✓"), ("fails", "✗"), ("conditional", "◐")])
def test_a_verdict_is_shown_with_a_symbol_and_a_colour_class(verdict, symbol):
    assert claims.verdict_badge(verdict) == f"[{symbol}\u00a0{verdict}]{{.verdict-{verdict}}}"
    css = (ROOT / "reports" / "report.css").read_text()
    typ = (ROOT / "reports" / "report.typ").read_text()
    assert f".verdict-{verdict}" in css and f'#show "{symbol}\\u{{a0}}{verdict}"' in typ


def test_an_unknown_verdict_is_refused():
    with pytest.raises(ValueError, match="maybe"):
        claims.verdict_badge("maybe")


def _declared_results(preset: str = "fmnist-mini") -> list:
    """A result for every registered claim, with its declared kind and overturn line (verdicts made up)."""
    from analysis.audit import PROXY, ClaimResult

    return [ClaimResult(id=s.id, claim=s.claim, verdict="holds", evidence="e", source=s.source, kind=s.kind,
                        overturn=s.overturn, preset=preset if s.kind == PROXY else "") for s in registered_claims()]


def _ctx(tmp_path, results, preset: str = "fmnist-mini"):
    from analysis.report.context import ReportContext
    from training.paths import DataRoot

    ctx = ReportContext(preset, DataRoot(tmp_path))
    ctx.memo["audit"] = (tuple(results), "")  # the audit as the report holds it once read
    return ctx


def test_the_verdict_table_shows_each_claims_kind_of_evidence_and_what_would_overturn_it(tmp_path):
    ctx = _ctx(tmp_path, _declared_results())
    table = claims.claims_table(ctx, evidence=False, links=True)
    df = table.frame
    assert list(df.columns) == ["verdict", "claim", "source", "evidence kind", "overturned by"]
    specs = registered_claims()
    expected = ["proxy preset fmnist-mini" if s.reads else s.kind for s in specs]
    assert df["evidence kind"].tolist() == expected
    assert df["overturned by"].tolist() == [s.overturn for s in specs]
    md = table.to_markdown()
    assert "| evidence kind" in md and "proxy preset fmnist-mini" in md and "exact mathematics" in md
    page = claims.claims_table(ctx, modules=[claims.LOSS_CLAIMS_MODULE]).frame  # a page's table, with evidence
    assert list(page.columns) == ["verdict", "claim", "source", "evidence kind", "evidence"]
    loss = [s for s in specs if s.evaluate.__module__ == claims.LOSS_CLAIMS_MODULE]
    assert page["evidence"].tolist() == [f"e Overturned by: {s.overturn}" for s in loss]


def test_the_scale_caveat_is_one_short_callout_from_the_presets_and_none_at_the_papers_scale(tmp_path):
    from training.presets import get_preset

    note = claims.scale_caveat_note(_ctx(tmp_path, []))
    ours, paper = get_preset("fmnist-mini"), get_preset("paper")
    assert note.count("callout-note") == 1 and len(note) < 600
    assert f"{ours.members} per arm, {ours.epochs} epochs" in note and paper.model.label in note
    assert "could overturn" in note
    assert claims.scale_caveat_note(_ctx(tmp_path, [], preset="paper")) == ""


@pytest.mark.parametrize("page", ["reports/_summary.qmd", "reports/methods-audit.qmd", "reports/calibration.qmd",
                                  "reports/related-losses.qmd"])
def test_every_page_drawing_conclusions_from_a_preset_shows_the_scale_caveat_once(page):
    code = "".join(c.code for c in read_qmd(ROOT / page).chunks)
    assert code.count("claims.scale_caveat_note(ctx)") == 1


def test_long_evidence_keeps_its_first_sentence_in_the_cell_and_goes_in_full_under_the_table(tmp_path):
    from analysis.audit import ClaimResult
    from analysis.report.context import ReportContext
    from training.paths import DataRoot

    long = "The first sentence has exactly ten words in it here. " + "Filler words go on. " * 20
    results = [ClaimResult(id="sign", claim="c", verdict="holds", source="paper text", evidence=long,
                           kind="exact mathematics", overturn="a proof"),
               ClaimResult(id="demo", claim="c", verdict="fails", source="paper text", evidence="Short.",
                           kind="exact mathematics", overturn="x")]
    ctx = ReportContext("digits-tiny", DataRoot(tmp_path))
    ctx.memo["audit"] = (tuple(results), "")
    cells = claims.claims_table(ctx).frame["evidence"].tolist()
    assert cells == ["The first sentence has exactly ten words in it here … (in full under the table)",
                     "Short. Overturned by: x"]
    notes = claims.evidence_notes(ctx)
    assert notes.count("\n- ") == 1 and "`sign`: The first sentence" in notes and "*Overturned by:* a proof" in notes
    assert "<details" in notes and "</details>" in notes
