"""Consistent forgeries: arrays replaced and the checksum recomputed (``run.json`` rewritten with
the new ``arrays_sha256``), so every file is well formed and every checksum matches. The reader
still refuses them: each run must hold the split its preset derives for its member, and every run
of a dataset the same training ids and labels (for ``digits``, its official ones)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic import SyntheticSpec, write_synthetic_preset

from test_faults import FAST, PRESET, cache, trained  # noqa: F401 (fixtures)

from analysis.cli import main
from analysis.core.reader import load_preset
from training import cache_format as cf

def _run(cache: Path, arm: str, member: int) -> Path:
    return cf.run_dir(cache, PRESET, "digits", arm, member)


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path / cf.ARRAYS_FILE, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _forge(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Replace a run's arrays and recompute its checksum, as a careful forger would."""
    meta = cf.read_meta(path)
    cf.write_run(path, arrays, {k: v for k, v in meta.items() if k != "arrays_sha256"})


def _analyze(cache: Path, out: Path) -> int:
    return main(["analyze", "--preset", PRESET, "--cache", str(cache), "--out", str(out), *FAST])


def _one_line(err: str) -> str:
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_the_untouched_cache_passes_the_split_and_label_checks(cache, tmp_path):
    assert _analyze(cache, tmp_path / "out") == 0


def test_members_that_swapped_their_arrays_are_corrupt_and_train_restores_them(cache, tmp_path, capsys):
    before = {k: cf.read_meta(_run(cache, "ce", k))["arrays_sha256"] for k in (0, 1)}
    a, b = _arrays(_run(cache, "ce", 0)), _arrays(_run(cache, "ce", 1))
    _forge(_run(cache, "ce", 0), b)
    _forge(_run(cache, "ce", 1), a)
    for k in (0, 1):  # every checksum matches
        assert cf.sha256_file(_run(cache, "ce", k) / cf.ARRAYS_FILE) == cf.read_meta(_run(cache, "ce", k))["arrays_sha256"]
    assert _analyze(cache, tmp_path / "out") == 2
    err = _one_line(capsys.readouterr().err)
    assert (f"{_run(cache, 'ce', 0)}: corrupt (fit_index is not the split the preset derives for member 0" in err
            and "a forged or foreign run" in err and f"`dynloss train --preset {PRESET} --cache {cache}" in err)
    assert not (tmp_path / "out").exists()
    assert main(["cache", "verify", "--preset", PRESET, "--cache", str(cache)]) == 1
    assert "corrupt digits/ce/member-001 fit_index is not the split" in " ".join(capsys.readouterr().out.split())
    # the hinted repair: train redoes exactly the two runs, bit-identical to the originals
    assert main(["train", "--preset", PRESET, "--cache", str(cache), "--arms", "ce,dyn-0.8", "--quiet"]) == 0
    assert "2 trained (redone: 2 corrupt)" in capsys.readouterr().out
    assert {k: cf.read_meta(_run(cache, "ce", k))["arrays_sha256"] for k in (0, 1)} == before
    assert _analyze(cache, tmp_path / "out") == 0


@pytest.mark.parametrize("name", ["fit_index", "val_index"])
def test_one_row_of_a_split_changed_is_corrupt(cache, tmp_path, capsys, name):
    arrays = _arrays(_run(cache, "dyn-0.8", 2))
    arrays[name] = arrays[name].copy()
    arrays[name][0] = (arrays[name][0] + 1) % arrays["train_ids"].size
    _forge(_run(cache, "dyn-0.8", 2), arrays)
    assert _analyze(cache, tmp_path / "out") == 2
    err = _one_line(capsys.readouterr().err)
    assert f"member-002: corrupt ({name} is not the split the preset derives for member 2 (1 of" in err


def test_train_labels_shifted_in_every_member_of_an_arm_are_refused(cache, tmp_path, capsys):
    for k in range(3):
        arrays = _arrays(_run(cache, "dyn-0.8", k))
        arrays["train_labels"] = (arrays["train_labels"] + 1) % 10
        _forge(_run(cache, "dyn-0.8", k), arrays)
    assert _analyze(cache, tmp_path / "out") == 2
    err = _one_line(capsys.readouterr().err)
    # a shift of every label keeps each class's rows, so the stratified split still holds: the
    # official labels give it away (a dataset without bundled labels: the other arms' labels, below)
    assert f"{_run(cache, 'dyn-0.8', 0)}: `train_ids`/`train_labels` are not those of dataset 'digits'" in err


