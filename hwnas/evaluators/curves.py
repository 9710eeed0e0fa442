"""Learning-curve extrapolation (Domhan, Springenberg & Hutter, IJCAI 2015).

A partial learning curve (validation accuracy after epochs 1..n) is fitted by every
parametric family of the paper's set that it has enough points for (more points than
parameters), by bounded least squares (scipy). Each fit predicts the accuracy at the final
epoch T with a Gaussian: its mean is the curve at T, its variance the residual variance
(floored at the evaluation noise) plus the parameter uncertainty carried to T (the fit's
covariance through the curve's gradient). The families are combined by Akaike weights, so
the prediction is a mixture; the paper's MCMC over the combination is replaced by this
closed form, which costs milliseconds per fit.

``probability_above(T, y)`` is what early stopping asks: the chance that the run, trained to
T, ends above ``y`` (the best accuracy so far).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.stats import norm

from hwnas.errors import HwnasError


@dataclass(frozen=True)
class Family:
    f: Callable[..., np.ndarray]
    p0: tuple[float, ...]
    lower: tuple[float, ...]
    upper: tuple[float, ...]

    @property
    def k(self) -> int:
        return len(self.p0)


def _pow3(x, c, a, alpha):
    return c - a * x ** (-alpha)


def _log_linear(x, a, b):
    return a * np.log(x) + b


def _exp3(x, c, a, b):
    return c - np.exp(-a * x + b)


def _janoschek(x, alpha, beta, kappa, delta):
    return alpha - (alpha - beta) * np.exp(-kappa * x ** delta)


def _vapor_pressure(x, a, b, c):
    return np.exp(a + b / x + c * np.log(x))


def _mmf(x, alpha, beta, kappa, delta):
    return alpha - (alpha - beta) / (1.0 + (kappa * x) ** delta)


def _weibull(x, alpha, beta, kappa, delta):
    return alpha - (alpha - beta) * np.exp(-(kappa * x) ** delta)


def _ilog2(x, c, a):
    return c - a / np.log(x + 1.0)


def _pow4(x, c, a, b, alpha):
    return c - (a * x + b) ** (-alpha)


INF = np.inf
FAMILIES: dict[str, Family] = {
    "pow3": Family(_pow3, (0.9, 0.5, 0.5), (0.0, 0.0, 0.0), (1.5, 10.0, 10.0)),
    "log_linear": Family(_log_linear, (0.1, 0.5), (-INF, -INF), (INF, INF)),
    "exp3": Family(_exp3, (0.9, 0.5, 0.0), (0.0, 0.0, -20.0), (1.5, 10.0, 20.0)),
    "janoschek": Family(_janoschek, (0.9, 0.1, 0.5, 1.0), (0.0, -1.0, 0.0, 0.0), (1.5, 1.5, 10.0, 5.0)),
    "vapor_pressure": Family(_vapor_pressure, (-0.1, -0.5, 0.0), (-10.0, -10.0, -5.0), (5.0, 10.0, 5.0)),
    "mmf": Family(_mmf, (0.9, 0.1, 0.5, 1.0), (0.0, -1.0, 0.0, 0.0), (1.5, 1.5, 10.0, 10.0)),
    "weibull": Family(_weibull, (0.9, 0.1, 0.5, 1.0), (0.0, -1.0, 0.0, 0.0), (1.5, 1.5, 10.0, 10.0)),
    "ilog2": Family(_ilog2, (0.9, 0.5), (0.0, 0.0), (1.5, 10.0)),
    "pow4": Family(_pow4, (0.9, 0.5, 0.5, 0.5), (0.0, 0.0, 0.0, 0.0), (1.5, 10.0, 10.0, 10.0)),
}
"""The curve families of Domhan et al. (their Table 1, less the ones that need more points
than a short search gives: dr_hill, log_power and the like behave as these do)."""


@dataclass(frozen=True)
class Fit:
    family: str
    params: np.ndarray
    cov: np.ndarray
    sse: float
    n: int


class CurveExtrapolation:
    """The mixture of curve families fitted to one partial learning curve."""

    def __init__(self, families: Sequence[str] | None = None, noise: float = 0.01) -> None:
        """``noise``: the standard deviation of one accuracy evaluation (a residual floor: a
        curve through every point is not certain of the next)."""
        names = list(families or FAMILIES)
        unknown = [n for n in names if n not in FAMILIES]
        if unknown:
            raise HwnasError(f"unknown curve families {unknown}; use some of {', '.join(FAMILIES)}")
        self.names, self.noise = names, noise
        self.fits: list[Fit] = []

    def fit(self, epochs: Sequence[float], accuracy: Sequence[float]) -> "CurveExtrapolation":
        x = np.asarray(epochs, dtype=np.float64)
        y = np.asarray(accuracy, dtype=np.float64)
        if len(x) != len(y) or len(x) < 2 or np.any(x <= 0):
            raise HwnasError("a learning curve needs two or more (epoch >= 1, accuracy) points")
        self.fits = []
        for name in self.names:
            fam = FAMILIES[name]
            if len(x) <= fam.k:
                continue
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore", OptimizeWarning)
                    p, cov = curve_fit(fam.f, x, y, p0=fam.p0, bounds=(fam.lower, fam.upper), maxfev=2000)
            except (RuntimeError, ValueError):
                continue
            residual = fam.f(x, *p) - y
            if not np.all(np.isfinite(residual)) or not np.all(np.isfinite(cov)):
                continue
            self.fits.append(Fit(name, p, cov, float(residual @ residual), len(x)))
        return self

    def _weights(self) -> np.ndarray:
        floor = self.noise ** 2
        aic = np.array([f.n * math.log(max(f.sse / f.n, floor)) + 2 * FAMILIES[f.family].k for f in self.fits])
        w = np.exp(-(aic - aic.min()) / 2)
        return w / w.sum()

    def components(self, t: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(weights, means, standard deviations) of the mixture's Gaussians at epoch ``t``."""
        if not self.fits:
            raise HwnasError("no curve family could be fitted; give more epochs of the learning curve")
        means, stds = [], []
        for fit in self.fits:
            fam = FAMILIES[fit.family]
            m = float(fam.f(np.float64(t), *fit.params))
            grad = np.zeros(fam.k)
            for i in range(fam.k):
                h = 1e-6 * max(1.0, abs(fit.params[i]))
                p = fit.params.copy()
                p[i] += h
                grad[i] = (float(fam.f(np.float64(t), *p)) - m) / h
            dof = max(fit.n - fam.k, 1)
            var = max(fit.sse / dof, self.noise ** 2) + max(float(grad @ fit.cov @ grad), 0.0)
            means.append(min(max(m, 0.0), 1.0) if np.isfinite(m) else 0.0)
            stds.append(math.sqrt(var) if np.isfinite(var) else 1.0)
        return self._weights(), np.array(means), np.array(stds)

    def predict(self, t: float) -> tuple[float, float]:
        """The mixture's mean and standard deviation at epoch ``t``."""
        w, m, s = self.components(t)
        mean = float(w @ m)
        return mean, float(math.sqrt(max(w @ (s ** 2 + m ** 2) - mean ** 2, 0.0)))

    def probability_above(self, t: float, y: float) -> float:
        """P(accuracy at epoch ``t`` > ``y``)."""
        w, m, s = self.components(t)
        return float(w @ norm.sf(y, loc=m, scale=s))
