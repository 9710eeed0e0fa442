"""The conformance suite every black-box strategy passes (``strategies``: the names to check).

On NAS-Bench-201's space with a synthetic additive objective whose optimum is known: the
query budget is respected with each query a new architecture, ``ask`` gives distinct,
valid architectures of the space, a seed fixes the result, a saved search resumes to
exactly the uninterrupted result, the strategy beats random search, and a hard budget
keeps every candidate over it from the accuracy evaluator.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.spaces import get_space
from hwnas.testing import Suite
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies import STRATEGIES, Problem, get_reward, get_strategy, run
from hwnas.strategies.asynchronous import FuturesPool
from hwnas.strategies.pareto import hypervolume_2d
from hwnas.target import Target

SPACE = get_space("nb201")


class Synthetic:
    """An additive objective with a known optimum (1.0) and an additive cost, for any space;
    it records every architecture it evaluates. It is the accuracy evaluator and the latency model."""

    def __init__(self, seed: int = 0, space: SearchSpace = SPACE) -> None:
        rng = np.random.default_rng([seed, 7919])  # a stream apart from the strategies' seeds
        sizes = [len(d.choices) for d in space.decisions()]
        self.space, width = space, max(sizes)
        self.scores = rng.uniform(0.0, 0.8, size=(len(sizes), width))
        self.optimum = np.array([rng.integers(k) for k in sizes])
        self.scores[np.arange(len(sizes)), self.optimum] = 1.0
        self.cost = rng.uniform(1.0, 3.0, size=(len(sizes), width))
        self.calls: list[tuple[int, ...]] = []

    def _take(self, table: np.ndarray, archs: Sequence[Arch]) -> np.ndarray:
        idx = self.space.index_matrix(archs)
        return table[np.arange(idx.shape[1]), idx]

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        self.calls.extend(tuple(r) for r in self.space.index_matrix(archs))
        return self._take(self.scores, archs).mean(axis=1)

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        return self._take(self.cost, archs).sum(axis=1)


class SyntheticFidelity(Synthetic):
    """:class:`Synthetic` with lower fidelities for schedules: at fraction ``f`` of the full
    evaluation an architecture scores ``f`` x its objective + (1 - f) x a decoy additive
    objective, so a low rung ranks candidates only partly right; each evaluation records
    (arch indices, f) and costs ``f`` full evaluations of work."""

    def __init__(self, seed: int = 0, space: SearchSpace = SPACE) -> None:
        super().__init__(seed, space)
        rng = np.random.default_rng([seed, 104729])
        self.decoy = rng.uniform(0.0, 1.0, size=self.scores.shape)
        self.at: list[tuple[tuple[int, ...], float]] = []

    def evaluate_at(self, archs: Sequence[Arch], fraction: float,
                    hints: Sequence[Any] | None = None) -> tuple[np.ndarray, list[dict[str, Any]]]:
        self.at.extend((tuple(int(i) for i in r), fraction) for r in self.space.index_matrix(archs))
        value = fraction * self.evaluate(archs) + (1 - fraction) * self._take(self.decoy, archs).mean(axis=1)
        cost: dict[str, Any] = {"seconds": 0.0, "work": fraction}
        return value, [dict(cost, fidelity=fraction) if fraction < 1 else dict(cost) for _ in archs]


def problem(obj: Synthetic, reward: str = "pareto", budget: float | None = None, pool: Any = None) -> Problem:
    """The synthetic problem; with ``pool`` its accuracy is evaluated there (workers)."""
    return Problem([Target("synthetic", obj, budget)], obj if pool is None else pool, get_reward(reward))


class Crashing(Synthetic):
    """:class:`Synthetic` whose evaluations fail after the first ``after`` (a driver dying)."""

    def __init__(self, after: int, seed: int = 0) -> None:
        super().__init__(seed)
        self.after = after

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        if len(self.calls) >= self.after:
            raise RuntimeError("the driver died")
        return super().evaluate(archs)


def trace(log: Any) -> list[tuple]:
    return [(str(t.arch), t.reward, t.cached) for t in log.trials]


class StrategyConformance(Suite):
    """Subclass with ``strategies = [NAME, ...]`` (registered black-box strategies)."""

    over = ("strategy", "strategies")
    strategies: list[str] = []

    def test_respects_the_query_budget(self, strategy: str) -> None:
        obj = Synthetic()
        _, log = run(get_strategy(strategy, SPACE, seed=1), problem(obj), 30)
        assert log.queries == 30
        assert len(obj.calls) == len(set(obj.calls)) == 30  # each query a new architecture, evaluated once

    def test_ask_gives_distinct_valid_architectures(self, strategy: str) -> None:
        s = get_strategy(strategy, SPACE, seed=3)
        archs = s.ask(8)
        assert 1 <= len(archs) <= 8
        assert len({a.indices() for a in archs}) == len(archs)
        for a in archs:
            assert isinstance(a, Arch) and a.space == SPACE and SPACE.parse(str(a)) == a

    def test_same_seed_same_result(self, strategy: str) -> None:
        a = run(get_strategy(strategy, SPACE, seed=4), problem(Synthetic()), 40)[1]
        b = run(get_strategy(strategy, SPACE, seed=4), problem(Synthetic()), 40)[1]
        c = run(get_strategy(strategy, SPACE, seed=5), problem(Synthetic()), 40)[1]
        assert trace(a) == trace(b)
        assert trace(a) != trace(c)

    def test_save_then_resume_equals_an_uninterrupted_run(self, strategy: str, tmp_path: Any) -> None:
        whole = run(get_strategy(strategy, SPACE, seed=2), problem(Synthetic()), 50)[1]
        state = tmp_path / "state.json"
        first = run(get_strategy(strategy, SPACE, seed=2), problem(Synthetic()), 50, state_file=state,
                    stop_after=23)[1]
        assert first.queries == 23 and json.loads(state.read_text())["queries"] == 23
        # a new process: a fresh strategy object (another seed even) is replaced by the saved one
        resumed = run(get_strategy(strategy, SPACE, seed=99), problem(Synthetic()), 50, state_file=state)[1]
        assert trace(resumed) == trace(whole)

    def test_beats_random_search_on_a_synthetic_objective(self, strategy: str) -> None:
        if strategy == "random":
            pytest.skip("the baseline itself")
        goal = STRATEGIES[strategy].goal
        queries, seeds = 80, range(6)

        def score(name: str, seed: int) -> float:
            _, log = run(get_strategy(name, SPACE, seed=seed), problem(Synthetic(seed=seed)), queries)
            if goal == "hypervolume":
                return hypervolume_2d([(t.latency_ms["synthetic"], t.accuracy) for t in log.front()], 18.0)
            return max(t.reward for t in log.trials)

        mine = np.mean([score(strategy, s) for s in seeds])
        baseline = np.mean([score("random", s) for s in seeds])
        assert mine > baseline, (mine, baseline)

    def test_on_workers_every_query_counts_once(self, strategy: str) -> None:
        obj = Synthetic()
        if hasattr(STRATEGIES[strategy], "monitor"):  # it watches every epoch of a run: one process only
            with pytest.raises(HwnasError, match="workers"):
                run(get_strategy(strategy, SPACE, seed=1), problem(obj, pool=FuturesPool(obj, 3)), 30, batch=3)
            return
        _, log = run(get_strategy(strategy, SPACE, seed=1), problem(obj, pool=FuturesPool(obj, 3)), 30, batch=3)
        assert log.queries == 30 and log.pending == []
        assert len(obj.calls) == len(set(obj.calls)) == 30
        if not STRATEGIES[strategy].asynchronous:  # synchronous batches: the search of one process
            alone = run(get_strategy(strategy, SPACE, seed=1), problem(Synthetic()), 30, batch=3)[1]
            assert trace(log) == trace(alone)

    def test_on_workers_a_dead_driver_loses_no_query(self, strategy: str, tmp_path: Any) -> None:
        if not STRATEGIES[strategy].asynchronous:
            pytest.skip("evaluated in synchronous batches: nothing is out when the state is saved")
        state = tmp_path / "state.json"
        obj: Synthetic = Crashing(after=10)
        with pytest.raises(RuntimeError):
            run(get_strategy(strategy, SPACE, seed=2), problem(obj, pool=FuturesPool(obj, 3)), 30, state_file=state)
        pending = json.loads(state.read_text())["pending"]
        assert pending  # evaluations out when it died
        obj = Synthetic()
        _, log = run(get_strategy(strategy, SPACE, seed=2), problem(obj, pool=FuturesPool(obj, 3)), 30,
                     state_file=state)
        told = [str(t.arch) for t in log.trials if t.accuracy is not None and not t.cached]
        assert log.queries == 30 and len(told) == len(set(told)) == 30
        assert set(pending) <= set(told)

    def test_hard_budget_never_evaluates_an_architecture_over_it(self, strategy: str) -> None:
        obj = Synthetic()
        budget = float(np.quantile(obj.predict(SPACE.sample(2000, seed=0)), 0.3))
        _, log = run(get_strategy(strategy, SPACE, seed=0), problem(obj, "hard", budget), 25)
        assert log.queries == 25
        evaluated = [SPACE.from_indices(c) for c in obj.calls]
        assert np.all(obj.predict(evaluated) <= budget)
        assert any(t.reward is None for t in log.trials)  # some were rejected before evaluation
        assert log.best().feasible and log.best().latency_ms["synthetic"] <= budget
