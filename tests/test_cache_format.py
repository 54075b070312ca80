"""The cache contract: atomic runs, checksums, and errors that name the file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training import cache_format as cf


def _arrays(n_train=12, n_test=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "train_logits": rng.normal(size=(n_train, c)).astype(np.float32),
        "test_logits": rng.normal(size=(n_test, c)).astype(np.float32),
        "train_labels": rng.integers(0, c, n_train).astype(np.int64),
        "test_labels": rng.integers(0, c, n_test).astype(np.int64),
        "train_ids": np.arange(n_train, dtype=np.int64),
        "test_ids": np.arange(n_test, dtype=np.int64),
        "fit_index": np.arange(0, n_train, 2, dtype=np.int64),
        "val_index": np.arange(1, n_train, 2, dtype=np.int64),
    }


def test_written_run_reads_back_identical(tmp_path):
    d = cf.run_dir(tmp_path, "p", "ds", "ce", 0)
    arrays = _arrays()
    cf.write_run(d, arrays, {"seed": 7})
    rec = cf.read_run(d)
    assert rec.meta["seed"] == 7 and rec.meta["schema_version"] == cf.SCHEMA_VERSION
    for k, v in arrays.items():
        np.testing.assert_array_equal(rec.arrays[k], v)
    assert rec.meta["arrays_sha256"] == cf.sha256_file(d / cf.ARRAYS_FILE)


def test_run_without_run_json_is_incomplete(tmp_path):
    d = cf.run_dir(tmp_path, "p", "ds", "ce", 0)
    cf.write_run(d, _arrays(), {})
    (d / cf.RUN_FILE).unlink()
    assert not cf.is_complete(d)
    with pytest.raises(cf.CacheError, match="run.json: missing"):
        cf.read_run(d)


def test_truncated_arrays_rejected_naming_the_file(tmp_path):
    d = cf.run_dir(tmp_path, "p", "ds", "ce", 1)
    cf.write_run(d, _arrays(), {})
    f = d / cf.ARRAYS_FILE
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(cf.CacheError, match=r"arrays\.npz: SHA-256"):
        cf.read_run(d)
    with pytest.raises(cf.CacheError, match=r"arrays\.npz: unreadable npz"):
        cf.read_run(d, verify_checksum=False)


def test_corrupt_run_json_rejected_naming_the_file(tmp_path):
    d = cf.run_dir(tmp_path, "p", "ds", "ce", 2)
    cf.write_run(d, _arrays(), {})
    (d / cf.RUN_FILE).write_text("{not json")
    with pytest.raises(cf.CacheError, match=r"run\.json: not valid JSON"):
        cf.read_run(d)


def test_object_arrays_are_never_unpickled(tmp_path):
    d = cf.run_dir(tmp_path, "p", "ds", "ce", 3)
    cf.write_run(d, _arrays(), {})
    a = _arrays()
    a["train_ids"] = np.array([object()] * 12, dtype=object)
    np.savez(d / cf.ARRAYS_FILE, **a)
    meta = json.loads((d / cf.RUN_FILE).read_text())
    meta["arrays_sha256"] = cf.sha256_file(d / cf.ARRAYS_FILE)
    (d / cf.RUN_FILE).write_text(json.dumps(meta))
    with pytest.raises(cf.CacheError, match="unreadable npz"):
        cf.read_run(d)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.update(train_logits=a["train_logits"].astype(np.float64)), "`train_logits` must be 2-D float32"),
        (lambda a: a.update(test_labels=a["test_labels"][:-1]), "`test_labels` has 5 rows"),
        (lambda a: a.update(train_labels=a["train_labels"] + 5), "`train_labels` outside"),
        (lambda a: a.update(fit_index=np.array([99], dtype=np.int64)), "`fit_index` holds rows outside"),
        (lambda a: a.pop("val_index"), "missing arrays"),
    ],
)
def test_contract_violations_rejected_on_write(tmp_path, change, message):
    a = _arrays()
    change(a)
    with pytest.raises(cf.CacheError, match=message):
        cf.write_run(tmp_path / "run", a, {})
    assert not cf.is_complete(tmp_path / "run")


def test_manifest_lists_complete_and_incomplete_runs(tmp_path):
    cf.write_run(cf.run_dir(tmp_path, "p", "ds", "ce", 0), _arrays(), {"seed": 1})
    cf.write_run(cf.run_dir(tmp_path, "p", "ds", "dyn-0.7", 0), _arrays(), {"seed": 2})
    (cf.run_dir(tmp_path, "p", "ds", "dyn-0.7", 0) / cf.RUN_FILE).unlink()
    rows = cf.manifest(tmp_path, "p")
    assert [(r["arm"], r["complete"]) for r in rows] == [("ce", True), ("dyn-0.7", False)]
    assert rows[0]["seed"] == 1
