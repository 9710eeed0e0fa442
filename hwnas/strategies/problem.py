"""What a black-box search is scored on: cheap latency objectives, an accuracy evaluator
and a reward (NNI's "evaluator", kept apart from the strategy).

Latency comes from predictor objects (batched, one per device, each with an optional
budget); a hard budget is checked on them first, so only feasible candidates reach the
accuracy evaluator, which may be expensive (training, a supernet).

A predictor is only as sure as its error: on a phone timed in whole milliseconds a
learned predictor is off by ~12 % on average, so a candidate predicted 5 % over the
budget may well meet it. The hard-budget screen can therefore admit candidates up to
``margin`` over the budget: they are evaluated, but count as feasible only by measurement
(see :mod:`hwnas.strategies.finalists`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.spaces.base import Arch
from hwnas.strategies.base import Trial
from hwnas.strategies.rewards import Reward


class AccuracyEvaluator(Protocol):
    """Accuracy of architectures as fractions in [0, 1], batched."""

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray: ...


@dataclass
class LatencyObjective:
    """One device: ``predict(archs) -> ms`` (a predictor's bound method), its budget, and the
    hard-budget screen: candidates predicted up to (1 + margin) × budget are evaluated."""

    name: str
    predict: Callable[[Sequence[Arch]], np.ndarray]
    budget_ms: float | None = None
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.margin < 0.0:
            raise HwnasError(f"{self.name}: the screen margin must be >= 0 (a fraction of the budget), "
                             f"not {self.margin}")
        if self.margin and self.budget_ms is None:
            raise HwnasError(f"{self.name}: the screen margin is a fraction of a budget; give the budget too")


class Problem:
    def __init__(self, latency: Sequence[LatencyObjective], accuracy: AccuracyEvaluator, reward: Reward) -> None:
        names = [o.name for o in latency]
        if len(set(names)) != len(names):
            raise HwnasError(f"device names must differ: {names}")
        if reward.hard and not any(o.budget_ms is not None for o in latency):
            raise HwnasError("a hard budget needs at least one device with a budget (--budget-ms)")
        if reward.name == "mnas" and any(o.budget_ms is None for o in latency):
            raise HwnasError("the mnas reward needs a budget for every device")
        self.latency, self.accuracy, self.reward = list(latency), accuracy, reward
        self.budgets = {o.name: float(o.budget_ms) for o in latency if o.budget_ms is not None}

    def latencies(self, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
        return {o.name: np.asarray(o.predict(archs), dtype=np.float64) for o in self.latency}

    def feasible(self, lat: dict[str, np.ndarray], screen: bool = False) -> np.ndarray:
        """Which candidates meet every budget by prediction; with ``screen``, which the hard-budget
        screen lets through to the accuracy evaluator (each budget widened by its margin)."""
        ok = np.ones(len(next(iter(lat.values()))), dtype=bool)
        for o in self.latency:
            if o.budget_ms is not None:
                ok &= lat[o.name] <= o.budget_ms * (1.0 + (o.margin if screen else 0.0))
        return ok

    def evaluate(self, archs: Sequence[Arch]) -> list[Trial]:
        if not archs:
            return []
        lat = self.latencies(archs)
        ok = self.feasible(lat)
        passed = self.feasible(lat, screen=True)
        todo = [i for i in range(len(archs)) if passed[i] or not self.reward.hard]
        acc = np.full(len(archs), np.nan)
        if todo:
            acc[todo] = self.accuracy.evaluate([archs[i] for i in todo])
        out = []
        for i, a in enumerate(archs):
            lat_i = {k: float(v[i]) for k, v in lat.items()}
            if np.isnan(acc[i]):
                out.append(Trial(a, None, None, lat_i, False))
                continue
            reward = self.reward(float(acc[i]), lat_i, self.budgets)
            out.append(Trial(a, reward, float(acc[i]), lat_i, bool(ok[i])))
        return out

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reward": self.reward.name, "devices": [o.name for o in self.latency],
                               "budgets_ms": self.budgets}
        margins = {o.name: o.margin for o in self.latency if o.margin}
        if margins:
            out["screen_margin"] = margins
        return out
