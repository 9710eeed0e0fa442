"""The ``learned`` predictor: a bagged ensemble of ridge regressions on features
derived from the architecture object, trained on measured whole networks.

How much to learn depends on the device: a phone's noisy whole-millisecond timings are
best fitted by how often each operation occurs, a GPU's by which operation sits where
and beside what, and a runtime that removes dead code runs only the live operations. So
``fit`` picks the feature level (``ops``: the plain per-operation linear model, ``counts``,
``onehot``, ``pairs``; see :class:`~hwnas.predictors.features.Features`), the target
(latency, or log latency) and the graph (as written, or live) by 5-fold cross-validation
on the mean of out-of-fold Spearman and share within ±10 % (not a mean error, which a
few tiny latencies would decide), recording the chosen and the runner-up in ``meta``,
then fits the ensemble; the members' spread is
the uncertainty. Ridge keeps prediction one matrix product and the model plain numbers
in JSON.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hwnas.predictors.base import PREDICTORS, Predictor
from hwnas.predictors.features import GRAPHS, LEVELS, Features, latency_options
from hwnas.predictors.errors import MIN_CALIBRATION_ROWS, error_std, fit_error_model
from hwnas.predictors.metrics import metrics
from hwnas.spaces.option_table import cost_from_json
from hwnas.spaces.base import SearchSpace

ALPHAS = np.logspace(-4, 4, 17)
PAIRS_MAX_ENCODING = 64
"""Pairwise interactions only for spaces whose one-hot encoding is at most this long."""


def _ridge(Z: np.ndarray, t: np.ndarray) -> Any:
    from sklearn.linear_model import RidgeCV

    return RidgeCV(alphas=ALPHAS).fit(Z, t)


def _standardisation(X: np.ndarray, level: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and scale; none for ``ops``, so that level is exactly the ridge
    regression on one-hot operations it stands for."""
    if level == "ops":
        return np.zeros(X.shape[1]), np.ones(X.shape[1])
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


def _score(m: dict[str, Any]) -> float:
    return (m["spearman"] + m["pct_within_10pct"] / 100) / 2


