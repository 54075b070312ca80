"""Base-learner models: WideResNet-16-8 for the paper preset, small models for the CPU presets.

The small models hold no batch norm and no dropout, so a group of members can be trained at once
with ``torch.func`` (stacked parameters, ``functional_call`` under ``vmap``).
"""

from __future__ import annotations

import torch
from torch import nn

from training.model_spec import ModelSpec


class _PreActBlock(nn.Module):
    """BN → ReLU → conv3×3 (stride) → dropout → BN → ReLU → conv3×3, plus a (1×1 conv) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.shortcut = (
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False) if (stride != 1 or c_in != c_out) else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = torch.relu(self.bn1(x))
        # the shortcut branches from the pre-activated input when it changes shape
        short = self.shortcut(o) if self.shortcut is not None else x
        o = self.conv1(o)
        o = self.conv2(torch.relu(self.bn2(self.drop(o))))
        return o + short


class WideResNet(nn.Module):
    """Pre-activation WideResNet-``depth``-``widen`` (Zagoruyko & Komodakis, 2016).

    Widths 16, 16·widen, 32·widen, 64·widen; ``(depth - 4) / 6`` blocks per group; strides
    1/2/2; BN → ReLU → global average pool → linear. WRN-16-8 has 2 blocks per group and widths
    16/128/256/512 (10,961,370 parameters for 10 classes).

    With ``in_channels=1`` a grayscale input is repeated to 3 channels before the stem, as the
    paper's code does for Fashion-MNIST, so the network is the same as for RGB inputs.

    >>> m = WideResNet(16, 8, 0.3, in_channels=1, num_classes=10)
    >>> m(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, depth: int = 16, widen: int = 8, dropout: float = 0.3, in_channels: int = 3,
                 num_classes: int = 10):
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"Expected `depth` = 6n + 4, got {depth}")
        if in_channels not in (1, 3):
            raise ValueError(f"Expected `in_channels` 1 (grayscale, repeated) or 3, got {in_channels}")
        self.in_channels = in_channels
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.stem = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        blocks = []
        c = widths[0]
        for g, stride in zip(range(3), (1, 2, 2)):
            for b in range(n):
                blocks.append(_PreActBlock(c, widths[g + 1], stride if b == 0 else 1, dropout))
                c = widths[g + 1]
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(c)
        self.fc = nn.Linear(c, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)
        x = self.blocks(self.stem(x))
        x = torch.relu(self.bn(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class MLP(nn.Module):
    """Flatten → [Linear → ReLU] × len(hidden) → Linear. No normalisation layers (vmap-friendly).

    >>> MLP(64, (32,), 10)(torch.zeros(4, 1, 8, 8)).shape
    torch.Size([4, 10])
    """

    def __init__(self, in_features: int, hidden: tuple[int, ...], num_classes: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        d = in_features
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        layers.append(nn.Linear(d, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmallCNN(nn.Module):
    """conv3×3(c) → ReLU → maxpool2 → conv3×3(2c) → ReLU → maxpool2 → Linear(hidden) → ReLU → Linear.

    No normalisation layers (vmap-friendly).

    >>> SmallCNN(1, 28, 8, 64, 10)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_channels: int, image_size: int, channels: int, hidden: int, num_classes: int):
        super().__init__()
        s = image_size // 4
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(2 * channels * s * s, hidden), nn.ReLU(), nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build_model(spec: ModelSpec, *, in_channels: int, image_size: tuple[int, int], num_classes: int) -> nn.Module:
    """Instantiate a model (parameters drawn from torch's current global generator)."""
    if spec.kind == "wrn":
        return WideResNet(spec.depth, spec.widen, spec.dropout, in_channels=in_channels, num_classes=num_classes)
    if spec.kind == "mlp":
        return MLP(in_channels * image_size[0] * image_size[1], tuple(spec.hidden), num_classes)
    if spec.kind == "cnn":
        return SmallCNN(in_channels, image_size[0], spec.channels, spec.hidden[0], num_classes)
    raise ValueError(f"Expected model kind in ('wrn', 'mlp', 'cnn'), got {spec.kind!r}")


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
