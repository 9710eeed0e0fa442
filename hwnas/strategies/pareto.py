"""Multi-objective search: NSGA-II (Deb et al. 2002) over accuracy and latency.

Objectives are minimised: ``-accuracy`` and the latency on every device. Under a hard
budget, constrained domination applies (a feasible trial beats an infeasible one; two
infeasible ones compare by how far over budget they are). Offspring come from binary
tournaments on (rank, crowding distance), uniform crossover and a one-step mutation.
The non-dominated front of everything evaluated is the search's answer.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies.base import Strategy, Trial, register_strategy


def objective_matrix(trials: Sequence[Trial]) -> np.ndarray:
    """Rows of minimised objectives: -accuracy, then each device's latency (sorted by name)."""
    rows = []
    for t in trials:
        acc = -(t.accuracy if t.accuracy is not None else 0.0)
        rows.append([acc] + [t.latency_ms[k] for k in sorted(t.latency_ms)])
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1)


def non_dominated_sort(f: np.ndarray, violation: np.ndarray | None = None) -> np.ndarray:
    """Front rank of each row (0 = non-dominated), with constrained domination."""
    n = len(f)
    v = np.zeros(n) if violation is None else np.asarray(violation, dtype=np.float64)
    le = np.all(f[:, None, :] <= f[None, :, :], axis=2)
    lt = np.any(f[:, None, :] < f[None, :, :], axis=2)
    dom = le & lt
    feas = v <= 0
    dom = np.where(feas[:, None] & ~feas[None, :], True, dom)
    dom = np.where(~feas[:, None] & feas[None, :], False, dom)
    both_bad = ~feas[:, None] & ~feas[None, :]
    dom = np.where(both_bad, v[:, None] < v[None, :], dom)
    rank = np.full(n, -1)
    count = dom.sum(axis=0)  # how many dominate each
    current = np.flatnonzero(count == 0)
    r = 0
    while len(current):
        rank[current] = r
        count = count - dom[current].sum(axis=0)
        count[rank >= 0] = -1
        current = np.flatnonzero(count == 0)
        r += 1
    return rank


def crowding_distance(f: np.ndarray) -> np.ndarray:
    n, m = f.shape
    d = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(f[:, j], kind="stable")
        span = f[order[-1], j] - f[order[0], j]
        d[order[0]] = d[order[-1]] = np.inf
        if span > 0:
            d[order[1:-1]] += (f[order[2:], j] - f[order[:-2], j]) / span
    return d


def pareto_front(trials: Sequence[Trial]) -> list[Trial]:
    """The non-dominated evaluated trials (feasible ones when any is), by latency."""
    done = [t for t in trials if t.accuracy is not None]
    if not done:
        return []
    feasible = [t for t in done if t.feasible] or done
    rank = non_dominated_sort(objective_matrix(feasible))
    front = [t for t, r in zip(feasible, rank) if r == 0]
    return sorted(front, key=lambda t: (max(t.latency_ms.values(), default=0.0), -(t.accuracy or 0)))


def hypervolume_2d(points: Sequence[tuple[float, float]], ref_latency: float, ref_accuracy: float = 0.0) -> float:
    """Area dominated by (latency, accuracy) points up to ``ref_latency`` and above ``ref_accuracy``.

    Latency is minimised and accuracy maximised; points outside the reference box add nothing.
    """
    pts = sorted((lat, acc) for lat, acc in points if lat < ref_latency and acc > ref_accuracy)
    area, best = 0.0, ref_accuracy
    edges = [lat for lat, _ in pts] + [ref_latency]
    for (lat, acc), nxt in zip(pts, edges[1:]):
        best = max(best, acc)
        area += (nxt - lat) * (best - ref_accuracy)
    return area


@register_strategy
class NSGA2(Strategy):
    name = "pareto"
    goal = "hypervolume"
    default_reward = "pareto"

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 20, crossover: float = 0.9) -> None:
        super().__init__(space, seed)
        if population < 4:
            raise HwnasError("pareto needs a population of at least 4")
        self.population_size, self.crossover = population, crossover
        self.population: list[Trial] = []
        self.offspring: list[Trial] = []

    def params(self) -> dict[str, Any]:
        return {"population": self.population_size, "crossover": self.crossover}

    def _violation(self, trials: Sequence[Trial]) -> np.ndarray:
        return np.array([0.0 if t.feasible else 1.0 + (t.reward is None) for t in trials])

    def _ranked(self) -> tuple[np.ndarray, np.ndarray]:
        f = objective_matrix(self.population)
        rank = non_dominated_sort(f, self._violation(self.population))
        crowd = np.zeros(len(f))
        for r in np.unique(rank):
            sel = rank == r
            crowd[sel] = crowding_distance(f[sel])
        return rank, crowd

    def _tournament(self, rank: np.ndarray, crowd: np.ndarray) -> Arch:
        i, j = (int(k) for k in self.rng.choice(len(rank), size=2, replace=False))
        better = i if (rank[i], -crowd[i]) <= (rank[j], -crowd[j]) else j
        return self.population[better].arch

    def _child(self, rank: np.ndarray, crowd: np.ndarray) -> Arch:
        a, b = self._tournament(rank, crowd), self._tournament(rank, crowd)
        idx = list(a.indices())
        if self.rng.random() < self.crossover:
            mask = self.rng.random(len(idx)) < 0.5
            idx = [bi if m else ai for ai, bi, m in zip(a.indices(), b.indices(), mask)]
        return self.space.mutate(self.space.from_indices(idx), self.rng)

    def ask(self, n: int = 1) -> list[Arch]:
        if len(self.population) < self.population_size:
            return [self.fresh(self.random_arch) for _ in range(n)]
        rank, crowd = self._ranked()
        return [self.fresh(lambda: self._child(rank, crowd)) for _ in range(n)]

    def _tell(self, trials: list[Trial]) -> None:
        for t in trials:
            if t.accuracy is None and t.reward is None and not t.latency_ms:
                continue
            if len(self.population) < self.population_size:
                self.population.append(t)
            else:
                self.offspring.append(t)
        if len(self.offspring) >= self.population_size:
            self._select()

    def _select(self) -> None:
        pool = self.population + self.offspring
        f = objective_matrix(pool)
        rank = non_dominated_sort(f, self._violation(pool))
        keep: list[int] = []
        for r in range(int(rank.max()) + 1):
            members = np.flatnonzero(rank == r)
            if len(keep) + len(members) <= self.population_size:
                keep.extend(int(i) for i in members)
                continue
            crowd = crowding_distance(f[members])
            order = members[np.argsort(-crowd, kind="stable")]
            keep.extend(int(i) for i in order[: self.population_size - len(keep)])
            break
        self.population = [pool[i] for i in keep]
        self.offspring = []

    def _state(self) -> dict[str, Any]:
        return {"population": [t.to_json() for t in self.population],
                "offspring": [t.to_json() for t in self.offspring]}

    def _load(self, state: dict[str, Any]) -> None:
        self.population = [Trial.from_json(self.space, d) for d in state["population"]]
        self.offspring = [Trial.from_json(self.space, d) for d in state["offspring"]]
