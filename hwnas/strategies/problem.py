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

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.spaces.base import Arch
from hwnas.strategies.base import Trial
from hwnas.strategies.rewards import Reward
from hwnas.target import Target


class AccuracyEvaluator(Protocol):
    """Accuracy of architectures as fractions in [0, 1], batched. An evaluator may also have
    ``evaluate_with_cost(archs) -> (accuracies, [cost per arch])`` (costs beyond seconds, such
    as epochs), ``evaluate_at(archs, fraction, hints)`` (a lower fidelity, for schedules; and
    per-architecture hints from the strategy: a per-epoch ``monitor`` for pruners, the
    ``parent`` for weight inheritance) and ``observe(trials)`` (past trials of a resumed search, for evaluators whose
    decisions depend on them, such as early stopping)."""

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray: ...


def evaluate_with_cost(evaluator: AccuracyEvaluator, archs: Sequence[Arch], fraction: float = 1.0,
                       hints: Sequence[dict[str, Any] | None] | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Accuracies and each one's cost: the evaluator's own account, else the batch's seconds
    shared evenly; ``work`` is in full evaluations (``fraction`` unless the evaluator says).
    Below full fidelity (``fraction`` < 1) the evaluator must have
    ``evaluate_at``, which also takes the ``hints`` (one dict per architecture)."""
    if fraction < 1 or (hints is not None and any(hints)):
        own_at = getattr(evaluator, "evaluate_at", None)
        if own_at is None:
            raise HwnasError(f"the accuracy evaluator {type(evaluator).__name__} has no lower fidelity to schedule "
                             "or prune; schedules and bohb need one that trains: --accuracy train:EPOCHS")
        acc, costs = own_at(archs, fraction, hints)
    elif (own := getattr(evaluator, "evaluate_with_cost", None)) is not None:
        acc, costs = own(archs)
    else:
        t0 = time.perf_counter()
        acc = evaluator.evaluate(archs)
        share = (time.perf_counter() - t0) / max(len(archs), 1)
        costs = [{"seconds": share} for _ in archs]
    costs = [{**c, "work": c.get("work", fraction)} for c in costs]
    return np.asarray(acc, dtype=np.float64), costs


@dataclass(frozen=True)
class Screened:
    """An architecture's predicted latency per device, whether it meets every budget by that
    prediction, and whether its accuracy is to be evaluated (the hard-budget screen let it
    through, or the reward is soft)."""

    arch: Arch
    latency_ms: dict[str, float]
    feasible: bool
    evaluate: bool


class Problem:
    """Targets (each device's latency model, budget and screen margin), an accuracy evaluator
    and a reward."""

    def __init__(self, targets: Sequence[Target], accuracy: AccuracyEvaluator, reward: Reward) -> None:
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise HwnasError(f"device names must differ: {names}")
        if reward.hard and not any(t.budget_ms is not None for t in targets):
            raise HwnasError("a hard budget needs at least one device with a budget (--budget-ms)")
        if reward.name == "mnas" and any(t.budget_ms is None for t in targets):
            raise HwnasError("the mnas reward needs a budget for every device")
        self.targets, self.accuracy, self.reward = list(targets), accuracy, reward
        self.budgets = {t.name: float(t.budget_ms) for t in targets if t.budget_ms is not None}

    def latencies(self, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
        return {t.name: t.predict(archs) for t in self.targets}

    def feasible(self, lat: dict[str, np.ndarray], screen: bool = False) -> np.ndarray:
        """Which candidates meet every budget by prediction; with ``screen``, which the hard-budget
        screen lets through to the accuracy evaluator (each budget widened by its margin)."""
        ok = np.ones(len(next(iter(lat.values()))), dtype=bool)
        for t in self.targets:
            ok &= t.screens(lat[t.name]) if screen else t.meets(lat[t.name])
        return ok

    def screen(self, archs: Sequence[Arch]) -> list[Screened]:
        """Latency by prediction for ``archs``, and which of them the hard budget lets through to
        the accuracy evaluator: the cheap half of :meth:`evaluate`, done where the search runs
        when the accuracy is evaluated elsewhere (on workers)."""
        if not archs:
            return []
        lat = self.latencies(archs)
        ok = self.feasible(lat)
        passed = self.feasible(lat, screen=True)
        return [Screened(a, {k: float(v[i]) for k, v in lat.items()}, bool(ok[i]),
                         bool(passed[i]) or not self.reward.hard) for i, a in enumerate(archs)]

    def trial(self, s: Screened, accuracy: float | None = None, cost: dict[str, Any] | None = None) -> Trial:
        """The trial of a screened architecture, with its accuracy (None: rejected unevaluated)."""
        if accuracy is None or math.isnan(accuracy):
            return Trial(s.arch, None, None, s.latency_ms, False)
        reward = self.reward(float(accuracy), s.latency_ms, self.budgets)
        return Trial(s.arch, reward, float(accuracy), s.latency_ms, s.feasible, cost=dict(cost or {}))

    def evaluate(self, archs: Sequence[Arch], fraction: float = 1.0,
                 hints: dict[tuple[int, ...], dict[str, Any]] | None = None) -> list[Trial]:
        """Trials for ``archs``: latency by prediction, accuracy (at ``fraction`` of the full
        evaluation) for those the hard budget lets through; ``hints`` by arch indices."""
        screened = self.screen(archs)
        todo = [s for s in screened if s.evaluate]
        done: dict[tuple[int, ...], tuple[float, dict[str, Any]]] = {}
        if todo:
            given = None if hints is None else [hints.get(s.arch.indices()) for s in todo]
            acc, costs = evaluate_with_cost(self.accuracy, [s.arch for s in todo], fraction, given)
            done = {s.arch.indices(): (float(a), c) for s, a, c in zip(todo, acc, costs)}
        return [self.trial(s, *done[s.arch.indices()]) if s.arch.indices() in done else self.trial(s)
                for s in screened]

    def observe(self, trials: Sequence[Trial]) -> None:
        """Show a resumed search's past trials to an evaluator that keeps state across them."""
        observe = getattr(self.accuracy, "observe", None)
        if observe is not None:
            observe(trials)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reward": self.reward.name, "devices": [t.name for t in self.targets],
                               "budgets_ms": self.budgets}
        margins = {t.name: t.screen_margin for t in self.targets if t.screen_margin}
        if margins:
            out["screen_margin"] = margins
        return out
