"""The ``bayes`` transfer predictor: a new device's per-operation latency model, with a
prior learned from the source devices and a posterior fitted on the K target shots.

Latency is additive over operations: y = w0 + sum over decisions of w[decision, option].
Each source device's w (a ridge fit on its measurements), divided by its mean latency, is
one draw of "what a device looks like"; the prior on a new device's w is a Gaussian with
the draws' mean and covariance (what devices share and how they vary), plus an
independent term of relative size ``jitter`` on every weight (so a device unlike every
source can still move each weight). The K shots set the device's overall scale and then
the Bayesian linear-regression posterior, with Gaussian noise of relative size
``noise``. With few shots the posterior stays near what the sources agree on; with more
it follows the device. ``jitter`` is chosen when the prior is built, by transferring to each source
in turn from the others (leave one source out), for each shot count in
:data:`SHOT_BUCKETS`; the device's ``noise`` by the shots' marginal likelihood. Nothing is
tuned on the target's held-out cells.

``suggest(k)`` picks the architectures whose latency the prior is least sure of,
greedily (each pick shrinks the uncertainty of the next): the shots that teach most.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from hwnas.errors import HwnasError
from hwnas.files import read_json, write_json
from hwnas.paths import REPO_ROOT, cache_dir
from hwnas.predictors.base import PREDICTORS, Predictor
from hwnas.spaces.base import SearchSpace

JITTERS = (0.01, 0.02, 0.05, 0.1, 0.2)
NOISES = (0.01, 0.02, 0.05, 0.1)
SHOT_BUCKETS = (5, 10, 20, 50)
DEFAULT_HYPER = (0.05, 0.05)
"""(jitter, noise) when there are too few sources to choose (fewer than 3)."""


def design(space: SearchSpace, idx: np.ndarray) -> np.ndarray:
    """An intercept and the one-hot operation of every decision."""
    return np.hstack([np.ones((len(idx), 1)), space.encode_indices(idx).astype(np.float64)])


def _ridge(X: np.ndarray, y: np.ndarray, lam: float = 1e-3) -> np.ndarray:
    return np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ y)


def _moments(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, covariance (across devices) and the per-weight scale of the jitter term."""
    mu = weights.mean(axis=0)
    d = weights - mu
    cov = d.T @ d / max(len(weights) - 1, 1)
    return mu, cov, np.diag(mu ** 2 + 1e-4)


def _scaled_prior(mu: np.ndarray, cov: np.ndarray, diag: np.ndarray, X: np.ndarray, y: np.ndarray,
                  jitter: float) -> tuple[float, np.ndarray]:
    """The device's speed (the shots against the prior mean) and the prior covariance in ms."""
    base = X @ mu
    scale = float(y @ base / (base @ base)) if base @ base > 0 else float(np.mean(y))
    return scale, scale ** 2 * (cov + jitter ** 2 * diag)


