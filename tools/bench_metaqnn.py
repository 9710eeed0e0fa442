"""Does MetaQNN's agent learn on NAS-Bench-201, and which of its settings lift it above random?

Runs ``metaqnn`` on the tabular NAS-Bench-201 accuracies (no budget) under three settings:
the paper's (α = 0.01, raw reward), α = 0.1 with the raw reward, and hwnas's default
(α = 0.1, the reward replayed as its rank among those seen). For each it prints, like the
paper's figure of accuracy against ε, the mean accuracy of the cells proposed at each ε of
the schedule, then the accuracy of the agent's greedy cell (ε = 0) at the end and the best
cell found (mean ± standard error over runs), beside random search's best at the same queries.

    .venv/bin/python -m tools.bench_metaqnn [--queries 100] [--runs 200] [--dataset cifar10]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from tqdm import tqdm

from hwnas.cli.common import format_table
from hwnas.evaluators.tabular import nb201_accuracy
from hwnas.spaces import get_space
from hwnas.strategies import get_strategy
from hwnas.strategies.base import Trial

SETTINGS: dict[str, dict[str, Any]] = {
    "paper (α 0.01, raw)": {"learning_rate": 0.01, "reward_scale": "raw"},
    "α 0.1, raw": {"learning_rate": 0.1, "reward_scale": "raw"},
    "default (α 0.1, rank)": {"learning_rate": 0.1, "reward_scale": "rank"},
}


def _mean_se(values: list[float]) -> str:
    v = 100 * np.asarray(values)
    return f"{v.mean():.2f} ± {v.std() / np.sqrt(len(v)):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100", "imagenet16_120"])
    args = ap.parse_args()
    space = get_space("nb201")
    acc = nb201_accuracy(space, args.dataset)
    by_eps: dict[str, dict[float, list[float]]] = {}
    greedy: dict[str, list[float]] = {}
    best: dict[str, list[float]] = {}
    for label, params in SETTINGS.items():
        by_eps[label], greedy[label], best[label] = {}, [], []
        for seed in tqdm(range(args.runs), desc=label, unit="run"):
            agent = get_strategy("metaqnn", space, seed=seed, queries=args.queries, **params)
            found = []
            for _ in range(args.queries):
                eps = agent.epsilon
                arch = agent.ask(1)[0]
                value = float(acc([arch])[0])
                agent.tell([Trial(arch, value, value)])
                by_eps[label].setdefault(eps, []).append(value)
                found.append(value)
            greedy[label].append(float(acc([agent._walk(0.0)])[0]))
            best[label].append(max(found))
    random_best = [float(acc(get_strategy("random", space, seed=s).ask(args.queries)).max()) for s in range(args.runs)]
    labels = list(SETTINGS)
    eps_values = sorted(by_eps[labels[0]], reverse=True)
    rows = [[f"{e:.1f}", str(len(by_eps[labels[0]][e]))] + [f"{100 * np.mean(by_eps[k][e]):.2f}" for k in labels]
            for e in eps_values]
    print(f"NAS-Bench-201 {args.dataset}, {args.queries} queries, {args.runs} runs: mean accuracy (%) of the "
          "cells proposed at each ε")
    print(format_table(rows, ["ε", "cells"] + labels))
    rows = [["greedy cell (ε = 0) at the end"] + [_mean_se(greedy[k]) for k in labels],
            ["best found"] + [_mean_se(best[k]) for k in labels],
            ["random search, best found"] + [_mean_se(random_best)] * len(labels)]
    print(format_table(rows, [""] + labels))


if __name__ == "__main__":
    main()
