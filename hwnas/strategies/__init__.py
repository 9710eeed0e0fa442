"""Search strategies, in one registry: black-box ones behind one ask/tell interface (and the
loop that runs them), and the differentiable ones a supernet trains with.

Black-box strategies (``random``, ``evolution``, ``reinforce``, ``ppo``, ``metaqnn``, ``gp``,
``bananas``, ``pnas``, ``tpe``, ``bohb``, ``pareto``) see only the space and the trials;
:class:`~hwnas.strategies.problem.Problem` holds the objectives, and a schedule
(:mod:`~hwnas.strategies.schedules`) the fidelities they are scored at.
"""

from hwnas.strategies import (  # noqa: F401  (registration)
    bananas, bayesopt, differentiable, evolution, metaqnn, pareto, pnas, ppo, random_search, reinforce, tpe)
from hwnas.strategies.base import STRATEGIES, Strategy, Trial, get_strategy, strategy_from_state
from hwnas.strategies.loop import SearchLog, run
from hwnas.strategies.problem import Problem
from hwnas.strategies.rewards import REWARDS, get_reward

__all__ = ["STRATEGIES", "Strategy", "Trial", "get_strategy", "strategy_from_state", "SearchLog", "run",
           "Problem", "REWARDS", "get_reward"]
