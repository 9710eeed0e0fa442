"""Baselines: ``flops`` (linear in multiply-adds) and ``lutsum`` (sum of table entries,
with an affine correction fitted on measured whole networks when there are any)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from hwnas.errors import HwnasError
from hwnas.predictors.base import PREDICTORS, Predictor
from hwnas.predictors.features import latency_options
from hwnas.spaces.option_table import CostTable, cost_from_json, cost_table
from hwnas.ops import count_layer
from hwnas.spaces.base import SearchSpace


def _affine(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(y) < 2 or np.ptp(x) == 0:
        return float(np.mean(y / np.maximum(x, 1e-12))), 0.0
    a, b = np.polyfit(x, y, 1)
    return float(a), float(b)


class AffinePredictor(Predictor):
    """a × (a quantity additive over the space's options) + b, fitted on measured networks."""

    feature = ""

    @abstractmethod
    def quantity(self) -> CostTable:
        """The per-option quantity (derived from the constructor's parameters)."""

    def total(self, idx: np.ndarray) -> np.ndarray:
        """The quantity over the operations a network runs: only the live ones (a dead
        operation is not built, see :meth:`SearchSpace.live`), none of a whole dead cell's
        (:meth:`SearchSpace.live_weights`), and nothing for a network whose output does not
        depend on its input (it is exported as a constant)."""
        live = self.space.live_indices(idx)
        weights = self.space.live_weights(live)
        total = self.per_option.total(live) if weights is None else self.per_option.total(live, weights)
        return np.where(self.space.connected_indices(live), total, 0.0)

    def _fit(self, idx: np.ndarray, y: np.ndarray) -> None:
        self.per_option = self.quantity()
        self.a, self.b = _affine(self.total(idx), y)

    def _predict(self, idx: np.ndarray) -> np.ndarray:
        return self.a * self.total(idx) + self.b

    def feature_names(self) -> list[str]:
        return [self.feature]

    def state(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b}

    def set_state(self, state: dict[str, Any]) -> None:
        self.a, self.b = state["a"], state["b"]
        self.per_option = self.quantity()


class FlopsPredictor(AffinePredictor):
    kind = "flops"
    feature = "macs_m"

    def quantity(self) -> CostTable:
        return cost_table(self.space, lambda s: count_layer(s).macs / 1e6)


class LutSumPredictor(AffinePredictor):
    """The table's layer latencies added up, times a + b fitted on measured whole networks;
    :meth:`plain` fits it on none (a = 1, b = 0): the plain LUT-sum. Saved with the table's
    per-option latencies, so a loaded one needs no table."""

    kind = "lutsum"
    feature = "lutsum_ms"

    def __init__(self, space: SearchSpace, table: Any) -> None:
        super().__init__(space)
        if table is None:
            raise HwnasError("the lutsum predictor needs a latency table (--lut TABLE)")
        self.table = table

    @classmethod
    def create(cls, space: SearchSpace, table: Any = None) -> "LutSumPredictor":
        return cls(space, table)

    def params(self) -> dict[str, Any]:
        return {"table": self.table}

    def plain(self) -> "LutSumPredictor":
        """Fitted on no measured network: the plain sum of the table's entries."""
        self.per_option = self.quantity()
        self.a, self.b = 1.0, 0.0
        self.fitted = True
        self.meta.setdefault("device", self.table.header["device"])
        return self

    def _fit(self, idx: np.ndarray, y: np.ndarray) -> None:
        super()._fit(idx, y)
        self.meta.setdefault("device", self.table.header["device"])  # fit(device=...) overrides it

    def quantity(self) -> CostTable:
        return latency_options(self.space, self.table)

    def state(self) -> dict[str, Any]:
        return {**super().state(), "latency": self.per_option.to_json()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.a, self.b = state["a"], state["b"]
        self.per_option = cost_from_json(self.space, state["latency"])


PREDICTORS.register("flops", FlopsPredictor)
PREDICTORS.register("lutsum", LutSumPredictor)
