"""Training end to end on digits-tiny: cache contents, determinism, resume, submitit, corruption."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest

from training import cache_format as cf
from training.executors import run_status, train_preset
from training.presets import expand, get_preset, with_overrides
from training.run import lr_at

ARMS = ("ce", "dyn-0.8")


@pytest.fixture
def tiny():
    """digits-tiny cut down: 2 members, 2 epochs."""
    return with_overrides(get_preset("digits-tiny"), members=2, epochs=2)


def _array_digests(root, preset):
    out = {}
    for ds, arm, k, p in cf.iter_run_dirs(root, preset):
        rec = cf.read_run(p)
        out[(ds, arm, k)] = {n: hashlib.sha256(a.tobytes()).hexdigest() for n, a in rec.arrays.items()}
    return out


def test_lr_schedule_warms_up_then_decays_to_minimum():
    kw = dict(total_steps=100, warmup_steps=10, lr=0.1, lr_start=1e-5, lr_min=1e-9)
    lrs = [lr_at(s, **kw) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-5) and lrs[10] == pytest.approx(0.1)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx(1e-9)


@pytest.mark.slow
def test_digits_tiny_cli_writes_complete_valid_cache(tmp_path, capsys):
    from analysis.cli import main

    assert main(["train", "--preset", "digits-tiny", "--cache", str(tmp_path), "--quiet"]) == 0
    runs = list(cf.iter_run_dirs(tmp_path, "digits-tiny"))
    p = get_preset("digits-tiny")
    assert len(runs) == p.members * len(p.arms) == 30  # 10 arms: the paper's 6 and the text's dyn-<τ>-lr0.1
    for ds, arm, k, path in runs:
        rec = cf.read_run(path)
        assert rec.arrays["train_logits"].shape == (1347, 10) and rec.arrays["test_logits"].shape == (450, 10)
        assert rec.meta["spec"]["arm"]["name"] == arm and rec.meta["member"] == k
        assert rec.meta["metrics"]["test_accuracy"] > 0.8
        assert np.isfinite(rec.arrays["test_logits"]).all()
    # all arms of a member share its split
    fits = {(arm, k): cf.read_run(path).arrays["fit_index"] for _, arm, k, path in runs}
    for k in range(p.members):
        assert all(np.array_equal(fits[("ce", k)], fits[(a, k)]) for a in p.arms)
    assert not np.array_equal(fits[("ce", 0)], fits[("ce", 1)])
    # idempotent: a second call trains nothing
    assert main(["train", "--preset", "digits-tiny", "--cache", str(tmp_path), "--quiet"]) == 0
    assert "30 already complete, 0 trained" in capsys.readouterr().out


@pytest.mark.slow
def test_two_fresh_runs_give_identical_arrays(tmp_path, tiny):
    for d in ("a", "b"):
        train_preset(tiny, cache_root=tmp_path / d, arms=ARMS, progress=False)
    a, b = _array_digests(tmp_path / "a", tiny.name), _array_digests(tmp_path / "b", tiny.name)
    assert len(a) == 4 and a == b


@pytest.mark.slow
def test_member_result_does_not_depend_on_its_group(tmp_path, tiny):
    """A member trained alone is bit-identical to the same member trained in a vmap group."""
    train_preset(tiny, cache_root=tmp_path / "g", arms=("ce",), progress=False)
    train_preset(with_overrides(tiny, group_size=1), cache_root=tmp_path / "s", arms=("ce",), progress=False)
    for k in range(2):
        a = cf.read_run(cf.run_dir(tmp_path / "g", tiny.name, "digits", "ce", k)).arrays
        b = cf.read_run(cf.run_dir(tmp_path / "s", tiny.name, "digits", "ce", k)).arrays
        for name in a:
            assert np.array_equal(a[name], b[name]), name


@pytest.mark.slow
def test_interrupted_grid_finishes_on_rerun_without_corrupt_runs(tmp_path, tiny):
    train_preset(tiny, cache_root=tmp_path, arms=ARMS, progress=False)
    dirs = {(arm, k): p for _, arm, k, p in cf.iter_run_dirs(tmp_path, tiny.name)}
    before = {key: (p / cf.RUN_FILE).read_text() for key, p in dirs.items()}
    # 1) killed before run.json was written
    (dirs[("ce", 0)] / cf.RUN_FILE).unlink()
    # 2) killed while writing arrays.npz: truncated file, no run.json, a stray temporary file
    d = dirs[("dyn-0.8", 1)]
    (d / cf.RUN_FILE).unlink()
    data = (d / cf.ARRAYS_FILE).read_bytes()
    (d / cf.ARRAYS_FILE).write_bytes(data[: len(data) // 3])
    (d / ".arrays.npz.abc.tmp").write_bytes(b"partial")
    # 3) never started
    import shutil

    shutil.rmtree(dirs[("ce", 1)])
    specs = expand(tiny, arms=ARMS)
    assert sorted(run_status(s, tmp_path) for s in specs) == ["complete", "incomplete", "incomplete", "missing"]

    summary = train_preset(tiny, cache_root=tmp_path, arms=ARMS, progress=False)
    assert (summary.total, summary.skipped, summary.trained) == (4, 1, 3)
    runs = list(cf.iter_run_dirs(tmp_path, tiny.name))
    assert len(runs) == 4 and all(run_status(s, tmp_path) == "complete" for s in specs)
    for _, arm, k, p in runs:
        cf.read_run(p)  # checksum and contract
        assert not list(p.glob(".*.tmp"))
    assert (dirs[("dyn-0.8", 0)] / cf.RUN_FILE).read_text() == before[("dyn-0.8", 0)]  # untouched
    assert train_preset(tiny, cache_root=tmp_path, arms=ARMS, progress=False).trained == 0
    assert train_preset(tiny, cache_root=tmp_path, arms=ARMS, force=True, progress=False).trained == 4


@pytest.mark.slow
def test_changed_settings_make_a_cached_run_stale(tmp_path, tiny):
    train_preset(tiny, cache_root=tmp_path, arms=("ce",), members=1, progress=False)
    other = with_overrides(tiny, epochs=3)
    (spec,) = expand(other, arms=("ce",), members=1)
    assert run_status(spec, tmp_path) == "stale"
    assert train_preset(other, cache_root=tmp_path, arms=("ce",), members=1, progress=False).trained == 1


@pytest.mark.slow
def test_submitit_path_with_local_executor(tmp_path, tiny):
    summary = train_preset(tiny, executor="slurm", cluster="local", cache_root=tmp_path, arms=("dyn-0.8",),
                           members=2, progress=False)
    assert summary.trained == 2 and len(summary.written) == 2
    for _, _, _, p in cf.iter_run_dirs(tmp_path, tiny.name):
        meta = cf.read_run(p).meta
        assert meta["arm"] == "dyn-0.8"
        # the submitter's command line, not submitit's `_submit.py`; no SLURM job around the task
        assert meta["argv"] == sys.argv and meta["executor"] == "slurm" and meta["slurm"] is None
    assert (tmp_path / tiny.name / "_slurm_logs").is_dir()
    (tmp_path / tiny.name / "_slurm_logs" / "ce" / "member-000").mkdir(parents=True)  # never read as a run
    assert {ds for ds, *_ in cf.iter_run_dirs(tmp_path, tiny.name)} == {"digits"}


@pytest.mark.slow
def test_local_worker_processes_match_in_process(tmp_path, tiny):
    train_preset(tiny, cache_root=tmp_path / "a", arms=ARMS, members=1, workers=1, progress=False)
    train_preset(tiny, cache_root=tmp_path / "b", arms=ARMS, members=1, workers=2, progress=False)
    a, b = _array_digests(tmp_path / "a", tiny.name), _array_digests(tmp_path / "b", tiny.name)
    assert len(a) == 2 and a == b  # fixed thread count: identical whatever the number of workers


@pytest.mark.slow
def test_corrupted_truncated_or_mismatched_run_files_are_rejected_naming_the_file(tmp_path, tiny):
    train_preset(tiny, cache_root=tmp_path, arms=("ce",), members=2, progress=False)
    d0 = cf.run_dir(tmp_path, tiny.name, "digits", "ce", 0)
    d1 = cf.run_dir(tmp_path, tiny.name, "digits", "ce", 1)
    arrays = dict(cf.read_run(d0).arrays)
    raw = bytearray((d0 / cf.ARRAYS_FILE).read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (d0 / cf.ARRAYS_FILE).write_bytes(bytes(raw))
    with pytest.raises(cf.CacheError, match=r"member-000/arrays\.npz.*SHA-256"):
        cf.read_run(d0)
    text = (d1 / cf.RUN_FILE).read_text()
    (d1 / cf.RUN_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(cf.CacheError, match=r"member-001/run\.json.*not valid JSON"):
        cf.read_run(d1)
    # swap in arrays of another shape while keeping a matching checksum: the contract check names the file
    arrays["train_labels"] = arrays["train_labels"][:-1]
    np.savez(d0 / cf.ARRAYS_FILE, **arrays)
    import json

    meta = json.loads((d0 / cf.RUN_FILE).read_text())
    meta["arrays_sha256"] = cf.sha256_file(d0 / cf.ARRAYS_FILE)
    (d0 / cf.RUN_FILE).write_text(json.dumps(meta))
    with pytest.raises(cf.CacheError, match=r"member-000/arrays\.npz.*train_labels"):
        cf.read_run(d0)


@pytest.mark.slow
def test_paper_code_path_wrn_with_paper_augmentation_on_fake_cifar(tmp_path):
    """The paper preset's path (one WideResNet per run, per-sample augmentation through a
    DataLoader, batch norm) on a tiny fake CIFAR-10 and a tiny WideResNet, on the CPU."""
    import pickle

    from training.models import ModelSpec

    raw = tmp_path / "raw" / "cifar-10-batches-py"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = list(np.arange(20) % 10)
        with open(raw / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), b"labels": labels}, f)
    p = with_overrides(get_preset("paper"), datasets=("cifar10",), model=ModelSpec("wrn", depth=10, widen=1),
                       epochs=1, batch_size=16, k=5, loader_workers=2, warmup_epochs=0.5)
    summary = train_preset(p, cache_root=tmp_path / "cache", data_root=tmp_path / "raw", members=1,
                           arms=("dyn-0.9",), progress=False)
    assert summary.trained == 1
    (run,) = list(cf.iter_run_dirs(tmp_path / "cache", "paper"))
    rec = cf.read_run(run[3])
    assert rec.arrays["train_logits"].shape == (100, 10) and rec.arrays["test_logits"].shape == (20, 10)
    assert rec.meta["spec"]["settings"]["augmentation"] == "paper"
    # augmentation in DataLoader workers is seeded too: a second fresh run is identical
    train_preset(p, cache_root=tmp_path / "cache2", data_root=tmp_path / "raw", members=1, arms=("dyn-0.9",),
                 progress=False)
    assert _array_digests(tmp_path / "cache", "paper") == _array_digests(tmp_path / "cache2", "paper")


@pytest.mark.slow
@pytest.mark.skipif(
    not __import__("pathlib").Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_fmnist_mini_member_learns_on_real_fashion_mnist(tmp_path):
    p = with_overrides(get_preset("fmnist-mini"), epochs=1, warmup_epochs=0.2)
    summary = train_preset(p, cache_root=tmp_path, members=1, arms=("ce-lr0.01",), workers=1,
                           data_root=tmp_path / "raw", progress=False)
    assert summary.trained == 1
    (run,) = list(cf.iter_run_dirs(tmp_path, "fmnist-mini"))
    rec = cf.read_run(run[3])
    assert rec.arrays["train_logits"].shape == (60_000, 10) and rec.arrays["test_logits"].shape == (10_000, 10)
    assert rec.meta["metrics"]["test_accuracy"] > 0.8


def test_group_must_share_dataset_and_arm(tmp_path, tiny):
    from training.run import train_group

    specs = expand(tiny, arms=("ce", "dyn-0.8"), members=1)
    with pytest.raises(ValueError, match="one \\(preset, dataset, arm\\) per group"):
        train_group(tiny, specs, cache_root=tmp_path)


def test_unknown_augmentation_is_rejected_before_training(tmp_path, tiny):
    from training.run import train_group

    specs = expand(with_overrides(tiny, augmentation="flips"), arms=("ce",), members=1)
    with pytest.raises(ValueError, match=r"Expected preset `augmentation` in .*'flips'"):
        train_group(with_overrides(tiny, augmentation="flips"), specs, cache_root=tmp_path)
    assert not list(tmp_path.iterdir())


def test_unknown_arm_and_preset_are_rejected():
    with pytest.raises(ValueError, match="Unknown arm 'dyn-0.5'"):
        expand(get_preset("digits-tiny"), arms=("dyn-0.5",))
    with pytest.raises(ValueError, match="Unknown preset 'huge'"):
        get_preset("huge")


def test_paper_preset_expands_to_the_full_grid_with_ce_lr001_control():
    p = get_preset("paper")
    specs = expand(p)
    assert len(specs) == 3 * 50 * 6
    assert {s.arm.name: s.arm.lr for s in specs} == {"ce": 0.1, "dyn-0.6": 0.01, "dyn-0.7": 0.01, "dyn-0.8": 0.01,
                                                     "dyn-0.9": 0.01, "ce-lr0.01": 0.01}
    assert (p.epochs, p.batch_size, p.weight_decay, p.warmup_epochs, p.lr_start, p.lr_min) == (50, 1024, 0.05, 5.0,
                                                                                               1e-5, 1e-9)
    assert expand(p, arms=("keras-0.7", "soft-0.7", "poly1", "focal", "ls-0.1", "superloss"), members=1)


@pytest.mark.slow
def test_related_loss_arms_train_in_groups(tmp_path, tiny):
    arms = ("keras-0.7", "soft-0.7", "poly1", "focal", "ls-0.1", "superloss")
    summary = train_preset(with_overrides(tiny, epochs=1), cache_root=tmp_path, arms=arms, progress=False)
    assert summary.trained == 2 * len(arms)
    for _, arm, _, p in cf.iter_run_dirs(tmp_path, tiny.name):
        rec = cf.read_run(p)
        assert not rec.meta["metrics"]["diverged"], arm
        assert rec.meta["metrics"]["test_accuracy"] > 0.3, arm


@pytest.mark.slow
def test_diverged_member_is_recorded_and_others_keep_training(tmp_path, tiny, monkeypatch):
    import torch

    from training import run as run_mod

    real_group_call = run_mod._Group.__call__

    def poisoned(self, x):  # member 1 produces NaN logits from the second training step on
        out = real_group_call(self, x)
        if x.ndim == 5 and getattr(self, "_calls", 0) >= 1:
            out = out.clone()
            out[1] = float("nan")
        self._calls = getattr(self, "_calls", 0) + 1
        return out

    monkeypatch.setattr(run_mod._Group, "__call__", poisoned)
    train_preset(tiny, cache_root=tmp_path, arms=("dyn-0.8",), progress=False)
    m0 = cf.read_run(cf.run_dir(tmp_path, tiny.name, "digits", "dyn-0.8", 0)).meta["metrics"]
    m1 = cf.read_run(cf.run_dir(tmp_path, tiny.name, "digits", "dyn-0.8", 1)).meta["metrics"]
    assert m1["diverged"] and not m0["diverged"]
    assert m0["test_accuracy"] > 0.5
    assert torch.isfinite(torch.tensor(m0["last_epoch_loss"]))


@pytest.mark.slow
@pytest.mark.parametrize("arm", [
    ("dm", "dm", (("beta", 2.0), ("lam", 1.0))),  # weights normalised over the batch
    ("superloss-ema", "superloss", (("lam", 1.0), ("ema", True))),  # threshold from batch means
    None,  # the registered superloss arm (fixed threshold): per-sample terms, evaluated for all at once
])
def test_batch_dependent_losses_do_not_couple_the_members_of_a_group(tmp_path, tiny, monkeypatch, arm):
    """A member trained in a group matches the member trained alone, bit for bit, also for losses
    whose terms depend on the batch (each member keeps its own loss object) and for SuperLoss with
    a fixed threshold (all members' samples in one evaluation)."""
    from training import grid

    if arm is not None:
        monkeypatch.setitem(grid.ARMS, arm[0], grid.Arm(arm[0], arm[1], 0.01, arm[2]))
    name = "superloss" if arm is None else arm[0]
    tiny = with_overrides(tiny, epochs=1)
    train_preset(tiny, cache_root=tmp_path / "g", arms=(name,), progress=False)
    train_preset(with_overrides(tiny, group_size=1), cache_root=tmp_path / "s", arms=(name,), progress=False)
    for k in range(2):
        a = cf.read_run(cf.run_dir(tmp_path / "g", tiny.name, "digits", name, k)).arrays
        b = cf.read_run(cf.run_dir(tmp_path / "s", tiny.name, "digits", name, k)).arrays
        assert np.array_equal(a["test_logits"], b["test_logits"])


def test_superloss_with_a_fixed_threshold_evaluated_on_all_members_is_each_members_own_loss():
    """The group evaluates the superloss arm once on every member's rows (per-sample terms, mean
    per member); each member's value is what its own SuperLoss module gives on its rows."""
    import torch

    from training.losses import SuperLoss, get_loss

    torch.manual_seed(0)
    out, y = torch.randn(3, 50, 10) * 3, torch.randint(0, 10, (3, 50))
    shared = get_loss("superloss", lam=1.0, reduction="none")
    assert not shared.ema
    together = shared(out.flatten(0, 1), y.flatten()).view(3, -1).mean(1)
    alone = torch.stack([SuperLoss(lam=1.0)(out[g], y[g]) for g in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arms", "ce,dyn-0.5"], r"--arms: unknown name 'dyn-0.5'"),
        (["--members", "0"], r"--members: expected >= 1, got 0"),
    ],
)
def test_train_cli_reports_bad_arguments_with_exit_code_2(tmp_path, capsys, args, message):
    import re

    from analysis.cli import main

    assert main(["train", "--preset", "digits-tiny", "--cache", str(tmp_path), "--quiet", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dynloss train: ") and re.search(message, err)
    assert not list(tmp_path.iterdir())


def test_optimiser_is_adamw_with_preset_weight_decay_and_per_step_warmup_then_cosine(tmp_path, tiny, monkeypatch):
    """The lr the optimiser actually uses: warm-up over warmup_epochs x steps/epoch from lr_start to
    the arm's lr, then a cosine down to lr_min at the last step."""
    import math

    import torch

    from training.run import steps_per_epoch

    seen = []

    class Recording(torch.optim.AdamW):
        def step(self, closure=None):
            (g,) = self.param_groups
            seen.append((g["lr"], g["weight_decay"]))
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "AdamW", Recording)
    p = with_overrides(tiny, epochs=3, warmup_epochs=1.0)
    train_preset(p, cache_root=tmp_path, arms=("dyn-0.8",), members=1, progress=False)
    spe = steps_per_epoch(p, 1347)
    assert spe == math.ceil(round(0.8 * 1347 * 49 / 50) / p.batch_size)
    assert len(seen) == 3 * spe and {wd for _, wd in seen} == {0.05}
    lrs = np.array([lr for lr, _ in seen])
    lr, start, lo = 0.01, 1e-5, 1e-9
    np.testing.assert_allclose(lrs[:spe], start + (lr - start) * np.arange(spe) / spe)
    t = np.arange(2 * spe) / (2 * spe - 1)
    np.testing.assert_allclose(lrs[spe:], lo + 0.5 * (lr - lo) * (1 + np.cos(np.pi * t)))
    assert lrs[spe] == pytest.approx(lr) and lrs[-1] == pytest.approx(lo)


@pytest.mark.parametrize("shared_batch", [False, True])
def test_stacked_mlp_group_computes_each_members_own_outputs_and_gradients(shared_batch):
    """The MLP group's batched products (``_StackedLinear``) against each member's own module and
    against the generic vmap path: same logits, same per-member parameter gradients."""
    import copy

    import torch

    from training.models import MLP
    from training.run import _Group

    torch.manual_seed(0)
    models = [MLP(64, (32, 16), 10) for _ in range(3)]  # a group takes its models over: copies go in
    x = torch.randn(40, 1, 8, 8) if shared_batch else torch.randn(3, 40, 1, 8, 8)
    y = torch.randint(0, 10, (3, 40))
    grads = {}
    for stacked in (True, False):
        g = _Group(copy.deepcopy(models), torch.device("cpu"), channels_last=False, vmap=True, stacked=stacked)
        assert (g.linears is not None) == stacked
        out = g(x)
        assert out.shape == (3, 40, 10)
        for k, m in enumerate(models):
            torch.testing.assert_close(out[k], m(x if shared_batch else x[k]), rtol=1e-5, atol=1e-5)
        loss = torch.nn.functional.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none")
        loss.view(3, -1).mean(1).sum().backward()
        grads[stacked] = {k: v.grad.clone() for k, v in g.stacked.items()}
    for name in grads[True]:
        torch.testing.assert_close(grads[True][name], grads[False][name], rtol=1e-5, atol=1e-6)
    # and against autograd on each module alone
    for k, m in enumerate(models):
        m.zero_grad()
        torch.nn.functional.cross_entropy(m(x if shared_batch else x[k]), y[k]).backward()
        for name, p in m.named_parameters():
            torch.testing.assert_close(grads[True][name][k], p.grad, rtol=1e-5, atol=1e-6)


def test_stacked_mlp_group_under_bf16_autocast_matches_each_module_under_autocast():
    """The CUDA path runs the forward pass under bf16 autocast. The group's batched products then
    give each member the float32 gradients its own module gets under the same autocast (checked
    with CPU autocast)."""
    import copy

    import torch

    from training.models import MLP
    from training.run import _Group

    torch.manual_seed(0)
    x, y = torch.randn(2, 32, 1, 8, 8), torch.randint(0, 10, (2, 32))
    models = [MLP(64, (32,), 10) for _ in range(2)]
    g = _Group(copy.deepcopy(models), torch.device("cpu"), channels_last=False, vmap=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = g(x)
    assert out.dtype == torch.bfloat16
    loss = torch.nn.functional.cross_entropy(out.float().flatten(0, 1), y.flatten(), reduction="none")
    loss.view(2, -1).mean(1).sum().backward()
    for k, m in enumerate(models):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            alone = m(x[k])
        torch.testing.assert_close(out[k], alone, rtol=1e-2, atol=1e-2)
        torch.nn.functional.cross_entropy(alone.float(), y[k]).backward()
        for name, p in m.named_parameters():
            assert g.stacked[name].grad.dtype == torch.float32, name
            torch.testing.assert_close(g.stacked[name].grad[k], p.grad, rtol=1e-3, atol=1e-5)
