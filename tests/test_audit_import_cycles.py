"""No two modules of the audit room import each other (even lazily, inside a function): a claim that
needs another claim's id reads the constant its owner exports (``cache_claims.STACKING_LEAK``), and
shared frames live in the tables modules, not in another claims module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _audit_imports() -> dict[str, set[str]]:
    graph = {}
    for p in (ROOT / "analysis" / "audit").rglob("*.py"):
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("analysis.audit"):
                deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("analysis.audit"))
        graph[name] = deps - {name}
    return graph


def test_no_two_audit_modules_import_each_other():
    graph = _audit_imports()
    pairs = sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps
                    if b in graph and a in graph[b] and "analysis.audit" not in (a, b)})
    assert pairs == []


def test_the_stacking_claims_link_through_the_owners_constant():
    from analysis.audit import cache_claims
    from analysis.audit.authors_claims import evaluate_stacking_validation

    assert cache_claims.evaluate_stacking_leak.spec.id == cache_claims.STACKING_LEAK
    assert "analysis.audit.authors_claims" not in _audit_imports()["analysis.audit.cache_claims"]
    assert evaluate_stacking_validation.spec.id == "stacking-validation"
