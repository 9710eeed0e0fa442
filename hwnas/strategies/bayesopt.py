"""Bayesian optimisation with a Gaussian process over architectures (NASBOT's idea, Kandasamy
et al. 2018: a kernel from a distance between networks, and expected improvement).

The distance is the architecture object's own: two architectures are as far apart as the
decisions in which they differ (the squared distance of their one-hot encodings,
``SearchSpace.encode``, is twice that count), and the kernel is a Matérn 5/2 on it with
a learned length scale and noise (scikit-learn's ``GaussianProcessRegressor`` on every
trial told, rewards normalised; the hyperparameters refitted every ``refit_every`` trials). The first ``initial`` architectures are random.
After them each proposal maximises expected improvement over the best reward so far,
EI = (μ - best - ξ) Φ(z) + σ φ(z), among ``pool`` random unseen architectures and every
unseen neighbour (one decision changed) of the ``top`` best ones: mutation-based
acquisition optimisation, as BANANAS does it. Several asked at once take the best EIs
in turn. Under a hard budget the EI is weighted by the probability that the budget lets a
candidate through (:func:`hwnas.strategies.surrogate.feasibility`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from hwnas.errors import HwnasError
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies.base import register_strategy
from hwnas.strategies.surrogate import ModelBased, candidates as candidates_of, feasibility, history_xy


def expected_improvement(mu: np.ndarray, sigma: np.ndarray, best: float, xi: float) -> np.ndarray:
    from scipy.stats import norm

    sigma = np.maximum(sigma, 1e-12)
    z = (mu - best - xi) / sigma
    return (mu - best - xi) * norm.cdf(z) + sigma * norm.pdf(z)


@register_strategy
class GaussianProcessBO(ModelBased):
    name = "gp"

    def __init__(self, space: SearchSpace, seed: int = 0, initial: int = 10, pool: int = 1000, top: int = 10,
                 xi: float = 0.0, refit_every: int = 10) -> None:
        super().__init__(space, seed)
        if initial < 1 or pool < 1 or top < 0 or xi < 0 or refit_every < 1:
            raise HwnasError("gp needs initial >= 1, pool >= 1, top >= 0, xi >= 0 and refit_every >= 1")
        self.initial, self.pool, self.top, self.xi = int(initial), int(pool), int(top), float(xi)
        self.refit_every = int(refit_every)
        #: the kernel's fitted hyperparameters (log scale) and at how many trials they were fitted
        self.theta: list[float] | None = None
        self.fitted_at = 0

    def params(self) -> dict[str, Any]:
        return {"initial": self.initial, "pool": self.pool, "top": self.top, "xi": self.xi,
                "refit_every": self.refit_every}

    def ask(self, n: int = 1) -> list[Arch]:
        if self.scored() < self.initial:
            return [self.fresh(self.random_arch) for _ in range(n)]
        candidates = candidates_of(self.rng, self.sizes, self.seen, self.history, self.pool, self.top)
        out = []
        if len(candidates):
            ei = self._acquisition(candidates)
            for j in np.argsort(-ei, kind="stable")[:n]:
                arch = self.space.from_indices(candidates[int(j)].tolist())
                self.seen.add(arch.indices())
                out.append(arch)
        return out + [self.fresh(self.random_arch) for _ in range(n - len(out))]

    def _acquisition(self, candidates: np.ndarray) -> np.ndarray:
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

        idx, y = history_xy(self.history)
        x = self.space.encode_indices(idx)
        kernel = ConstantKernel(1.0) * Matern(length_scale=2.0, length_scale_bounds=(0.1, 100.0), nu=2.5) \
            + WhiteKernel(1e-3, (1e-6, 1e-1))
        # the hyperparameters are fitted anew every refit_every trials (the fit is most of the
        # cost of a proposal); in between the posterior is updated with them as they are
        refit = self.theta is None or len(self.history) - self.fitted_at >= self.refit_every
        if not refit:
            kernel = kernel.clone_with_theta(np.array(self.theta))
        gp = GaussianProcessRegressor(kernel, normalize_y=True, optimizer="fmin_l_bfgs_b" if refit else None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bounds reached on tiny histories
            gp.fit(x, y)
        if refit:
            self.theta, self.fitted_at = [float(v) for v in gp.kernel_.theta], len(self.history)
        mu, sigma = gp.predict(self.space.encode_indices(candidates), return_std=True)
        return expected_improvement(mu, sigma, float(y.max()), self.xi) * feasibility(self.space, self.history,
                                                                                      candidates)

    def _model_state(self) -> dict[str, Any]:
        return {"theta": self.theta, "fitted_at": self.fitted_at}

    def _model_load(self, state: dict[str, Any]) -> None:
        self.theta, self.fitted_at = state["theta"], int(state["fitted_at"])
