"""REINFORCE with an LSTM controller (Zoph & Le 2017; ENAS, Pham et al. 2018).

The controller emits the architecture's decisions one by one: at each step an LSTM cell
reads the embedding of the previous choice and a per-decision head gives the logits of
this decision's options (``tanh_c · tanh(logits)``, as in ENAS). After each batch of
told trials the policy gradient ``-(R - b)·log p(arch)`` minus an entropy bonus is
applied, with ``b`` an exponential moving average of the reward and the advantage
divided by a moving standard deviation of the reward (rewards such as accuracy cluster in a
narrow band, so unscaled advantages barely move the policy). Candidates a hard budget
rejected get reward 0 (the worst accuracy), so the controller learns to avoid them.

Sampling draws from the strategy's numpy RNG, so the whole state (weights, Adam moments,
baseline, RNG) is JSON and a resumed search equals an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies.base import Strategy, Trial, register_strategy


@register_strategy
class Reinforce(Strategy):
    name = "reinforce"

    def __init__(self, space: SearchSpace, seed: int = 0, lr: float = 0.05, entropy: float = 1e-3,
                 baseline_decay: float = 0.9, hidden: int = 64) -> None:
        super().__init__(space, seed)
        self.lr, self.entropy, self.baseline_decay, self.hidden = lr, entropy, baseline_decay, hidden
        from hwnas.nn.controller import MovingBaseline, Policy

        self.policy = Policy([len(d.choices) for d in space.decisions()], hidden, lr, seed)
        self.baseline = MovingBaseline(baseline_decay)

    def params(self) -> dict[str, Any]:
        return {"lr": self.lr, "entropy": self.entropy, "baseline_decay": self.baseline_decay, "hidden": self.hidden}

    def _sample(self) -> Arch:
        return self.space.from_indices(self.policy.decode(lambda p: int(self.rng.choice(len(p), p=p / p.sum()))))

    def ask(self, n: int = 1) -> list[Arch]:
        return [self.fresh(self._sample, tries=20) for _ in range(n)]

    def advantages(self, trials: list[Trial]) -> list[float]:
        """The trials' advantages over the moving baseline (a rejected candidate's reward is 0)."""
        return self.baseline.advantages(0.0 if t.reward is None else float(t.reward) for t in trials)

    def _tell(self, trials: list[Trial]) -> None:
        if not trials:
            return
        self.policy.step(self.space.index_matrix([t.arch for t in trials]), self.advantages(trials), self.entropy)

    def _state(self) -> dict[str, Any]:
        return {**self.policy.state(), "baseline": self.baseline.mean, "variance": self.baseline.variance}

    def _load(self, state: dict[str, Any]) -> None:
        self.policy.load(state)
        self.baseline.mean = state["baseline"]
        self.baseline.variance = float(state["variance"])
