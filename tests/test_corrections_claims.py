"""The corrections note's further errors (threshold list, training pair, the sign of the "≈ 2.3"
step), each decided from the note's own lines, and the links from claims to those lines."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter

import numpy as np
import pytest

from analysis.audit import CLAIM_MODULES, ClaimResult, evaluate_all, module_claims
from analysis.audit.note import NoteError, note_path, parse_note, read_note, statement_url
from analysis.audit.note_claims import evaluate_sign_2_3, evaluate_threshold_list, evaluate_training_pair
from training.paths import paper_dir

NOTE_IDS = ("threshold-list", "training-pair", "sign-2.3")


def _raw() -> dict:
    return json.loads(note_path().read_text(encoding="utf-8"))


def test_the_three_claims_are_registered_from_the_corrections_note():
    assert "analysis.audit.note_claims" in CLAIM_MODULES
    specs = {s.id: s for s in module_claims("analysis.audit.note_claims")}
    assert tuple(specs) == NOTE_IDS
    assert {s.source for s in specs.values()} == {"corrections note"}


def test_threshold_list_has_a_duplicate_while_table1_uses_four_distinct_thresholds():
    r = evaluate_threshold_list()
    text = " ".join(_raw()["excerpts"]["thresholds"]["text"].split())
    written = [float(x) for x in re.search(r"\\\{(.*?)\\\}", text)[1].split(",")]
    with open(paper_dir() / "table1_accuracy.csv", newline="") as fh:
        table1 = sorted({float(row["threshold"]) for row in csv.DictReader(fh) if row["threshold"] != "None"})
    assert written == [0.6, 0.7, 0.8, 0.8] and r.values["written"] == written
    assert r.values["duplicates"] == [t for t, n in Counter(written).items() if n > 1] == [0.8]
    assert r.values["table1_thresholds"] == table1 == [0.6, 0.7, 0.8, 0.9]
    assert r.values["paper_preset_thresholds"] == table1 and r.values["authors_code_thresholds"] == table1
    assert r.values["models_from_written_list"] == 1 + len(set(written)) == 4 and r.values["stated_models"] == 5
    assert r.verdict == "fails"
    assert r.values["source_lines"] == "notes.md:315-319" and r.values["source_url"].endswith("notes.md#L315-L319")
    assert "should read {0.6, 0.7, 0.8, 0.9}" in r.evidence


def test_training_pair_mixes_validation_inputs_with_fitted_labels():
    r = evaluate_training_pair()
    v = r.values
    assert (v["inputs_of"], v["labels_of"]) == ("val", "train") and r.verdict == "fails"
    # the split by hand: the fold keeps 49/50 of 50,000 rows; the first 80 % of its resample is fitted
    m = 50_000 * 49 // 50
    assert (v["n_labels"], v["n_inputs"]) == (round(0.8 * m), m - round(0.8 * m)) == (39_200, 9_800)
    # row by row the labels are those of other rows: agreement at chance (10 classes), within 4 sd
    assert abs(v["label_agreement_first_n"] - 0.1) < 4 * math.sqrt(0.1 * 0.9 / 9_800)
    assert v["source_lines"] == "notes.md:295-296" and "(x_val, y_train)" in r.evidence


def test_sign_of_the_2_3_step_is_lost():
    r = evaluate_sign_2_3()
    v = r.values
    assert v["log_0.1"] == pytest.approx(np.log(0.1), abs=1e-6) and v["log_0.1"] < 0
    assert v["written_factor"] == 2.3
    for row in v["evaluated"]:
        y_log = np.log(row["p"])
        assert row["log_0.1_times_y_log_p"] == pytest.approx(np.log(0.1) * y_log, abs=1e-6)
        assert row["written_c_times_y_log_p"] == pytest.approx(2.3 * y_log, abs=1e-6)
        assert np.sign(row["log_0.1_times_y_log_p"]) == -np.sign(row["written_c_times_y_log_p"]) == 1
    assert r.verdict == "fails"
    assert "−2.3026, not +2.3" in r.evidence and v["source_lines"] == "notes.md:84-88"


def test_each_excerpt_is_as_many_lines_as_its_range():
    note = read_note()
    for e in note.excerpts.values():
        first, last = e.lines
        assert e.text.count("\n") == last - first
    assert note.commit == _raw()["commit"] and len(note.commit) == 40


@pytest.mark.parametrize("change,match", [
    (lambda d: d.pop("commit"), "expected an object with fields"),
    (lambda d: d.update(commit="abc"), "'commit' must be 40 hex digits"),
    (lambda d: d["excerpts"]["thresholds"].update(lines=[319, 315]), "1 <= first <= last"),
    (lambda d: d["excerpts"]["thresholds"].update(lines=[315, 316]), "its text has 5 lines"),
])
def test_a_malformed_note_file_is_refused_in_one_line(change, match, tmp_path):
    raw = _raw()
    change(raw)
    with pytest.raises(NoteError, match=match) as e:
        parse_note(raw, tmp_path / "corrections_note.json")
    assert "\n" not in str(e.value)


def test_every_loss_and_method_claim_links_the_lines_that_state_it():
    from analysis.report.claims import LOSS_CLAIMS_MODULE, METHOD_CLAIMS_MODULES, source_cell
    from analysis.report.markdown import ZWSP

    for module in (LOSS_CLAIMS_MODULE, *METHOD_CLAIMS_MODULES):
        for spec in module_claims(module):
            where = statement_url(spec.id)
            assert where is not None, spec.id
            label, url = where
            first, last = re.fullmatch(r"notes\.md:(\d+)(?:-(\d+))?", label).groups()
            assert url.endswith(f"paper/notes/notes.md#L{first}-L{last or first}")
            assert "/blob/" + read_note().commit + "/" in url  # the lines, at a commit: never the repository root
            shown = label.replace(":", ":" + ZWSP)  # a break point after the colon, for narrow columns
            assert source_cell(spec.id, spec.source) == f"{spec.source} · [{shown}]({url})"


def test_note_errors_table_shows_each_claims_lines_words_and_numbers(monkeypatch):
    from analysis.report import claims

    results = tuple(evaluate_all(list(NOTE_IDS)))
    assert all(isinstance(r, ClaimResult) for r in results)
    monkeypatch.setattr(claims, "_audit_results", lambda ctx: results)
    df = claims.note_errors_table(None).frame
    assert df["claim"].tolist() == [f"`{i}`" for i in NOTE_IDS]
    assert df["lines"].str.contains(r"\]\(https://github\.com/stfxecutables/dynamic_loss/blob/").all()
    assert "0.8, 0.8" in df["the note writes"].iloc[0] and "text{val}" in df["the note writes"].iloc[1]
    assert "4 models, not 5" in df["computed"].iloc[0] and "9,800 rows" in df["computed"].iloc[1]
    assert "−2.3026" in df["computed"].iloc[2]


def test_the_methods_page_has_the_section_the_claims_link():
    from analysis.report.claims import EVIDENCE
    from analysis.report.context import project_root

    page = (project_root() / "reports" / "methods-audit.qmd").read_text(encoding="utf-8")
    for cid in NOTE_IDS:
        target, anchor, _ = EVIDENCE[cid]
        assert target == "reports/methods-audit.qmd" and "{#" + anchor + "}" in page
