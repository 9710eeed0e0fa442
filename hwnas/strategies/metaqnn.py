"""MetaQNN: Q-learning over the space's decisions, Baker et al. 2017.

The agent builds an architecture one decision at a time. A state is (decision i, the
option taken at decision i - 1): the paper's state is the layer just placed, and in a
space of fixed decisions that is the previous choice at its position. Actions are the
options of decision i. Q-values start at 0.5; an architecture is chosen ε-greedily
(each decision uniformly at random with probability ε, else the option of the highest
Q-value, ties broken at random). The reward comes only at the end: the trial's reward
(a candidate a hard budget rejected scores 0, so the agent learns to stay under it),
replayed as its rank among the rewards seen so far, a quantile in [0, 1] (see below).

After every trial the agent replays ``replay`` trials drawn from its memory of all of
them (experience replay), each updated backwards from its last decision with the paper's
rule Q(s, a) <- (1 - α) Q(s, a) + α (r + γ max_a' Q(s', a')), with r the reward at the
terminal transition and 0 before it, and γ = 1.

Two departures, both for budgets of a few hundred models rather than the paper's 2,700.
α = 0.1 rather than 0.01: each trial is replayed about 50 times in a 100-query search, not
hundreds of times as in the paper's, and at 0.01 the Q-values hardly move from their start.
And the paper's Q-values start at 0.5, the middle of its rewards (validation accuracies from
0.1 to 0.9). Here accuracies crowd a few points (NAS-Bench-201's CIFAR-10 cells: most of
them 0.85 to 0.94), so every reward is above 0.5 and an option's Q grows with how often it
is replayed as much as with how good it is; replaying the reward as its rank among those
seen (``reward_scale="rank"``; ``"raw"`` is the paper's) puts 0.5 at the median again. On
NAS-Bench-201 at 100 queries (200 runs) the paper's settings stay at random search's level;
α = 0.1 lifts the agent above it, and the rank scale lifts it further on CIFAR-100 and
ImageNet16-120 (figures in the README).

ε follows the paper's schedule (CIFAR-10: 1,500 models at ε = 1.0, then 100 each at
0.9, 0.8, 0.7 and 150 each at 0.6 ... 0.1, 2,700 in all), scaled to the search's
``queries``: the same shares of the budget at each ε. An architecture the agent has
already proposed is not proposed again (the paper looks its accuracy up instead); the
agent draws again, and after 50 draws takes a random new one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.errors import HwnasError
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies.base import Strategy, Trial, register_strategy

SCHEDULE = ((1.0, 1500), (0.9, 100), (0.8, 100), (0.7, 100), (0.6, 150), (0.5, 150), (0.4, 150), (0.3, 150),
            (0.2, 150), (0.1, 150))
"""(ε, models) of the paper's CIFAR-10 run (Baker et al. 2017, table 2)."""

REWARD_SCALES = ("rank", "raw")


def epsilon_at(done: int, queries: int) -> float:
    """ε for the next model after ``done`` models, the paper's schedule scaled to ``queries``."""
    total = sum(n for _, n in SCHEDULE)
    end = 0.0
    for eps, n in SCHEDULE:
        end += n * queries / total
        if done < end:
            return eps
    return SCHEDULE[-1][0]


@register_strategy
class MetaQNN(Strategy):
    name = "metaqnn"

    def __init__(self, space: SearchSpace, seed: int = 0, queries: int = 100, learning_rate: float = 0.1,
                 discount: float = 1.0, replay: int = 100, q_init: float = 0.5, reward_scale: str = "rank") -> None:
        super().__init__(space, seed)
        if queries < 1 or not 0 < learning_rate <= 1 or not 0 <= discount <= 1 or replay < 0:
            raise HwnasError("metaqnn needs queries >= 1, 0 < learning_rate <= 1, 0 <= discount <= 1, replay >= 0")
        if reward_scale not in REWARD_SCALES:
            raise HwnasError(f"metaqnn reward_scale {reward_scale!r}: use one of {', '.join(REWARD_SCALES)}")
        self.queries, self.learning_rate, self.discount = int(queries), float(learning_rate), float(discount)
        self.replay, self.q_init, self.reward_scale = int(replay), float(q_init), reward_scale
        self.sizes = [len(d.choices) for d in space.decisions()]
        # q[i][p, a]: Q of option a at decision i after option p at decision i - 1 (p = 0 for i = 0)
        self.q = [np.full((self.sizes[i - 1] if i else 1, k), self.q_init) for i, k in enumerate(self.sizes)]
        self.memory: list[tuple[list[int], float]] = []

    def params(self) -> dict[str, Any]:
        return {"queries": self.queries, "learning_rate": self.learning_rate, "discount": self.discount,
                "replay": self.replay, "q_init": self.q_init, "reward_scale": self.reward_scale}

    @property
    def epsilon(self) -> float:
        return epsilon_at(self.told, self.queries)

    def _walk(self, epsilon: float) -> Arch:
        idx, prev = [], 0
        for i, k in enumerate(self.sizes):
            if self.rng.random() < epsilon:
                a = int(self.rng.integers(k))
            else:
                row = self.q[i][prev]
                best = np.flatnonzero(row == row.max())
                a = int(best[self.rng.integers(len(best))])
            idx.append(a)
            prev = a
        return self.space.from_indices(idx)

    def ask(self, n: int = 1) -> list[Arch]:
        eps = self.epsilon
        return [self.fresh(lambda: self._walk(eps), tries=50, fallback=self.random_arch) for _ in range(n)]

    def _update(self, idx: list[int], reward: float) -> None:
        """One trajectory, backwards from its terminal transition (the paper's replay order)."""
        last = len(idx) - 1
        for i in range(last, -1, -1):
            prev = idx[i - 1] if i else 0
            target = reward if i == last else self.discount * float(self.q[i + 1][idx[i]].max())
            self.q[i][prev, idx[i]] += self.learning_rate * (target - self.q[i][prev, idx[i]])

    def _scaled(self, reward: float, seen: np.ndarray) -> float:
        """The reward as replayed: itself, or its mid-rank among ``seen`` (sorted) as a quantile."""
        if self.reward_scale == "raw":
            return reward
        if len(seen) < 2:
            return 0.5
        below = np.searchsorted(seen, reward, side="left")
        ties = np.searchsorted(seen, reward, side="right") - below
        return float((below + 0.5 * (ties - 1)) / (len(seen) - 1))

    def _tell(self, trials: list[Trial]) -> None:
        for t in trials:
            self.memory.append((list(t.arch.indices()), 0.0 if t.reward is None else float(t.reward)))
            seen = np.sort([r for _, r in self.memory])
            for j in self.rng.choice(len(self.memory), size=min(self.replay, len(self.memory)), replace=False):
                idx, reward = self.memory[int(j)]
                self._update(idx, self._scaled(reward, seen))

    def _state(self) -> dict[str, Any]:
        return {"q": [q.tolist() for q in self.q], "memory": [[i, r] for i, r in self.memory]}

    def _load(self, state: dict[str, Any]) -> None:
        self.q = [np.array(q, dtype=np.float64) for q in state["q"]]
        self.memory = [([int(a) for a in i], float(r)) for i, r in state["memory"]]
