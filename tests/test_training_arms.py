"""The arm registry (`training/arms.py`) is the one answer to "what is this arm": every arm a
preset or a table names is registered, builds its loss, and carries the learning rate and τ the
paper's protocol gives it."""

from __future__ import annotations

import pytest
import torch

from training.arms import ARM_ORDER, ARMS, CONTROL_ARM, DEFAULT_ARMS, REFERENCE_ARM, RELATED_ARMS, get_arm
from training.losses import LOSSES, get_loss
from training.presets import PRESETS


def test_every_arm_a_preset_or_a_table_names_is_registered():
    named = {*DEFAULT_ARMS, *RELATED_ARMS, *ARM_ORDER, REFERENCE_ARM, CONTROL_ARM}
    named |= {a for p in PRESETS.values() for a in p.arms}
    assert named - set(ARMS) == set()


@pytest.mark.parametrize("name", sorted(ARMS))
def test_every_arm_builds_a_finite_loss_from_its_registered_parameters(name):
    arm = get_arm(name)
    assert arm.loss in LOSSES and arm.name == name
    loss = get_loss(arm.loss, **arm.loss_kwargs())
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]], requires_grad=True)
    value = loss(logits, torch.tensor([0, 2]))
    assert value.ndim == 0 and torch.isfinite(value)


def test_learning_rates_follow_the_code_unless_the_arm_is_tagged_with_its_own():
    assert get_arm(REFERENCE_ARM).lr == 0.1
    for name, arm in ARMS.items():
        if arm.lr_tag:
            assert arm.lr_tag == f"lr{arm.lr:g}" and name.endswith(arm.lr_tag)
        elif name != REFERENCE_ARM:
            assert arm.lr == 0.01, name


def test_every_grid_learning_rate_of_a_tuned_arm_is_a_registered_arm_of_the_same_loss():
    from training.arms import LR_GRID, at_lr
    from training.presets import all_presets

    for preset in all_presets().values():
        for base in preset.tune:
            arms = [get_arm(at_lr(base, lr)) for lr in LR_GRID]
            assert [a.lr for a in arms] == list(LR_GRID)
            assert {(a.loss, a.loss_params) for a in arms} == {(get_arm(base).loss, get_arm(base).loss_params)}


def test_the_text_protocol_trains_every_dynamic_arm_at_lr_0_1_outside_the_dyn_family():
    from training.arms import TEXT_PROTOCOL_ARMS

    dyn = [get_arm(a) for a in TEXT_PROTOCOL_ARMS if a != REFERENCE_ARM]
    assert sorted(a.threshold for a in dyn) == [0.6, 0.7, 0.8, 0.9]
    assert all(a.lr == 0.1 and a.family == "dyn-lr0.1" for a in dyn)


def test_only_dynamic_arms_have_a_threshold_and_it_is_the_one_in_their_name():
    for name, arm in ARMS.items():
        if arm.loss == "dynamic":
            assert arm.threshold == float(name.removesuffix(f"-{arm.lr_tag}").rsplit("-", 1)[1])
        else:
            assert arm.threshold is None


def test_an_unknown_arm_is_refused_in_one_line_naming_it():
    with pytest.raises(ValueError, match=r"Unknown arm 'dyn-0.65'") as err:
        get_arm("dyn-0.65")
    assert "\n" not in str(err.value)
