"""Regularized (aging) evolution, Real et al. 2019.

A population of the most recent ``population`` feasible trials; each child is a one-step
mutation (through the architecture object's neighbours) of the best of ``tournament``
members drawn at random (5 by default); the oldest member dies when a child joins. Candidates a hard
budget rejected never join the population. When the parent's neighbours have all been
proposed already, the child is a fresh random architecture instead.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from hwnas.errors import HwnasError
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies.base import Strategy, Trial, register_strategy


@register_strategy
class RegularizedEvolution(Strategy):
    name = "evolution"

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 20, tournament: int | None = None) -> None:
        super().__init__(space, seed)
        if tournament is None:
            tournament = min(5, population)
        if population < 2 or not 1 <= tournament <= population:
            raise HwnasError("evolution needs population >= 2 and 1 <= tournament <= population")
        self.population_size, self.tournament = population, tournament
        self.population: deque[Trial] = deque()

    def params(self) -> dict[str, Any]:
        return {"population": self.population_size, "tournament": self.tournament}

    def ask(self, n: int = 1) -> list[Arch]:
        out = []
        for _ in range(n):
            if len(self.population) < self.population_size:
                out.append(self.fresh(self.random_arch))
                continue
            picks = self.rng.choice(len(self.population), size=self.tournament, replace=False)
            parent = max((self.population[int(i)] for i in sorted(picks)), key=lambda t: t.score())
            out.append(self.fresh(lambda: self.space.mutate(parent.arch, self.rng), tries=30,
                                  fallback=self.random_arch))
        return out

    def _tell(self, trials: list[Trial]) -> None:
        for t in trials:
            if t.reward is None:
                continue
            self.population.append(t)
            if len(self.population) > self.population_size:
                self.population.popleft()

    def _state(self) -> dict[str, Any]:
        return {"population": [t.to_json() for t in self.population]}

    def _load(self, state: dict[str, Any]) -> None:
        self.population = deque(Trial.from_json(self.space, d) for d in state["population"])
