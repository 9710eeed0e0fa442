"""A mixed operation: one searchable decision inside a supernet.

Modes:

- ``darts``: the softmax-weighted sum of every candidate (DARTS);
- ``proxyless``: binary gates (ProxylessNAS). A weight step runs one sampled path; an
  architecture step runs two sampled paths and turns the gates' gradients into the
  architecture parameters' gradient (BinaryConnect): dL/da_i = sum_j dL/dg_j p_j (d_ij - p_i),
  over the two sampled candidates with renormalised probabilities. Memory stays near one
  path;
- ``gdas``: hard Gumbel-softmax with a straight-through gradient (GDAS); only the sampled
  path runs.

Memory (``partial``, PC-DARTS): a candidate built for 1/K of the channels sees the first 1/K
of the input; the rest bypasses it, and the two are concatenated and shuffled (groups K) so
the next op sees other channels. The mixture's activations shrink K-fold. An op whose output
shape differs from its input's cannot bypass, so instead it may be ``checkpointed``: in
``darts`` mode its mixture is recomputed in the backward pass rather than kept.

The architecture parameters live outside (one vector per decision, possibly shared by
several mixed ops, e.g. every NAS-Bench-201 cell), so the op takes them at forward time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class MixedOp(nn.Module):
    def __init__(self, candidates: list[nn.Module | None], shared: nn.Module | None = None, partial: int = 1,
                 checkpointed: bool = False) -> None:
        """``partial``: the candidates are built for 1/partial of the channels (PC-DARTS);
        ``checkpointed``: recompute the darts mixture in the backward pass."""
        super().__init__()
        self.partial, self.checkpointed = partial, checkpointed
        if shared is not None:
            self.shared = shared  # the weights the candidates are views of (hwnas.nn.shared)
        # ``None`` is the zero op of mbv2 (block skipped: identity).
        self.candidates = nn.ModuleList(c if c is not None else nn.Identity() for c in candidates)
        self.mode = "darts"
        self.phase = "weights"  # or "arch"
        self.tau = 1.0
        self.fixed: int | None = None  # set to run one chosen candidate (derived network / eval)
        self.gates: torch.Tensor | None = None
        self.active: list[int] = []
        #: paths are drawn from the supernet's own generator (see :class:`hwnas.nn.supernets.Supernet`)
        self.generator: torch.Generator | None = None
        self.decision = -1  # index of the architecture vector this op reads (set by the supernet)

    def forward(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        if self.partial > 1:
            c = x.shape[1] // self.partial
            return channel_shuffle(torch.cat([self._select(x[:, :c], alpha), x[:, c:]], 1), self.partial)
        if self.checkpointed and self.mode == "darts" and self.fixed is None and torch.is_grad_enabled():
            return checkpoint(self._select, x, alpha, use_reentrant=False)
        return self._select(x, alpha)

    def _select(self, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        if self.fixed is not None:
            return self.candidates[self.fixed](x)
        if self.mode == "darts":
            w = F.softmax(alpha, dim=-1)
            return sum(w[j] * op(x) for j, op in enumerate(self.candidates))
        if self.mode == "gdas":
            # Gumbel-softmax, one-hot in value, softmax in gradient (straight-through)
            noise = -torch.empty(alpha.shape).exponential_(generator=self.generator).log().to(alpha.device)
            soft = F.softmax((alpha + noise) / self.tau, dim=-1)
            j = int(soft.argmax())
            hard = F.one_hot(torch.tensor(j, device=alpha.device), len(alpha)).to(soft.dtype) - soft.detach() + soft
            return hard[j] * self.candidates[j](x)
        probs = F.softmax(alpha.detach(), dim=-1).cpu()
        if self.phase == "weights":
            j = int(torch.multinomial(probs, 1, generator=self.generator))
            self.active = [j]
            return self.candidates[j](x)
        k = min(2, len(self.candidates))
        self.active = [int(i) for i in torch.multinomial(probs, k, replacement=False, generator=self.generator)]
        gates = torch.zeros(len(self.active), device=x.device)
        chosen = int(torch.multinomial(probs[self.active] / probs[self.active].sum(), 1, generator=self.generator))
        gates[chosen] = 1.0
        self.gates = gates.requires_grad_(True)
        return sum(self.gates[n] * self.candidates[j](x) for n, j in enumerate(self.active))

    def binary_alpha_grad(self, alpha: torch.Tensor) -> torch.Tensor:
        """The BinaryConnect gradient of ``alpha`` from the last arch-step backward."""
        grad = torch.zeros_like(alpha)
        if self.gates is None or self.gates.grad is None:
            return grad
        idx = torch.tensor(self.active, device=alpha.device)
        p = F.softmax(alpha.detach()[idx], dim=-1)
        g = self.gates.grad
        for a in range(len(self.active)):
            for b in range(len(self.active)):
                grad[self.active[a]] += g[b] * p[b] * ((1.0 if a == b else 0.0) - p[a])
        self.gates = None
        return grad
