"""Resizing the inputs (``Preset.resize``, ``dynloss train --resize``): the paper preset upsamples
to 128×128 as the authors' base-learner scripts pass ``--resize=128``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training import cache_format as cf
from training.datasets import resize_images
from training.executors import train_preset
from training.grid import make_run_spec
from training.models import WideResNet
from training.presets import expand, get_preset, with_overrides, with_resize

# spec hash of the first run of each preset, computed with the code before `resize` existed
# (main at 22de004): a preset without resize keeps its hashes, so its cached runs stay complete
HASHES_BEFORE_RESIZE = {
    "digits-tiny": "8669281ad00107682a992d3fee34cd32a5d5f55ff0fd9d76426e119c87b72d97",
    "fmnist-mini": "ea423973b8b5138d262783af85dcc22ea9a195d1fb29e557f1825cfb05891895",
}


def test_constant_uint8_image_stays_constant_at_128():
    x = torch.full((3, 1, 28, 28), 173, dtype=torch.uint8)
    out = resize_images(x, 128)
    assert out.shape == (3, 1, 128, 128) and out.dtype == torch.uint8
    assert bool((out == 173).all())


def test_constant_float_batch_with_member_dimension_stays_constant():
    x = torch.full((2, 4, 3, 32, 32), -0.75)
    out = resize_images(x, 128)
    assert out.shape == (2, 4, 3, 128, 128) and out.dtype == torch.float32
    torch.testing.assert_close(out, torch.full_like(out, -0.75))


def test_uint8_resize_matches_torchvision_resize_as_the_authors_apply_it():
    """torchvision's tensor Resize of 2022 interpolated uint8 images in float and rounded; today's
    torchvision has a uint8 kernel of its own, which rounds differently by at most 1."""
    from torchvision.transforms.v2 import functional as F

    x = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (5, 3, 32, 32), dtype=np.uint8))
    ours = resize_images(x, 128)
    float_then_round = torch.stack([F.resize(img.float(), [128], antialias=False) for img in x]).round()
    assert torch.equal(ours, float_then_round.to(torch.uint8))
    uint8_kernel = torch.stack([F.resize(img, [128], antialias=False) for img in x])
    assert int((ours.int() - uint8_kernel.int()).abs().max()) <= 1


def test_linear_ramp_is_interpolated_between_its_end_values():
    x = torch.arange(32, dtype=torch.float32).expand(1, 1, 32, 32)
    row = resize_images(x, 128)[0, 0, 0]
    assert float(row.min()) >= 0.0 and float(row.max()) <= 31.0
    assert bool((row[1:] >= row[:-1]).all())  # still increasing
    # bilinear upsampling by 4 with align_corners=False: output pixel j samples (j + 0.5) / 4 - 0.5
    torch.testing.assert_close(row[4:-4], (torch.arange(4, 124) + 0.5) / 4 - 0.5)


def test_resize_to_the_same_size_returns_the_input():
    x = torch.zeros(2, 1, 28, 28)
    assert resize_images(x, 28) is x


@pytest.mark.parametrize("size", [0, -3, 1.5, True])
def test_resize_refuses_a_size_that_is_not_a_positive_integer(size):
    with pytest.raises(ValueError, match=r"`size` an integer >= 1"):
        resize_images(torch.zeros(1, 1, 8, 8), size)


def test_paper_preset_resizes_to_128_and_records_it():
    p = get_preset("paper")
    assert p.resize == 128
    assert dict(p.settings())["resize"] == 128
    assert expand(p)[0].to_dict()["settings"]["resize"] == 128


@pytest.mark.parametrize("name", sorted(HASHES_BEFORE_RESIZE))
def test_presets_without_resize_keep_their_settings_and_spec_hashes(name):
    p = get_preset(name)
    assert p.resize is None and "resize" not in dict(p.settings())
    first = expand(p)[0]
    assert first.spec_hash() == HASHES_BEFORE_RESIZE[name]


def test_native_size_override_drops_resize_from_the_settings():
    paper = get_preset("paper")
    native = with_resize(paper, 0)
    assert native.resize is None and "resize" not in dict(native.settings())
    spec = lambda p: make_run_spec(p.name, "cifar10", "ce", 0, root_seed=p.root_seed, settings=p.settings())
    assert spec(native).spec_hash() != spec(paper).spec_hash()  # runs at 32 px are stale to `paper`
    assert with_resize(paper, 64).resize == 64


@pytest.mark.parametrize("bad", [-1, 2.0, "128"])
def test_with_resize_refuses_what_is_not_a_non_negative_integer(bad):
    with pytest.raises(ValueError, match=r"`pixels` an integer >= 0"):
        with_resize(get_preset("paper"), bad)


def test_preset_refuses_a_non_positive_resize():
    with pytest.raises(ValueError, match=r"preset `resize` None \(native size\) or an integer >= 1"):
        with_overrides(get_preset("digits-tiny"), resize=0)


@pytest.mark.parametrize(
    "value, message",
    [("-1", r"--resize: expected an integer >= 0 pixels \(0 = native size\), got -1"),
     ("big", r"--resize: expected an integer, got 'big'")],
)
def test_train_cli_refuses_a_bad_resize_in_one_line(tmp_path, capsys, value, message):
    import re

    from analysis.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "--preset", "digits-tiny", "--cache", str(tmp_path), "--quiet", "--resize", value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(message, err)
    assert not list(tmp_path.iterdir())


def test_train_cli_help_names_the_resize_option(capsys):
    from analysis.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--resize PIXELS" in out and "0 = the" in out


def test_tiny_wideresnet_runs_on_128_pixel_inputs_on_cpu():
    torch.manual_seed(0)
    m = WideResNet(10, 1, 0.0, in_channels=1, num_classes=10).eval()
    x = resize_images(torch.rand(2, 1, 28, 28), 128)
    with torch.no_grad():
        out = m(x)
    assert out.shape == (2, 10) and bool(torch.isfinite(out).all())


def test_train_cli_resize_trains_and_records_the_size(tmp_path):
    """digits-tiny (8×8) upsampled to 16×16 by `dynloss train --resize 16`: the MLP sees 256
    inputs, the run records resize 16 and is stale to the plain preset."""
    from analysis.cli import main
    from training.cache_state import scan

    args = ["train", "--preset", "digits-tiny", "--cache", str(tmp_path), "--quiet", "--members", "1",
            "--arms", "ce", "--resize", "16"]
    assert main(args) == 0
    (run,) = list(cf.iter_run_dirs(tmp_path, "digits-tiny"))
    rec = cf.read_run(run[3])
    assert rec.meta["spec"]["settings"]["resize"] == 16
    assert rec.arrays["test_logits"].shape == (450, 10) and np.isfinite(rec.arrays["test_logits"]).all()
    assert rec.meta["metrics"]["test_accuracy"] > 0.5
    assert [r.state for r in scan(tmp_path, "digits-tiny").runs if r.member == 0 and r.arm == "ce"] == ["stale"]


def test_resized_training_is_reproducible(tmp_path):
    p = with_resize(with_overrides(get_preset("digits-tiny"), epochs=1), 12)
    digests = []
    for i in range(2):
        train_preset(p, cache_root=tmp_path / str(i), members=1, arms=("ce",), progress=False)
        (run,) = list(cf.iter_run_dirs(tmp_path / str(i), "digits-tiny"))
        digests.append(cf.read_run(run[3]).arrays["test_logits"].tobytes())
    assert digests[0] == digests[1]
