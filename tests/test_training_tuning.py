"""The learning-rate tuning: scored on held-out training rows only (the test labels cannot move the
choice), the choice against a plain loop, the record checked when read back, and ``dynloss train``
training the chosen arms beside the preset's."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from training import cache_format
from training.arms import LR_GRID, at_lr
from training.presets import get_preset
from training.tuning import (
    choose,
    held_out_accuracy,
    in_cache,
    read_selection,
    select,
    selection_file,
    tune_preset,
    tuning_arms,
    tuning_root,
)

PRESET = get_preset("digits-tiny")


def _tune(cache, **kw):
    return tune_preset(PRESET, cache_root=cache, workers=1, progress=False, **kw)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    cache = tmp_path_factory.mktemp("tuning") / "cache"
    return cache, _tune(cache)


def test_held_out_accuracy_is_the_accuracy_on_the_rows_outside_the_fit_index_by_a_plain_loop():
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(200, 5)), rng.integers(0, 5, 200)
    fit = rng.integers(0, 200, 160)  # a bootstrap draw: duplicates, about a third of the rows left out
    fitted = set(fit.tolist())
    right = [int(np.argmax(z[i]) == y[i]) for i in range(200) if i not in fitted]
    assert held_out_accuracy(z, y, fit) == (sum(right) / len(right), len(right))
    with pytest.raises(ValueError, match="every training row"):
        held_out_accuracy(z, y, np.arange(200))


def test_choose_takes_the_best_mean_and_the_smaller_lr_on_a_tie():
    assert choose({0.001: [0.5], 0.01: [0.9, 0.7], 0.1: [0.8]}) == 0.01
    assert choose({0.05: [0.8], 0.01: [0.8]}) == 0.01
    with pytest.raises(ValueError, match="score list"):
        choose({0.1: []})


def test_tuning_trains_every_grid_point_of_each_tuned_arm_into_its_own_folder(tuned):
    cache, choices = tuned
    assert tuning_arms(PRESET) == tuple(at_lr(a, lr) for a in ("ce", "dyn-0.7") for lr in LR_GRID)
    shared = in_cache(PRESET)
    assert shared == ("ce-lr0.01", "ce", "dyn-0.7", "dyn-0.7-lr0.1")  # the preset's own arms
    for arm in tuning_arms(PRESET):
        for m in range(PRESET.tuning_members):
            here = cache_format.run_dir(tuning_root(cache), PRESET.name, "digits", arm, m)
            there = cache_format.run_dir(cache, PRESET.name, "digits", arm, m)
            assert cache_format.is_complete(there if arm in shared else here)
            assert not (here.exists() and arm in shared)  # never trained twice
    assert [(c.dataset, c.base) for c in choices] == [("digits", "ce"), ("digits", "dyn-0.7")]


def test_the_choice_is_the_best_held_out_score_recomputed_from_the_runs(tuned):
    cache, choices = tuned
    for c in choices:
        means = {}
        for lr in LR_GRID:
            arm = at_lr(c.base, lr)
            accs = []
            for m in range(PRESET.tuning_members):
                root = cache if arm in in_cache(PRESET) else tuning_root(cache)
                z = cache_format.read_run(cache_format.run_dir(root, PRESET.name, "digits", arm, m)).arrays
                held = ~np.isin(np.arange(z["train_labels"].size), z["fit_index"])
                accs.append(float((z["train_logits"][held].argmax(1) == z["train_labels"][held]).mean()))
            means[lr] = np.mean(accs)
        assert c.lr == max(means, key=lambda lr: (means[lr], -lr)) and c.chosen == at_lr(c.base, c.lr)
        assert {lr: np.mean(a) for lr, _, a, _ in c.scores} == pytest.approx(means, abs=0)


def test_permuting_the_test_labels_leaves_the_choice_and_every_score_unchanged(tuned, tmp_path, monkeypatch):
    import training.datasets as datasets

    cache, choices = tuned
    load = datasets.load_dataset

    def permuted(name, *a, **kw):
        data = load(name, *a, **kw)
        labels = np.random.default_rng(7).permutation(data.test_labels)
        assert (labels != data.test_labels).mean() > 0.5
        return dataclasses.replace(data, test_labels=labels)

    monkeypatch.setattr(datasets, "load_dataset", permuted)
    other = _tune(tmp_path / "cache")
    assert other == choices
    # the permutation reached the runs: their test accuracies collapse, their held-out scores do not move
    run = cache_format.run_dir(tuning_root(tmp_path / "cache"), PRESET.name, "digits", "ce-lr0.05", 0)
    original = cache_format.run_dir(tuning_root(cache), PRESET.name, "digits", "ce-lr0.05", 0)
    acc = [cache_format.read_meta(r)["metrics"]["test_accuracy"] for r in (original, run)]
    assert acc[0] > 0.8 and acc[1] < 0.3


def test_the_recorded_choice_reads_back_and_a_tampered_one_is_refused(tuned, tmp_path):
    cache, choices = tuned
    assert read_selection(cache, PRESET) == choices
    assert read_selection(tmp_path, PRESET) is None  # none recorded
    assert read_selection(cache, get_preset("fmnist-mini")) is None  # another preset's: none recorded
    path = selection_file(cache, PRESET.name)
    rec = json.loads(path.read_text())
    copy = tmp_path / "_tuning" / path.name
    copy.parent.mkdir()
    worst = min(rec["choices"][0]["scores"], key=lambda s: np.mean(s["held_out_accuracy"]))
    bad = json.loads(json.dumps(rec))
    bad["choices"][0].update(lr=worst["lr"], chosen=worst["arm"])
    copy.write_text(json.dumps(bad))
    with pytest.raises(cache_format.CacheError, match=r"selection.json: the choice .* is not the best recorded score"):
        read_selection(tmp_path, PRESET)
    copy.write_text(json.dumps({**rec, "preset": "fmnist-mini"}))
    with pytest.raises(cache_format.CacheError, match="records preset 'fmnist-mini'"):
        read_selection(tmp_path, PRESET)
    copy.write_text(path.read_text()[:50])
    with pytest.raises(cache_format.CacheError, match="not valid JSON"):
        read_selection(tmp_path, PRESET)


def test_a_missing_or_foreign_tuning_run_is_named_not_scored(tuned, tmp_path):
    import shutil

    cache, _ = tuned
    shutil.copytree(tuning_root(cache), tuning_root(tmp_path))
    shutil.copytree(cache / PRESET.name, tmp_path / PRESET.name)
    shared = in_cache(PRESET)
    assert select(PRESET, tmp_path, from_cache=shared) == select(PRESET, cache, from_cache=shared)
    victim = cache_format.run_dir(tuning_root(tmp_path), PRESET.name, "digits", "ce-lr0.05", 1)
    shutil.rmtree(victim)
    with pytest.raises(cache_format.CacheError, match="ce-lr0.05/member-001"):
        select(PRESET, tmp_path, from_cache=shared)
    # a run of another arm copied in its place: its own record says what it is
    shutil.copytree(cache_format.run_dir(tmp_path, PRESET.name, "digits", "ce", 1), victim)
    with pytest.raises(cache_format.CacheError, match="not the tuning run"):
        select(PRESET, tmp_path, from_cache=shared)


def test_dynloss_train_tunes_then_trains_the_chosen_arms_beside_the_presets(tmp_path, capsys):
    from analysis.cli import main

    cache = tmp_path / "cache"
    assert main(["train", "--preset", PRESET.name, "--cache", str(cache), "--no-tune"]) == 0
    assert "no recorded tuning" in capsys.readouterr().err
    grid = json.loads((cache / PRESET.name / "_grid.json").read_text())["runs"]["digits"]
    assert set(grid) == set(PRESET.arms)
    assert main(["train", "--preset", PRESET.name, "--cache", str(cache), "--quiet"]) == 0
    captured = capsys.readouterr()
    choices = read_selection(cache, PRESET)
    assert captured.err == "" and "learning rates chosen on held-out training rows" in captured.out
    assert choices is not None and all(f"-> lr {c.lr:g} ({c.chosen})" in captured.out for c in choices)
    grid = json.loads((cache / PRESET.name / "_grid.json").read_text())["runs"]["digits"]
    assert set(grid) == set(PRESET.arms) | {c.chosen for c in choices}
    assert all(n == PRESET.members for n in grid.values())
