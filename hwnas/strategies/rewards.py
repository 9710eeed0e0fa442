"""Rewards that turn (accuracy, latency per device) into what a strategy maximises.

- ``mnas``: MnasNet's soft constraint, ACC · Π_d (LAT_d / T_d)^w (Tan et al. 2019; w = -0.07
  by default, the same exponent on both sides of the budget);
- ``hard``: accuracy, with candidates over any budget rejected before their accuracy is
  evaluated (so an expensive evaluator never sees them);
- ``pareto``: accuracy as the scalar; the answer is the non-dominated front of accuracy
  against latency, judged by its hypervolume.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Mapping

from hwnas.errors import HwnasError
from hwnas.registry import Registry


class Reward(ABC):
    name: ClassVar[str] = ""
    #: reject candidates over a budget before evaluating their accuracy
    hard: ClassVar[bool] = False

    @abstractmethod
    def __call__(self, accuracy: float, latency_ms: Mapping[str, float], budgets_ms: Mapping[str, float]) -> float:
        ...


class MnasReward(Reward):
    name = "mnas"

    def __init__(self, w: float = -0.07) -> None:
        if w > 0:
            raise HwnasError(f"the MnasNet exponent must be <= 0 (got {w}); -0.07 is the paper's soft constraint")
        self.w = w

    def __call__(self, accuracy: float, latency_ms: Mapping[str, float], budgets_ms: Mapping[str, float]) -> float:
        r = accuracy
        for name, budget in budgets_ms.items():
            r *= (latency_ms[name] / budget) ** self.w
        return float(r)


class HardReward(Reward):
    name = "hard"
    hard = True

    def __call__(self, accuracy: float, latency_ms: Mapping[str, float], budgets_ms: Mapping[str, float]) -> float:
        return float(accuracy)


class ParetoReward(Reward):
    name = "pareto"

    def __call__(self, accuracy: float, latency_ms: Mapping[str, float], budgets_ms: Mapping[str, float]) -> float:
        return float(accuracy)


REWARDS: Registry[type[Reward]] = Registry("reward")
for _cls in (MnasReward, HardReward, ParetoReward):
    REWARDS.register(_cls.name, _cls)


def get_reward(name: str, **params: float) -> Reward:
    return REWARDS[name](**params)


def reward_name(strategy: type, reward: str | None, budgeted: bool) -> str:
    """The reward a search optimises, decided here only: the one named, else the strategy's
    default when there is a budget, else accuracy alone (``pareto``). The front-building
    ``pareto`` reward needs a strategy whose goal is the hypervolume."""
    name = reward or (getattr(strategy, "default_reward", "hard") if budgeted else "pareto")
    REWARDS[name]  # refuses an unknown name, listing the known ones
    if reward == "pareto" and getattr(strategy, "goal", "reward") != "hypervolume":
        raise HwnasError(f"the pareto reward needs --strategy pareto (or another strategy that builds a Pareto "
                         f"front); use --reward hard or mnas with {getattr(strategy, 'name', strategy)}")
    return name
