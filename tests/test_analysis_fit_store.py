"""The super-learner fit store: a rerun reads fits back and gives the same tables; a fit is reused
only for the same inputs, seed, settings and code; damaged, foreign or unwritable stores cost a
refit, never a wrong number."""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from synthetic import SyntheticSpec, write_synthetic_preset

from analysis.core import fit_store as FS
from analysis.core.config import AnalysisConfig
from analysis.core.fuse import superlearner_tasks
from analysis.core.pipeline import analyze_preset
from analysis.core.reader import load_preset
from analysis.core.superlearner_batch import fit_superlearners

SPEC = SyntheticSpec(n_members=3, n_train=200, n_test=120, n_classes=4, seed=3)
FAST = AnalysisConfig(seed=0, n_resamples=200, superlearner_epochs=(("Weighted", 2), ("MLP", 1)), size_repeats=2)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    write_synthetic_preset(root, "syn", SPEC)
    return root


@pytest.fixture(scope="module")
def tasks(cache):
    data = load_preset(cache, "syn")
    arm = data.arms[(data.datasets[0], "dyn-0.7")]
    return [t for _, t in superlearner_tasks(arm, config=FAST)]


def _same_result(a, b) -> None:
    assert np.array_equal(a.preds, b.preds)
    assert np.array_equal(a.probs, b.probs) and np.array_equal(a.logits, b.logits)
    assert (a.val_accuracy, a.best_epoch, a.n_fit_rows, a.n_val_rows) == (b.val_accuracy, b.best_epoch,
                                                                          b.n_fit_rows, b.n_val_rows)
    assert a.history == b.history and (a.kind, a.variant) == (b.kind, b.variant)


def test_a_rerun_reads_every_fit_back_and_writes_the_same_tables(cache, tmp_path):
    store = FS.FitStore(tmp_path / "fits")
    first = analyze_preset("syn", cache, tmp_path / "r1", config=FAST, fit_store=store)
    assert (store.fitted, store.reused) == (24, 0)
    again = FS.FitStore(tmp_path / "fits")
    second = analyze_preset("syn", cache, tmp_path / "r2", config=FAST, fit_store=again)
    assert (again.fitted, again.reused) == (0, 24)
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name], check_exact=True)
    # and both equal an analysis that stores nothing
    plain = analyze_preset("syn", cache, None, config=FAST, write=False)
    for name in ("table1", "superlearner_gap", "calibration"):
        cols = [c for c in plain[name].columns if c != "fit_seconds"]
        pd.testing.assert_frame_equal(plain[name][cols], first[name][cols], check_exact=True)


def test_a_stored_fit_is_the_fit_itself(tasks, tmp_path):
    store = FS.FitStore(tmp_path)
    fitted = store.fit(tasks)
    read = FS.FitStore(tmp_path).fit(tasks)
    alone = fit_superlearners(tasks)
    for a, b, c in zip(fitted, read, alone):
        _same_result(a, b)
        _same_result(a, c)


def test_keys_change_with_every_input_the_fit_depends_on(tasks):
    base = FS.task_keys(tasks)
    assert len(set(base)) == len(tasks)  # kinds and variants differ
    t = tasks[0]
    logits = t.train_logits.copy()
    logits[0, 0, 0] += 1e-6
    changed = [
        replace(t, train_logits=logits),
        replace(t, train_labels=np.roll(t.train_labels, 1)),
        replace(t, test_logits=t.test_logits + 0.5),
        replace(t, seed=t.seed + 1),
        replace(t, config=replace(t.config, epochs=t.config.n_epochs + 1)),
        replace(t, config=replace(t.config, max_fit_rows=50)),
        replace(t, fit_mask=~t.fit_mask),
    ]
    keys = FS.task_keys(changed)
    assert base[0] not in keys and len(set(keys)) == len(keys)
    assert FS.task_keys([replace(t, train_logits=t.train_logits.copy())]) == [base[0]]  # equal bytes, same key


