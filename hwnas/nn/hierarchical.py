"""The modules of Liu et al.'s hierarchical networks: the primitives, the merge (depthwise
concatenation, then a 1x1 convolution back to C channels), a motif as a DAG of modules, and
the network. Only live edges are built (see :mod:`hwnas.spaces.hierarchical`); every use of
a motif has its own weights."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from hwnas.layers import LayerSpec
from hwnas.ops import build_layer


def _bn_relu(c: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(c), nn.ReLU(inplace=False)]


def conv1x1(spec: LayerSpec) -> nn.Module:
    return nn.Sequential(nn.Conv2d(spec.input[2], spec.output[2], 1, bias=False), *_bn_relu(spec.output[2]))


def dw3x3(spec: LayerSpec) -> nn.Module:
    c = spec.input[2]
    return nn.Sequential(nn.Conv2d(c, c, 3, stride=spec.stride or 1, padding=1, groups=c, bias=False), *_bn_relu(c))


def sep3x3(spec: LayerSpec) -> nn.Module:
    c, c_out = spec.input[2], spec.output[2]
    return nn.Sequential(nn.Conv2d(c, c, 3, stride=spec.stride or 1, padding=1, groups=c, bias=False),
                         nn.Conv2d(c, c_out, 1, bias=False), *_bn_relu(c_out))


class Merge(nn.Module):
    """Depthwise concatenation of a node's inputs, then a 1x1 convolution (BN, ReLU) to C channels."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.conv = conv1x1(spec)

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        return self.conv(x if isinstance(x, torch.Tensor) else torch.cat(list(x), 1))


class Motif(nn.Module):
    """A DAG of ``nodes`` nodes: node 0 is the input, the last the output; ``ops`` holds one
    module per live edge (identity included) keyed by edge, ``merges`` one per node of several
    inputs. With no live edge the motif outputs zeros."""

    def __init__(self, nodes: int, live: Sequence[tuple[int, int]], ops: Sequence[nn.Module],
                 merges: dict[int, nn.Module]) -> None:
        super().__init__()
        self.nodes, self.live = nodes, [tuple(e) for e in live]
        self.ops = nn.ModuleList(ops)
        self.merges = nn.ModuleDict({str(j): m for j, m in merges.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.live:
            return x.mul(0.0)
        values: dict[int, torch.Tensor] = {0: x}
        for j in range(1, self.nodes):
            inputs = [op(values[i]) for (i, t), op in zip(self.live, self.ops) if t == j]
            if len(inputs) == 1:
                values[j] = inputs[0]
            elif inputs:
                values[j] = self.merges[str(j)](inputs)
        return values[self.nodes - 1]


Plan = tuple[int, list[tuple[int, int, Any]], dict[int, LayerSpec]]
"""A motif as the space describes it: its node count, its live edges (source, target, and a
primitive's layer spec, None for the identity, or a level-2 motif's plan) and its merges."""


def motif(plan: Plan) -> Motif:
    nodes, live, merges = plan
    ops = [nn.Identity() if what is None else build_layer(what) if isinstance(what, LayerSpec) else motif(what)
           for _, _, what in live]
    return Motif(nodes, [(i, j) for i, j, _ in live], ops, {j: build_layer(s) for j, s in merges.items()})


class HierarchicalNet(nn.Module):
    """Stem, cell, stride-2 separable conv, cell, another, cell, separable conv, classifier.

    PyTorch's default initialisation: the He (fan-out) one of the chain networks, which
    scales a depthwise kernel by its channel count, trained these deep depthwise-heavy
    motifs to 14-17 % after one epoch on digits, against 39-53 % with the default."""

    def __init__(self, fixed: Sequence[LayerSpec], cells: Sequence[Plan], arch: str = "") -> None:
        super().__init__()
        stem, down1, down2, last, logits = fixed
        self.features = nn.Sequential(build_layer(stem), motif(cells[0]), build_layer(down1), motif(cells[1]),
                                      build_layer(down2), motif(cells[2]), build_layer(last))
        self.classifier = build_layer(logits)
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
