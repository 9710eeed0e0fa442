"""Black-box search benchmark on NAS-Bench-201 (issue targets, CIFAR-10).

(a) 100 queries, 50 runs, no budget: random, evolution, REINFORCE, pareto
    (goal: evolution mean >= 94.1, REINFORCE above random search);
(b) a budget at the 25 % quantile of a device's latencies, the search seeing a learned
    predictor fitted on 200 of that device's cells, 200 queries, judged by true latency
    (goal: evolution within 0.3 points of the constrained optimum, no returned architecture
    more than 5 % over budget): trusting the predictor, and screening with a margin of one std of its error
    then measuring the finalists on the device (the table's true latency plays the device;
    at most 10 per run); the same with the true latency, for reference;
(c) throughput: candidate evaluations per second with predicted latency and tabular accuracy,
    every strategy, quiet and with a CPU-bound process per core running beside it;
(d) the (b) target (evolution, margin + finalists) again for predictors fitted on 8 other
    samples of 200 pixel2 cells: how much the figure depends on which cells were measured;
(e) the (b) target on every device of nb201/latency_ms.csv in turn (evolution, 200 queries,
    budget at the 25 % quantile, a predictor fitted on 200 of that device's cells, screen
    margin auto, up to 50 finalists skipping those with less than a 20 % chance of meeting
    the budget), beside the same search seeing the true latency (goal: every run answers,
    none over the budget, mean gap <= 0.5).
(f) every strategy (random, evolution, reinforce, ppo, metaqnn, gp, bananas, pnas, tpe, pareto)
    on CIFAR-10, CIFAR-100 and ImageNet16-120 at 100 and 200 queries, no budget: best test
    accuracy found beside the optimum and random search, and evaluations per second.
(g) every single-objective strategy under a hard budget at the 25 % quantile of each device's
    latency, 100 queries, CIFAR-10: the search sees a learned predictor fitted on 200 cells
    (screen margin auto, up to 10 finalists measured), and is judged by the true latency: the
    gap to the constrained optimum.

    .venv/bin/python -m tools.bench_blackbox [--runs 50] [--devices pixel2,gold_6226] [--out runs/bench]
        [--skip a,b,...] [--strategies random,bananas]   (parts c, f, g: the strategies to run)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np


from hwnas.bench.nb201 import BenchConfig, latency_lookup, plot_curves, run_bench
from hwnas.cli.common import format_table
from hwnas.predictors import LearnedPredictor
from hwnas.predictors.base import screen_margin
from hwnas.spaces import get_space
from hwnas.strategies import STRATEGIES, Problem, get_reward, get_strategy, run
from hwnas.target import Target
from hwnas.evaluators.tabular import nb201_accuracy


def row(j: dict, extra: list | None = None) -> list:
    return [j["strategy"], *(extra or []), j["runs"], j["queries"], f"{j['mean']:.2f} ± {j['std']:.2f}",
            f"{j['optimum']:.2f}", f"{j['optimum'] - j['mean']:.2f}",
            "-" if j["budget_ms"] is None else f"{100 * j['over_budget']:.0f} %",
            "-" if j["budget_ms"] is None else f"{100 * j['worst_overshoot']:.1f} %"]


def budget_and_predictor(space, dev: str) -> tuple:
    """A device's true latencies, a budget at their 25 % quantile, and a learned predictor
    fitted on 200 of its cells (a fixed sample)."""
    lat = latency_lookup(space, dev)
    idx = lat.all_indices()
    pick = np.random.default_rng(0).choice(len(idx), 200, replace=False)
    pred = LearnedPredictor(space).fit(idx[pick], lat.values[pick], device={"name": dev})
    return lat, float(np.quantile(lat.values, 0.25)), pred


HEAD = ["runs", "queries", "best test acc (%)", "optimum", "gap", "over budget", "worst overshoot"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--devices", default="pixel2,gold_6226")
    ap.add_argument("--out", default="runs/bench")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip (a, b, c, d, e, f, g)")
    ap.add_argument("--strategies", default=",".join(EVERY), help="parts (c), (f), (g): the strategies to compare")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    skip = set(args.skip.split(","))
    results: dict = {}
    space = get_space("nb201")

    if "a" not in skip:
        res = [run_bench(BenchConfig(strategy=s, queries=100, runs=args.runs)) for s in
               ("random", "evolution", "reinforce", "pareto")]
        plot_curves(res, str(out / "nb201-cifar10-100q.png"))
        results["a"] = [r.to_json() for r in res]
        print("(a) CIFAR-10, 100 queries, no budget")
        print(format_table([row(r) for r in results["a"]], ["strategy"] + HEAD))
        print(f"    curves: {out / 'nb201-cifar10-100q.png'}")

    if "b" not in skip:
        rows, results["b"], margins = [], [], {}
        for dev in args.devices.split(","):
            lat, budget, pred = budget_and_predictor(space, dev)
            idx = lat.all_indices()
            mape = float(np.mean(np.abs(pred.predict(idx) - lat.values) / lat.values) * 100)
            margins[dev] = screen_margin("auto", pred, budget)
            for s in ("evolution", "random"):
                for seen, p, margin, k in (("predictor", pred, 0.0, 0), ("predictor+finalists", pred, "auto", 10),
                                           ("true", None, 0.0, 0)):
                    r = run_bench(BenchConfig(strategy=s, queries=200, runs=args.runs, latency=dev, budget_ms=budget,
                                              predictor=p, margin=margin, finalists=k))
                    j = {**r.to_json(), "device": dev, "latency_seen": seen, "predictor_mape": mape}
                    results["b"].append(j)
                    measured = f"{j['measurements_mean']:.1f} (max {j['measurements_max']})" if k else "-"
                    rows.append(row(j, [dev, f"{budget:g}", seen]) + [measured])
        print("(b) CIFAR-10, 200 queries, budget at the 25 % quantile; latency seen: a learned predictor fitted on "
              "200 cells (+finalists: screen margin auto = 0.84 std of the predictor's calibrated error at the "
              "budget, then the best candidates measured until one meets the budget), or the true latency")
        print(format_table(rows, ["strategy", "device", "budget ms", "latency seen"] + HEAD + ["device measurements"]))
        for j in results["b"][::6]:
            print(f"    {j['device']}: predictor MAPE over all 15,625 cells {j['predictor_mape']:.2f} %, "
                  f"screen margin (auto) {100 * margins[j['device']]:.2f} %")

    if "c" not in skip:
        _, _, pred = budget_and_predictor(space, "pixel2")
        acc = nb201_accuracy(space)
        rows = []
        for s in args.strategies.split(","):
            n = 2000 if s in ("random", "evolution", "pareto") else 300
            rates = [evals_per_s(s, space, pred, acc, n, 1), evals_per_s(s, space, pred, acc, n, 100)]
            with busy_cores():
                rates.append(evals_per_s(s, space, pred, acc, n, 1))
            rows.append([s, n, *(f"{r:,.0f}" for r in rates)])
        results["c"] = rows
        print("(c) candidate evaluations per second (learned predictor latency + tabular accuracy; goal >= 5,000), "
              f"quiet and with {os.cpu_count()} CPU-bound processes running beside it")
        print(format_table(rows, ["strategy", "queries", "evals/s, batch 1", "evals/s, batch 100",
                                  "evals/s, batch 1, under load"]))
    if "d" not in skip:
        lat = latency_lookup(space, "pixel2")
        idx = lat.all_indices()
        budget = float(np.quantile(lat.values, 0.25))
        rows, results["d"] = [], []
        for sample in range(1, 9):
            pick = np.random.default_rng(sample).choice(len(idx), 200, replace=False)
            pred = LearnedPredictor(space).fit(idx[pick], lat.values[pick], device={"name": "pixel2"})
            j = run_bench(BenchConfig(strategy="evolution", queries=200, runs=args.runs, latency="pixel2",
                                      budget_ms=budget, predictor=pred, margin="auto", finalists=10),
                          progress=False).to_json()
            results["d"].append(j)
            rows.append([sample, f"{100 * j['margin']:.1f} %", f"{j['mean']:.2f} ± {j['std']:.2f}",
                         f"{j['optimum'] - j['mean']:.2f}", f"{100 * j['over_budget']:.0f} %",
                         f"{100 * j['unanswered']:.0f} %", f"{j['measurements_mean']:.1f} (max {j['measurements_max']})"])
        gaps = [j["optimum"] - j["mean"] for j in results["d"]]
        print("(d) pixel2 <= 12 ms, evolution, margin auto + 10 finalists, predictors fitted on other samples of 200 cells")
        print(format_table(rows, ["sample", "margin", "best test acc (%)", "gap", "over budget", "unanswered",
                           "device measurements"]))
        print(f"    gap: mean {np.mean(gaps):.2f}, worst {max(gaps):.2f} (goal <= 0.3)")
    if "e" not in skip:
        results["e"] = part_every_device(space, args.runs, out)
    if "f" not in skip:
        results["f"] = part_every_strategy(args.runs, args.strategies.split(","), out)
    if "g" not in skip:
        results["g"] = part_constrained(space, args.runs, args.strategies.split(","), args.devices.split(","))
    (out / "bench_blackbox.json").write_text(json.dumps(results, indent=1))


def evals_per_s(strategy: str, space, pred, acc, n: int, batch: int) -> float:
    prob = Problem([Target("pixel2", pred)], acc, get_reward("pareto"))
    t0 = time.perf_counter()
    _, log = run(get_strategy(strategy, space, seed=0), prob, n, batch=batch)
    return len(log.trials) / (time.perf_counter() - t0)


@contextmanager
def busy_cores():
    """One CPU-bound process per core while the block runs (another job on the machine)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


