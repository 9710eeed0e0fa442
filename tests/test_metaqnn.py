"""MetaQNN on known values: the paper's ε schedule, the rank-scaled reward, the Q update."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.spaces import get_space
from hwnas.strategies import Problem, get_reward, get_strategy, run
from hwnas.strategies.metaqnn import MetaQNN, epsilon_at
from hwnas.target import Target
from hwnas.testing.strategies import Synthetic

SPACE = get_space("nb201")


def test_epsilon_follows_the_papers_schedule_scaled_to_the_queries() -> None:
    # Baker et al. table 2: 1,500 models at 1.0, 100 each at 0.9 / 0.8 / 0.7, 150 each at 0.6 ... 0.1
    assert [epsilon_at(d, 2700) for d in (0, 1499, 1500, 1599, 1600, 1800, 1949, 2550, 2699)] == \
        [1.0, 1.0, 0.9, 0.9, 0.8, 0.6, 0.6, 0.1, 0.1]
    assert [epsilon_at(d, 27) for d in (14, 15, 16, 26, 40)] == [1.0, 0.9, 0.8, 0.1, 0.1]


def test_rank_scaling_puts_the_median_reward_at_one_half() -> None:
    agent = MetaQNN(SPACE)
    seen = np.sort([0.93, 0.91, 0.91, 0.0])
    assert [agent._scaled(r, seen) for r in (0.0, 0.91, 0.93)] == [0.0, 0.5, 1.0]
    assert agent._scaled(0.91, np.array([0.91])) == 0.5
    raw = MetaQNN(SPACE, reward_scale="raw")
    assert raw._scaled(0.91, seen) == 0.91


def test_update_runs_backwards_from_the_terminal_reward() -> None:
    agent = MetaQNN(SPACE, learning_rate=0.5, discount=1.0, q_init=0.5)
    idx = [1, 2, 0, 3, 4, 1]
    agent._update(idx, 1.0)
    # last decision: 0.5 + 0.5 (1.0 - 0.5); each one before: 0.5 + 0.5 (max of the next row - 0.5)
    got = [agent.q[i][idx[i - 1] if i else 0, idx[i]] for i in range(5, -1, -1)]
    assert got == pytest.approx([0.75, 0.625, 0.5625, 0.53125, 0.515625, 0.5078125])
    untouched = agent.q[5].copy()
    untouched[4, 1] = 0.5
    assert np.all(untouched == 0.5)


class Crowded(Synthetic):
    """The synthetic objective squeezed into 0.90-0.94, as NAS-Bench-201's accuracies crowd."""

    def evaluate(self, archs):  # type: ignore[no-untyped-def]
        return 0.90 + 0.04 * super().evaluate(archs)


def test_the_greedy_walk_learns_the_best_options_on_crowded_rewards() -> None:
    """After 300 queries the agent's greedy architecture takes far more of the optimum's
    options than chance (1 in 5 per decision): 4.8 of 24 over these four objectives."""
    hits = 0
    for seed in range(4):
        obj = Crowded(seed=seed)
        agent = get_strategy("metaqnn", SPACE, seed=seed, queries=300)
        run(agent, Problem([Target("none", obj)], obj, get_reward("pareto")), 300)
        hits += int((np.array(agent._walk(0.0).indices()) == obj.optimum).sum())
    assert hits >= 12


def test_bad_settings_are_refused() -> None:
    with pytest.raises(HwnasError, match="reward_scale 'log'"):
        MetaQNN(SPACE, reward_scale="log")
    with pytest.raises(HwnasError, match="learning_rate"):
        MetaQNN(SPACE, learning_rate=0.0)
