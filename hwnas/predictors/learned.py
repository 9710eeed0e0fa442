"""The ``learned`` predictor: a bagged ensemble of ridge regressions on features
derived from the architecture object, trained on measured whole networks.

How much to learn depends on the device: a phone's noisy whole-millisecond timings are
best fitted by how often each operation occurs, a GPU's by which operation sits where
and beside what. So ``fit`` picks the feature level (``counts``, ``onehot``, ``pairs``;
see :class:`~hwnas.predictors.features.Features`) and the target (latency, or log
latency) by 5-fold cross-validated MAPE, then fits the ensemble; the members' spread is
the uncertainty. Ridge keeps prediction one matrix product and the model plain numbers
in JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.predictors.base import PREDICTORS, Predictor
from hwnas.predictors.features import LEVELS, Features, latency_options
from hwnas.spaces.option_table import OptionTable
from hwnas.spaces.base import SearchSpace

ALPHAS = np.logspace(-4, 4, 17)
PAIRS_MAX_ENCODING = 64
"""Pairwise interactions only for spaces whose one-hot encoding is at most this long."""


def _ridge(Z: np.ndarray, t: np.ndarray) -> Any:
    from sklearn.linear_model import RidgeCV

    return RidgeCV(alphas=ALPHAS).fit(Z, t)


class LearnedPredictor(Predictor):
    kind = "learned"

    def __init__(self, space: SearchSpace, table: Any = None, *, members: int = 5, seed: int = 0,
                 level: str | None = None, log_target: bool | None = None) -> None:
        super().__init__(space)
        self.table, self.members, self.seed = table, members, seed
        self.fixed_level, self.fixed_log = level, log_target
        self.latency: Any = None
        self.level, self.log_target = level or "onehot", bool(log_target)
        self.mean = self.scale = self.coefs = self.intercepts = None
        self.alpha: float | None = None

    @classmethod
    def create(cls, space: SearchSpace, table: Any = None) -> "LearnedPredictor":
        return cls(space, table)

    def params(self) -> dict[str, Any]:
        return {"table": self.table, "members": self.members, "seed": self.seed, "level": self.fixed_level,
                "log_target": self.fixed_log}

    def feature_names(self) -> list[str]:
        return self.features.names() if self.fitted else []

    def candidates(self) -> list[tuple[str, bool]]:
        levels = [self.fixed_level] if self.fixed_level else [
            lv for lv in LEVELS if lv != "pairs" or self.space.encoding_size() <= PAIRS_MAX_ENCODING]
        logs = [self.fixed_log] if self.fixed_log is not None else [False, True]
        return [(lv, lg) for lv in levels for lg in logs]

    def _cv_mape(self, level: str, log: bool, idx: np.ndarray, y: np.ndarray, folds: int = 5) -> float:
        X = Features(self.space, self.latency, level).transform(idx)
        perm = np.random.default_rng(self.seed).permutation(len(y))
        errors = []
        for f in range(folds):
            test = perm[f::folds]
            train = np.setdiff1d(perm, test)
            mean, scale = X[train].mean(axis=0), X[train].std(axis=0)
            scale[scale == 0] = 1.0
            r = _ridge((X[train] - mean) / scale, np.log(y[train]) if log else y[train])
            p = r.predict((X[test] - mean) / scale)
            p = np.exp(p) if log else p
            errors.append(np.abs(p - y[test]) / y[test])
        return float(np.mean(np.concatenate(errors)))

    def _fit(self, idx: np.ndarray, y: np.ndarray) -> None:
        from sklearn.linear_model import Ridge

        if self.table is not None:
            self.latency = latency_options(self.space, self.table)
            self.meta.setdefault("device", self.table.header["device"])
        options = self.candidates()
        if len(options) > 1 and len(y) >= 25:
            scores = {c: self._cv_mape(*c, idx, y) for c in options}
            self.level, self.log_target = min(scores, key=scores.get)
            self.meta["selection"] = {f"{lv}/{'log' if lg else 'linear'}": round(100 * s, 3)
                                      for (lv, lg), s in scores.items()}
        else:
            self.level, self.log_target = options[0]
        self.features = Features(self.space, self.latency, self.level)
        X = self.features.transform(idx)
        t = np.log(y) if self.log_target else y
        self.mean = X.mean(axis=0)
        self.scale = X.std(axis=0)
        self.scale[self.scale == 0] = 1.0
        Z = (X - self.mean) / self.scale
        self.alpha = float(_ridge(Z, t).alpha_)
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
        fitted = self.coefs is not None
        as_list = lambda a: a.tolist() if fitted else None  # noqa: E731
        return {"members": self.members, "seed": self.seed, "level": self.level, "log_target": self.log_target,
                "fixed_level": self.fixed_level, "fixed_log": self.fixed_log,
                "latency": self.latency.to_json() if self.latency is not None else None, "alpha": self.alpha,
                "mean": as_list(self.mean), "scale": as_list(self.scale), "coefs": as_list(self.coefs),
                "intercepts": as_list(self.intercepts)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.latency = OptionTable.from_json(state["latency"]) if state.get("latency") else None
        self.members, self.seed = state["members"], state["seed"]
        self.level, self.log_target = state["level"], state["log_target"]
        self.fixed_level, self.fixed_log = state.get("fixed_level"), state.get("fixed_log")
        self.table = None
        self.features = Features(self.space, self.latency, self.level)
        self.alpha = state.get("alpha")
        arr = lambda k: None if state.get(k) is None or state.get("unfitted") else np.array(state[k])  # noqa: E731
        self.mean, self.scale, self.coefs, self.intercepts = arr("mean"), arr("scale"), arr("coefs"), arr("intercepts")


PREDICTORS.register("learned", LearnedPredictor)
