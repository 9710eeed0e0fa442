"""The DARTS supernet of the ``darts`` space: both cells, every node reading every earlier state
through a mixed operation, with PC-DARTS's edge normalisation (Xu et al. 2020).

Architecture parameters, per cell type: one vector over the operations for each (node, earlier
state) edge (``alphas``, DARTS's), and one vector over its earlier states for each node
(``betas``). A node is ``sum_s softmax(beta)_s * mixed_s(state_s)``; every normal cell shares
the normal cell's parameters, every reduction cell the reduction cell's.

The space's decisions are two ``op~state`` picks per node. Their distribution, each pick
``softmax(beta)_s * softmax(alpha_s)_op``, is what the expected-latency loss, the budgeted
derivation and the logs see (:meth:`DartsSupernet.decision_logits`). The answer is DARTS's
derivation: per node the two distinct states with the strongest edges (the best non-``none``
operation's weight, times the edge's beta) and each one's best non-``none`` operation.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import HwnasError
from hwnas.nn.mixed import MixedOp
from hwnas.nn.supernets import Supernet
from hwnas.ops import build_layer

CELL_TYPES = ("normal", "reduce")


class SuperCell(nn.Module):
    def __init__(self, pre: Sequence[Any], edges: dict[tuple[int, int], list[Any]], nodes: int, offset: int,
                 reduction: bool) -> None:
        """``edges[(node, state)]``: the layer specs of every operation on that edge; ``offset``:
        the index of this cell type's first edge vector in the supernet's ``alphas``."""
        super().__init__()
        self.reduction = reduction
        self.preprocess0, self.preprocess1 = build_layer(pre[0]), build_layer(pre[1])
        self.nodes = nodes
        self.edges = nn.ModuleDict()
        for n, ((node, state), specs) in enumerate(sorted(edges.items())):
            op = MixedOp([build_layer(s) for s in specs])
            op.decision = offset + n
            self.edges[f"{node}_{state}"] = op
        #: the sub-network to run instead of the mixture: per node, its (state, operation) pairs
        self.fixed: list[list[tuple[int, int]]] | None = None

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, alphas: Sequence[torch.Tensor],
                betas: Sequence[torch.Tensor]) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for k in range(self.nodes):
            if self.fixed is not None:
                states.append(sum(self.edges[f"{k}_{s}"].candidates[op](states[s]) for s, op in self.fixed[k]))
                continue
            w = F.softmax(betas[k], dim=-1)
            states.append(sum(w[s] * self.edges[f"{k}_{s}"](states[s], alphas[self.edges[f"{k}_{s}"].decision])
                              for s in range(k + 2)))
        return torch.cat(states[2:], dim=1)


class DartsSupernet(Supernet):
    def __init__(self, space: Any) -> None:
        nn.Module.__init__(self)
        self.space = space
        self.sampler = torch.Generator()
        plan = space._skeleton
        nodes = space.nodes
        n_edges = sum(k + 2 for k in range(nodes))
        self.alphas = nn.ParameterList(nn.Parameter(1e-3 * torch.randn(len(space.ops))) for _ in range(2 * n_edges))
        self.betas = nn.ParameterList(nn.Parameter(1e-3 * torch.randn(k + 2)) for _ in CELL_TYPES
                                      for k in range(nodes))
        self.stem = build_layer(plan["stem"])
        self.cells = nn.ModuleList()
        for cell in plan["cells"]:
            t = int(cell["reduction"])
            self.cells.append(SuperCell(cell["pre"], space.mixed_edges(cell), nodes, t * n_edges, bool(t)))
        self.head = build_layer(plan["head"])
        self.n_edges = n_edges

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas) + list(self.betas)

    def weight_parameters(self) -> list[nn.Parameter]:
        ids = {id(a) for a in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        nodes = self.space.nodes
        for cell in self.cells:
            first = nodes if cell.reduction else 0
            s0, s1 = s1, cell(s0, s1, self.alphas, self.betas[first:first + nodes])
        return self.head(s1)

    # -- the space's decisions --------------------------------------------------------
    def _edge(self, cell_type: int, node: int, state: int) -> torch.Tensor:
        return self.alphas[cell_type * self.n_edges + sum(k + 2 for k in range(node)) + state]

    def decision_logits(self) -> list[torch.Tensor]:
        """Per decision (two per node), log of softmax(beta)_s * softmax(alpha_s)_op over its
        ``op~state`` options, in the space's option order (state-major)."""
        out = []
        nodes = self.space.nodes
        for t in range(len(CELL_TYPES)):
            for k in range(nodes):
                beta = F.log_softmax(self.betas[t * nodes + k], dim=-1)
                logits = torch.cat([beta[s] + F.log_softmax(self._edge(t, k, s), dim=-1) for s in range(k + 2)])
                out += [logits, logits]
        return out

    def probabilities(self) -> list[list[float]]:
        return [torch.softmax(lg.detach(), -1).tolist() for lg in self.decision_logits()]

    def picks(self) -> list[list[tuple[int, int]]]:
        """DARTS's derivation, per cell type and node: the two strongest distinct states, each with
        its best operation other than ``none``, strongest first."""
        ops, nodes = self.space.ops, self.space.nodes
        usable = [j for j, op in enumerate(ops) if op != "none"]
        out = []
        for t in range(len(CELL_TYPES)):
            for k in range(nodes):
                beta = F.softmax(self.betas[t * nodes + k].detach(), -1)
                best = []
                for s in range(k + 2):
                    w = F.softmax(self._edge(t, k, s).detach(), -1)
                    j = max(usable, key=lambda i: float(w[i]))
                    best.append((float(beta[s] * w[j]), s, j))
                out.append([(s, j) for _, s, j in sorted(best, key=lambda b: -b[0])[:2]])
        return out

    def derive_indices(self) -> list[int]:
        n_ops = len(self.space.ops)
        return [s * n_ops + j for pair in self.picks() for s, j in pair]

    def fix(self, indices: list[int] | None) -> None:
        nodes, n_ops = self.space.nodes, len(self.space.ops)
        for cell in self.cells:
            if indices is None:
                cell.fixed = None
                continue
            base = 2 * nodes if cell.reduction else 0
            cell.fixed = [[divmod(indices[base + 2 * k + j], n_ops) for j in range(2)] for k in range(nodes)]


def darts_supernet(space: Any, partial_channels: int = 1) -> DartsSupernet:
    if partial_channels > 1:
        raise HwnasError("--partial-channels is not offered on the darts space's supernet yet; search it with the "
                         "full mixture (--partial-channels 1)")
    space.fixed_layers()  # refuses a preset whose latency is not additive over decisions
    return DartsSupernet(space)
