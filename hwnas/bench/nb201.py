"""Simulated black-box searches on NAS-Bench-201 (``hwnas bench nb201``).

Accuracy comes from the benchmark table; latency either from a device column of the
table (the true latency) or from a fitted predictor (what a real search would have).
Each run gets a seed; the result is the best test accuracy found (among candidates
that meet the budget by the latency the search sees), judged afterwards by the true
latency, beside the exact optimum of the table. With ``finalists`` the answer is instead
the best candidate that meets the budget when measured (here: the table's true latency
plays the device), measuring at most that many candidates per run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hwnas.errors import HwnasError
from hwnas.evaluators.tabular import TableLookup, nb201_accuracy, nb201_latency
from hwnas.spaces import get_space
from hwnas.predictors.base import screen_margin
from hwnas.strategies import STRATEGIES, Problem, get_reward, get_strategy, run
from hwnas.strategies.rewards import reward_name
from hwnas.target import Target
from hwnas.strategies.finalists import measure_finalists


@dataclass
class BenchConfig:
    strategy: str = "evolution"
    queries: int = 100
    runs: int = 50
    dataset: str = "cifar10"
    latency: str | None = None  # FILE:COLUMN (or a device COLUMN of nb201/latency_ms.csv): the true latency
    budget_ms: float | None = None
    predictor: Any = None  # a fitted predictor of the same device: the latency the search sees
    reward: str | None = None
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    margin: float | str = 0.0  # hard-budget screen: also evaluate up to (1 + margin) x budget ("auto": hold-out error)
    finalists: int = 0  # measure up to this many of the best candidates; answer the first meeting the budget
    min_chance: float = 0.2  # ... skipping those the predictor gives less chance of meeting it (calibrated predictors)


@dataclass
class BenchResult:
    config: BenchConfig
    best: list[float]
    true_latency_ms: list[float | None]
    curves: np.ndarray
    optimum: float
    seconds: float
    evaluations: int
    measurements: list[int] = field(default_factory=list)
    margin: float = 0.0
    over_budget_runs: list[bool] = field(default_factory=list)

    @property
    def over_budget(self) -> float:
        """The share of runs whose answer's true latency exceeds the budget (runs with no answer
        are counted in ``unanswered``)."""
        return float(np.mean(self.over_budget_runs)) if self.over_budget_runs else 0.0

    def worst_overshoot(self) -> float:
        """The largest true latency / budget - 1 among the returned architectures."""
        b = self.config.budget_ms
        lats = [x for x in self.true_latency_ms if x is not None]
        return 0.0 if b is None or not lats else max(0.0, max(lats) / b - 1)

    def to_json(self) -> dict[str, Any]:
        best = np.array(self.best)
        c = self.config
        return {"strategy": c.strategy, "dataset": c.dataset, "queries": c.queries, "runs": c.runs,
                "latency": c.latency, "budget_ms": c.budget_ms, "predictor": bool(c.predictor), "reward": c.reward,
                "mean": float(np.nanmean(best)) if np.isfinite(best).any() else float("nan"),
                "std": float(np.nanstd(best, ddof=1)) if np.isfinite(best).sum() > 1 else 0.0,
                "unanswered": float(np.mean(~np.isfinite(best))),
                "optimum": self.optimum, "over_budget": self.over_budget, "worst_overshoot": self.worst_overshoot(),
                "margin": self.margin, "finalists": c.finalists,
                "measurements_mean": float(np.mean(self.measurements)) if self.measurements else 0.0,
                "measurements_max": int(max(self.measurements)) if self.measurements else 0,
                "best": self.best, "true_latency_ms": self.true_latency_ms,
                "evaluations_per_s": self.evaluations / self.seconds if self.seconds else None}


def latency_lookup(space: Any, spec: str) -> TableLookup:
    """``FILE:COLUMN``, or just ``COLUMN`` of the shared nb201/latency_ms.csv."""
    path, sep, column = spec.rpartition(":")
    if not sep:
        return nb201_latency(space, spec)
    return TableLookup(space, path, column)


def run_bench(cfg: BenchConfig, progress: bool = True) -> BenchResult:
    space = get_space("nb201")
    acc = nb201_accuracy(space, cfg.dataset)
    true_lat: TableLookup | None = latency_lookup(space, cfg.latency) if cfg.latency else None
    if cfg.budget_ms is not None and true_lat is None:
        raise HwnasError("a budget needs a latency: --latency FILE:COLUMN (a device column of latency_ms.csv)")
    if cfg.predictor is not None and true_lat is None:
        raise HwnasError("--predictor needs --latency (the device whose true latency judges the result)")
    judge = Target(true_lat.column, true_lat, cfg.budget_ms) if true_lat is not None else None
    if cfg.budget_ms is not None:
        ok = judge.meets(true_lat.values)  # type: ignore[union-attr]
        if not ok.any():
            raise HwnasError(f"no architecture meets {cfg.budget_ms} ms on {cfg.latency}; the fastest takes "
                             f"{true_lat.values.min():.3f} ms")  # type: ignore[union-attr]
        optimum = float(acc.values[ok].max())
    else:
        optimum = float(acc.values.max())
    if cfg.finalists and cfg.budget_ms is None:
        raise HwnasError("--finalists measures candidates against a budget; give --budget-ms")
    reward = get_reward(reward_name(STRATEGIES[cfg.strategy], cfg.reward, cfg.budget_ms is not None))
    # a margin widens a budget, and the true latency needs none
    auto_exact = cfg.predictor is None and cfg.margin == "auto"
    margin = 0.0
    if not auto_exact and cfg.budget_ms is not None:
        margin = screen_margin(cfg.margin, cfg.predictor, cfg.budget_ms)
    if true_lat is not None:
        seen = Target(true_lat.column, cfg.predictor if cfg.predictor is not None else true_lat, cfg.budget_ms, margin)
    else:
        seen = Target("none", _NoLatency())
    problem = Problem([seen], acc, reward)
    best, lats, curves, measurements, over = [], [], [], [], []
    evaluations = 0
    t0 = time.perf_counter()
    for r in tqdm(range(cfg.runs), desc=f"nb201 {cfg.strategy}", unit="run", disable=not progress):
        strategy = get_strategy(cfg.strategy, space, seed=cfg.seed + r, **cfg.params)
        _, log = run(strategy, problem, cfg.queries)
        evaluations += len(log.trials)
        if cfg.finalists:
            column = true_lat.column  # type: ignore[union-attr]
            chosen, taken = measure_finalists(log, [seen], lambda a: {column: float(true_lat([a])[0])},
                                              cfg.finalists, cfg.min_chance)
            measurements.append(len(taken))
        else:
            chosen = log.best()
            chosen = chosen if chosen is not None and chosen.feasible else None
        if chosen is None:
            best.append(float("nan"))
            lats.append(None)
            over.append(False)
        else:
            best.append(float(acc([chosen.arch])[0]))
            lats.append(float(true_lat([chosen.arch])[0]) if true_lat is not None else None)
            over.append(judge is not None and not judge.meets(lats[-1]))
        curve = np.array(log.curve()[: cfg.queries], dtype=float)
        curves.append(np.pad(curve, (0, cfg.queries - len(curve)), constant_values=np.nan))
    seconds = time.perf_counter() - t0
    return BenchResult(cfg, [100 * b for b in best], lats, 100 * np.array(curves), 100 * optimum, seconds, evaluations,
                       measurements, margin, over)


class _NoLatency:
    """The latency model of a search without a device: accuracy alone is searched."""

    def predict(self, archs: Any) -> np.ndarray:
        return np.zeros(len(archs))


def plot_curves(results: list[BenchResult], path: str) -> None:
    from hwnas.plots import pyplot, save

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    for res in results:
        c = res.curves
        x = np.arange(1, c.shape[1] + 1)
        m = np.nanmean(c, axis=0)
        s = np.nanstd(c, axis=0)
        ax.plot(x, m, label=res.config.strategy)
        ax.fill_between(x, m - s, m + s, alpha=0.2)
    ax.axhline(results[0].optimum, color="k", ls="--", lw=0.8, label="optimum")
    ax.set_xlabel("queries")
    ax.set_ylabel(f"best test accuracy so far (%), {results[0].config.dataset}")
    lo = np.nanpercentile(np.concatenate([r.curves[:, -1] for r in results]), 1)
    ax.set_ylim(min(lo, results[0].optimum) - 1.0, results[0].optimum + 0.3)
    title = f"NAS-Bench-201, {results[0].config.queries} queries, {results[0].config.runs} runs"
    if results[0].config.budget_ms is not None:
        title += f"\nbudget {results[0].config.budget_ms:g} ms on {results[0].config.latency}"
    ax.set_title(title)
    ax.legend()
    save(fig, path)
