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
