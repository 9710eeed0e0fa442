"""The conformance suite every black-box strategy passes, plus rewards and the loop."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.strategies import Problem, get_reward, get_strategy
from hwnas.strategies.base import strategy_names
from hwnas.strategies.pareto import crowding_distance, hypervolume_2d, non_dominated_sort
from hwnas.target import Target
from hwnas.testing.strategies import SPACE, StrategyConformance, Synthetic


class TestEveryStrategy(StrategyConformance):
    """The suite plugin authors run (hwnas.testing), over every registered black-box strategy."""

    strategies = strategy_names("blackbox")


def test_registry_holds_both_kinds_of_strategy() -> None:
    assert set(strategy_names("blackbox")) >= {"random", "evolution", "reinforce", "pareto"}
    assert set(strategy_names("differentiable")) >= {"proxyless", "darts", "gdas"}
    with pytest.raises(HwnasError, match="differentiable, not black-box"):
        get_strategy("darts", SPACE)


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
        Problem([Target("d", obj, None)], obj, get_reward("hard"))
    with pytest.raises(HwnasError, match="must differ"):
        Problem([Target("d", obj, 1.0)] * 2, obj, get_reward("hard"))
    with pytest.raises(HwnasError, match="unknown search strategy"):
        get_strategy("annealing", SPACE)
    with pytest.raises(HwnasError, match="population"):
        get_strategy("evolution", SPACE, population=1)
