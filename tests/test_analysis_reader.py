"""Cache reader: alignment by id, validation naming the file, the non-finite member policy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synthetic import SyntheticSpec, write_synthetic_preset

from analysis.core.reader import load_preset
from training.cache_format import CacheError, read_run, run_dir, write_run

SMALL = SyntheticSpec(arms=(("ce", 1.5), ("dyn-0.7", 1.7)), n_members=3, n_train=60, n_test=40, n_classes=4)


@pytest.fixture
def cache(tmp_path):
    write_synthetic_preset(tmp_path, "tiny", SMALL)
    return tmp_path


def _rewrite(path, **changes):
    rec = read_run(path)
    arrays = dict(rec.arrays)
    arrays.update(changes)
    meta = {k: v for k, v in rec.meta.items() if k not in ("schema_version", "arrays_sha256")}
    write_run(path, arrays, meta)


def test_members_are_aligned_by_sample_id_not_by_order(cache):
    p = run_dir(cache, "tiny", "digits", "ce", 1)
    rec = read_run(p)
    perm = np.random.default_rng(0).permutation(40)
    _rewrite(p, test_logits=rec.arrays["test_logits"][perm], test_labels=rec.arrays["test_labels"][perm],
             test_ids=rec.arrays["test_ids"][perm])
    a = load_preset(cache, "tiny").arms[("digits", "ce")]
    assert np.all(np.diff(a.test_ids) > 0)
    order = np.argsort(rec.arrays["test_ids"])
    assert np.array_equal(a.test_logits[1], rec.arrays["test_logits"][order])
    assert np.array_equal(a.test_labels, rec.arrays["test_labels"][order])


def test_fit_index_is_mapped_from_ids_to_aligned_positions(cache):
    a = load_preset(cache, "tiny").arms[("digits", "ce")]
    rec = read_run(run_dir(cache, "tiny", "digits", "ce", 0))
    assert np.array_equal(np.sort(a.train_ids[a.fit_positions[0]]), np.sort(rec.arrays["fit_index"]))
    assert a.fit_mask().shape == (3, 60)


def test_reader_rejects_label_disagreement_naming_the_file(cache):
    p = run_dir(cache, "tiny", "digits", "ce", 2)
    labels = read_run(p).arrays["test_labels"].copy()
    labels[0] = (labels[0] + 1) % 4
    _rewrite(p, test_labels=labels)
    with pytest.raises(CacheError, match=r"member-002/arrays.npz: `test_labels` disagree .* on 1 sample ids"):
        load_preset(cache, "tiny")


def test_reader_rejects_a_corrupted_file_by_checksum(cache):
    p = run_dir(cache, "tiny", "digits", "dyn-0.7", 0) / "arrays.npz"
    data = bytearray(p.read_bytes())
    data[-30] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(CacheError, match=r"dyn-0.7/member-000: corrupt \(arrays.npz SHA-256"):
        load_preset(cache, "tiny")


def test_reader_rejects_class_count_mismatch_naming_the_file(cache):
    p = run_dir(cache, "tiny", "digits", "ce", 1)
    rec = read_run(p)
    _rewrite(p, train_logits=np.zeros((60, 5), np.float32), test_logits=np.zeros((40, 5), np.float32))
    with pytest.raises(CacheError, match=r"ce/member-001/arrays.npz: 5 classes"):
        load_preset(cache, "tiny")
    del rec


def test_reader_rejects_wrong_dtype_naming_the_file(cache):
    p = run_dir(cache, "tiny", "digits", "ce", 0)
    rec = read_run(p)
    np.savez(p / "arrays.npz", **{**rec.arrays, "test_logits": rec.arrays["test_logits"].astype(np.float64)})
    meta = json.loads((p / "run.json").read_text())
    from training.cache_format import sha256_file

    meta["arrays_sha256"] = sha256_file(p / "arrays.npz")
    (p / "run.json").write_text(json.dumps(meta))
    with pytest.raises(CacheError, match=r"member-000/arrays.npz: array `test_logits` must be 2-D float32"):
        load_preset(cache, "tiny")


def test_reader_rejects_an_incomplete_run_naming_run_json(cache):
    (run_dir(cache, "tiny", "digits", "ce", 0) / "run.json").unlink()
    with pytest.raises(CacheError, match=r"member-000: incomplete \(no run.json.*dynloss train --preset tiny"):
        load_preset(cache, "tiny")


def test_missing_preset_names_the_command_that_makes_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"dynloss train --preset nothing-here"):
        load_preset(tmp_path, "nothing-here")


def test_nonfinite_member_is_dropped_and_reported_by_default(tmp_path):
    write_synthetic_preset(tmp_path, "nan", SMALL, nonfinite_members=(("digits", "ce", 1),))
    data = load_preset(tmp_path, "nan")
    a = data.arms[("digits", "ce")]
    assert a.members == (0, 2) and a.n_members == 2
    assert np.all(np.isfinite(a.test_logits))
    (d,) = data.dropped()
    assert d["member"] == 1 and d["arm"] == "ce" and "member-001/arrays.npz" in d["path"]
    assert "non-finite" in d["reason"]


def test_nonfinite_member_raises_under_the_raise_policy(tmp_path):
    write_synthetic_preset(tmp_path, "nan", SMALL, nonfinite_members=(("digits", "ce", 1),))
    with pytest.raises(CacheError, match=r"ce/member-001/arrays.npz: non-finite logits"):
        load_preset(tmp_path, "nan", nonfinite="raise")
    with pytest.raises(ValueError, match="`nonfinite` to be 'drop' or 'raise'"):
        load_preset(tmp_path, "nan", nonfinite="ignore")


def test_arms_of_a_dataset_must_share_the_test_set(cache):
    p = run_dir(cache, "tiny", "digits", "dyn-0.7", 0)
    for k in range(3):
        p = run_dir(cache, "tiny", "digits", "dyn-0.7", k)
        rec = read_run(p)
        _rewrite(p, test_ids=rec.arrays["test_ids"] + 1000)
    with pytest.raises(CacheError, match=r"dyn-0.7/member-000/arrays.npz: test ids/labels differ from arm 'ce'"):
        load_preset(cache, "tiny")
