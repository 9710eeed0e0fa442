"""Does MetaQNN's agent learn on NAS-Bench-201, and why is its best cell no better than random's?

Runs ``metaqnn`` on the tabular NAS-Bench-201 accuracies (no budget) and prints, like the
paper's figure of accuracy against ε, the mean accuracy of the cells proposed at each ε of
the schedule, then the accuracy of the agent's greedy cell (ε = 0) at the end and the best
cell found, beside random search's best at the same queries.

    .venv/bin/python -m tools.bench_metaqnn [--queries 100] [--runs 30] [--dataset cifar10]
"""

from __future__ import annotations

import argparse

import numpy as np

from hwnas.cli.common import format_table
from hwnas.evaluators.tabular import nb201_accuracy
from hwnas.spaces import get_space
from hwnas.strategies import get_strategy
from hwnas.strategies.base import Trial


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100", "imagenet16_120"])
    args = ap.parse_args()
    space = get_space("nb201")
    acc = nb201_accuracy(space, args.dataset)
    by_eps: dict[float, list[float]] = {}
    greedy, best, random_best = [], [], []
    for seed in range(args.runs):
        agent = get_strategy("metaqnn", space, seed=seed, queries=args.queries)
        found = []
        for _ in range(args.queries):
            eps = agent.epsilon
            arch = agent.ask(1)[0]
            value = float(acc([arch])[0])
            agent.tell([Trial(arch, value, value)])
            by_eps.setdefault(eps, []).append(value)
            found.append(value)
        greedy.append(float(acc([agent._walk(0.0)])[0]))
        best.append(max(found))
        rand = get_strategy("random", space, seed=seed)
        random_best.append(float(acc(rand.ask(args.queries)).max()))
    rows = [[f"{e:.1f}", str(len(v)), f"{100 * np.mean(v):.2f}"] for e, v in sorted(by_eps.items(), reverse=True)]
    print(format_table(rows, ["ε", "cells", "mean accuracy %"]))
    for name, values in (("metaqnn greedy cell (ε = 0) at the end", greedy), ("metaqnn best found", best),
                         ("random search best found", random_best)):
        print(f"{name}: {100 * np.mean(values):.2f} ± {100 * np.std(values):.2f}")


if __name__ == "__main__":
    main()
