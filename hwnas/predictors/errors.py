"""How far a predictor's predictions are off: an error model fitted on out-of-fold errors.

A fitted predictor's own spread (bootstrap members, a posterior) says how unsure the fit
is, not how far a measurement lands from the prediction: a phone timed in whole
milliseconds is off by its rounding whatever the fit, a GPU by a few percent. So the
standard deviation a search uses is modelled on errors the predictor made on networks it
did not see (cross-validation): an absolute part (timer resolution, fixed overheads) and
a part proportional to the latency,

    std(p) = c * sqrt(a^2 + (s * p)^2),

``a`` and ``s`` fitted by maximum likelihood on the errors, and ``c`` chosen so that the
share of errors within one and two standard deviations comes as close as it can to a
normal distribution's 68 % and 95 % (errors of latency predictors have heavier tails than
a normal, so the likelihood's scale alone covers too much at one std and too little at two).
"""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_CALIBRATION_ROWS = 25
"""Fits on fewer rows keep the members' spread: five folds of fewer would say little."""

COVERAGE_GOAL = (0.68, 0.95)


def error_std(model: dict[str, Any], predicted_ms: np.ndarray) -> np.ndarray:
    p = np.asarray(predicted_ms, dtype=np.float64)
    return np.sqrt(model["abs_ms"] ** 2 + (model["rel"] * p) ** 2)


def coverage(predicted: np.ndarray, measured: np.ndarray, std: np.ndarray) -> tuple[float, float]:
    """The shares (percent) of measurements within one and two standard deviations."""
    z = np.abs(np.asarray(measured) - np.asarray(predicted)) / np.maximum(std, 1e-12)
    return float(100 * np.mean(z <= 1.0)), float(100 * np.mean(z <= 2.0))


def fit_error_model(predicted: np.ndarray, measured: np.ndarray) -> dict[str, Any]:
    """The error model of out-of-fold ``predicted`` against ``measured`` (both ms)."""
    from scipy.optimize import minimize

    p, y = np.asarray(predicted, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    e = y - p
    rel0 = max(float(np.std(e / p)), 1e-4)
    abs0 = max(float(np.median(np.abs(e))), 1e-6 * float(np.median(y)))

    def nll(theta: np.ndarray) -> float:
        var = np.exp(2 * theta[0]) + (np.exp(theta[1]) * p) ** 2
        return float(np.sum(0.5 * np.log(var) + e ** 2 / (2 * var)))

    theta = minimize(nll, np.log([abs0, rel0]), method="Nelder-Mead",
                     options={"xatol": 1e-4, "fatol": 1e-6, "maxiter": 2000}).x
    base = {"abs_ms": float(np.exp(theta[0])), "rel": float(np.exp(theta[1]))}
    std = error_std(base, p)
    factors = np.linspace(0.3, 3.0, 271)
    miss = [sum((c / 100 - g) ** 2 for c, g in zip(coverage(p, y, f * std), COVERAGE_GOAL)) for f in factors]
    c = float(factors[int(np.argmin(miss))])
    within1, within2 = coverage(p, y, c * std)
    return {"abs_ms": c * base["abs_ms"], "rel": c * base["rel"], "fitted_on": "out-of-fold errors",
            "pct_within_1std": round(within1, 1), "pct_within_2std": round(within2, 1)}