def test_labels_and_split_forged_together_are_refused_by_the_official_labels(cache, tmp_path, capsys):
    # a careful forger also rewrites the split the shifted labels derive; digits' official labels
    # (bundled with scikit-learn) still give it away
    from training.cache_state import split_settings
    from training.grid import make_run_spec
    from training.presets import PRESETS
    from training.splits import member_split

    preset = PRESETS[PRESET]
    for k in range(3):
        path = _run(cache, "dyn-0.8", k)
        arrays = _arrays(path)
        arrays["train_labels"] = (arrays["train_labels"] + 1) % 10
        p_seed, b_seed, folds, fraction = split_settings(make_run_spec(
            PRESET, "digits", "dyn-0.8", k, root_seed=preset.root_seed, settings=preset.settings()).to_dict())
        split = member_split(arrays["train_labels"], k=folds, member=k, partition_seed=p_seed, bootstrap_seed=b_seed,
                             fit_fraction=fraction)
        arrays["fit_index"], arrays["val_index"] = split.fit_index, split.val_index
        _forge(path, arrays)
    assert _analyze(cache, tmp_path / "out") == 2
    err = _one_line(capsys.readouterr().err)
    assert f"{_run(cache, 'dyn-0.8', 0)}: `train_ids`/`train_labels` are not those of dataset 'digits'" in err
    assert f"delete {_run(cache, 'dyn-0.8', 0)} and rerun `dynloss train --preset {PRESET} --cache {cache}`" in err


def test_arms_of_a_synthetic_dataset_must_share_train_labels(tmp_path):
    # synthetic presets are not registered: no seeds to derive splits from, but the training set
    # must still be one per dataset
    spec = SyntheticSpec(arms=(("ce", 1.6), ("dyn-0.8", 1.8)), n_members=2, n_train=120, n_test=60)
    write_synthetic_preset(tmp_path, "syn", spec)
    load_preset(tmp_path, "syn")  # intact: accepted
    for k in range(2):
        path = cf.run_dir(tmp_path, "syn", "digits", "dyn-0.8", k)
        arrays = _arrays(path)
        arrays["train_labels"] = (arrays["train_labels"] + 1) % spec.n_classes
        _forge(path, arrays)
    with pytest.raises(cf.CacheError, match=r"dyn-0\.8/member-000/arrays\.npz: train ids/labels differ from arm 'ce'"):
        load_preset(tmp_path, "syn")


# --------------------------------------------------- scripts/ensure_data.sh and the apt lock
LOCK_MESSAGE = "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)"


def _ensure_data(tmp_path: Path, apt_status: int, **env: str):
    import os
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(
        f'#!/bin/sh\necho "$@" >> "{tmp_path}/apt-calls"\n'
        + (f'echo "{LOCK_MESSAGE}" >&2\n' if apt_status else "") + f"exit {apt_status}\n")
    (bin_dir / "sudo").write_text('#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')  # when not run as root
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    script = Path(__file__).resolve().parents[1] / "scripts" / "ensure_data.sh"
    environ = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
               "DYNLOSS_FASHION_MNIST_DIR": str(tmp_path / "nowhere"), **env}
    done = subprocess.run(["bash", str(script), "fmnist-mini"], env=environ, capture_output=True, text=True, timeout=60)
    calls = (tmp_path / "apt-calls").read_text().splitlines() if (tmp_path / "apt-calls").exists() else []
    return done, calls


def test_ensure_data_waits_for_the_apt_lock_and_shows_apts_own_message(tmp_path):
    done, calls = _ensure_data(tmp_path, 100, DYNLOSS_APT_LOCK_TIMEOUT="7")
    assert calls and all(c.startswith("-o DPkg::Lock::Timeout=7 ") for c in calls), calls
    assert LOCK_MESSAGE in done.stderr and "could not install dataset-fashion-mnist" in done.stderr


def test_ensure_data_waits_300_s_by_default_and_is_quiet_when_apt_succeeds(tmp_path):
    done, calls = _ensure_data(tmp_path, 0)
    assert done.returncode == 0 and calls == ["-o DPkg::Lock::Timeout=300 install -y -q dataset-fashion-mnist"]
    assert "apt-get:" not in done.stderr


def test_ensure_data_refuses_a_lock_timeout_that_is_not_a_number(tmp_path):
    done, calls = _ensure_data(tmp_path, 0, DYNLOSS_APT_LOCK_TIMEOUT="5m")
    assert done.returncode == 2 and calls == []
    assert _one_line(done.stderr) == ("ensure_data.sh: DYNLOSS_APT_LOCK_TIMEOUT must be a whole number of seconds, "
                                      "got '5m'")