def _posterior(mu: np.ndarray, cov: np.ndarray, diag: np.ndarray, X: np.ndarray, y: np.ndarray, jitter: float,
               noise: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(posterior mean, posterior covariance, noise variance, scale) of the weights in ms."""
    scale, prior_cov = _scaled_prior(mu, cov, diag, X, y, jitter)
    s2 = float((noise * np.mean(y)) ** 2) + 1e-12
    post_cov = np.linalg.inv(np.linalg.inv(prior_cov) + X.T @ X / s2)
    post_mean = post_cov @ (np.linalg.solve(prior_cov, scale * mu) + X.T @ y / s2)
    return post_mean, post_cov, s2, scale


def _evidence(mu: np.ndarray, cov: np.ndarray, diag: np.ndarray, X: np.ndarray, y: np.ndarray, jitter: float,
              noise: float) -> float:
    """Log marginal likelihood of the shots: how likely they are under the prior with this
    measurement noise (the device's own noise: a phone timed in whole milliseconds is
    noisier than a GPU)."""
    scale, prior_cov = _scaled_prior(mu, cov, diag, X, y, jitter)
    c = X @ prior_cov @ X.T + (noise * np.mean(y)) ** 2 * np.eye(len(y))
    r = y - scale * (X @ mu)
    return float(-0.5 * (r @ np.linalg.solve(c, r) + np.linalg.slogdet(c)[1]))


class DevicePrior:
    """The source devices' normalised per-operation weights and the chosen (jitter, noise)."""

    def __init__(self, names: list[str], weights: np.ndarray, hyper: dict[int, tuple[float, float]],
                 source_sha256: str = "") -> None:
        if len(names) != len(weights) or not names:
            raise HwnasError("a device prior needs one weight vector per source device, and at least one")
        self.names, self.weights = list(names), np.asarray(weights)
        self.hyper, self.source_sha256 = hyper, source_sha256

    @classmethod
    def fit(cls, space: SearchSpace, idx: np.ndarray, columns: dict[str, np.ndarray], seed: int = 0,
            source_sha256: str = "") -> "DevicePrior":
        X = design(space, idx)
        names = list(columns)
        weights = np.stack([_ridge(X, np.asarray(columns[n])) / float(np.mean(columns[n])) for n in names])
        hyper = {k: cls._choose(X, weights, [np.asarray(columns[n]) for n in names], k, seed) for k in SHOT_BUCKETS}
        return cls(names, weights, hyper, source_sha256)

    @staticmethod
    def _choose(X: np.ndarray, weights: np.ndarray, ys: list[np.ndarray], k: int, seed: int) -> tuple[float, float]:
        """The (jitter, noise) that transfer best, by Spearman, from the other sources to each
        source in turn with ``k`` random shots."""
        if len(weights) < 3:
            return DEFAULT_HYPER
        rng = np.random.default_rng(seed)
        grid = list(itertools.product(JITTERS, NOISES))
        score = np.zeros(len(grid))
        check = rng.choice(len(X), min(len(X), 3000), replace=False)
        for t in range(len(weights)):
            mu, cov, diag = _moments(np.delete(weights, t, axis=0))
            shots = rng.choice(len(X), min(k, len(X)), replace=False)
            for g, (jitter, noise) in enumerate(grid):
                w = _posterior(mu, cov, diag, X[shots], ys[t][shots], jitter, noise)[0]
                score[g] += np.nan_to_num(spearmanr(X[check] @ w, ys[t][check]).statistic)
        return grid[int(np.argmax(score))]

    def only(self, names: list[str]) -> "DevicePrior":
        """The prior of these sources (the others left out, e.g. the target)."""
        missing = sorted(set(names) - set(self.names))
        if missing:
            raise HwnasError(f"the device prior has no source(s) {', '.join(missing)}; it has "
                             f"{', '.join(self.names)}")
        keep = [self.names.index(n) for n in names]
        return DevicePrior(list(names), self.weights[keep], self.hyper, self.source_sha256)

    def hyper_for(self, k: int) -> tuple[float, float]:
        bucket = min(self.hyper, key=lambda b: (abs(np.log(b / max(k, 1))), b))
        return self.hyper[bucket]

    def to_json(self) -> dict[str, Any]:
        return {"names": self.names, "weights": self.weights.tolist(), "source_sha256": self.source_sha256,
                "hyper": {str(k): list(v) for k, v in self.hyper.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DevicePrior":
        return cls(list(data["names"]), np.array(data["weights"], dtype=np.float64),
                   {int(k): (float(v[0]), float(v[1])) for k, v in data["hyper"].items()},
                   data.get("source_sha256", ""))


def source_sha256(path: str | Path, space: SearchSpace) -> str:
    """What a stored prior is keyed by: the source file's bytes and the space."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    h.update(repr((space.name, space.preset, space.skeleton())).encode())
    return h.hexdigest()


SHIPPED = REPO_ROOT / "latency_tables"


def prior_for(space: SearchSpace, path: str | Path) -> tuple[DevicePrior, str]:
    """The prior of every latency column of the CSV at ``path``, and where it came from:
    ``shipped`` (``latency_tables/*.prior.json``, for the NAS-Bench-201 devices), ``cached``
    (``$HWNAS_CACHE_DIR/priors/SHA256.json``) or ``fitted`` (now, then cached). Keyed by the
    file's SHA-256, so an edited file is fitted again."""
    from hwnas.predictors.data import read_latency_csv

    key = source_sha256(path, space)
    for shipped in sorted(SHIPPED.glob("*.prior.json")):
        data = read_json(shipped, "device prior", "ship it with tools/fit_shipped_predictors.sh")
        if data.get("source_sha256") == key:
            return DevicePrior.from_json(data), f"shipped ({shipped.name})"
    root = cache_dir()
    cached = root / "priors" / f"{key}.json" if root is not None else None
    if cached is not None and cached.is_file():
        try:
            return DevicePrior.from_json(read_json(cached, "cached device prior", "delete it")), "cached"
        except (HwnasError, KeyError, ValueError, TypeError):
            pass  # a damaged cache entry is fitted again
    data, cols = read_latency_csv(str(path))
    idx = space.index_matrix(data.archs_in(space))
    prior = DevicePrior.fit(space, idx, {c: data.column(c) for c in cols}, source_sha256=key)
    if cached is not None:
        try:
            write_json(cached, prior.to_json())
        except OSError:
            pass  # a read-only cache only costs time
    return prior, "fitted"


class BayesTransferPredictor(Predictor):
    kind = "bayes"
    fittable = False  # needs a device prior: 'hwnas predictor transfer'

    def __init__(self, space: SearchSpace, prior: DevicePrior) -> None:
        super().__init__(space)
        self.prior = prior
        self.w: np.ndarray | None = None
        self.cov: np.ndarray | None = None
        self.s2 = 0.0

    def params(self) -> dict[str, Any]:
        return {"prior": self.prior}

    def _fit(self, idx: np.ndarray, y: np.ndarray) -> None:
        if len(y) < 2:
            raise HwnasError("transfer needs at least 2 target measurements")
        jitter, _ = self.prior.hyper_for(len(y))
        mu, cov, diag = _moments(self.prior.weights)
        X = design(self.space, idx)
        noise = max(NOISES, key=lambda n: _evidence(mu, cov, diag, X, y, jitter, n))
        self.w, self.cov, self.s2, scale = _posterior(mu, cov, diag, X, y, jitter, noise)
        self.meta.update({"jitter": jitter, "noise": noise, "scale": scale, "sources": self.prior.names})

    def _predict(self, idx: np.ndarray) -> np.ndarray:
        return np.maximum(design(self.space, idx) @ self.w, 1e-6)

    @property
    def std_calibrated(self) -> bool:
        return True  # the posterior's std with the device's noise (coverage in tools.bench_predictors)

    def predict_std(self, archs: Any) -> np.ndarray:
        self._require_fitted()
        X = design(self.space, self._indices(archs))
        return np.sqrt(np.einsum("ij,jk,ik->i", X, self.cov, X) + self.s2)

    def suggest(self, k: int, pool: np.ndarray) -> np.ndarray:
        """Rows of ``pool`` (an index matrix) to measure first: greedily, the one whose
        latency the prior (or the posterior so far) is least sure of."""
        mu, cov, diag = _moments(self.prior.weights)
        jitter, _ = self.prior.hyper_for(k)
        P = cov + jitter ** 2 * diag
        X = design(self.space, pool)
        chosen: list[int] = []
        for _ in range(min(k, len(pool))):
            var = np.einsum("ij,jk,ik->i", X, P, X)
            var[chosen] = -np.inf
            j = int(np.argmax(var))
            chosen.append(j)
            Px = P @ X[j]
            P = P - np.outer(Px, Px) / (X[j] @ Px + (0.05 * float(X[j] @ mu)) ** 2 + 1e-12)
        return np.array(chosen, dtype=np.int64)

    def fit(self, archs: Any, y_ms: Any, **kw: Any) -> "Predictor":
        return super().fit(archs, y_ms, **{**kw, "validate": False})

    def state(self) -> dict[str, Any]:
        return {"prior": self.prior.to_json(), "w": None if self.w is None else self.w.tolist(),
                "cov": None if self.cov is None else self.cov.tolist(), "s2": self.s2}

    def set_state(self, state: dict[str, Any]) -> None:
        self.prior = DevicePrior.from_json(state["prior"])
        self.w = None if state.get("w") is None else np.array(state["w"])
        self.cov = None if state.get("cov") is None else np.array(state["cov"])
        self.s2 = float(state.get("s2", 0.0))


PREDICTORS.register("bayes", BayesTransferPredictor)