EVERY = ("random", "evolution", "reinforce", "ppo", "metaqnn", "gp", "bananas", "pnas", "tpe", "pareto")
DATASETS = ("cifar10", "cifar100", "imagenet16_120")


def part_every_strategy(runs: int, strategies: list[str], out: Path) -> list[dict]:
    """(f) Every strategy on the three datasets at 100 and 200 queries, no budget, beside the
    optimum and random search, and its evaluations per second."""
    rows, found = [], []
    for dataset in DATASETS:
        for queries in (100, 200):
            base = None
            for s in strategies:
                r = run_bench(BenchConfig(strategy=s, queries=queries, runs=runs, dataset=dataset), progress=False)
                j = r.to_json()
                found.append(j)
                base = j["mean"] if s == "random" else base
                above = "-" if base is None or s == "random" else ("yes" if j["mean"] > base else "NO")
                rows.append([dataset, queries, s, f"{j['mean']:.2f} ± {j['std']:.2f}", f"{j['optimum']:.2f}",
                             f"{j['optimum'] - j['mean']:.2f}", above, f"{j['evaluations_per_s']:,.0f}"])
                print("    " + "  ".join(str(c) for c in rows[-1]), flush=True)  # as it goes: runs are long
    print(f"(f) every strategy, no budget, {runs} runs: best test accuracy found (the reward is the dataset's)")
    print(format_table(rows, ["dataset", "queries", "strategy", "best test acc (%)", "optimum", "gap",
                              "above random", "evals/s"]))
    (out / "every_strategy.json").write_text(json.dumps(found, indent=1))
    return found


