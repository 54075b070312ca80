"""The claim registry: each claim is registered once, where it is evaluated, and listed in module order."""

from __future__ import annotations

import ast
import inspect
from collections import Counter
from pathlib import Path

import pytest

from analysis import audit
from analysis.audit import CLAIM_MODULES, ClaimResult, Finding, claim, module_claims, registered_claims

AUDIT_DIR = Path(audit.__file__).parent


def _string_literals(path: Path) -> list[str]:
    return [node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_every_claim_id_is_written_once_in_the_audit_package():
    literals = Counter(s for path in sorted(AUDIT_DIR.glob("*.py")) for s in _string_literals(path))
    ids = [spec.id for spec in registered_claims()]
    assert len(ids) == 20
    assert {i: literals[i] for i in ids} == {i: 1 for i in ids}


def test_every_claim_text_is_written_once_in_the_audit_package():
    sources = "".join(path.read_text(encoding="utf-8") for path in sorted(AUDIT_DIR.glob("*.py")))
    for spec in registered_claims():
        # the text's first 40 characters (within one source line of every claim)
        assert sources.count(spec.claim[:40]) == 1, spec.id


def test_claims_are_listed_in_module_order_then_definition_order():
    specs = registered_claims()
    assert [s.id for s in specs] == [s.id for m in CLAIM_MODULES for s in module_claims(m)]
    for module in CLAIM_MODULES:
        lines = [inspect.getsourcelines(s.evaluate)[1] for s in module_claims(module)]
        assert lines and lines == sorted(lines), module
        assert all(s.evaluate.__module__ == module and s.evaluate.spec is s for s in module_claims(module))


def test_a_missing_claim_module_is_an_error(monkeypatch):
    monkeypatch.setattr(audit, "CLAIM_MODULES", (*CLAIM_MODULES, "analysis.audit.no_such_claims"))
    with pytest.raises(ModuleNotFoundError, match="no_such_claims"):
        registered_claims()


@pytest.fixture
def own_registry(monkeypatch):
    """An empty registry listing only the claims this test module registers."""
    monkeypatch.setattr(audit, "_REGISTRY", {})
    monkeypatch.setattr(audit, "CLAIM_MODULES", (__name__,))


def test_result_joins_the_registered_claim_and_the_finding(own_registry):
    @claim("first", source="paper text", text="A first claim.")
    def _first() -> Finding:
        return Finding("fails", "Because.", {"n": 3})

    @claim("second", source="authors' code", text="A second claim.")
    def _second() -> Finding:
        return Finding(verdict="holds", evidence="Measured.")

    assert audit.evaluate_all() == [
        ClaimResult(id="first", claim="A first claim.", verdict="fails", evidence="Because.", source="paper text",
                    values={"n": 3}),
        ClaimResult(id="second", claim="A second claim.", verdict="holds", evidence="Measured.",
                    source="authors' code", values={}),
    ]
    assert [r.id for r in audit.evaluate_all(["second"])] == ["second"]


def test_registry_rejects_duplicate_ids_and_unknown_sources(own_registry):
    for _ in range(2):
        @claim("twice", source="paper text", text="Registered twice.")
        def _twice() -> Finding:
            return Finding("holds", "")
    with pytest.raises(RuntimeError, match=r"Duplicate claim ids.*'twice'"):
        registered_claims()
    with pytest.raises(ValueError, match="got 'a blog' for claim 'blog'"):
        claim("blog", source="a blog", text="From elsewhere.")(lambda: Finding("holds", ""))


def test_evaluator_must_return_a_finding_with_a_known_verdict(own_registry):
    @claim("not-a-finding", source="paper text", text="Returns a dict.")
    def _bad() -> Finding:
        return {"verdict": "holds"}  # type: ignore[return-value]

    with pytest.raises(TypeError, match="'not-a-finding'.*returned dict, expected a Finding"):
        audit.evaluate_all()

    audit._REGISTRY.clear()

    @claim("maybe", source="paper text", text="Unknown verdict.")
    def _maybe() -> Finding:
        return Finding("perhaps", "")  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="got 'perhaps' for claim 'maybe'"):
        audit.evaluate_all()
