"""Expected latency of a supernet and the latency-aware losses.

E[lat] = fixed + sum over decisions sum over options p(option) * latency(option), with the
per-option latencies from a predictor's :meth:`~hwnas.predictors.base.Predictor.option_latency`
(a table's LUT-sum, or a fitted predictor's correction applied), several devices
combined by taking each device's term separately.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.errors import HwnasError
from hwnas.predictors.features import OptionTable

LOSSES = ("mul#log", "add#linear")


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


def latency_loss(ce: torch.Tensor, expected_ms: torch.Tensor, budget_ms: float, kind: str = "mul#log",
                 alpha: float = 0.2, beta: float = 0.3, lam: float = 1.0) -> torch.Tensor:
    """ProxylessNAS ``mul#log``: CE * alpha * (log E / log T)^beta, with latencies in
    microseconds so that log T > 0 for sub-millisecond budgets too; ``add#linear``:
    CE + lam * (E - T) / T."""
    if budget_ms <= 0:
        raise HwnasError(f"the latency budget must be positive, got {budget_ms} ms")
    if kind == "mul#log":
        t_us = budget_ms * 1000.0
        if t_us <= 1.0:
            raise HwnasError("mul#log needs a budget above 1 microsecond")
        ratio = torch.log(torch.clamp(expected_ms * 1000.0, min=1.0 + 1e-6)) / math.log(t_us)
        return ce * alpha * ratio ** beta
    if kind == "add#linear":
        return ce + lam * (expected_ms - budget_ms) / budget_ms
    raise HwnasError(f"unknown latency loss {kind!r}; use one of {', '.join(LOSSES)}")
