"""The modules of randomly wired networks (Xie et al. 2019): a node (weighted sum of its
inputs, ReLU, 3x3 separable convolution, BN), a stage that runs its nodes in the DAG's order,
and the network.

A node's layer spec gives its inputs side by side (k x C channels), which is what a latency
table measures; in the network it receives the k tensors as a list and never concatenates.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hwnas.layers import LayerSpec
from hwnas.ops import build_layer


def _inputs(spec: LayerSpec) -> int:
    return 1 if spec.stride == 2 else spec.input[2] // spec.output[2]


class RandWireNode(nn.Module):
    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.k = _inputs(spec)
        c_in, c_out, s = spec.input[2] // self.k, spec.output[2], spec.stride or 1
        # sigmoid(0) = 1/2 on every input at the start, as in the paper's positive weights
        self.weights = nn.Parameter(torch.zeros(self.k)) if self.k > 1 else None
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, 3, stride=s, padding=1, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        if self.weights is not None:
            parts = torch.stack(list(x), 0) if not isinstance(x, torch.Tensor) else \
                x.reshape(x.shape[0], self.k, -1, *x.shape[2:]).transpose(0, 1)
            x = (parts * torch.sigmoid(self.weights).view(-1, 1, 1, 1, 1)).sum(0)
        elif not isinstance(x, torch.Tensor):
            x = x[0]
        return self.op(x)


class StageMean(nn.Module):
    """The stage's output: the unweighted average of its k output nodes."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.k = spec.input[2] // spec.output[2]

    def forward(self, x: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        if isinstance(x, torch.Tensor):
            return x.reshape(x.shape[0], self.k, -1, *x.shape[2:]).mean(1)
        return torch.stack(list(x), 0).mean(0)


class ReLUGapLinear(nn.Module):
    """ReLU, global average pooling, the classifier (after the head's ReLU-1x1 conv-BN)."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.classifier = nn.Linear(spec.input[2], spec.output[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(x), 1), 1))


class RandWireStage(nn.Module):
    """Nodes in index order (a topological order: edges point to higher indices)."""

    def __init__(self, nodes: Sequence[LayerSpec], parents: Sequence[Sequence[int]], sinks: Sequence[int],
                 mean: LayerSpec | None) -> None:
        super().__init__()
        self.nodes = nn.ModuleList(build_layer(spec) for spec in nodes)
        self.parents = [list(p) for p in parents]
        self.sinks = list(sinks)
        self.mean = build_layer(mean) if mean is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs: list[torch.Tensor] = []
        for node, parents in zip(self.nodes, self.parents):
            outs.append(node([outs[p] for p in parents] if parents else [x]))
        if self.mean is None:
            return outs[self.sinks[0]]
        return self.mean([outs[i] for i in self.sinks])


class RandWireNet(nn.Module):
    def __init__(self, stem: Sequence[LayerSpec], stages: list[RandWireStage], head: Sequence[LayerSpec],
                 arch: str = "") -> None:
        super().__init__()
        self.stem = nn.Sequential(*(build_layer(s) for s in stem))
        self.stages = nn.ModuleList(stages)
        self.head = nn.Sequential(*(build_layer(s) for s in head))
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
        return self.head(x)
