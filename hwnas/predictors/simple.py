"""Baselines: ``flops`` (linear in multiply-adds) and ``lutsum`` (sum of table entries,
with an affine correction fitted on measured whole networks when there are any)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.errors import HwnasError
from hwnas.predictors.base import PREDICTORS, Predictor
from hwnas.predictors.features import OptionTable, latency_options
from hwnas.ops import count_layer
from hwnas.spaces.base import SearchSpace


def _affine(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    if len(y) < 2 or np.ptp(x) == 0:
        return float(np.mean(y / np.maximum(x, 1e-12))), 0.0
    a, b = np.polyfit(x, y, 1)
    return float(a), float(b)


class FlopsPredictor(Predictor):
    kind = "flops"

    def __init__(self, space: SearchSpace) -> None:
        super().__init__(space)
        self.macs = OptionTable.of(space, lambda s: count_layer(s).macs / 1e6)
        self.a, self.b = 0.0, 0.0

    def _fit(self, idx: np.ndarray, y: np.ndarray) -> None:
        self.a, self.b = _affine(self.macs.total(idx), y)

    def _predict(self, idx: np.ndarray) -> np.ndarray:
        return self.a * self.macs.total(idx) + self.b

    def feature_names(self) -> list[str]:
        return ["macs_m"]

    def state(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b}

    def set_state(self, state: dict[str, Any]) -> None:
        self.macs = OptionTable.of(self.space, lambda s: count_layer(s).macs / 1e6)
        self.a, self.b = state["a"], state["b"]


class LutSumPredictor(Predictor):
    """Usable without fitting (a = 1, b = 0): then it is the plain LUT-sum."""

    kind = "lutsum"

    def __init__(self, space: SearchSpace, table: Any) -> None:
        super().__init__(space)
        if table is None:
            raise HwnasError("the lutsum predictor needs a latency table (--lut TABLE)")
        self.latency = latency_options(space, table)
        self.a, self.b = 1.0, 0.0
        self.fitted = True
        self.meta["device"] = table.header["device"]

    def _fit(self, idx: np.ndarray, y: np.ndarray) -> None:
        self.a, self.b = _affine(self.latency.total(idx), y)

    def _predict(self, idx: np.ndarray) -> np.ndarray:
        return self.a * self.latency.total(idx) + self.b

    def feature_names(self) -> list[str]:
        return ["lutsum_ms"]

    def linear_latency(self) -> tuple[OptionTable, float, float]:
        """(per-option table latencies, a, b) with prediction = a * LUT-sum + b: linear in
        the options, so an expectation over option probabilities passes through it."""
        return self.latency, self.a, self.b

    def state(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "latency": self.latency.to_json()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.a, self.b = state["a"], state["b"]
        self.latency = OptionTable.from_json(state["latency"])


PREDICTORS.register("flops", FlopsPredictor)
PREDICTORS.register("lutsum", LutSumPredictor)
