"""Operations: how a :class:`LayerSpec` becomes a module and what it costs.

Each op registers a builder (spec -> ``nn.Module``) and a counter (spec -> params, MACs).
The built-in builders live in :mod:`hwnas.nn.blocks` and are imported on first use, so
counting and shape arithmetic never import torch.
Multiply-adds (MACs) count the multiply-accumulates of convolutions and fully connected
layers, the convention of the MobileNetV2 paper (300 M for MobileNetV2 at 224 px);
batch norm, activations, pooling and additions are not counted.
A user-defined space registers its own ops with :func:`register_op`.
"""

from __future__ import annotations

import importlib

from dataclasses import dataclass
from typing import Any, Callable

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
    build: Callable[[LayerSpec], Any]
    count: Callable[[LayerSpec], Counts]


OPS: Registry[Op] = Registry("op")


def register_op(name: str, build: Callable[[LayerSpec], Any], count: Callable[[LayerSpec], Counts]) -> Op:
    return OPS.register(name, Op(name, build, count))


def build_layer(spec: LayerSpec) -> Any:
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


def _conv_count(spec: LayerSpec) -> Counts:
    return conv_counts(spec.input[2], spec.output, spec.kernel or 1)


def _inverted_residual_count(spec: LayerSpec) -> Counts:
    c_in, k = spec.input[2], spec.kernel or 3
    hidden = hidden_channels(c_in, spec.expand or 1)
    total = Counts(0, 0)
    if hidden != c_in:
        total += conv_counts(c_in, (spec.input[0], spec.input[1], hidden), 1)
    total += conv_counts(hidden, (spec.output[0], spec.output[1], hidden), k, groups=hidden)
    return total + conv_counts(hidden, spec.output, 1)


def _linear_count(c_in: int, c_out: int) -> Counts:
    return Counts(c_in * c_out + c_out, c_in * c_out)


def _resblock_count(spec: LayerSpec) -> Counts:
    c_in = spec.input[2]
    return (
        conv_counts(c_in, spec.output, 3)
        + conv_counts(spec.output[2], spec.output, 3)
        + conv_counts(c_in, spec.output, 1, bn=False)
    )

def lazy_builder(name: str, module: str = "blocks") -> Callable[[LayerSpec], Any]:
    """A builder of ``hwnas.nn.<module>.<name>`` that imports the module (and torch) only when a
    layer is really built."""

    def build(spec: LayerSpec) -> Any:
        return getattr(importlib.import_module(f"hwnas.nn.{module}"), name)(spec)

    build.__name__ = build.__qualname__ = name
    return build


def _register_builtin() -> None:
    register_op("Conv", lazy_builder("ConvBNAct"), _conv_count)
    register_op("Conv_1", lazy_builder("ConvBNAct"), _conv_count)
    register_op("expanded_conv", lazy_builder("InvertedResidual"), _inverted_residual_count)
    register_op("Logits", lazy_builder("Logits"), lambda s: _linear_count(s.input[2], s.output[2]))
    register_op("conv_bn", lazy_builder("conv_bn"), _conv_count)
    register_op("none", lazy_builder("Zero"), lambda s: Counts(0, 0))
    register_op("skip_connect", lazy_builder("Identity"), lambda s: Counts(0, 0))
    register_op("nor_conv_1x1", lazy_builder("ReLUConvBN"), _conv_count)
    register_op("nor_conv_3x3", lazy_builder("ReLUConvBN"), _conv_count)
    register_op("avg_pool_3x3", lazy_builder("avg_pool_3x3"), lambda s: Counts(0, 0))
    register_op("resblock", lazy_builder("ResBlock"), _resblock_count)
    register_op("lastact_logits", lazy_builder("LastActLogits"),
                lambda s: Counts(2 * s.input[2], 0) + _linear_count(s.input[2], s.output[2]))


_register_builtin()
