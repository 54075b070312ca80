"""The saved audit carries each claim's kind of evidence and overturn line; an audit saved before
claims carried them stays readable (they come from the registry), unless it holds a claim no longer
registered, which is refused in one note."""

from __future__ import annotations

import json

import pytest

from analysis import audit
from analysis.audit import PROXY, ClaimResult, Finding, claim
from analysis.audit.saved import save_audit, saved_audit
from analysis.audit.scope import ResultsScope
from training.paths import DataRoot

PRESET = "digits-tiny"


@pytest.fixture
def registry(monkeypatch):
    """A registry of two claims declared here: one of exact mathematics, one of our runs."""
    monkeypatch.setattr(audit, "_REGISTRY", {})
    monkeypatch.setattr(audit, "CLAIM_MODULES", (__name__,))
    claim("algebra", source="corrections note", text="An identity.", kind="exact mathematics",
          overturn="A counterexample.")(lambda: Finding("holds", "Computed."))
    claim("runs", source="our caches", text="From runs.", kind=PROXY, overturn="Runs at the paper's scale.",
          reads=("table1",))(lambda preset, root: Finding("fails", "Measured."))


def _scope(tmp_path) -> ResultsScope:
    return ResultsScope(preset=PRESET, root=DataRoot(tmp_path))  # no results: `runs` cannot be read back


def test_a_saved_audit_keeps_each_claims_kind_and_overturn_line(registry, tmp_path):
    r = ClaimResult(id="algebra", claim="An identity.", verdict="holds", evidence="Computed.",
                    source="corrections note", kind="exact mathematics", overturn="A counterexample.")
    path = save_audit([r], DataRoot(tmp_path))
    assert json.loads(path.read_text()) == [r.to_dict()]
    kept, fresh, note = saved_audit(_scope(tmp_path))
    assert kept == {"algebra": r} and fresh == [] and note == ""


def test_an_audit_saved_before_claims_had_kinds_is_read_with_the_registrys(registry, tmp_path):
    old = [{"id": "algebra", "claim": "An identity.", "verdict": "holds", "evidence": "Computed.",
            "source": "corrections note", "values": {"n": 1}}]  # the keys an older version wrote
    DataRoot(tmp_path).audit_file.parent.mkdir(parents=True)
    DataRoot(tmp_path).audit_file.write_text(json.dumps(old))
    kept, fresh, note = saved_audit(_scope(tmp_path))
    assert note == "" and fresh == []
    assert (kept["algebra"].kind, kept["algebra"].overturn, kept["algebra"].preset) == (
        "exact mathematics", "A counterexample.", "")
    assert kept["algebra"].values == {"n": 1}


def test_an_old_saved_claim_no_longer_registered_is_refused_in_one_note(registry, tmp_path):
    old = [{"id": "algebra", "claim": "An identity.", "verdict": "holds", "evidence": "Computed."},
           {"id": "retired", "claim": "Gone.", "verdict": "fails", "evidence": "Was computed."}]
    DataRoot(tmp_path).audit_file.parent.mkdir(parents=True)
    DataRoot(tmp_path).audit_file.write_text(json.dumps(old))
    kept, fresh, note = saved_audit(_scope(tmp_path))
    assert kept == {} and fresh == ["algebra", "runs"]  # every claim evaluated again
    assert note.startswith("data/results/audit.json: unreadable (ValueError: saved claim 'retired' is no longer "
                           "registered and carries no kind of evidence")
    assert note.endswith("every claim evaluated again (`dynloss audit --save` rewrites it).") and "\n" not in note
