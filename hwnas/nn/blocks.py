"""The PyTorch modules behind the registered ops and the two spaces' networks.

Kept apart from :mod:`hwnas.ops` (shapes and counts) so that everything that only reasons
about architectures -- the CLI's space commands, predictors, black-box search on tables --
runs without importing torch; :func:`hwnas.ops.build_layer` loads this module on first use.
"""

from __future__ import annotations

import torch
from torch import nn

from hwnas.layers import LayerSpec
from hwnas.nn.cell import wire_cell
from hwnas.ops import build_layer, hidden_channels


# ---------------------------------------------------------------- mbv2 (MobileNetV2 chain)

def _conv_bn_act(c_in: int, c_out: int, k: int, stride: int, groups: int = 1, act: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return layers


class ConvBNAct(nn.Sequential):
    def __init__(self, spec: LayerSpec) -> None:
        super().__init__(*_conv_bn_act(spec.input[2], spec.output[2], spec.kernel or 1, spec.stride or 1))




class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion (absent when expand is 1), depthwise k x k, 1x1 projection."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        c_in, c_out, k, s = spec.input[2], spec.output[2], spec.kernel or 3, spec.stride or 1
        hidden = hidden_channels(c_in, spec.expand or 1)
        layers: list[nn.Module] = []
        if hidden != c_in:
            layers += _conv_bn_act(c_in, hidden, 1, 1)
        layers += _conv_bn_act(hidden, hidden, k, s, groups=hidden)
        layers += _conv_bn_act(hidden, c_out, 1, 1, act=False)
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = bool(spec.idskip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)




class Logits(nn.Module):
    """Global average pooling, dropout (0.2, torchvision's), fully connected classifier."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.2)
        self.linear = nn.Linear(spec.input[2], spec.output[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)))




# ---------------------------------------------------------------- nb201 (NAS-Bench-201 cell)

class ReLUConvBN(nn.Sequential):
    def __init__(self, spec: LayerSpec) -> None:
        k = spec.kernel or 1
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(spec.input[2], spec.output[2], k, spec.stride or 1, (k - 1) // 2, bias=False),
            nn.BatchNorm2d(spec.output[2]),
        )


class Zero(nn.Module):
    """The ``none`` edge: contributes zeros of the input's shape (subsampled by the stride)."""

    def __init__(self, spec: LayerSpec | None = None) -> None:
        super().__init__()
        self.stride = (spec.stride or 1) if spec is not None else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0) if self.stride == 1 else x[:, :, ::self.stride, ::self.stride].mul(0.0)


class ResBlock(nn.Module):
    """NAS-Bench-201's residual reduction block (stride 2, channels doubled)."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        c_in, c_out = spec.input[2], spec.output[2]
        s = spec.stride or 2
        self.conv_a = ReLUConvBN(LayerSpec("nor_conv_3x3", spec.input, spec.output, kernel=3, stride=s))
        self.conv_b = ReLUConvBN(LayerSpec("nor_conv_3x3", spec.output, spec.output, kernel=3, stride=1))
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))




class LastActLogits(nn.Module):
    """NAS-Bench-201's head: BN, ReLU, global average pooling, classifier."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.lastact = nn.Sequential(nn.BatchNorm2d(spec.input[2]), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(spec.input[2], spec.output[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.lastact(x), 1), 1))

def conv_bn(spec: LayerSpec) -> nn.Module:
    return nn.Sequential(*_conv_bn_act(spec.input[2], spec.output[2], spec.kernel or 3, spec.stride or 1, act=False))


def Identity(spec: LayerSpec) -> nn.Module:  # noqa: N802 - named like the module it builds
    return nn.Identity()


def avg_pool_3x3(spec: LayerSpec) -> nn.Module:
    return nn.AvgPool2d(3, stride=spec.stride or 1, padding=1, count_include_pad=False)


# ---------------------------------------------------------------- whole networks

class ChainNet(nn.Sequential):
    """A chain of layers built from their specs, initialised like torchvision's MobileNetV2."""

    def __init__(self, layers: list[LayerSpec], arch: str = "") -> None:
        super().__init__(*(build_layer(spec) for spec in layers))
        self.arch = arch
        init_like_mobilenetv2(self)


def init_like_mobilenetv2(module: nn.Module) -> None:
    """torchvision's MobileNetV2 initialisation: He (fan-out) convolutions, unit BN, small linear."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


class Cell(nn.Module):
    def __init__(self, edges: list[LayerSpec]) -> None:
        super().__init__()
        self.edges = nn.ModuleList(build_layer(spec) for spec in edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``none`` edges are not computed at all (not multiplied by zero), so an exported
        cell holds only its live operations, and a cell that computes nothing from its input
        outputs a constant the runtime can fold."""
        return wire_cell(x, lambda k, node: None if isinstance(self.edges[k], Zero) else self.edges[k](node),
                         torch.zeros_like)


class CellNet(nn.Sequential):
    def __init__(self, plan: list[LayerSpec | list[LayerSpec]], arch: str = "") -> None:
        super().__init__(*(Cell(item) if isinstance(item, list) else build_layer(item) for item in plan))
        self.arch = arch