def test_keys_change_with_the_fitting_code(tasks, monkeypatch):
    before = FS.task_keys(tasks[:1])
    monkeypatch.setattr(FS, "_code_digest", lambda: "another version of the trainer")
    assert FS.task_keys(tasks[:1]) != before


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "empty"])
def test_a_damaged_or_foreign_fit_is_fitted_again_and_replaced(tasks, tmp_path, damage):
    store = FS.FitStore(tmp_path)
    good = store.fit(tasks)
    keys = FS.task_keys(tasks)
    victim = tmp_path / f"{keys[0]}.npz"
    if damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:200])
    elif damage == "garbage":
        victim.write_bytes(b"\x00not a zip" * 50)
    elif damage == "foreign":  # another task's fit copied under this name
        shutil.copy(tmp_path / f"{keys[1]}.npz", victim)
    else:
        victim.write_bytes(b"")
    again = FS.FitStore(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = again.fit(tasks)
    assert (again.fitted, again.reused) == (1, len(tasks) - 1)
    for a, b in zip(good, res):
        _same_result(a, b)
    assert FS.FitStore(tmp_path).fit(tasks[:1]) and np.load(victim, allow_pickle=False)["key"] == keys[0]


def test_a_stored_fit_of_the_wrong_shape_is_not_used(tasks, tmp_path):
    store = FS.FitStore(tmp_path)
    store.fit(tasks[:1])
    key = FS.task_keys(tasks[:1])[0]
    z = dict(np.load(tmp_path / f"{key}.npz", allow_pickle=False))
    z["preds"] = z["preds"][:-1]
    np.savez(tmp_path / f"{key}.npz", **z)
    again = FS.FitStore(tmp_path)
    with pytest.warns(UserWarning, match="wrong shape"):
        again.fit(tasks[:1])
    assert again.fitted == 1


def test_refit_ignores_stored_fits_and_stores_the_new_ones(tasks, tmp_path):
    FS.FitStore(tmp_path).fit(tasks)
    refit = FS.FitStore(tmp_path, read=False)
    refit.fit(tasks)
    assert (refit.fitted, refit.reused) == (len(tasks), 0)


def test_an_unwritable_store_warns_once_and_the_results_stand(tasks, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("the store's folder cannot be made under a file")
    store = FS.FitStore(blocker / "fits")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = store.fit(tasks)
    assert [str(w.message) for w in caught if "not stored" in str(w.message)].__len__() == 1
    assert store.write_errors == len(tasks)
    for a, b in zip(res, fit_superlearners(tasks)):
        _same_result(a, b)


def test_a_full_disk_leaves_no_partial_fit_behind(tasks, tmp_path, monkeypatch):
    import training.cache_format as CF

    real = CF.atomic_write

    def full(path, data):
        def half(f):
            f.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

        return real(path, half)

    monkeypatch.setattr(CF, "atomic_write", full)
    store = FS.FitStore(tmp_path)
    with pytest.warns(UserWarning, match="not stored"):
        store.fit(tasks[:2])
    assert list(tmp_path.iterdir()) == []  # neither a fit nor a temporary file
    monkeypatch.setattr(CF, "atomic_write", real)
    again = FS.FitStore(tmp_path)
    again.fit(tasks[:2])
    assert again.fitted == 2


def test_analyze_cli_stores_fits_under_the_data_root_and_refit_fits_again(cache, tmp_path):
    import subprocess
    import sys

    data = tmp_path / "data"
    shutil.copytree(cache, data / "cache")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    cmd = [sys.executable, "-m", "analysis", "--data-dir", str(data), "analyze", "--preset", "syn",
           "--resamples", "100"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    assert "24 fitted, 0 read back from data/fits/superlearner" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    assert "0 fitted, 24 read back" in second.stdout
    third = subprocess.run(cmd + ["--refit"], capture_output=True, text=True, env=env, check=True)
    assert "24 fitted, 0 read back" in third.stdout
    import json

    prov = json.loads((data / "results" / "syn" / "provenance.json").read_text())
    assert prov["superlearner_fits"] == {"store": "data/fits/superlearner", "read": False, "reused": 0,
                                         "fitted": 24, "write_errors": 0}



@pytest.fixture(scope="module")
def cache10(tmp_path_factory):
    """3 members x 10 classes (as digits-tiny): 30 inputs per row, not a multiple of the vector
    width, where MKL's sums depended on the leading dimension of a model's slice of the batch."""
    root = tmp_path_factory.mktemp("cache10")
    write_synthetic_preset(root, "syn", replace(SPEC, n_classes=10, n_train=400, arms=(("ce", 1.6), ("dyn-0.8", 1.8))))
    return root


def test_a_fit_refitted_alone_is_bit_identical_to_it_fitted_in_a_batch(cache10):
    data = load_preset(cache10, "syn")
    tasks = [t for a in data.arms.values() for _, t in superlearner_tasks(a, config=FAST) if t.config.kind == "Weighted"]
    batched = fit_superlearners(tasks, workers=1)
    for i in range(len(tasks)):
        _same_result(fit_superlearners([tasks[i]], workers=1)[0], batched[i])


def test_deleting_one_stored_fit_and_rerunning_writes_the_same_csv_bytes(cache10, tmp_path):
    analyze_preset("syn", cache10, tmp_path / "r1", config=FAST, fit_store=FS.FitStore(tmp_path / "fits"))
    stored = sorted((tmp_path / "fits").glob("*.npz"))
    stored[len(stored) // 2].unlink()
    store = FS.FitStore(tmp_path / "fits")
    analyze_preset("syn", cache10, tmp_path / "r2", config=FAST, fit_store=store)
    assert (store.fitted, store.reused) == (1, len(stored) - 1)
    for f in sorted((tmp_path / "r1").glob("*.csv")):
        if f.name == "superlearner_gap.csv":  # its fit_seconds column is the refit's own wall time
            a, b = (pd.read_csv(d / f.name).drop(columns="fit_seconds") for d in (tmp_path / "r1", tmp_path / "r2"))
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        else:
            assert f.read_bytes() == (tmp_path / "r2" / f.name).read_bytes(), f.name
