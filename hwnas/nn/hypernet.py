"""SMASH (Brock et al. 2018) for the NAS-Bench-201 cell network: one hypernetwork generates
the weights of every cell convolution from the architecture's encoding.

The network's fixed layers (stem, reduction blocks, head) are ordinary shared parameters.
Each cell edge's convolution weight comes from an MLP whose input is the architecture (the
one-hot operation of each of the 6 edges), the cell's position and the edge's position;
one linear head per stage width writes a 3x3 kernel (a 1x1 convolution takes its centre).
Batch norm in the cells has no parameters and always normalises with the batch's own
statistics (a generated network has no running statistics of its own), as do the fixed
layers here: a candidate is scored on large validation batches in training mode, without
gradients. Training samples one random architecture per batch, so the hypernetwork learns
to serve them all; the accuracy of a candidate with generated weights ranks it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.nn.cell import wire_cell
from hwnas.ops import build_layer

_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


class CellHyperNet(nn.Module):
    def __init__(self, space: Any, hidden: int = 64) -> None:
        super().__init__()
        if space.name != "nb201":
            raise ValueError(f"the hypernetwork generates nb201 cells, not {space.name}")
        self.space, self.hidden = space, hidden
        self.ops = list(space.decisions()[0].choices)
        plan = space.plan(space.from_choices(["none"] * len(space.decisions())))
        self.fixed = nn.ModuleList(build_layer(item) for item in plan if not isinstance(item, list))
        self.layout: list[Any] = []  # per plan item: ("fixed", i) or ("cell", cell index, channels)
        widths: list[int] = []
        cells = 0
        for item in plan:
            if isinstance(item, list):
                channels = item[0].input[2]
                self.layout.append(("cell", cells, channels))
                widths.append(channels)
                cells += 1
            else:
                self.layout.append(("fixed", len([x for x in self.layout if x[0] == "fixed"])))
        self.cells, self.edges = cells, len(space.decisions())
        self.widths = sorted(set(widths))
        features = self.edges * len(self.ops) + cells + self.edges
        self.body = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.heads = nn.ModuleDict({str(c): nn.Linear(hidden, c * c * 9) for c in self.widths})

    def encode(self, arch: Any) -> torch.Tensor:
        """One row per (cell, edge): the architecture's one-hot operations, the cell and the edge."""
        ops = torch.zeros(self.edges * len(self.ops))
        for e, op in enumerate(arch.choices):
            ops[e * len(self.ops) + self.ops.index(op)] = 1.0
        rows = []
        for c in range(self.cells):
            for e in range(self.edges):
                where = torch.zeros(self.cells + self.edges)
                where[c] = where[self.cells + e] = 1.0
                rows.append(torch.cat([ops, where]))
        return torch.stack(rows)

    def kernels(self, arch: Any) -> dict[tuple[int, int], torch.Tensor]:
        """The generated 3x3 kernel of every (cell, edge) whose operation is a convolution."""
        device = next(self.parameters()).device
        h = self.body(self.encode(arch).to(device))
        out = {}
        for kind in self.layout:
            if kind[0] != "cell":
                continue
            _, c, channels = kind
            for e, op in enumerate(arch.choices):
                if op in _KERNEL:
                    w = self.heads[str(channels)](h[c * self.edges + e]).view(channels, channels, 3, 3)
                    out[(c, e)] = w / (channels * 9) ** 0.5
        return out

    def forward(self, x: torch.Tensor, arch: Any) -> torch.Tensor:
        live = self.space.live(arch)
        kernels = self.kernels(live)

        def edge(c: int, e: int, node: torch.Tensor) -> torch.Tensor | None:
            op = live.choices[e]
            if op == "none":
                return None
            if op == "skip_connect":
                return node
            if op == "avg_pool_3x3":
                return F.avg_pool2d(node, 3, 1, 1, count_include_pad=False)
            w = kernels[(c, e)]
            if _KERNEL[op] == 1:
                w = w[:, :, 1:2, 1:2]
            y = F.conv2d(F.relu(node), w, padding=_KERNEL[op] // 2)
            return F.batch_norm(y, None, None, training=True)

        for kind in self.layout:
            if kind[0] == "fixed":
                x = self.fixed[kind[1]](x)
            else:
                x = wire_cell(x, lambda e, node, c=kind[1]: edge(c, e, node), torch.zeros_like)
        return x
