"""NASNet's controller trained with PPO (Zoph et al. 2018).

The controller of :mod:`hwnas.strategies.reinforce` (an LSTM emitting the decisions one by
one), with the same advantages (reward minus a moving baseline, over a moving standard
deviation; 0 reward for a candidate a hard budget rejected), trained by Proximal Policy
Optimization instead of one REINFORCE step per batch: the trials told are collected until
``update_batch`` of them are in, then the policy that sampled them takes ``epochs`` Adam steps on
the clipped surrogate objective -min(ρ A, clip(ρ, 1 - ε, 1 + ε) A), ρ = p(arch) / p_old(arch),
ε = ``clip``, minus an entropy bonus. Several steps per batch get more out of each
(expensive) evaluation than one, and the clip keeps them from moving the policy far.
"""

from __future__ import annotations

from typing import Any

from hwnas.errors import HwnasError
from hwnas.spaces.base import SearchSpace
from hwnas.strategies.base import Trial, register_strategy
from hwnas.strategies.reinforce import Reinforce


@register_strategy
class PPO(Reinforce):
    name = "ppo"

    def __init__(self, space: SearchSpace, seed: int = 0, lr: float = 0.05, entropy: float = 1e-3,
                 baseline_decay: float = 0.9, hidden: int = 64, clip: float = 0.2, epochs: int = 4,
                 update_batch: int = 10) -> None:
        super().__init__(space, seed, lr, entropy, baseline_decay, hidden)
        if not 0 < clip < 1 or epochs < 1 or update_batch < 1:
            raise HwnasError("ppo needs 0 < clip < 1, epochs >= 1 and update_batch >= 1")
        self.clip, self.epochs, self.update_batch = float(clip), int(epochs), int(update_batch)
        self.pending: list[tuple[list[int], float]] = []  # (indices, advantage) told since the last update

    def params(self) -> dict[str, Any]:
        return {**super().params(), "clip": self.clip, "epochs": self.epochs, "update_batch": self.update_batch}

    def _tell(self, trials: list[Trial]) -> None:
        for t, adv in zip(trials, self.advantages(trials)):
            self.pending.append((list(t.arch.indices()), adv))
        if len(self.pending) >= self.update_batch:
            idx = [i for i, _ in self.pending]
            self.policy.ppo_steps(self.space.index_matrix([self.space.from_indices(i) for i in idx]),
                                  [a for _, a in self.pending], self.entropy, self.clip, self.epochs)
            self.pending = []

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "pending": [[i, a] for i, a in self.pending]}

    def _load(self, state: dict[str, Any]) -> None:
        super()._load(state)
        self.pending = [([int(x) for x in i], float(a)) for i, a in state["pending"]]
