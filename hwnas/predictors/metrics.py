"""Accuracy metrics of latency predictions. Every relative figure is in percent, and its key
says so (``mape_pct``, ``pct_within_10pct``: the percentage of predictions within ±10 %)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr


def metrics(predicted: np.ndarray, measured: np.ndarray) -> dict[str, Any]:
    p, y = np.asarray(predicted, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    if p.shape != y.shape or p.size == 0:
        raise ValueError("predicted and measured must be non-empty and of the same length")
    rel = np.abs(p - y) / np.abs(y)
    constant = np.ptp(p) == 0 or np.ptp(y) == 0
    return {
        "n": int(y.size),
        "mape_pct": float(rel.mean() * 100),
        "rmse_ms": float(np.sqrt(np.mean((p - y) ** 2))),
        "pct_within_5pct": float(100 * np.mean(rel <= 0.05 + 1e-12)),  # boundary inclusive despite rounding
        "pct_within_10pct": float(100 * np.mean(rel <= 0.10 + 1e-12)),
        "spearman": 0.0 if constant else float(spearmanr(p, y).statistic),
        "kendall": 0.0 if constant else float(kendalltau(p, y).statistic),
    }
