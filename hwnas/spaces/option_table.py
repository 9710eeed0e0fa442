"""Per-option totals of one quantity over a space's decisions.

A space whose cost is additive over its fixed layers and per-decision option layers
(``SearchSpace.fixed_layers`` / ``option_layers``) is described by one number per
(decision, option) plus the fixed part: the table the differentiable expected-latency
loss, budget-filling derivation, budgets from quantiles and vectorised predictors share.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from hwnas.spaces.base import SearchSpace


class OptionTable:
    """Per-(decision, option) totals of one quantity, plus the fixed layers' total. ``exact``
    is False where the table is a linear approximation of a quantity that is not additive
    (a predictor's, see :meth:`Predictor.option_latency`): its totals are then estimates,
    and quantiles and least values are better taken from the quantity itself."""

    def __init__(self, fixed: float, options: list[np.ndarray], exact: bool = True) -> None:
        self.fixed = float(fixed)
        self.options = [np.asarray(o, dtype=np.float64) for o in options]
        self.exact = exact

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

    def total(self, idx: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """The fixed part plus each row's options, each weighted when ``weights`` (n, decisions)
        is given (:meth:`SearchSpace.live_weights`)."""
        per = self.per_decision(idx)
        return self.fixed + (per if weights is None else per * weights).sum(axis=1)

    def to_json(self) -> dict[str, Any]:
        return {"fixed": self.fixed, "options": [o.tolist() for o in self.options]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "OptionTable":
        return cls(d["fixed"], [np.array(o) for o in d["options"]])

    def smallest(self) -> float:
        """The least total any architecture of the space can have."""
        return float(self.fixed + sum(float(o.min()) for o in self.options))

    def scaled(self, factor: float) -> "OptionTable":
        return OptionTable(self.fixed * factor, [o * factor for o in self.options], self.exact)

    def quantile(self, space: SearchSpace, q: float, n: int = 5000, seed: int = 0) -> float:
        """The q-quantile of the total over ``n`` uniformly sampled architectures."""
        idx = space.index_matrix(space.sample(n, seed=seed))
        return float(np.quantile(self.total(idx), q))


@functools.lru_cache(maxsize=65536)
def _layer_keys(space: SearchSpace, row: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(s.key for s in space.layers(space.from_indices(row)))


class LayerTotals:
    """Totals of one quantity over each network's own layers, for a space whose cost is not
    additive over decisions (``SearchSpace.additive`` False): one number per layer key, summed
    over the layers :meth:`SearchSpace.layers` lists for each row. ``total`` and ``to_json`` as
    :class:`OptionTable` has them; no per-decision split, so no differentiable loss (budget
    quantiles come from sampled networks' predictions instead)."""

    def __init__(self, space: SearchSpace, values: dict[str, float]) -> None:
        self.space, self.values = space, {k: float(v) for k, v in values.items()}
        self.fixed = 0.0

    @classmethod
    def of(cls, space: SearchSpace, value: Callable[[Any], float]) -> "LayerTotals":
        return cls(space, {s.key: value(s) for s in space.all_layers()})

    def keys(self, idx: np.ndarray) -> list[tuple[str, ...]]:
        return [_layer_keys(self.space, tuple(int(v) for v in row)) for row in idx]

    def total(self, idx: np.ndarray) -> np.ndarray:
        v = self.values
        return np.array([sum(v[k] for k in keys) for keys in self.keys(idx)], dtype=np.float64)

    def by_op(self, idx: np.ndarray, ops: list[str]) -> np.ndarray:
        """(n, len(ops)) totals per layer operation (the key's first field)."""
        col = {o: i for i, o in enumerate(ops)}
        out = np.zeros((len(idx), len(ops)))
        for r, keys in enumerate(self.keys(idx)):
            for k in keys:
                out[r, col[k.split("-", 1)[0]]] += self.values[k]
        return out

    def ops(self) -> list[str]:
        return sorted({k.split("-", 1)[0] for k in self.values})

    def to_json(self) -> dict[str, Any]:
        return {"layers": self.values}


CostTable = OptionTable | LayerTotals


def cost_table(space: SearchSpace, value: Callable[[Any], float]) -> CostTable:
    """Per-option totals where the space is additive over decisions, else per-layer totals."""
    return OptionTable.of(space, value) if space.additive else LayerTotals.of(space, value)


def cost_from_json(space: SearchSpace, d: dict[str, Any]) -> CostTable:
    return LayerTotals(space, d["layers"]) if "layers" in d else OptionTable.from_json(d)
