"""Expected latency of a supernet.

E[lat] = fixed + sum over decisions sum over options p(option) * latency(option), with the
per-option latencies from a predictor's :meth:`~hwnas.predictors.base.Predictor.option_latency`
(a table's LUT-sum, or a fitted predictor's correction applied). The losses that
combine it with the cross-entropy are in :mod:`hwnas.supernet.losses`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.spaces.option_table import OptionTable


class ExpectedLatency(nn.Module):
    def __init__(self, table: OptionTable) -> None:
        super().__init__()
        self.fixed = float(table.fixed)
        for i, opts in enumerate(table.options):
            self.register_buffer(f"opt{i}", torch.tensor(opts, dtype=torch.float64))
        self.n = len(table.options)

    def forward(self, alphas: list[torch.Tensor]) -> torch.Tensor:
        if len(alphas) != self.n:
            raise ValueError(f"expected {self.n} architecture vectors, got {len(alphas)}")
        total = torch.tensor(self.fixed, dtype=torch.float64, device=alphas[0].device)
        for i, a in enumerate(alphas):
            total = total + (F.softmax(a.double(), dim=-1) * getattr(self, f"opt{i}")).sum()
        return total.to(alphas[0].dtype)
