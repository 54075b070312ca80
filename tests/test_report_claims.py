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