class LearnedPredictor(Predictor):
    kind = "learned"

    def __init__(self, space: SearchSpace, table: Any = None, *, members: int = 5, seed: int = 0,
                 level: str | None = None, log_target: bool | None = None) -> None:
        super().__init__(space)
        self.table, self.members, self.seed = table, members, seed
        self.fixed_level, self.fixed_log = level, log_target
        self.latency: Any = None
        self.level, self.log_target, self.graph = level or "onehot", bool(log_target), "written"
        self.mean = self.scale = self.coefs = self.intercepts = None
        self.alpha: float | None = None
        self.noise: dict[str, Any] | None = None

    @classmethod
    def create(cls, space: SearchSpace, table: Any = None) -> "LearnedPredictor":
        return cls(space, table)

    def params(self) -> dict[str, Any]:
        return {"table": self.table, "members": self.members, "seed": self.seed, "level": self.fixed_level,
                "log_target": self.fixed_log}

    def feature_names(self) -> list[str]:
        return self.features.names() if self.fitted else []

    def candidates(self) -> list[tuple[str, bool, str]]:
        """(feature level, log target, graph) triples, simplest first: ties go to the simpler."""
        levels = [self.fixed_level] if self.fixed_level else [
            lv for lv in LEVELS if lv != "pairs" or self.space.encoding_size() <= PAIRS_MAX_ENCODING]
        logs = [self.fixed_log] if self.fixed_log is not None else [False, True]
        graphs = list(GRAPHS) if self.space.has_dead_ops else ["written"]
        return [(lv, lg, gr) for gr in graphs for lv in levels for lg in logs]

    def _out_of_fold(self, level: str, log: bool, graph: str, idx: np.ndarray, y: np.ndarray,
                     folds: int = 5) -> tuple[np.ndarray, list[float]]:
        """One candidate's out-of-fold predictions, and its score on each fold."""
        X = Features(self.space, self.latency, level, graph).transform(idx)
        perm = np.random.default_rng(self.seed).permutation(len(y))
        predicted = np.empty(len(y))
        per_fold = []
        for f in range(folds):
            test = perm[f::folds]
            train = np.setdiff1d(perm, test)
            mean, scale = _standardisation(X[train], level)
            r = _ridge((X[train] - mean) / scale, np.log(y[train]) if log else y[train])
            p = r.predict((X[test] - mean) / scale)
            predicted[test] = np.maximum(np.exp(p) if log else p, 1e-6)
            per_fold.append(_score(metrics(predicted[test], y[test])))
        return predicted, per_fold

    def _cv_score(self, level: str, log: bool, graph: str, idx: np.ndarray, y: np.ndarray,
                  folds: int = 5) -> dict[str, float]:
        """Out-of-fold predictions of one candidate, scored by what a search needs: rank
        correlation and the share within ±10 % (a mean error would let a few tiny latencies
        decide). ``score`` is their mean, both as fractions; ``se`` its standard error over
        the folds."""
        predicted, per_fold = self._out_of_fold(level, log, graph, idx, y, folds)
        m = metrics(predicted, y)
        return {"spearman": round(m["spearman"], 4), "pct_within_10pct": round(m["pct_within_10pct"], 2),
                "score": round(_score(m), 4), "se": round(float(np.std(per_fold) / np.sqrt(folds)), 4)}

    @staticmethod
    def _select(options: list[tuple[str, bool, str]], scores: dict) -> list[tuple[str, bool, str]]:
        """Candidates best first, except that the first (simplest) candidate within one
        standard error of the best goes first: a richer model must win by more than the
        folds disagree (the one-standard-error rule)."""
        best = max(options, key=lambda c: scores[c]["score"])
        bar = scores[best]["score"] - scores[best]["se"]
        chosen = next(c for c in options if scores[c]["score"] >= bar)
        rest = sorted((c for c in options if c != chosen), key=lambda c: -scores[c]["score"])
        return [chosen] + rest

    def _fit(self, idx: np.ndarray, y: np.ndarray) -> None:
        from sklearn.linear_model import Ridge

        if self.table is not None:
            self.latency = latency_options(self.space, self.table)
            self.meta.setdefault("device", self.table.header["device"])
        options = self.candidates()
        if len(options) > 1 and len(y) >= 25:
            scores = {c: self._cv_score(*c, idx, y) for c in options}
            ranked = self._select(options, scores)
            self.level, self.log_target, self.graph = ranked[0]
            name = lambda c: f"{c[0]}/{'log' if c[1] else 'linear'}/{c[2]}"  # noqa: E731
            self.meta["selection"] = {"criterion": "mean of out-of-fold Spearman and share within 10 %; the "
                                                   "simplest candidate within one standard error of the best",
                                      "chosen": name(ranked[0]), "runner_up": name(ranked[1]),
                                      "candidates": {name(c): scores[c] for c in options}}
        else:
            self.level, self.log_target, self.graph = options[0]
        self.features = Features(self.space, self.latency, self.level, self.graph)
        X = self.features.transform(idx)
        t = np.log(y) if self.log_target else y
        self.mean, self.scale = _standardisation(X, self.level)
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
        self.noise = None
        if len(y) >= MIN_CALIBRATION_ROWS:
            predicted, _ = self._out_of_fold(self.level, self.log_target, self.graph, idx, y)
            self.noise = fit_error_model(predicted, y)

    def _members(self, idx: np.ndarray) -> np.ndarray:
        Z = (self.features.transform(idx) - self.mean) / self.scale
        out = Z @ self.coefs.T + self.intercepts
        return np.exp(out) if self.log_target else out

    def _predict(self, idx: np.ndarray) -> np.ndarray:
        """The member fitted on every row; the bootstrap members only measure the spread."""
        return np.maximum(self._members(idx)[:, 0], 1e-6)

    @property
    def std_calibrated(self) -> bool:
        return self.noise is not None

    def error_std(self, predicted_ms: np.ndarray) -> np.ndarray | None:
        return None if self.noise is None else error_std(self.noise, np.asarray(predicted_ms, dtype=np.float64))

    def predict_std(self, archs: Any) -> np.ndarray:
        """The error model's standard deviation at each prediction (calibrated on the fit's
        out-of-fold errors), or the members' spread alone for a fit on too few rows."""
        self._require_fitted()
        members = self._members(self._indices(archs))
        if self.noise is None:
            return members.std(axis=1)
        return error_std(self.noise, np.maximum(members[:, 0], 1e-6))

    def state(self) -> dict[str, Any]:
        fitted = self.coefs is not None
        as_list = lambda a: a.tolist() if fitted else None  # noqa: E731
        return {"members": self.members, "seed": self.seed, "level": self.level, "log_target": self.log_target,
                "graph": self.graph,
                "fixed_level": self.fixed_level, "fixed_log": self.fixed_log,
                "latency": self.latency.to_json() if self.latency is not None else None, "alpha": self.alpha,
                "mean": as_list(self.mean), "scale": as_list(self.scale), "coefs": as_list(self.coefs),
                "intercepts": as_list(self.intercepts), "noise": self.noise}

    def set_state(self, state: dict[str, Any]) -> None:
        self.latency = cost_from_json(self.space, state["latency"]) if state.get("latency") else None
        self.members, self.seed = state["members"], state["seed"]
        self.level, self.log_target = state["level"], state["log_target"]
        self.graph = state.get("graph", "written")  # predictors saved before the live graph existed
        self.fixed_level, self.fixed_log = state.get("fixed_level"), state.get("fixed_log")
        self.table = None
        self.features = Features(self.space, self.latency, self.level, self.graph)
        self.alpha = state.get("alpha")
        arr = lambda k: None if state.get(k) is None or state.get("unfitted") else np.array(state[k])  # noqa: E731
        self.mean, self.scale, self.coefs, self.intercepts = arr("mean"), arr("scale"), arr("coefs"), arr("intercepts")
        self.noise = state.get("noise")  # None in predictors saved before the error model existed


PREDICTORS.register("learned", LearnedPredictor)
