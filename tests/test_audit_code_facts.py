"""Facts from the authors' code (data/authors/code_facts.json): the validating reader on the real
file and on malformed copies, the protocol claims' verdicts and their citations (GitHub links with
the pinned commit and line anchors), and the report's table of a claim's facts."""

from __future__ import annotations

import inspect
import json
import re
import shutil
from pathlib import Path

import pytest

from analysis.audit import SOURCES, evaluate_all, module_claims
from analysis.audit import code_claims
from analysis.audit.authors import SOURCE_COMMIT
from analysis.audit.authors_code import CODE_FACTS_FILE, CodeFact, CodeFactsError, read_code_facts
from training.paths import authors_dir

PINNED = "b889790020a5e0bd16745dbff86ecf78837a5de1"  # the commit data/authors/README.md names
PROTOCOL_CLAIMS = ["protocol-lr", "protocol-tuning", "protocol-resize", "protocol-superlearner"]
URL = re.compile(r"https://github\.com/stfxecutables/dynamic_loss/blob/([0-9a-f]{40})/(\S+?)#L(\d+)-L(\d+)")


@pytest.fixture(scope="module")
def facts() -> dict[str, CodeFact]:
    return read_code_facts()


@pytest.fixture(scope="module")
def results():
    return {r.id: r for r in evaluate_all(PROTOCOL_CLAIMS)}


def _raw() -> list[dict]:
    return json.loads((authors_dir() / CODE_FACTS_FILE).read_text(encoding="utf-8"))


def test_the_record_validates_and_every_fact_is_a_short_excerpt_at_a_named_commit(facts):
    raw = _raw()
    assert list(facts) == [r["id"] for r in raw] and len(facts) == len(raw) > 0
    assert SOURCE_COMMIT == PINNED
    for f, r in zip(facts.values(), raw):
        first, last = r["lines"]
        assert f.lines == (first, last) and 1 <= first <= last <= first + 1
        assert len(f.excerpt.split("\n")) == last - first + 1
        assert f.commit == PINNED or f.read_at == f.commit, f.id
    # the facts every protocol claim cites at the pinned commit, and the two read at older versions
    assert {f.id for f in facts.values() if not f.pinned} == {"dyn07-lr-earlier", "tune-grid-native"}
    assert facts["tune-grid"].read_at is None  # that version of scripts/tune.py has no known commit


def test_the_record_is_named_in_the_authors_readme_with_the_pinned_commit():
    readme = (authors_dir() / "README.md").read_text(encoding="utf-8")
    assert CODE_FACTS_FILE in readme and PINNED in readme


def test_protocol_claims_come_from_the_authors_code(results):
    assert [s.id for s in module_claims("analysis.audit.code_claims")] == PROTOCOL_CLAIMS
    assert {r.source for r in results.values()} == {"authors' code"} and "authors' code" in SOURCES


def test_each_claim_cites_every_fact_it_uses_by_url_with_commit_and_line_anchors(results, facts):
    for r in results.values():
        used = r.values["facts"]
        assert used and set(used) <= set(facts), r.id
        cited = {(c, p, int(a), int(b)) for c, p, a, b in URL.findall(r.evidence)}
        for fid in used:
            f = facts[fid]
            assert (f.commit, f.file, *f.lines) in cited, (r.id, fid)
            assert r.values["citations"][fid] == (f"https://github.com/stfxecutables/dynamic_loss/blob/{f.commit}/"
                                                  f"{f.file}#L{f.lines[0]}-L{f.lines[1]}")
        assert any(c == PINNED for c, *_ in cited), r.id
        assert {c for c, *_ in cited} <= {PINNED} | {facts[i].commit for i in used}, r.id


def test_the_text_s_one_learning_rate_fails_against_the_dynamic_scripts_at_a_tenth(results):
    r = results["protocol-lr"]
    assert r.verdict == "fails"
    # read in the authors' scripts: cross-entropy passes {OPTIMAL_LR}, both dynamic scripts {OPTIMAL_LR/10}
    assert r.values["optimal_lr"] == 0.1 and r.values["optimal_wd"] == 0.05
    assert r.values["code_lr"] == {"cross-entropy": 0.1, "dynamic τ = 0.7": 0.01, "dynamic τ = 0.6, 0.8, 0.9": 0.01}
    assert r.values["earlier_dynamic_tau_0.7_lr"] == 0.1
    assert r.values["dynamic_thresholds"] == [0.6, 0.7, 0.8, 0.9]


