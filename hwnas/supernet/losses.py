"""Latency-aware losses of differentiable search, by name (``--loss``).

Each combines the cross-entropy with every device's expected latency E[lat] and budget T:

- ``mul#log`` (ProxylessNAS): CE · Π_d α (log E_d / log T_d)^β, with latencies in
  microseconds so that log T > 0 for sub-millisecond budgets too;
- ``add#linear``: CE + Σ_d λ (E_d - T_d) / T_d.

Importing this module imports no torch (the CLI lists the names); the losses work on
whatever tensors they are given.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

from hwnas.errors import HwnasError
from hwnas.registry import Registry


class LatencyLoss(ABC):
    name: ClassVar[str] = ""
    help: ClassVar[str] = ""

    def __init__(self, alpha: float = 0.2, beta: float = 0.3, lam: float = 1.0) -> None:
        self.alpha, self.beta, self.lam = alpha, beta, lam

    def __call__(self, ce: Any, expected_ms: Sequence[Any], budgets_ms: Sequence[float]) -> Any:
        out = ce
        for e, b in zip(expected_ms, budgets_ms):
            if b <= 0:
                raise HwnasError(f"the latency budget must be positive, got {b} ms")
            out = self.apply(out, e, b)
        return out

    @abstractmethod
    def apply(self, loss: Any, expected_ms: Any, budget_ms: float) -> Any:
        """The loss with one device's latency term applied."""


class MulLog(LatencyLoss):
    name = "mul#log"
    help = "ProxylessNAS's CE*0.2*(log E[lat]/log T)^0.3 (default)"

    def apply(self, loss: Any, expected_ms: Any, budget_ms: float) -> Any:
        t_us = budget_ms * 1000.0
        if t_us <= 1.0:
            raise HwnasError("mul#log needs a budget above 1 microsecond")
        ratio = (expected_ms * 1000.0).clamp(min=1.0 + 1e-6).log() / math.log(t_us)
        return loss * (self.alpha * ratio ** self.beta)


class AddLinear(LatencyLoss):
    name = "add#linear"
    help = "CE + lambda*(E[lat]-T)/T"

    def apply(self, loss: Any, expected_ms: Any, budget_ms: float) -> Any:
        return loss + self.lam * (expected_ms - budget_ms) / budget_ms


LOSSES: Registry[type[LatencyLoss]] = Registry("latency loss")
for _cls in (MulLog, AddLinear):
    LOSSES.register(_cls.name, _cls)


def get_loss(name: str, **params: float) -> LatencyLoss:
    return LOSSES[name](**params)
