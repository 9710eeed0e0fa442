"""The modules of the DARTS / NASNet cell space: its operations, exactly as the published DARTS
code builds them (``cnn/operations.py``), and the network of normal and reduction cells.

Every layer is built from its :class:`~hwnas.layers.LayerSpec` through the op registry, so
the module, the parameter counts and the latency-table keys come from the same specs.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from hwnas.layers import LayerSpec
from hwnas.ops import build_layer


def sep_conv(spec: LayerSpec) -> nn.Module:
    """Two rounds of ReLU, depthwise k x k, pointwise 1x1, BN; the first carries the stride."""
    c, k, s = spec.input[2], spec.kernel or 3, spec.stride or 1
    p = (k - 1) // 2
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, k, stride=s, padding=p, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c),
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, k, stride=1, padding=p, groups=c, bias=False),
        nn.Conv2d(c, spec.output[2], 1, bias=False),
        nn.BatchNorm2d(spec.output[2]),
    )


def dil_conv(spec: LayerSpec) -> nn.Module:
    """ReLU, depthwise k x k at dilation 2, pointwise 1x1, BN."""
    c, k, s = spec.input[2], spec.kernel or 3, spec.stride or 1
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, k, stride=s, padding=k - 1, dilation=2, groups=c, bias=False),
        nn.Conv2d(c, spec.output[2], 1, bias=False),
        nn.BatchNorm2d(spec.output[2]),
    )


def conv_7x1_1x7(spec: LayerSpec) -> nn.Module:
    c, s = spec.input[2], spec.stride or 1
    return nn.Sequential(
        nn.ReLU(inplace=False),
        nn.Conv2d(c, c, (1, 7), stride=(1, s), padding=(0, 3), bias=False),
        nn.Conv2d(c, spec.output[2], (7, 1), stride=(s, 1), padding=(3, 0), bias=False),
        nn.BatchNorm2d(spec.output[2]),
    )


def max_pool(spec: LayerSpec) -> nn.Module:
    return nn.MaxPool2d(spec.kernel or 3, stride=spec.stride or 1, padding=((spec.kernel or 3) - 1) // 2)


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing the odd pixels: two strided 1x1 convolutions, one
    shifted by a pixel, concatenated (the stride-2 ``skip_connect`` and the preprocessing of a
    cell after a reduction)."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        c_in, c_out = spec.input[2], spec.output[2]
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class GapLinear(nn.Module):
    """Global average pooling and the classifier."""

    def __init__(self, spec: LayerSpec) -> None:
        super().__init__()
        self.classifier = nn.Linear(spec.input[2], spec.output[2])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary classifier for an 8 x 8 input (training only; not exported)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False),
            nn.Conv2d(channels, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
            nn.BatchNorm2d(768),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class DartsCell(nn.Module):
    """Two preprocessed inputs; each node sums two operations on earlier states; the output
    concatenates the ``concat`` states."""

    def __init__(self, pre: Sequence[LayerSpec], edges: Sequence[LayerSpec], inputs: Sequence[int],
                 concat: Sequence[int]) -> None:
        super().__init__()
        self.preprocess0, self.preprocess1 = build_layer(pre[0]), build_layer(pre[1])
        self.ops = nn.ModuleList(build_layer(spec) for spec in edges)
        self.inputs, self.concat = list(inputs), list(concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(len(self.ops) // 2):
            states.append(self.ops[2 * k](states[self.inputs[2 * k]])
                          + self.ops[2 * k + 1](states[self.inputs[2 * k + 1]]))
        return torch.cat([states[i] for i in self.concat], dim=1)


class DartsNet(nn.Module):
    """Stem, cells (each reads the two before it), classifier; with ``aux_at`` an auxiliary
    head after that cell, whose logits a training loop may read from ``aux_logits``."""

    def __init__(self, stem: LayerSpec, cells: list[DartsCell], head: LayerSpec, arch: str = "",
                 aux_at: int | None = None, aux_channels: int = 0, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = build_layer(stem)
        self.cells = nn.ModuleList(cells)
        self.head = build_layer(head)
        self.aux_at = aux_at
        self.auxiliary_head = AuxiliaryHead(aux_channels, num_classes) if aux_at is not None else None
        self.aux_logits: torch.Tensor | None = None
        self.arch = arch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1)
            if i == self.aux_at and self.auxiliary_head is not None and self.training:
                self.aux_logits = self.auxiliary_head(s1)
        return self.head(s1)