def test_the_grid_search_holds_as_stated_and_searched_cross_entropy_only(results):
    r = results["protocol-tuning"]
    assert r.verdict == "holds"
    assert sorted(r.values["code_lrs"]) == [0.001, 0.01, 0.05, 0.1]
    assert sorted(r.values["code_wds"]) == [1e-4, 5e-4, 0.001, 0.005, 0.01, 0.05, 0.1]
    assert r.values["n_grid_points"] == 28 and r.values["dataset"] == "cifar-100"
    assert r.values["searched_losses"] == ["cross-entropy"] and r.values["dynamic_loss_searched"] is False
    assert r.values["optimal_in_grid"] and r.values["earlier_version_same_grid"]


def test_the_unstated_upsampling_to_128_fails_the_native_size_reading(results):
    r = results["protocol-resize"]
    assert r.verdict == "fails"
    assert set(r.values["code_size"].values()) == {128}
    assert r.values["pixels_factor"]["CIFAR"] == (128 / 32) ** 2


def test_the_resize_interpolation_named_is_torchvision_s_default():
    from torchvision.transforms import Resize

    default = inspect.signature(Resize).parameters["interpolation"].default
    assert default.value == code_claims.RESIZE_DEFAULT_INTERPOLATION


def test_the_super_learner_recipe_holds_and_reports_what_the_text_leaves_out(results):
    r = results["protocol-superlearner"]
    assert r.verdict == "holds"
    assert r.values["code"] == {"lr": 3e-4, "wd": 0.0, "epochs": {"Weighted": 10, "MLP": 20}, "weighted_bias": True}
    assert r.values["not_stated"] == {"batch_size": 1024, "warmup_epochs": {"Weighted": 2, "MLP": 5},
                                      "warmup_start_lr": 1e-5, "eta_min": 1e-9, "mlp_hidden_bias": False}


def _with(monkeypatch, **excerpts: str) -> None:
    """Let the protocol claims read the real facts with the excerpts of the ids given replaced."""
    facts = dict(read_code_facts())
    for fid, excerpt in excerpts.items():
        old = facts[fid.replace("_", "-")]
        facts[old.id] = CodeFact(old.id, old.file, old.lines, old.commit, old.read_at, excerpt, old.fact)
    monkeypatch.setattr(code_claims, "_facts", lambda: facts)


def test_the_lr_claim_would_hold_if_every_script_passed_the_stated_rate(monkeypatch):
    same = '"--resize=128 "\nf"--lr={OPTIMAL_LR} "'
    _with(monkeypatch, dyn07_resize_lr=same, dyn_resize_lr=same)
    finding = code_claims.evaluate_protocol_lr()
    assert finding.verdict == "holds" and finding.values["arms_not_at_stated_lr"] == []


def test_the_resize_claim_would_hold_if_no_run_resized(monkeypatch):
    _with(monkeypatch, ce_resize_lr='"--augment=True "\nf"--lr={OPTIMAL_LR} "',
          dyn07_resize_lr='"--augment=True "\nf"--lr={OPTIMAL_LR/10} "',
          dyn_resize_lr='"--augment=True "\nf"--lr={OPTIMAL_LR/10} "',
          tune_resize="GRID = list(ParameterGrid(dict(lr=LRS, wd=WDS, resize=[])))")
    finding = code_claims.evaluate_protocol_resize()
    assert finding.verdict == "holds" and set(finding.values["code_size"].values()) == {None}


def test_an_excerpt_without_the_value_a_claim_parses_is_an_error_naming_the_fact(monkeypatch):
    _with(monkeypatch, ce_resize_lr='"--resize=128 "\n"--augment=True "')
    with pytest.raises(CodeFactsError, match=r"fact 'ce-resize-lr' \(scripts/base_train.py\) has no --lr= argument"):
        code_claims.evaluate_protocol_lr()


def _edit(index: int, **changes):
    def apply(raw: list[dict]) -> None:
        raw[index].update(changes)
    return apply


