"""What a reviewer reads on the reproducibility and glossary pages: the glossary covers every arm,
fusion and metric (from their registries) and every name a results set uses; the audited paper
version comes from ``data/paper/paper.json`` and agrees with the cited text's record; the worked
example's file, line, column and value are those of the CSV (and of ``dynloss compare``); the
provenance table names files that exist.

The tests on a results set train, analyse and audit digits-tiny once per session (slow).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis.core.fusions import FUSIONS
from analysis.core.metric_registry import METRICS
from analysis.core.schema import RESULT_FILES
from analysis.report import glossary, reproduce
from analysis.report.context import report_context
from analysis.report.statistics import STATISTICS
from report_data import PRESET, digits_tiny_results
from training.arms import ARMS

ROOT = Path(__file__).resolve().parents[1]


# --- glossary ------------------------------------------------------------------------------------

def test_glossary_has_an_entry_for_every_registered_arm_fusion_metric_and_statistic():
    g = glossary.glossary_frame()
    terms = dict(zip(g["term"], g["kind"]))
    assert {a: "arm" for a in ARMS}.items() <= terms.items()
    assert {f: "fusion" for f in FUSIONS}.items() <= terms.items()
    assert {"Single": "fusion", "OOB (out-of-bag)": "notation", "τ (tau)": "notation", "seed CI": "notation"}.items() \
        <= terms.items()
    meanings = " ".join(g["meaning"])
    assert all(f"`{m.name}`" in meanings for m in METRICS.values())
    assert all(f"statistics.qmd#sec-stat-{s.key})" in meanings for s in STATISTICS)
    assert g["term"].is_unique and (g["meaning"].str.len() > 10).all()


def test_every_arm_names_its_loss_parameters_and_learning_rate():
    for arm in ARMS.values():
        text = glossary.arm_meaning(arm)  # a KeyError here: a loss without an entry in LOSSES
        assert f"at lr {arm.lr:g}" in text, arm.name
        if arm.threshold is not None:
            assert f"τ = {arm.threshold:g}" in text, arm.name
    assert "learning-rate control" in glossary.arm_meaning(ARMS["ce-lr0.01"])
    assert "“None” row" in glossary.arm_meaning(ARMS["ce"])
    assert "text's protocol" in glossary.arm_meaning(ARMS["dyn-0.7-lr0.1"])


def test_glossary_tables_split_by_kind_and_refuse_an_unknown_kind():
    arms = glossary.glossary_table("arm").frame
    assert list(arms.columns) == ["term", "meaning"] and set(arms["term"]) == set(ARMS)
    both = glossary.glossary_table("notation", "verdict").frame
    assert set(both["kind"]) == {"notation", "verdict"}
    with pytest.raises(ValueError, match=r"Expected kinds among .*'arms'"):
        glossary.glossary_table("arms")


def test_glossary_page_is_a_chapter_and_shows_every_kind():
    book = yaml.safe_load((ROOT / "_quarto.yml").read_text())
    assert "reports/glossary.qmd" in book["book"]["chapters"]
    assert "reports/glossary.qmd" in book["project"]["render"]
    page = (ROOT / "reports" / "glossary.qmd").read_text()
    shown = {k for k in glossary._KINDS if f'"{k}"' in page}
    assert shown == set(glossary._KINDS)


# --- the audited paper version -------------------------------------------------------------------

def test_paper_version_names_the_cited_text_by_commit_and_invents_no_identifier():
    paper = json.loads((ROOT / "data" / "paper" / "paper.json").read_text())
    note = json.loads((ROOT / "data" / "paper" / "corrections_note.json").read_text())
    version = paper["version"]
    # the text whose lines the claims cite is the one the version names
    assert (version["commit"], version["file"]) == (note["commit"], note["file"])
    assert f"{version['characters']:,} characters" in note["commit_note"]
    assert len(version["sha256"]) == 64 and int(version["sha256"], 16) >= 0
    frame = reproduce.paper_version_frame()
    values = dict(zip(frame["item"], frame["value"]))
    assert version["commit"] in values["text audited"] and version["sha256"][:16] in values["its size and SHA-256"]
    for item in ("manuscript title", "arXiv id and version", "DOI", "date"):
        assert values[item] == "not printed in the text"  # none is printed in the text: none is made up
    assert "10.5281/zenodo.7429933" in values["code release it cites"]


def test_paper_version_without_its_record_is_refused_naming_the_file(tmp_path):
    meta = json.loads((ROOT / "data" / "paper" / "paper.json").read_text())
    del meta["version"]["sha256"]
    bad = tmp_path / "paper.json"
    bad.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"paper\.json: expected a `version` record with fields \['sha256'\]"):
        reproduce.paper_version_frame(bad)


# --- on a results set (slow) ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return digits_tiny_results(tmp_path_factory.getbasetemp() / "digits-tiny")


@pytest.fixture
def ctx(results, monkeypatch):
    return report_context({"DYNLOSS_PRESET": PRESET, "DYNLOSS_RESULTS_DIR": str(results)})


@pytest.mark.slow
def test_every_arm_and_fusion_of_a_results_set_has_a_glossary_entry(results):
    terms = set(glossary.glossary_frame()["term"])
    seen = {"arm": set(), "fusion": set()}
    for csv_file in (results / PRESET).glob("*.csv"):
        frame = pd.read_csv(csv_file, dtype=str, keep_default_na=False)
        for column in seen:
            if column in frame:
                seen[column] |= set(frame[column]) - {""}
    assert seen["arm"] and seen["fusion"]
    assert seen["arm"] - terms == set() and seen["fusion"] - terms == set()


@pytest.mark.slow
def test_worked_example_is_the_csv_cell_it_names(ctx, results):
    ex = reproduce.worked_example(ctx)
    path = results / PRESET / f"{ex.table}.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    header, row = next(csv.reader([lines[0]])), next(csv.reader([lines[ex.line - 1]]))
    cells = dict(zip(header, row))
    assert {k: cells[k] for k, _ in ex.key} == dict(ex.key) == {"dataset": "digits", "arm": "dyn-0.7",
                                                                "fusion": "Average"}
    assert cells[ex.column] == ex.text
    table = pd.read_csv(path)
    match = table[(table.dataset == "digits") & (table.arm == "dyn-0.7") & (table.fusion == "Average")]
    assert len(match) == 1 and match[ex.column].item() == ex.value
    text = reproduce.example_markdown(ctx)
    assert f"**{ex.value:.4f}**" in text and f"line {ex.line}" in text and f"`{ex.text}`" in text
    assert f"sed -n '1p;{ex.line}p' {ex.default_path}" in text and ex.pandas_command() in text


@pytest.mark.slow
def test_worked_example_commands_print_the_value_and_compare_checks_the_cell(ctx, results, tmp_path):
    ex = reproduce.worked_example(ctx)
    # the page's pandas line, run where data/results/<preset>/ is the results set
    (tmp_path / "data" / "results").mkdir(parents=True)
    (tmp_path / "data" / "results" / PRESET).symlink_to(results / PRESET)
    command = ex.pandas_command().replace("python -c ", f"{sys.executable} -c ", 1)
    out = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert float(out) == ex.value
    # the compare row the page greps for holds the same number
    from analysis.cli import main

    snapshot, diff = tmp_path / "baseline.json", tmp_path / "diff.csv"
    env = {"DYNLOSS_RESULTS_DIR": str(results)}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        assert main(["snapshot", "--preset", PRESET, "--out", str(snapshot)]) == 0
        assert main(["compare", "--results", str(results / PRESET), "--baseline", str(snapshot),
                     "--csv", str(diff)]) == 0
    rows = [r for r in diff.read_text().splitlines() if r.startswith(ex.compare_prefix)]
    assert len(rows) == 1
    cells = dict(zip(diff.read_text().splitlines()[0].split(","), rows[0].split(",")))
    assert float(cells["new"]) == ex.value and cells["status"] == "agree"


@pytest.mark.slow
def test_provenance_table_names_only_files_that_exist(ctx, results):
    from analysis.report import provenance

    frame = provenance.provenance_frame(ctx)
    result_names = {f"{name}.csv" for name in RESULT_FILES}
    in_set = frame[frame["source"] == provenance.SOURCES["result"]]
    assert len(in_set) and set(in_set["file"]) <= result_names
    assert all((results / PRESET / f).is_file() for f in in_set["file"])
    assert "table1_accuracy.csv" not in set(in_set["file"]) | result_names
    checkout = frame[frame["source"].isin([provenance.SOURCES[k] for k in ("paper", "code")])]
    assert len(checkout) and all((ROOT / f).is_file() for f in checkout["file"])
    audit = frame[frame["source"] == provenance.SOURCES["audit"]]
    assert set(audit["file"]) == {"audit.json"} and (results / "audit.json").is_file()
    assert "missing" not in set(frame["sha256"])
    assert set(frame["source"]) <= set(provenance.SOURCES.values())


# --- the PDF's page breaks -----------------------------------------------------------------------

def test_report_typst_rules_start_chapters_on_the_next_page_not_the_next_odd_one(tmp_path):
    # the chapter heading of Quarto's Typst book template (orange-book) breaks to an odd page, which
    # leaves a blank page before every chapter that would start on an even one
    import typst
    from pypdf import PdfReader

    book = ('#let book(body) = { show heading.where(level: 1): it => { pagebreak(to: "odd"); '
            'block(it.body) }; body }\n#show: book\n= One\ntext\n= Two\ntext\n= Three\ntext\n')
    pages = {}
    for name, header in (("template", ""), ("report", (ROOT / "reports" / "report.typ").read_text())):
        src = tmp_path / f"{name}.typ"
        src.write_text(header + "\n" + book, encoding="utf-8")
        typst.compile(str(src), output=str(tmp_path / f"{name}.pdf"), root=str(tmp_path))
        reader = PdfReader(tmp_path / f"{name}.pdf")
        pages[name] = [" ".join(p.extract_text().split()) for p in reader.pages]
    assert "" in pages["template"] and [p for p in pages["template"] if p] == ["One text", "Two text", "Three text"]
    assert pages["report"] == ["One text", "Two text", "Three text"]