def part_constrained(space, runs: int, strategies: list[str], devices: list[str]) -> list[dict]:
    """(g) Every single-objective strategy under a hard budget, seeing a learned predictor and
    measuring finalists, judged by the true latency (the table plays the device)."""
    rows, found = [], []
    for dev in devices:
        lat, budget, pred = budget_and_predictor(space, dev)
        for s in strategies:
            if STRATEGIES[s].goal != "reward":
                continue  # a front-builder answers with a front, not one network under the budget
            j = {**run_bench(BenchConfig(strategy=s, queries=100, runs=runs, latency=dev, budget_ms=budget,
                                         predictor=pred, margin="auto", finalists=10), progress=False).to_json(),
                 "device": dev}
            found.append(j)
            rows.append([dev, f"{budget:g}", s, f"{j['mean']:.2f} ± {j['std']:.2f}", f"{j['optimum']:.2f}",
                         f"{j['optimum'] - j['mean']:.2f}", f"{100 * j['unanswered']:.0f} %",
                         f"{100 * j['over_budget']:.0f} %", f"{j['measurements_mean']:.1f}"])
            print("  (g) " + "  ".join(rows[-1]), file=sys.stderr, flush=True)
    print(f"(g) CIFAR-10, 100 queries, hard budget at each device's 25 % latency quantile, {runs} runs: a learned "
          "predictor fitted on 200 cells, margin auto, up to 10 finalists measured; judged by the true latency")
    print(format_table(rows, ["device", "budget ms", "strategy", "best test acc (%)", "constrained optimum", "gap",
                              "unanswered", "over budget", "device measurements"]))
    return found


