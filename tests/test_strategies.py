"""The conformance suite every black-box strategy passes, plus rewards and the loop."""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.spaces import get_space
from hwnas.spaces.base import Arch
from hwnas.strategies import STRATEGIES, LatencyObjective, Problem, get_reward, get_strategy, run
from hwnas.strategies.pareto import crowding_distance, hypervolume_2d, non_dominated_sort

SPACE = get_space("nb201")


class Synthetic:
    """An additive objective with a known optimum: 1.0 at TARGET, lower everywhere else."""

    def __init__(self, seed: int = 0) -> None:
        rng = np.random.default_rng([seed, 7919])  # a stream apart from the strategies' seeds
        self.scores = rng.uniform(0.0, 0.8, size=(6, 5))
        self.target = rng.integers(5, size=6)
        self.scores[np.arange(6), self.target] = 1.0
        self.cost = rng.uniform(1.0, 3.0, size=(6, 5))
        self.calls: list[tuple[int, ...]] = []

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        idx = SPACE.index_matrix(archs)
        self.calls.extend(tuple(r) for r in idx)
        return self.scores[np.arange(6), idx].mean(axis=1)

    def latency(self, archs: Sequence[Arch]) -> np.ndarray:
        idx = SPACE.index_matrix(archs)
        return self.cost[np.arange(6), idx].sum(axis=1)


def problem(obj: Synthetic, reward: str = "pareto", budget: float | None = None) -> Problem:
    return Problem([LatencyObjective("synthetic", obj.latency, budget)], obj, get_reward(reward))


def trace(log) -> list[tuple]:
    return [(str(t.arch), t.reward, t.cached) for t in log.trials]


@pytest.fixture(params=STRATEGIES.names())
def name(request) -> str:
    return request.param


def test_respects_the_query_budget(name: str) -> None:
    obj = Synthetic()
    _, log = run(get_strategy(name, SPACE, seed=1), problem(obj), 30)
    assert log.queries == 30
    assert len(obj.calls) == len(set(obj.calls)) == 30  # each query a new architecture, evaluated once


def test_same_seed_same_result(name: str) -> None:
    a = run(get_strategy(name, SPACE, seed=4), problem(Synthetic()), 40)[1]
    b = run(get_strategy(name, SPACE, seed=4), problem(Synthetic()), 40)[1]
    c = run(get_strategy(name, SPACE, seed=5), problem(Synthetic()), 40)[1]
    assert trace(a) == trace(b)
    assert trace(a) != trace(c)


def test_save_then_resume_equals_an_uninterrupted_run(name: str, tmp_path) -> None:
    whole = run(get_strategy(name, SPACE, seed=2), problem(Synthetic()), 50)[1]
    state = tmp_path / "state.json"
    first = run(get_strategy(name, SPACE, seed=2), problem(Synthetic()), 50, state_file=state, stop_after=23)[1]
    assert first.queries == 23 and json.loads(state.read_text())["queries"] == 23
    # a new process: a fresh strategy object (another seed even) is replaced by the saved one
    resumed = run(get_strategy(name, SPACE, seed=99), problem(Synthetic()), 50, state_file=state)[1]
    assert trace(resumed) == trace(whole)


def test_beats_random_search_on_a_synthetic_objective(name: str) -> None:
    if name == "random":
        pytest.skip("the baseline itself")
    cls = STRATEGIES[name]
    queries, seeds = 80, range(6)

    def score(strategy: str, seed: int) -> float:
        obj = Synthetic(seed=seed)
        _, log = run(get_strategy(strategy, SPACE, seed=seed), problem(obj), queries)
        if cls.goal == "hypervolume":
            front = log.front()
            return hypervolume_2d([(t.latency_ms["synthetic"], t.accuracy) for t in front], 18.0)
        return max(t.reward for t in log.trials)

    mine = np.mean([score(name, s) for s in seeds])
    baseline = np.mean([score("random", s) for s in seeds])
    assert mine > baseline, (mine, baseline)


def test_hard_budget_never_evaluates_an_architecture_over_it(name: str) -> None:
    obj = Synthetic()
    budget = float(np.quantile(obj.latency(SPACE.sample(2000, seed=0)), 0.3))
    prob = Problem([LatencyObjective("synthetic", obj.latency, budget)], obj, get_reward("hard"))
    _, log = run(get_strategy(name, SPACE, seed=0), prob, 25)
    assert log.queries == 25
    evaluated = [SPACE.from_indices(c) for c in obj.calls]
    assert np.all(obj.latency(evaluated) <= budget)
    assert any(t.reward is None for t in log.trials)  # some were rejected before evaluation
    assert log.best().feasible and log.best().latency_ms["synthetic"] <= budget


def test_rewards_on_known_values() -> None:
    mnas = get_reward("mnas")
    assert mnas(0.8, {"d": 20.0}, {"d": 10.0}) == pytest.approx(0.8 * 2 ** -0.07)
    assert mnas(0.8, {"d": 10.0}, {"d": 10.0}) == pytest.approx(0.8)
    assert mnas(0.5, {"a": 5.0, "b": 40.0}, {"a": 10.0, "b": 10.0}) == pytest.approx(0.5 * 0.5 ** -0.07 * 4 ** -0.07)
    assert get_reward("mnas", w=-1.0)(0.9, {"d": 30.0}, {"d": 10.0}) == pytest.approx(0.3)
    assert get_reward("hard")(0.7, {"d": 99.0}, {"d": 1.0}) == 0.7
    with pytest.raises(HwnasError, match="exponent"):
        get_reward("mnas", w=0.5)
    with pytest.raises(HwnasError, match="unknown reward"):
        get_reward("nope")


def test_pareto_helpers_on_known_values() -> None:
    assert hypervolume_2d([(1.0, 0.5), (2.0, 0.8)], ref_latency=4.0) == pytest.approx(1 * 0.5 + 2 * 0.8)
    assert hypervolume_2d([(1.0, 0.5), (2.0, 0.4), (5.0, 0.9)], ref_latency=4.0) == pytest.approx(1.5)
    f = np.array([[0, 3], [1, 1], [2, 2], [3, 0], [3, 3]], dtype=float)
    assert non_dominated_sort(f).tolist() == [0, 0, 1, 0, 2]
    # constrained domination: a feasible point beats an infeasible one whatever its objectives
    assert non_dominated_sort(f, np.array([1, 0, 0, 0, 0])).tolist() == [3, 0, 1, 0, 2]
    d = crowding_distance(np.array([[0, 3], [1, 1], [3, 0]], dtype=float))
    assert np.isinf(d[0]) and np.isinf(d[2]) and d[1] == pytest.approx(1.0 + 1.0)


def test_problem_refuses_inconsistent_settings() -> None:
    obj = Synthetic()
    with pytest.raises(HwnasError, match="hard budget needs"):
        Problem([LatencyObjective("d", obj.latency, None)], obj, get_reward("hard"))
    with pytest.raises(HwnasError, match="must differ"):
        Problem([LatencyObjective("d", obj.latency, 1.0)] * 2, obj, get_reward("hard"))
    with pytest.raises(HwnasError, match="unknown search strategy"):
        get_strategy("annealing", SPACE)
    with pytest.raises(HwnasError, match="population"):
        get_strategy("evolution", SPACE, population=1)
