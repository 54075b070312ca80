"""Model shapes and the WideResNet-16-8 parameter count."""

from __future__ import annotations

import pytest
import torch

from training.models import MLP, SmallCNN, WideResNet, count_parameters


def test_wrn_16_8_has_10_96_million_parameters_for_10_classes():
    assert count_parameters(WideResNet(16, 8, 0.3, in_channels=3, num_classes=10)) == 10_961_370


@pytest.mark.parametrize("in_channels,size,classes", [(1, 28, 10), (3, 32, 100)])
def test_wrn_output_shape_for_grayscale_and_rgb(in_channels, size, classes):
    m = WideResNet(16, 8, 0.3, in_channels=in_channels, num_classes=classes).eval()
    with torch.no_grad():
        out = m(torch.randn(2, in_channels, size, size))
    assert out.shape == (2, classes)


def test_wrn_repeats_grayscale_to_three_channels():
    torch.manual_seed(0)
    m1 = WideResNet(10, 1, 0.0, in_channels=1, num_classes=10).eval()
    m3 = WideResNet(10, 1, 0.0, in_channels=3, num_classes=10).eval()
    m3.load_state_dict(m1.state_dict())
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(m1(x), m3(x.repeat(1, 3, 1, 1)))


def test_small_models_shapes():
    assert MLP(64, (16, 8), 10)(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    assert SmallCNN(1, 28, 4, 16, 10)(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_wrn_16_8_layout_follows_the_paper():
    """Pre-activation blocks BN-ReLU-conv3x3-dropout-BN-ReLU-conv3x3, 1x1 shortcut where the shape
    changes, widths 16/128/256/512, 2 blocks per group, strides 1/2/2, dropout 0.3."""
    from torch import nn

    m = WideResNet(16, 8, 0.3, in_channels=3, num_classes=10).eval()
    blocks = list(m.blocks)
    assert len(blocks) == 6
    assert [b.conv1.out_channels for b in blocks] == [128, 128, 256, 256, 512, 512]
    assert [b.conv1.stride[0] for b in blocks] == [1, 1, 2, 1, 2, 1]
    assert [b.shortcut is not None for b in blocks] == [True, False, True, False, True, False]
    assert all(b.shortcut.kernel_size == (1, 1) for b in blocks if b.shortcut is not None)
    assert all(isinstance(b.drop, nn.Dropout) and b.drop.p == 0.3 for b in blocks)
    assert m.stem.out_channels == 16 and m.fc.in_features == 512
    order = []
    b = blocks[0]
    for name in ("bn1", "conv1", "drop", "bn2", "conv2"):
        getattr(b, name).register_forward_hook(lambda mod, inp, out, name=name: order.append(name))
    with torch.no_grad():
        m(torch.zeros(1, 3, 32, 32))
    assert order == ["bn1", "conv1", "drop", "bn2", "conv2"]
