"""``hwnas bench nb201``: simulated black-box searches on the NAS-Bench-201 table."""

from __future__ import annotations

import argparse
import numpy as np

from hwnas.cli.common import answers_json, emit_json, format_table
from hwnas.errors import HwnasError
from hwnas.job.recipe import CHOICES


def _blackbox() -> list[str]:
    from hwnas.strategies.base import strategy_names

    return strategy_names("blackbox")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks on tabular data")
    bsub = p.add_subparsers(dest="bench", required=True, metavar="BENCH")
    b = bsub.add_parser("nb201", help="simulated searches on NAS-Bench-201: mean ± sd of the best accuracy found")
    b.add_argument("--strategy", default="evolution",
                   help="a black-box strategy (" + ", ".join(_blackbox()) + "), or several separated by commas")
    b.add_argument("--queries", type=int, default=100, help="accuracy queries per run (default 100)")
    b.add_argument("--runs", type=int, default=50, help="seeded runs per strategy (default 50)")
    b.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100", "imagenet16_120"])
    b.add_argument("--latency", metavar="FILE:COLUMN",
                   help="true latency: a CSV column, or a device column of nb201/latency_ms.csv (e.g. pixel2)")
    b.add_argument("--budget-ms", type=float, help="latency budget (judged by the true latency)")
    b.add_argument("--budget-quantile", type=float, help="instead of --budget-ms: this quantile of the true latencies")
    b.add_argument("--predictor", metavar="MODEL", help="the search sees this predictor's latency, not the true one")
    b.add_argument("--reward", choices=CHOICES["reward"]())
    b.add_argument("--margin", default="0",
                   help="hard budget: also evaluate candidates predicted up to this fraction over it; 'auto': as far "
                        "over as keeps a 20 %% chance of meeting it, by the predictor's calibrated error, else its "
                        "hold-out error (default 0)")
    b.add_argument("--finalists", type=int, default=0,
                   help="answer with the best candidate that meets the budget by true latency, measuring at most "
                        "this many per run (the table plays the device; default 0: trust the predictor)")
    b.add_argument("--min-chance", type=float, default=0.2, metavar="P",
                   help="finalists: skip candidates that a calibrated predictor gives less than this chance of "
                        "meeting the budget (default 0.2)")
    b.add_argument("--population", type=int, help="evolution / pareto population (default 20)")
    b.add_argument("--seed", type=int, default=0, help="seed of the first run (run r uses seed + r)")
    b.add_argument("--plot", metavar="PNG", help="also write the search curves (best accuracy against queries) here")
    b.add_argument("--quiet", action="store_true")
    answers_json(b, cmd_nb201)


def cmd_nb201(args: argparse.Namespace) -> int:
    from hwnas.bench.nb201 import BenchConfig, latency_lookup, plot_curves, run_bench
    from hwnas.predictors import load_predictor
    from hwnas.spaces import get_space
    from hwnas.strategies import STRATEGIES
    from hwnas.strategies.base import accepted

    strategies = [s.strip() for s in args.strategy.split(",") if s.strip()]
    for s in strategies:
        STRATEGIES[s]  # raises, naming the known ones
    if args.runs < 1 or args.queries < 1:
        raise HwnasError("--runs and --queries must be at least 1")
    space = get_space("nb201")
    predictor = load_predictor(args.predictor, space=space) if args.predictor else None
    budget = args.budget_ms
    if args.budget_quantile is not None:
        if not args.latency:
            raise HwnasError("--budget-quantile needs --latency FILE:COLUMN")
        budget = float(np.quantile(latency_lookup(space, args.latency).values, args.budget_quantile))
    results = []
    for s in strategies:
        params = accepted(STRATEGIES[s], population=args.population, queries=args.queries)
        cfg = BenchConfig(strategy=s, queries=args.queries, runs=args.runs, dataset=args.dataset, latency=args.latency,
                          budget_ms=budget, predictor=predictor, reward=args.reward, seed=args.seed, params=params,
                          margin=args.margin, finalists=args.finalists,
                          min_chance=args.min_chance)
        results.append(run_bench(cfg, progress=not args.quiet))
    if args.plot:
        plot_curves(results, args.plot)
    out = [{**r.to_json(), **({"plot": args.plot} if args.plot else {})} for r in results]
    if args.json:
        emit_json(out[0] if len(out) == 1 else out)
        return 0
    rows = []
    for j in out:
        rows.append([j["strategy"], j["runs"], j["queries"], f"{j['mean']:.2f} ± {j['std']:.2f}", f"{j['optimum']:.2f}",
                     "-" if j["budget_ms"] is None else f"{100 * j['over_budget']:.0f} %",
                     "-" if j["budget_ms"] is None else f"{100 * j['worst_overshoot']:.1f} %",
                     f"{j['evaluations_per_s']:.0f}"]
                    + ([f"{j['measurements_mean']:.1f} (max {j['measurements_max']})"] if args.finalists else []))
    where = f"{args.dataset}" + (f", budget {budget:.4g} ms on {args.latency}" if budget is not None else "")
    print(f"NAS-Bench-201 {where}" + (" (search sees the predictor's latency)" if predictor else ""))
    print(format_table(rows, ["strategy", "runs", "queries", "best test acc (%)", "optimum (%)", "runs over budget",
                       "worst overshoot", "evals/s"] + (["device measurements"] if args.finalists else [])))
    if args.plot:
        print(f"curves: {args.plot}")
    return 0
