"""The claim registry: each claim is registered once, where it is evaluated, and listed in module order."""

from __future__ import annotations

import ast
import inspect
from collections import Counter
from pathlib import Path

import pytest

from analysis import audit
from analysis.audit import (CLAIM_MODULES, KINDS, PROXY, ClaimResult, Finding, claim, kind_label, module_claims,
                            registered_claims)

AUDIT_DIR = Path(audit.__file__).parent


def _string_literals(path: Path) -> list[str]:
    return [node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_every_claim_id_is_written_once_in_the_audit_package():
    literals = Counter(s for path in sorted(AUDIT_DIR.glob("*.py")) for s in _string_literals(path))
    ids = [spec.id for spec in registered_claims()]
    assert len(ids) == 23
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


def test_every_claim_declares_a_kind_of_evidence_from_the_list_and_one_overturn_line():
    specs = registered_claims()
    assert {s.kind for s in specs} <= set(KINDS)
    for s in specs:
        assert s.overturn.strip() and "\n" not in s.overturn, s.id
        assert (s.kind == PROXY) == bool(s.reads), s.id  # our runs are exactly the claims read from results


def test_the_kinds_of_the_paper_claims_are_those_their_evidence_is():
    kinds = {s.id: s.kind for s in registered_claims()}
    # the examples the kinds are defined by: algebra on the loss, the authors' code at a commit, our caches
    assert {kinds[i] for i in ("sign", "scale-2.3", "fill-irrelevant", "zero-above")} == {"exact mathematics"}
    assert {kinds[i] for i in ("protocol-lr", "protocol-resize")} == {"the authors' code"}
    assert {kinds[i] for i in ("table1-provenance", "stacking-validation")} == {"the authors' records"}
    assert {kinds[i] for i in ("lr-confound", "stacking-leak")} == {PROXY}


def test_a_proxy_claim_is_labelled_with_the_preset_it_was_evaluated_on():
    assert kind_label(PROXY, "fmnist-mini") == "proxy preset fmnist-mini"
    assert kind_label(PROXY, "paper") == "preset paper (the paper's setting)"
    assert kind_label("the authors' code", "fmnist-mini") == "the authors' code"
    r = ClaimResult(id="x", claim="c", verdict="holds", evidence="e", kind=PROXY, overturn="o", preset="digits-tiny")
    assert r.kind_label == "proxy preset digits-tiny"


@pytest.fixture
def own_registry(monkeypatch):
    """An empty registry listing only the claims this test module registers."""
    monkeypatch.setattr(audit, "_REGISTRY", {})
    monkeypatch.setattr(audit, "CLAIM_MODULES", (__name__,))


#: a kind of evidence and an overturn line, for the claims registered here that test other things
DECLARED = {"kind": "exact mathematics", "overturn": "A counterexample."}


@pytest.mark.parametrize("declaration, message", [
    ({}, r"Claim 'bare': expected `kind=` one of \('exact mathematics', .*got None"),
    ({"kind": "a hunch", "overturn": "x"}, r"Claim 'bare': expected `kind=` one of .*got 'a hunch'"),
    ({"kind": "exact mathematics"}, r"Claim 'bare': expected `overturn=` one non-empty line .*got None"),
    ({"kind": "exact mathematics", "overturn": "  "}, r"expected `overturn=` one non-empty line"),
    ({"kind": "exact mathematics", "overturn": "two\nlines"}, r"expected `overturn=` one non-empty line"),
    ({"kind": "proxy preset", "overturn": "x"}, r"kind 'proxy preset' is for the claims that read a preset's results"),
])
def test_a_claim_without_a_kind_of_evidence_or_an_overturn_line_is_refused_naming_it(own_registry, declaration,
                                                                                      message):
    with pytest.raises(ValueError, match=message):
        claim("bare", source="paper text", text="Undeclared.", **declaration)
    assert audit._REGISTRY == {}


def test_a_claim_read_from_results_must_be_of_the_proxy_kind(own_registry):
    with pytest.raises(ValueError, match=r"Claim 'ours'.*got kind 'exact mathematics' with reads=\('table1',\)"):
        claim("ours", source="our caches", text="From runs.", reads=("table1",), **DECLARED)
    claim("ours", source="our caches", text="From runs.", reads=("table1",), kind=PROXY, overturn="Other runs.")(
        lambda preset, root: Finding("holds", ""))
    assert [s.kind for s in registered_claims()] == [PROXY]


def test_a_result_without_a_kind_or_with_a_stray_preset_is_refused():
    base = dict(id="x", claim="c", verdict="holds", evidence="e", overturn="o")
    with pytest.raises(ValueError, match="Expected `kind` in .*got '' for claim 'x'"):
        ClaimResult(**base)
    with pytest.raises(ValueError, match="Expected `overturn`, a non-empty line, got '' for claim 'x'"):
        ClaimResult(**{**base, "overturn": ""}, kind="exact mathematics")
    with pytest.raises(ValueError, match="Expected `preset` set exactly for kind 'proxy preset'"):
        ClaimResult(**base, kind="exact mathematics", preset="fmnist-mini")
    with pytest.raises(ValueError, match="Expected `preset` set exactly for kind 'proxy preset'"):
        ClaimResult(**base, kind=PROXY)


def test_result_joins_the_registered_claim_and_the_finding(own_registry):
    @claim("first", source="paper text", text="A first claim.", kind="exact mathematics", overturn="A proof.")
    def _first() -> Finding:
        return Finding("fails", "Because.", {"n": 3})

    @claim("second", source="authors' code", text="A second claim.", kind="the authors' code", overturn="Other code.")
    def _second() -> Finding:
        return Finding(verdict="holds", evidence="Measured.")

    assert audit.evaluate_all() == [
        ClaimResult(id="first", claim="A first claim.", verdict="fails", evidence="Because.", source="paper text",
                    values={"n": 3}, kind="exact mathematics", overturn="A proof."),
        ClaimResult(id="second", claim="A second claim.", verdict="holds", evidence="Measured.",
                    source="authors' code", values={}, kind="the authors' code", overturn="Other code."),
    ]
    assert [r.id for r in audit.evaluate_all(["second"])] == ["second"]


def test_registry_rejects_duplicate_ids_and_unknown_sources(own_registry):
    for _ in range(2):
        @claim("twice", source="paper text", text="Registered twice.", **DECLARED)
        def _twice() -> Finding:
            return Finding("holds", "")
    with pytest.raises(RuntimeError, match=r"Duplicate claim ids.*'twice'"):
        registered_claims()
    with pytest.raises(ValueError, match="got 'a blog' for claim 'blog'"):
        claim("blog", source="a blog", text="From elsewhere.", **DECLARED)(lambda: Finding("holds", ""))


def test_evaluator_must_return_a_finding_with_a_known_verdict(own_registry):
    @claim("not-a-finding", source="paper text", text="Returns a dict.", **DECLARED)
    def _bad() -> Finding:
        return {"verdict": "holds"}  # type: ignore[return-value]

    with pytest.raises(TypeError, match="'not-a-finding'.*returned dict, expected a Finding"):
        audit.evaluate_all()

    audit._REGISTRY.clear()

    @claim("maybe", source="paper text", text="Unknown verdict.", **DECLARED)
    def _maybe() -> Finding:
        return Finding("perhaps", "")  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="got 'perhaps' for claim 'maybe'"):
        audit.evaluate_all()
