"""Operations: how a :class:`LayerSpec` becomes a module and what it costs.

Each op registers a builder (spec -> ``nn.Module``) and a counter (spec -> params, MACs).
Multiply-adds (MACs) count the multiply-accumulates of convolutions and fully connected
layers, the convention of the MobileNetV2 paper (300 M for MobileNetV2 at 224 px);
batch norm, activations, pooling and additions are not counted.
A user-defined space registers its own ops with :func:`register_op`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from hwnas.layers import LayerSpec
from hwnas.registry import Registry


@dataclass(frozen=True)
class Counts:
    params: int
    macs: int

    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.params + other.params, self.macs + other.macs)


@dataclass(frozen=True)
class Op:
    name: str
    build: Callable[[LayerSpec], nn.Module]
    count: Callable[[LayerSpec], Counts]


OPS: Registry[Op] = Registry("op")


def register_op(name: str, build: Callable[[LayerSpec], nn.Module], count: Callable[[LayerSpec], Counts]) -> Op:
    return OPS.register(name, Op(name, build, count))


def build_layer(spec: LayerSpec) -> nn.Module:
    """The layer's module; ``hwnas_recipe`` says how to rebuild it elsewhere (a GPU agent)."""
    module = OPS[spec.op].build(spec)
    module.hwnas_recipe = {"kind": "layer", "key": spec.key}
    return module


def count_layer(spec: LayerSpec) -> Counts:
    return OPS[spec.op].count(spec)


def conv_counts(spec_in: int, out: tuple[int, int, int], k: int, groups: int = 1, bn: bool = True) -> Counts:
    """A k x k convolution without bias producing ``out`` (H, W, C), optionally with BN."""
    h, w, c = out
    weights = c * (spec_in // groups) * k * k
    return Counts(weights + (2 * c if bn else 0), h * w * weights)


def hidden_channels(c_in: int, expand: float) -> int:
    """Width of an inverted-residual block's expansion (torchvision's rounding)."""
    return int(round(c_in * expand))


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


def _conv_count(spec: LayerSpec) -> Counts:
    return conv_counts(spec.input[2], spec.output, spec.kernel or 1)


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


def _inverted_residual_count(spec: LayerSpec) -> Counts:
    c_in, k = spec.input[2], spec.kernel or 3
    hidden = hidden_channels(c_in, spec.expand or 1)
    total = Counts(0, 0)
    if hidden != c_in:
        total += conv_counts(c_in, (spec.input[0], spec.input[1], hidden), 1)
    total += conv_counts(hidden, (spec.output[0], spec.output[1], hidden), k, groups=hidden)
    return total + conv_counts(hidden, spec.output, 1)


class Logits(nn.Module):
    """Global average pooling, dropout (0.2, torchvision's), fully connected classifier."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.2)
        self.linear = nn.Linear(spec.input[2], spec.output[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)))


def _linear_count(c_in: int, c_out: int) -> Counts:
    return Counts(c_in * c_out + c_out, c_in * c_out)


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
    """The ``none`` edge: contributes zeros of the input's shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


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


def _resblock_count(spec: LayerSpec) -> Counts:
    c_in = spec.input[2]
    return (
        conv_counts(c_in, spec.output, 3)
        + conv_counts(spec.output[2], spec.output, 3)
        + conv_counts(c_in, spec.output, 1, bn=False)
    )


class LastActLogits(nn.Module):
    """NAS-Bench-201's head: BN, ReLU, global average pooling, classifier."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.lastact = nn.Sequential(nn.BatchNorm2d(spec.input[2]), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(spec.input[2], spec.output[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(self.lastact(x), 1), 1))


def _register_builtin() -> None:
    register_op("Conv", ConvBNAct, _conv_count)
    register_op("Conv_1", ConvBNAct, _conv_count)
    register_op("expanded_conv", InvertedResidual, _inverted_residual_count)
    register_op("Logits", Logits, lambda s: _linear_count(s.input[2], s.output[2]))
    register_op(
        "conv_bn",
        lambda s: nn.Sequential(*_conv_bn_act(s.input[2], s.output[2], s.kernel or 3, s.stride or 1, act=False)),
        _conv_count,
    )
    register_op("none", lambda s: Zero(), lambda s: Counts(0, 0))
    register_op("skip_connect", lambda s: nn.Identity(), lambda s: Counts(0, 0))
    register_op("nor_conv_1x1", ReLUConvBN, _conv_count)
    register_op("nor_conv_3x3", ReLUConvBN, _conv_count)
    register_op(
        "avg_pool_3x3",
        lambda s: nn.AvgPool2d(3, stride=s.stride or 1, padding=1, count_include_pad=False),
        lambda s: Counts(0, 0),
    )
    register_op("resblock", ResBlock, _resblock_count)
    register_op(
        "lastact_logits",
        LastActLogits,
        lambda s: Counts(2 * s.input[2], 0) + _linear_count(s.input[2], s.output[2]),
    )


_register_builtin()
