"""Supernets of the two built-in spaces: every decision a :class:`MixedOp`.

A space provides its supernet (``SearchSpace.supernet(partial_channels=K)``): the chain of
mbv2 blocks or the shared cell of NAS-Bench-201 here, any :class:`Supernet` for a
user-defined space. ``partial_channels`` > 1 is PC-DARTS's memory saving (see
:mod:`hwnas.nn.mixed`): decisions whose candidates keep the shape see 1/K of the channels,
the others are recomputed in the backward pass.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from hwnas.errors import HwnasError
from hwnas.ops import build_layer
from hwnas.nn.cell import EDGES, wire_cell
from hwnas.nn.mixed import MixedOp
from hwnas.nn.shared import CandidateView, SharedInvertedResidual


class Supernet(nn.Module):
    """Holds the architecture parameters (one vector per decision) and the mixed ops.

    Paths (ProxylessNAS, GDAS) are drawn from ``sampler``, the supernet's own generator, not
    torch's global one that dropout also draws from: processes training one supernet on
    batches of different sizes then still sample the same paths, and a checkpoint resumes
    the sampling exactly."""

    def __init__(self, space: Any) -> None:
        super().__init__()
        self.space = space
        self.sampler = torch.Generator()
        self.alphas = nn.ParameterList(nn.Parameter(1e-3 * torch.randn(len(d.choices)))
                                       for d in space.decisions())

    def mixed_ops(self) -> list[MixedOp]:
        return [m for m in self.modules() if isinstance(m, MixedOp)]

    def set_mode(self, mode: str, phase: str = "weights", tau: float = 1.0) -> None:
        for m in self.mixed_ops():
            m.mode, m.phase, m.tau, m.generator = mode, phase, tau, self.sampler

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas)

    def weight_parameters(self) -> list[nn.Parameter]:
        ids = {id(a) for a in self.alphas}
        return [p for p in self.parameters() if id(p) not in ids]

    def probabilities(self) -> list[list[float]]:
        return [torch.softmax(a.detach(), -1).tolist() for a in self.alphas]

    def decision_logits(self) -> list[torch.Tensor]:
        """One logit vector per decision of the space, over its options (what the expected
        latency and the budgeted derivation read); here the architecture parameters themselves."""
        return list(self.alphas)

    def derive_indices(self) -> list[int]:
        """The derived architecture's option per decision: the most likely one."""
        return [int(torch.argmax(a)) for a in self.alphas]

    def partial_shape(self, shape: tuple[int, int, int], k: int) -> tuple[int, int, int]:
        """``shape`` (H, W, C) with C / k channels, or an error when k does not divide C."""
        h, w, c = shape
        if k < 1 or c % k:
            raise HwnasError(f"--partial-channels {k} must divide every searched layer's channels ({c} does not "
                             f"divide); use a divisor, e.g. 2 or 4, or 1 for the full mixture")
        return h, w, c // k

    def fix(self, indices: list[int] | None) -> None:
        """Run one candidate per decision (a sub-network with inherited weights), or None."""
        for m in self.mixed_ops():
            m.fixed = None if indices is None else indices[m.decision]


class ChainSupernet(Supernet):
    """The mbv2 chain; each block's candidates share one block's weights (see
    :mod:`hwnas.nn.shared`); ``zero`` is the identity."""

    def __init__(self, space: Any, partial_channels: int = 1) -> None:
        super().__init__(space)
        stem, first, conv1, logits = space.fixed_layers()
        self.head = nn.Sequential(build_layer(stem), build_layer(first))
        self.blocks = nn.ModuleList()
        for i, d in enumerate(space.decisions()):
            options = [space.option_layers(i, o) for o in d.choices]  # [] for the zero option
            specs = [s[0] for s in options if s]
            k = partial_channels if specs[0].input == specs[0].output else 1
            if k > 1:
                shape = self.partial_shape(specs[0].input, k)
                specs = [dataclasses.replace(s, input=shape, output=shape) for s in specs]
            block = SharedInvertedResidual(specs)
            views = iter(specs)
            op = MixedOp([CandidateView(block, next(views)) if s else None for s in options], shared=block,
                         partial=k, checkpointed=partial_channels > 1 and k == 1)
            op.decision = i
            self.blocks.append(op)
        self.tail = nn.Sequential(build_layer(conv1), build_layer(logits))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        for i, block in enumerate(self.blocks):
            x = block(x, self.alphas[i])
        return self.tail(x)


class SuperCell(nn.Module):
    def __init__(self, space: Any, shape: tuple[int, int, int], partial: int = 1) -> None:
        super().__init__()
        self.edges = nn.ModuleList()
        for i in range(len(EDGES)):
            op = MixedOp([build_layer(space.edge_layer(o, shape)) for o in space.decisions()[i].choices],
                         partial=partial)
            op.decision = i
            self.edges.append(op)

    def forward(self, x: torch.Tensor, alphas: nn.ParameterList) -> torch.Tensor:
        return wire_cell(x, lambda k, node: self.edges[k](node, alphas[k]))


class CellSupernet(Supernet):
    """NAS-Bench-201 skeleton; every cell shares the 6 edge decisions (DARTS-style)."""

    def __init__(self, space: Any, partial_channels: int = 1) -> None:
        super().__init__(space)
        plan = space.plan(space.from_choices(["none"] * 6))
        self.body = nn.ModuleList(
            SuperCell(space, self.partial_shape(item[0].input, partial_channels), partial_channels)
            if isinstance(item, list) else build_layer(item) for item in plan)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for m in self.body:
            x = m(x, self.alphas) if isinstance(m, SuperCell) else m(x)
        return x