def _drop(field: str):
    def apply(raw: list[dict]) -> None:
        del raw[0][field]
    return apply


MALFORMATIONS = {
    "a missing field": (_drop("excerpt"), r"entry 0 \('optimal-wd-lr'\): unexpected fields \(missing \['excerpt'\]"),
    "an extra field": (_edit(0, author="x"), r"extra \['author'\]"),
    "an id with capitals": (_edit(1, id="CE-loss"), r"entry 1 \('CE-loss'\): field 'id'"),
    "an absolute path": (_edit(0, file="/src/constants.py"), r"field 'file'"),
    "a path leaving the repository": (_edit(0, file="src/../../x.py"), r"field 'file'"),
    "three lines": (_edit(0, lines=[47, 49]), r"field 'lines'"),
    "lines reversed": (_edit(0, lines=[49, 48]), r"field 'lines'"),
    "a flag for a line": (_edit(0, lines=[True, 1]), r"field 'lines'"),
    "a short commit": (_edit(0, commit="b889790"), r"field 'commit'"),
    "another commit not read at": (_edit(0, commit="1" * 40), r"must have been read at it"),
    "a bad read_at": (_edit(0, read_at="fb5b9ca"), r"field 'read_at'"),
    "an excerpt of the wrong length": (_edit(0, excerpt="OPTIMAL_LR = 0.1"), r"field 'excerpt' must hold the 2 line"),
    "an empty fact": (_edit(0, fact=" "), r"field 'fact'"),
    "a repeated id": (_edit(1, id="optimal-wd-lr"), r"entry 1 repeats the id 'optimal-wd-lr'"),
    "an entry that is not an object": (lambda raw: raw.__setitem__(2, ["id"]), r"entry 2: expected an object"),
}


@pytest.mark.parametrize("what", list(MALFORMATIONS))
def test_a_malformed_record_is_a_one_line_error_naming_the_file_and_entry(tmp_path: Path, what: str):
    change, message = MALFORMATIONS[what]
    raw = _raw()
    change(raw)
    (tmp_path / CODE_FACTS_FILE).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(CodeFactsError, match=message) as err:
        read_code_facts(tmp_path)
    assert str(err.value).startswith(str(tmp_path / CODE_FACTS_FILE) + ": ") and "\n" not in str(err.value)


@pytest.mark.parametrize("content, message", [
    (None, "cannot be read"), ("{not json", "not valid JSON"), ('{"id": "x"}', "expected a non-empty JSON list"),
    ("[]", "expected a non-empty JSON list"),
])
def test_a_missing_or_unreadable_record_is_an_error_naming_the_file(tmp_path: Path, content, message):
    if content is not None:
        (tmp_path / CODE_FACTS_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(CodeFactsError, match=message) as err:
        read_code_facts(tmp_path)
    assert str(tmp_path / CODE_FACTS_FILE) in str(err.value) and "\n" not in str(err.value)


def test_the_report_lists_a_claims_facts_with_links_to_their_lines(monkeypatch, results, facts):
    from analysis.report import claims

    monkeypatch.setattr(claims, "claim_values", lambda ctx, claim_id: results[claim_id].values)
    table = claims.code_facts_table(None, "protocol-lr")
    frame = table.frame
    assert list(frame.columns) == ["where", "excerpt", "what it says"]
    assert len(frame) == len(results["protocol-lr"].values["facts"])
    first = facts[results["protocol-lr"].values["facts"][0]]
    assert frame.iloc[0]["where"] == (f"[`{first.file}:{first.lines[0]}-{first.lines[1]}`]"
                                      f"(https://github.com/stfxecutables/dynamic_loss/blob/{PINNED}/{first.file}"
                                      f"#L{first.lines[0]}-L{first.lines[1]})")
    assert "(at 51727cc)" in " ".join(frame["where"])  # the older version is labelled with its commit
    assert "`OPTIMAL_WD = 0.05` `OPTIMAL_LR = 0.1`" in frame["excerpt"].tolist()
    assert "|" in table.to_markdown()


def test_a_copy_of_the_record_under_another_root_reads_the_same(tmp_path):
    shutil.copy(authors_dir() / CODE_FACTS_FILE, tmp_path / CODE_FACTS_FILE)
    assert read_code_facts(tmp_path) == read_code_facts()
