"""Latency-aware losses of differentiable search, by name (``--loss``).

Each combines the cross-entropy with every device's expected latency E[lat] and budget T:

- ``mul#log`` (ProxylessNAS): CE · Π_d α (log E_d / log T_d)^β, with latencies in
  microseconds so that log T > 0 for sub-millisecond budgets too;
- ``add#linear``: CE + Σ_d λ (E_d - T_d) / T_d.

A weight w_d >= 0 per device scales its latency term (the exponent β·w of ``mul#log``, the
λ·w of ``add#linear``); w = 1 is the published loss, w = 0 the cross-entropy alone. A fixed
term keeps pulling towards cheaper operations even far below the budget, which is how a
latency-aware supernet collapses to ``none`` and ``skip_connect``; :class:`BudgetTracker`
instead moves w by dual ascent on the constraint E_d <= T_d, so the term presses only
while the expected latency is over the budget.

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

    def __call__(self, ce: Any, expected_ms: Sequence[Any], budgets_ms: Sequence[float],
                 weights: Sequence[float] | None = None) -> Any:
        out = ce
        for i, (e, b) in enumerate(zip(expected_ms, budgets_ms)):
            if b <= 0:
                raise HwnasError(f"the latency budget must be positive, got {b} ms")
            out = self.apply(out, e, b, 1.0 if weights is None else float(weights[i]))
        return out

    @abstractmethod
    def apply(self, loss: Any, expected_ms: Any, budget_ms: float, weight: float = 1.0) -> Any:
        """The loss with one device's latency term applied, scaled by ``weight``."""


class MulLog(LatencyLoss):
    name = "mul#log"
    help = "ProxylessNAS's CE*0.2*(log E[lat]/log T)^0.3 (default)"

    def apply(self, loss: Any, expected_ms: Any, budget_ms: float, weight: float = 1.0) -> Any:
        t_us = budget_ms * 1000.0
        if t_us <= 1.0:
            raise HwnasError("mul#log needs a budget above 1 microsecond")
        ratio = (expected_ms * 1000.0).clamp(min=1.0 + 1e-6).log() / math.log(t_us)
        return loss * (self.alpha * ratio ** (self.beta * weight))


class AddLinear(LatencyLoss):
    name = "add#linear"
    help = "CE + lambda*(E[lat]-T)/T"

    def apply(self, loss: Any, expected_ms: Any, budget_ms: float, weight: float = 1.0) -> Any:
        return loss + weight * self.lam * (expected_ms - budget_ms) / budget_ms


LOSSES: Registry[type[LatencyLoss]] = Registry("latency loss")
for _cls in (MulLog, AddLinear):
    LOSSES.register(_cls.name, _cls)


def get_loss(name: str, **params: float) -> LatencyLoss:
    return LOSSES[name](**params)


class BudgetTracker:
    """Latency-term weights that track the budgets: after each architecture step,
    w_d <- clip(w_d + rate · (E_d - T_d) / T_d, 0, ceiling). Starting from 0, the term
    switches on only once the expected latency exceeds the budget, and fades once it is
    back under, so the search spends the budget instead of racing below it."""

    def __init__(self, devices: int, rate: float = 0.5, ceiling: float = 20.0) -> None:
        if rate <= 0:
            raise HwnasError(f"the budget-tracking rate must be positive, got {rate}")
        self.rate, self.ceiling = rate, ceiling
        self.weights = [0.0] * devices

    def update(self, expected_ms: Sequence[float], budgets_ms: Sequence[float]) -> None:
        self.weights = [min(max(w + self.rate * (float(e) - b) / b, 0.0), self.ceiling)
                        for w, e, b in zip(self.weights, expected_ms, budgets_ms)]

    def state(self) -> list[float]:
        return list(self.weights)

    def load(self, weights: Sequence[float]) -> None:
        if len(weights) != len(self.weights):
            raise HwnasError(f"the checkpoint tracks {len(weights)} budgets, this search {len(self.weights)}")
        self.weights = [float(w) for w in weights]
