"""Choose a search's answer by measuring its best candidates on the device.

A predictor decides which candidates are worth an accuracy evaluation; it cannot decide
whether a network 4 % under the budget by prediction really meets it when the device's
timings are noisier than that (a phone timed in whole milliseconds, predicted to ~12 %).
So the answer is taken the way it will be judged: the evaluated candidates, best reward
first, are measured one by one, and the first that meets every budget by measurement is
the answer. Measuring stops there, so it costs a few device runs, not one per query.

A predictor with a calibrated error (``std_calibrated``) also says how likely each
candidate is to meet the budget; candidates below ``min_chance`` are not measured. The
screen lets candidates up to a margin over the budget be evaluated, and the most accurate
of them sit at that edge: on a CPU predicted to 3 %, the ten most accurate candidates were
all over the budget in 7 of 10 runs, while skipping those with less than a 20 % chance
answered every run with the first or second measurement.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

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
    chance: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"arch": str(self.trial.arch), "accuracy": self.trial.accuracy, "reward": self.trial.reward,
                "predicted_ms": dict(self.trial.latency_ms), "measured_ms": self.measured_ms,
                "meets_budget": self.meets, "chance": self.chance}


def candidates(log: SearchLog) -> list[Trial]:
    """Evaluated candidates, best reward first (each architecture once)."""
    done = [t for t in log.evaluated() if t.reward is not None and not t.cached]
    return sorted(done, key=lambda t: t.score(), reverse=True)


def chances(trials: Sequence[Trial], targets: Sequence[Target]) -> list[float | None]:
    """Each trial's probability of meeting every budget, by the targets' calibrated latency
    models (None when no target can say)."""
    out: np.ndarray | None = None
    for t in targets:
        c = t.chance([x.arch for x in trials]) if trials else None
        if c is not None:
            out = c if out is None else out * c
    return [None] * len(trials) if out is None else [float(c) for c in out]


def measure_finalists(log: SearchLog, targets: Sequence[Target], measure: Measure, k: int,
                      min_chance: float = 0.0, width: int = 1) -> tuple[Trial | None, list[Finalist]]:
    """Measure up to ``k`` of the best candidates that have at least ``min_chance`` of meeting
    every budget (when the latency models can say); the first meeting every budget by
    measurement is the answer.

    ``width`` > 1 (a pool of devices) measures the candidates in waves of ``width`` at once,
    best first, and stops after the first wave in which one meets the budgets: the answer is
    the one measuring one by one would give, for at most ``width - 1`` more measurements.

    Returns (the answer or None when none of the ``k`` measured meets the budgets, every
    measurement taken, in order).
    """
    if width < 1:
        raise HwnasError(f"measure at least one finalist at a time (width >= 1), not {width}")
    if k < 1:
        raise HwnasError("measure at least one finalist (finalists >= 1)")
    budgeted = [t for t in targets if t.budget_ms is not None]
    if not budgeted:
        raise HwnasError("measured finalists need a budget to check them against")
    if not 0.0 <= min_chance < 1.0:
        raise HwnasError(f"the least chance of meeting the budget to measure a finalist is in [0, 1), not {min_chance}")
    pool = candidates(log)
    likely = [(t, c) for t, c in zip(pool, chances(pool, budgeted)) if c is None or c >= min_chance]
    taken: list[Finalist] = []
    likely = likely[:k]
    with ThreadPoolExecutor(width, thread_name_prefix="finalist") as workers:
        for start in range(0, len(likely), width):
            wave = likely[start:start + width]
            results = list(workers.map(lambda tc: measure(tc[0].arch), wave)) if width > 1 else \
                [measure(wave[0][0].arch)]
            for (trial, chance), result in zip(wave, results):
                got = {name: float(v) for name, v in result.items()}
                missing = sorted({t.name for t in budgeted} - set(got))
                if missing:
                    raise HwnasError(f"the measurement of {trial.arch} lacks device(s) {', '.join(missing)}")
                taken.append(Finalist(trial, got, all(t.meets(got[t.name]) for t in budgeted), chance))
            answer = next((f.trial for f in taken[start:] if f.meets), None)
            if answer is not None:
                return answer, taken
    return None, taken
