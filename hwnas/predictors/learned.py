"""The ``learned`` predictor: a bagged ensemble of ridge regressions on features
derived from the architecture object, trained on measured whole networks.

With a latency table the target is the latency itself (latency is nearly additive over
layers, and the per-decision table latencies are features); without one (e.g. the
NAS-Bench-201 devices) it is log latency, with pairwise decision interactions on small
spaces. The ensemble's spread is the uncertainty. Ridge keeps prediction a single
matrix product (tens of thousands of architectures per second) and the model plain
numbers in JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import Ridge, RidgeCV

from hwnas.predictors.base import PREDICTORS, Predictor
from hwnas.predictors.features import Features, OptionTable, latency_options
from hwnas.spaces.base import SearchSpace

ALPHAS = np.logspace(-4, 4, 17)


class LearnedPredictor(Predictor):
    kind = "learned"

    def __init__(self, space: SearchSpace, table: Any = None, *, members: int = 5, seed: int = 0,
                 interactions: bool | None = None, log_target: bool | None = None) -> None:
        super().__init__(space)
        latency = latency_options(space, table) if table is not None else None
        self.features = Features(space, latency, interactions)
        self.members, self.seed = members, seed
        self.log_target = (latency is None) if log_target is None else log_target
        self.mean = self.scale = self.coefs = self.intercepts = None
        self.alpha = None
        if table is not None:
            self.meta["device"] = table.header["device"]

    def feature_names(self) -> list[str]:
        return self.features.names()

    def _fit(self, idx: np.ndarray, y: np.ndarray) -> None:
        X = self.features.transform(idx)
        t = np.log(y) if self.log_target else y
        self.mean = X.mean(axis=0)
        self.scale = X.std(axis=0)
        self.scale[self.scale == 0] = 1.0
        Z = (X - self.mean) / self.scale
        self.alpha = float(RidgeCV(alphas=ALPHAS).fit(Z, t).alpha_)
        rng = np.random.default_rng(self.seed)
        coefs, intercepts = [], []
        for m in range(self.members):
            rows = np.arange(len(t)) if m == 0 else rng.integers(0, len(t), len(t))
            r = Ridge(alpha=self.alpha).fit(Z[rows], t[rows])
            coefs.append(r.coef_)
            intercepts.append(r.intercept_)
        self.coefs, self.intercepts = np.array(coefs), np.array(intercepts)

    def _members(self, idx: np.ndarray) -> np.ndarray:
        Z = (self.features.transform(idx) - self.mean) / self.scale
        out = Z @ self.coefs.T + self.intercepts
        return np.exp(out) if self.log_target else out

    def _predict(self, idx: np.ndarray) -> np.ndarray:
        return np.maximum(self._members(idx).mean(axis=1), 1e-6)

    def predict_std(self, archs: Any) -> np.ndarray:
        self._require_fitted()
        return self._members(self._indices(archs)).std(axis=1)

    def state(self) -> dict[str, Any]:
        lat = self.features.latency
        fitted = self.coefs is not None
        return {"members": self.members, "seed": self.seed, "log_target": self.log_target,
                "interactions": self.features.interactions,
                "latency": lat.to_json() if lat is not None else None,
                "alpha": self.alpha,
                "mean": self.mean.tolist() if fitted else None, "scale": self.scale.tolist() if fitted else None,
                "coefs": self.coefs.tolist() if fitted else None,
                "intercepts": self.intercepts.tolist() if fitted else None}

    def set_state(self, state: dict[str, Any]) -> None:
        lat = OptionTable.from_json(state["latency"]) if state.get("latency") else None
        self.features = Features(self.space, lat, state["interactions"])
        self.members, self.seed, self.log_target = state["members"], state["seed"], state["log_target"]
        self.alpha = state.get("alpha")
        arr = lambda k: None if state.get(k) is None or state.get("unfitted") else np.array(state[k])  # noqa: E731
        self.mean, self.scale, self.coefs, self.intercepts = arr("mean"), arr("scale"), arr("coefs"), arr("intercepts")


PREDICTORS.register("learned", LearnedPredictor)
