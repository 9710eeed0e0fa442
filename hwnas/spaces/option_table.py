"""Per-option totals of one quantity over a space's decisions.

A space whose cost is additive over its fixed layers and per-decision option layers
(``SearchSpace.fixed_layers`` / ``option_layers``) is described by one number per
(decision, option) plus the fixed part: the table the differentiable expected-latency
loss, budget-filling derivation, budgets from quantiles and vectorised predictors share.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.spaces.base import SearchSpace


class OptionTable:
    """Per-(decision, option) totals of one quantity, plus the fixed layers' total."""

    def __init__(self, fixed: float, options: list[np.ndarray]) -> None:
        self.fixed = float(fixed)
        self.options = [np.asarray(o, dtype=np.float64) for o in options]

    @classmethod
    def of(cls, space: SearchSpace, value: Any) -> "OptionTable":
        fixed = sum(value(s) for s in space.fixed_layers())
        options = [np.array([sum(value(s) for s in space.option_layers(i, o)) for o in d.choices])
                   for i, d in enumerate(space.decisions())]
        return cls(fixed, options)

    def per_decision(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty(idx.shape, dtype=np.float64)
        for i, opts in enumerate(self.options):
            out[:, i] = opts[idx[:, i]]
        return out

    def total(self, idx: np.ndarray) -> np.ndarray:
        return self.fixed + self.per_decision(idx).sum(axis=1)

    def to_json(self) -> dict[str, Any]:
        return {"fixed": self.fixed, "options": [o.tolist() for o in self.options]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "OptionTable":
        return cls(d["fixed"], [np.array(o) for o in d["options"]])

    def smallest(self) -> float:
        """The least total any architecture of the space can have."""
        return float(self.fixed + sum(float(o.min()) for o in self.options))

    def scaled(self, factor: float) -> "OptionTable":
        return OptionTable(self.fixed * factor, [o * factor for o in self.options])

    def quantile(self, space: SearchSpace, q: float, n: int = 5000, seed: int = 0) -> float:
        """The q-quantile of the total over ``n`` uniformly sampled architectures."""
        idx = space.index_matrix(space.sample(n, seed=seed))
        return float(np.quantile(self.total(idx), q))
