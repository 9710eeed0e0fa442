"""Choose a search's answer by measuring its best candidates on the device.

A predictor decides which candidates are worth an accuracy evaluation; it cannot decide
whether a network 4 % under the budget by prediction really meets it when the device's
timings are noisier than that (a phone timed in whole milliseconds, predicted to ~12 %).
So the answer is taken the way it will be judged: the evaluated candidates, best reward
first, are measured one by one, and the first that meets every budget by measurement is
the answer. Measuring stops there, so it costs a few device runs, not one per query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from hwnas.errors import HwnasError
from hwnas.spaces.base import Arch
from hwnas.strategies.base import Trial
from hwnas.strategies.loop import SearchLog
from hwnas.target import Target

Measure = Callable[[Arch], Mapping[str, float]]
"""Measured latency (ms) of one architecture on every device with a budget, by device name."""


@dataclass
class Finalist:
    trial: Trial
    measured_ms: dict[str, float]
    meets: bool

    def to_json(self) -> dict[str, Any]:
        return {"arch": str(self.trial.arch), "accuracy": self.trial.accuracy, "reward": self.trial.reward,
                "predicted_ms": dict(self.trial.latency_ms), "measured_ms": self.measured_ms,
                "meets_budget": self.meets}


def candidates(log: SearchLog) -> list[Trial]:
    """Evaluated candidates, best reward first (each architecture once)."""
    done = [t for t in log.evaluated() if t.reward is not None and not t.cached]
    return sorted(done, key=lambda t: t.score(), reverse=True)


def measure_finalists(log: SearchLog, targets: Sequence[Target], measure: Measure,
                      k: int) -> tuple[Trial | None, list[Finalist]]:
    """Measure up to ``k`` of the best candidates; the first meeting every budget is the answer.

    Returns (the answer or None when none of the ``k`` measured meets the budgets, every
    measurement taken, in order).
    """
    if k < 1:
        raise HwnasError("measure at least one finalist (finalists >= 1)")
    budgeted = [t for t in targets if t.budget_ms is not None]
    if not budgeted:
        raise HwnasError("measured finalists need a budget to check them against")
    taken: list[Finalist] = []
    for t in candidates(log)[:k]:
        got = {name: float(v) for name, v in measure(t.arch).items()}
        missing = sorted({t.name for t in budgeted} - set(got))
        if missing:
            raise HwnasError(f"the measurement of {t.arch} lacks device(s) {', '.join(missing)}")
        meets = all(t.meets(got[t.name]) for t in budgeted)
        taken.append(Finalist(t, got, meets))
        if meets:
            return t, taken
    return None, taken
