"""The ask/tell contract every black-box strategy follows (Optuna / NNI style).

``ask(n)`` proposes up to ``n`` architectures, ``tell(trials)`` reports what they scored.
A strategy sees only the space and the trials: objectives, budgets and evaluators live
in :mod:`hwnas.strategies.problem`. State is plain JSON (``state()`` / ``from_state``),
seeded, so a saved search resumes to exactly the result of an uninterrupted one.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.registry import Registry
from hwnas.spaces.base import Arch, SearchSpace


@dataclass
class Trial:
    """One evaluated architecture.

    ``reward`` is what single-objective strategies maximise (``None`` for a candidate
    rejected by a hard budget before its accuracy was evaluated); ``objectives`` holds
    the raw figures (``accuracy`` as a fraction, ``latency_ms`` per device).
    """

    arch: Arch
    reward: float | None
    accuracy: float | None = None
    latency_ms: dict[str, float] = field(default_factory=dict)
    feasible: bool = True
    cached: bool = False  # proposed again and served from the cache (not a new query)
    #: what evaluating the accuracy cost (``seconds``; ``epochs`` for training, with ``stopped``
    #: and the extrapolation when a learning curve stopped it early); empty when not evaluated
    cost: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"arch": str(self.arch), "reward": self.reward, "accuracy": self.accuracy,
                "latency_ms": self.latency_ms, "feasible": self.feasible, "cached": self.cached, "cost": self.cost}

    @classmethod
    def from_json(cls, space: SearchSpace, d: dict[str, Any]) -> "Trial":
        return cls(space.parse(d["arch"]), d["reward"], d["accuracy"], dict(d["latency_ms"]), bool(d["feasible"]),
                   bool(d.get("cached", False)), dict(d.get("cost") or {}))

    def copy_cached(self) -> "Trial":
        """This trial as served again from the cache (not a new query; no cost of its own)."""
        kept = {"fidelity": self.fidelity} if self.fidelity < 1 else {}
        return Trial(self.arch, self.reward, self.accuracy, dict(self.latency_ms), self.feasible, cached=True,
                     cost=kept)

    @property
    def fidelity(self) -> float:
        """The fraction of the full evaluation its accuracy comes from (1 unless a schedule
        scored it lower or a pruner stopped it)."""
        return float(self.cost.get("fidelity", 1.0))

    def score(self) -> float:
        return -math.inf if self.reward is None else self.reward


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return rng.bit_generator.state  # plain ints and strings: JSON-safe


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    return rng


class Strategy(ABC):
    """Base class: seeded RNG, the set of architectures already proposed, and JSON state."""

    name: ClassVar[str] = ""
    #: which search runs it: "blackbox" (ask/tell, this class) or "differentiable" (a supernet mode)
    search: ClassVar[str] = "blackbox"
    #: what the conformance suite compares against random search: "reward" or "hypervolume"
    goal: ClassVar[str] = "reward"
    #: the reward it optimises when none is named and there is a budget
    default_reward: ClassVar[str] = "hard"
    #: whether it can propose while earlier proposals are still out for evaluation, each told
    #: as it comes back (asynchronous workers); if not, workers evaluate it in synchronous batches
    asynchronous: ClassVar[bool] = False

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.seen: set[tuple[int, ...]] = set()
        self.told = 0

    # -- the contract ---------------------------------------------------------------
    @abstractmethod
    def ask(self, n: int = 1) -> list[Arch]:
        """Up to ``n`` new architectures (fewer only when the space is exhausted)."""

    def tell(self, trials: Sequence[Trial]) -> None:
        for t in trials:
            self.seen.add(t.arch.indices())
        self.told += len(trials)
        self._tell(list(trials))

    @abstractmethod
    def _tell(self, trials: list[Trial]) -> None: ...

    def params(self) -> dict[str, Any]:
        """Constructor keyword arguments (other than space and seed)."""
        return {}

    def _state(self) -> dict[str, Any]:
        return {}

    def _load(self, state: dict[str, Any]) -> None:
        pass

    # -- shared ---------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"strategy": self.name, "seed": self.seed, "params": self.params(), "rng": rng_state(self.rng),
                "seen": sorted(list(s) for s in self.seen), "told": self.told, "own": self._state()}

    @classmethod
    def from_state(cls, space: SearchSpace, state: dict[str, Any]) -> "Strategy":
        if state.get("strategy") != cls.name:
            raise HwnasError(f"saved state is for strategy {state.get('strategy')!r}, not {cls.name!r}")
        obj = cls(space, seed=int(state["seed"]), **state["params"])
        obj.rng = rng_from_state(state["rng"])
        obj.seen = {tuple(int(i) for i in s) for s in state["seen"]}
        obj.told = int(state["told"])
        obj._load(state["own"])
        return obj

    def random_arch(self) -> Arch:
        sizes = [len(d.choices) for d in self.space.decisions()]
        return self.space.from_indices([int(self.rng.integers(k)) for k in sizes])

    def fresh(self, make: Any, tries: int = 100, fallback: Any = None) -> Arch:
        """``make()`` until it gives an architecture not proposed before; after ``tries``,
        ``fallback()`` the same way (a neighbourhood can be used up), else the last one."""
        arch = make()
        for _ in range(tries):
            if arch.indices() not in self.seen:
                break
            arch = make()
        else:
            if fallback is not None:
                return self.fresh(fallback, tries)
        self.seen.add(arch.indices())
        return arch


STRATEGIES: Registry[type] = Registry("search strategy")
"""Every strategy by name: black-box :class:`Strategy` classes and the differentiable ones
(:mod:`hwnas.strategies.differentiable`); each class says which search runs it (``search``)."""


def register_strategy(cls: type) -> type:
    STRATEGIES.register(cls.name, cls)
    return cls


def strategy_names(search: str | None = None) -> list[str]:
    """Registered strategy names, of one search kind (``blackbox``, ``differentiable``) or all."""
    return [n for n in STRATEGIES if search is None or STRATEGIES[n].search == search]


def accepted(cls: Any, **candidates: Any) -> dict[str, Any]:
    """The given settings (not None) that ``cls``'s constructor takes: a recipe's population
    goes to the strategies that have one, the MnasNet exponent to the reward that has one."""
    takes = inspect.signature(cls).parameters
    return {k: v for k, v in candidates.items() if v is not None and k in takes}


def get_strategy(name: str, space: SearchSpace, seed: int = 0, **params: Any) -> Strategy:
    cls = STRATEGIES[name]
    if not issubclass(cls, Strategy):
        raise HwnasError(f"strategy {name!r} is {cls.search}, not black-box: it trains a supernet, it does not ask "
                         "and tell")
    try:
        return cls(space, seed=seed, **params)
    except TypeError as e:
        raise HwnasError(f"strategy {name!r}: bad parameter ({e})") from None


def strategy_from_state(space: SearchSpace, state: dict[str, Any]) -> Strategy:
    return STRATEGIES[state.get("strategy", "?")].from_state(space, state)
