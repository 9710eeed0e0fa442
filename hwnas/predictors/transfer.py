"""The ``transfer`` predictor: a new device from K of its measurements.

HELP (Lee et al. 2021) meta-learns a predictor conditioned on a device embedding built
from a few reference architectures. We do the simpler thing the NAS-Bench-201 data
supports better: devices are related monotonically (one GPU is like another at a
different speed), so a ``learned`` predictor is fitted for every source device; on the
K target shots each source's log prediction is correlated with the target's log latency,
the best ``top`` sources are blended with weights correlation^``power``, and an affine map
in log space is fitted to the shots. ``tools/bench_predictors.py`` justifies the choice
(leave-one-device-out Spearman at K = 10 against HELP's 0.932).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.errors import HwnasError
from hwnas.predictors.base import PREDICTORS, Predictor
from hwnas.predictors.learned import LearnedPredictor
from hwnas.spaces.base import SearchSpace


def fit_sources(space: SearchSpace, archs: list[Any], columns: dict[str, np.ndarray], members: int = 1,
                max_rows: int = 3000, seed: int = 0) -> dict[str, LearnedPredictor]:
    """One ``learned`` predictor per source column, on at most ``max_rows`` seeded rows."""
    rows = np.arange(len(archs))
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), max_rows, replace=False))
    idx = space.index_matrix([space.parse(archs[i]) if isinstance(archs[i], str) else archs[i] for i in rows])
    out = {}
    for name, y in columns.items():
        out[name] = LearnedPredictor(space, members=members)
        out[name].fit(idx, y[rows], device={"name": name}, validate=False)
    return out


class TransferPredictor(Predictor):
    kind = "transfer"

    fittable = False  # needs fitted source devices: 'hwnas predictor transfer'

    def __init__(self, space: SearchSpace, sources: dict[str, LearnedPredictor], top: int = 3,
                 power: float = 4.0) -> None:
        super().__init__(space)
        if not sources:
            raise HwnasError("transfer needs at least one source device")
        self.sources, self.top, self.power = sources, top, power

    def params(self) -> dict[str, Any]:
        return {"sources": self.sources, "top": self.top, "power": self.power}

    def _source_logs(self, idx: np.ndarray, names: list[str]) -> np.ndarray:
        return np.stack([np.log(self.sources[n].predict(idx)) for n in names], axis=1)

    def _fit(self, idx: np.ndarray, y: np.ndarray) -> None:
        if len(y) < 2:
            raise HwnasError("transfer needs at least 2 target measurements")
        names = list(self.sources)
        z = self._source_logs(idx, names)
        t = np.log(y)
        corr = np.array([np.corrcoef(z[:, j], t)[0, 1] if np.ptp(z[:, j]) > 0 and np.ptp(t) > 0 else 0.0
                         for j in range(len(names))])
        corr = np.nan_to_num(corr)
        order = np.argsort(-corr)[: self.top]
        w = np.maximum(corr[order], 0) ** self.power
        w = w / w.sum() if w.sum() > 0 else np.full(len(order), 1 / len(order))
        self.chosen, self.weights = [names[j] for j in order], w
        blend = z[:, order] @ w
        self.a, self.b = 1.0, 0.0
        if np.ptp(blend) > 0:
            self.a, self.b = (float(v) for v in np.polyfit(blend, t, 1))
        else:
            self.a, self.b = 0.0, float(t.mean())
        self.meta["sources"] = {n: float(x) for n, x in zip(self.chosen, w)}

    def _predict(self, idx: np.ndarray) -> np.ndarray:
        return np.exp(self.a * (self._source_logs(idx, self.chosen) @ self.weights) + self.b)

    def fit(self, archs: Any, y_ms: Any, **kw: Any) -> "Predictor":
        return super().fit(archs, y_ms, **{**kw, "validate": False})

    def state(self) -> dict[str, Any]:
        return {"top": self.top, "power": self.power, "chosen": self.chosen, "weights": self.weights.tolist(),
                "a": self.a, "b": self.b,
                "sources": {n: self.sources[n].state() for n in (self.chosen or self.sources)}}

    def set_state(self, state: dict[str, Any]) -> None:
        self.top, self.power = state["top"], state["power"]
        self.chosen, self.weights = state["chosen"], np.array(state["weights"])
        self.a, self.b = state["a"], state["b"]
        self.sources = {n: LearnedPredictor.from_state(self.space, s) for n, s in state["sources"].items()}


PREDICTORS.register("transfer", TransferPredictor)