def part_every_device(space, runs: int, out: Path) -> list[dict]:
    from hwnas.evaluators.tabular import nb201_file
    from hwnas.plots import pyplot, save

    devices = nb201_file("latency_ms.csv").read_text().split("\n", 1)[0].strip().split(",")[1:]
    rows, found = [], []
    for dev in devices:
        lat, budget, pred = budget_and_predictor(space, dev)
        seen = run_bench(BenchConfig(strategy="evolution", queries=200, runs=runs, latency=dev, budget_ms=budget,
                                     predictor=pred, margin="auto", finalists=50, min_chance=0.2),
                         progress=False).to_json()
        true = run_bench(BenchConfig(strategy="evolution", queries=200, runs=runs, latency=dev, budget_ms=budget),
                         progress=False).to_json()
        j = {"device": dev, "budget_ms": budget, "predictor": seen, "true": true,
             "chosen": pred.meta["selection"]["chosen"]}
        found.append(j)
        rows.append([dev, f"{budget:g}", f"{100 * seen['margin']:.1f} %", f"{seen['optimum'] - seen['mean']:.2f}",
                     f"{100 * seen['unanswered']:.0f} %", f"{100 * seen['over_budget']:.0f} %",
                     f"{seen['measurements_mean']:.1f} (max {seen['measurements_max']})",
                     f"{true['optimum'] - true['mean']:.2f}"])
    gaps = [j["predictor"]["optimum"] - j["predictor"]["mean"] for j in found]
    true_gaps = [j["true"]["optimum"] - j["true"]["mean"] for j in found]
    print(f"(e) every device, evolution, 200 queries, budget at its 25 % quantile, {runs} runs: a learned predictor "
          "fitted on 200 cells, margin auto (0.84 std of its calibrated error at the budget: a 20 % chance), up to "
          "50 finalists with >= 20 % chance of meeting the budget; and the true latency")
    print(format_table(rows, ["device", "budget ms", "margin", "gap", "unanswered", "over budget",
                              "device measurements", "gap, true latency"]))
    print(f"    mean gap {np.mean(gaps):.2f} (true latency {np.mean(true_gaps):.2f}); runs unanswered "
          f"{sum(round(j['predictor']['unanswered'] * runs) for j in found)}, over budget "
          f"{sum(round(j['predictor']['over_budget'] * runs) for j in found)} of {runs * len(found)}")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5))
    x = np.arange(len(found))
    ax.bar(x - 0.2, gaps, 0.4, label="predictor (200 cells) + finalists")
    ax.bar(x + 0.2, true_gaps, 0.4, label="true latency")
    ax.set_xticks(x, [j["device"] for j in found], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("gap to the constrained optimum (points)")
    ax.set_title("evolution, 200 queries, budget at each device's 25 % latency quantile")
    ax.legend(fontsize=8)
    save(fig, out / "every-device.png")
    print(f"    plot: {out / 'every-device.png'}")
    return found


if __name__ == "__main__":
    main()
