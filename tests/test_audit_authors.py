"""The authors' evaluation records: the validating reader on the real files and on malformed
copies, the Table 1 provenance checked by an independent computation, and regression baselines of
the tidy frame and of the records claims' values."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.audit import SOURCES, evaluate_all
from analysis.audit.authors import (
    RECORD_COLUMNS,
    AuthorsRecordError,
    read_authors_records,
    records_root,
)
from training.paths import authors_dir, paper_dir

RECORDS = authors_dir() / "results" / "ensemble_evals"
RECORD_CLAIMS = ["table1-provenance", "stacking-validation", "pooled-shuffled"]


def _raw_records() -> list[dict]:
    """Every record read with the json module alone: field -> value, plus kind and stem."""
    out = []
    for path in sorted(RECORDS.glob("*/each/*.json")):
        raw = json.loads(path.read_text())
        out.append({**{k: next(iter(v.values())) for k, v in raw.items()}, "kind": path.parts[-3], "stem": path.stem})
    return out


@pytest.fixture(scope="module")
def records() -> pd.DataFrame:
    return read_authors_records()


@pytest.fixture(scope="module")
def claims():
    return {r.id: r for r in evaluate_all(RECORD_CLAIMS)}


def test_records_ship_with_the_license_notice_and_the_source_commit():
    assert "MIT License" in (authors_dir() / "LICENSE").read_text()
    readme = (authors_dir() / "README.md").read_text()
    assert "stfxecutables/dynamic_loss" in readme and "b889790020a5e0bd16745dbff86ecf78837a5de1" in readme


def test_reader_returns_every_record_with_the_tidy_columns(records):
    assert list(records.columns) == list(RECORD_COLUMNS)
    assert len(records) == 158
    assert records["kind"].value_counts().to_dict() == {"learned": 128, "static": 30}
    assert records["record"].is_unique
    assert records["tau"].map(lambda t: t is None or t in (0.6, 0.7, 0.8, 0.9)).all()
    assert int(records["failed"].sum()) == 8


def test_reader_agrees_with_the_raw_json_field_by_field(records):
    by_key = records.set_index("record")
    raw = _raw_records()
    assert len(raw) == len(by_key)
    for r in raw:
        row = by_key.loc[r["stem"]]
        assert (row["dataset"], row["fusion"], row["kind"]) == (r["data"], r["fusion"], r["kind"])
        assert row["tau"] is None if r["thresh"] == -1 else row["tau"] == r["thresh"]
        assert (row["pooled"], row["shuffled"], row["lr"], row["wd"]) == (r["pooled"], r["shuffled"], r["lr"], r["wd"])
        for m in ("acc", "top3", "top5", "loss"):
            for s in ("test", "val"):
                for e, name in (("l", "last"), ("b", "best")):
                    v, got = r[f"{m}_{s}_{e}"], row[f"{m}_{s}_{name}"]
                    assert math.isnan(got) if v is None or v == -1 else got == v, (r["stem"], m, s, e)
        assert row["failed"] == any(r[f"loss_{s}_{e}"] is None for s in ("test", "val") for e in "lb")
        for e, name in (("l", "last"), ("b", "best")):
            v = r[f"meta_epochs_{e}"]
            assert (pd.isna(row[f"epochs_{name}"]) if v == -1 else row[f"epochs_{name}"] == v)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "authors"
    shutil.copytree(authors_dir() / "results", root / "results")
    return root


def _first(root: Path, kind: str = "learned") -> Path:
    return min((records_root(root) / kind / "each").glob("*.json"))


def _edit(path: Path, field: str, value) -> None:
    raw = json.loads(path.read_text())
    raw[field] = {path.stem: value}
    path.write_text(json.dumps(raw))


MALFORMATIONS = {
    "not JSON": lambda p: p.write_text("{not json"),
    "a list, not an object": lambda p: p.write_text("[1, 2]"),
    "a missing field": lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items()
                                                          if k != "acc_test_b"})),
    "an extra field": lambda p: _edit(p, "seed", 3),
    "a key other than the file name": lambda p: p.write_text(json.dumps(
        {k: {"2020.01.01--00-00-00.000000": next(iter(v.values()))} for k, v in json.loads(p.read_text()).items()})),
    "an unknown dataset": lambda p: _edit(p, "data", "MNIST"),
    "a static fusion in a learned record": lambda p: _edit(p, "fusion", "Vote"),
    "an accuracy above 1": lambda p: _edit(p, "acc_test_l", 1.5),
    "an unknown threshold": lambda p: _edit(p, "thresh", 0.5),
    "a string for a flag": lambda p: _edit(p, "pooled", "false"),
    "best epoch after the last": lambda p: _edit(p, "meta_epochs_b", 99),
    "a null accuracy": lambda p: _edit(p, "acc_test_b", None),
    "a negative weight decay": lambda p: _edit(p, "wd", -0.1),
}


@pytest.mark.parametrize("what", list(MALFORMATIONS))
def test_reader_rejects_a_malformed_record_naming_the_file(tmp_path, what):
    root = _copy(tmp_path)
    bad = _first(root)
    MALFORMATIONS[what](bad)
    with pytest.raises(AuthorsRecordError, match=re.escape(str(bad))):
        read_authors_records(root)


@pytest.mark.parametrize(("name", "named"), [
    ("static/each/notes.txt", "static/each/notes.txt"),
    ("learned/each/2022-12-11.json", "learned/each/2022-12-11.json"),
    ("learned/extra.json", "learned/extra.json"),
    ("static/each/sub/2022.12.12--04-59-54.683030.json", "static/each/sub"),
    ("other/each/2022.12.12--04-59-54.683030.json", "other"),
])
def test_reader_rejects_an_unexpected_file_naming_it(tmp_path, name, named):
    root = _copy(tmp_path)
    path = records_root(root) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    with pytest.raises(AuthorsRecordError, match=re.escape(str(records_root(root) / named)) + ": unexpected"):
        read_authors_records(root)


def test_reader_names_a_missing_records_folder(tmp_path):
    with pytest.raises(AuthorsRecordError, match="records folder is missing"):
        read_authors_records(tmp_path)


def _independent_provenance() -> dict[str, str]:
    """Published cell -> the record giving it, by rule: static cells from their one record, learned
    cells from the member-ordered, non-failed fit without weight decay at its best epoch."""
    raw = _raw_records()
    with open(paper_dir() / "table1_accuracy.csv", newline="") as fh:
        cells = list(csv.DictReader(fh))
    found = {}
    for c in cells:
        tau = -1.0 if c["threshold"] == "None" else float(c["threshold"])
        cands = [r for r in raw if r["data"] == c["dataset"] and r["fusion"] == c["fusion"] and r["thresh"] == tau]
        if c["fusion"] in ("Weighted", "MLP"):
            cands = [r for r in cands if r["wd"] == 0 and not r["pooled"] and not r["shuffled"]
                     and r["loss_test_b"] is not None]
        assert len(cands) == 1, c
        if f"{cands[0]['acc_test_b']:.4f}" == f"{float(c['accuracy']):.4f}":
            found[f"{c['dataset']}/{c['fusion']}/{c['threshold']}"] = cands[0]["stem"]
    return found


def test_every_published_cell_is_traced_as_an_independent_computation_finds(claims):
    found = _independent_provenance()
    assert len(found) == 60
    v = claims["table1-provenance"].values
    assert v["n_traced"] == v["n_cells"] == 60 and v["untraced"] == []
    assert {k: s.split(" ")[0] for k, s in v["cells"].items()} == found
    assert v["selection_rule"] == {"wd": 0.0, "epoch": "best", "cells_given": 30, "n_cells": 30}
    assert claims["table1-provenance"].verdict == "holds"


def test_the_published_learned_cells_are_not_the_best_test_accuracy_per_cell(claims):
    """Independent count: cells whose printed value is the maximum test accuracy over every
    member-ordered, non-failed fit and both epochs of that cell."""
    raw = _raw_records()
    with open(paper_dir() / "table1_accuracy.csv", newline="") as fh:
        cells = [c for c in csv.DictReader(fh) if c["fusion"] in ("Weighted", "MLP")]
    n_max = 0
    for c in cells:
        tau = -1.0 if c["threshold"] == "None" else float(c["threshold"])
        accs = [r[f"acc_test_{e}"] for r in raw for e in "lb" if r["data"] == c["dataset"] and r["fusion"] == c["fusion"]
                and r["thresh"] == tau and not r["pooled"] and not r["shuffled"] and r["loss_test_b"] is not None]
        n_max += f"{max(accs):.4f}" == f"{float(c['accuracy']):.4f}"
    assert claims["table1-provenance"].values["cells_equal_to_best_test_over_settings"] == n_max < 30


def test_every_learned_fit_that_ran_validates_above_its_test_accuracy(claims):
    raw = [r for r in _raw_records() if r["kind"] == "learned"]
    ran = [r for r in raw if r["loss_test_b"] is not None]
    v = claims["stacking-validation"].values
    assert v["n_evaluated"] == len(ran) == 120 and len(v["failed"]) == len(raw) - len(ran) == 8
    assert v["n_gap_positive"] == sum(r["acc_val_b"] > r["acc_test_b"] for r in ran)
    for ds, s in v["per_dataset"].items():
        gaps = [r["acc_val_b"] - r["acc_test_b"] for r in ran if r["data"] == ds]
        assert s["gap_best_mean"] == pytest.approx(np.mean(gaps), abs=1e-6)
    assert claims["stacking-validation"].verdict == "fails"


def test_pooled_and_shuffled_comparisons_count_the_records(claims):
    raw = [r for r in _raw_records() if r["kind"] == "learned"]
    v = claims["pooled-shuffled"].values["per_variant"]
    assert v["pooled"]["n_evaluations"] == sum(r["pooled"] for r in raw) == 4
    assert v["shuffled"]["n_evaluations"] == sum(r["shuffled"] for r in raw) == 30
    assert v["shuffled"]["n_failed"] == sum(r["shuffled"] and r["loss_test_b"] is None for r in raw) == 4
    assert claims["pooled-shuffled"].verdict == "conditional"


def test_records_claims_name_their_source(claims):
    for r in claims.values():
        assert r.source == "authors' records" in SOURCES
        json.dumps(r.to_dict())


def test_tidy_frame_matches_regression_baseline(records, dataframe_regression):
    df = records.copy()
    df["tau"] = df["tau"].map(lambda t: np.nan if t is None else t).astype(float)
    for c in ("epochs_last", "epochs_best"):
        df[c] = df[c].astype(float)
    for c in ("pooled", "shuffled", "failed"):
        df[c] = df[c].astype(int)
    dataframe_regression.check(df)


def test_records_claims_values_match_regression_baseline(claims, data_regression):
    data_regression.check({i: claims[i].to_dict() for i in RECORD_CLAIMS})
