"""Evolution with and without cheaper evaluation, at equal cost: what does each find?

Regularized evolution searches NAS-Bench-201 cells on the proxy skeleton (8 channels, one
cell per stage; :mod:`tools.bench_cheap_eval`) under a latency budget (the device's measured
NAS-Bench-201 latency, budget at its ``--quantile``), each candidate scored by training on
the offline proxy task (``--accuracy train:EPOCHS``). Variants:

- ``plain``: every candidate trained ``--epochs`` epochs;
- ``early-stop P``: learning-curve early stopping (``--early-stop P``);
- ``hyperband`` / ``asha`` / ``sh``: the schedule with eta 3 from 1/9 of the epochs;
- ``tpe`` and ``bohb`` (instead of evolution): Optuna's TPE, and TPE with Optuna's Hyperband
  pruner (eta 3, from 1 epoch);
- ``inherit``: a child that grows from its parent by network morphism starts from the
  parent's weights and is fine-tuned for a quarter of the epochs (``--inherit``; the
  population's weights kept in OUT), counted as that share of a full training's work.

Each run stops asking for candidates once ``--work`` full trainings' worth of epochs is spent
(the loop's ``max_work``; a bracket started is finished), so every variant pays the same.
Reported per variant, mean ± std over ``--seeds``: the answer's proxy accuracy (its full
training), its NAS-Bench-201 CIFAR-10 accuracy (what the proxy stands for), the candidates
looked at, the work and the seconds spent. Each run's state is kept in OUT, so a rerun
resumes. Writes results.json and schedules.png.

    .venv/bin/python -m tools.bench_schedules [--variants plain,early-stop,hyperband,asha] [--seeds 5]
        [--epochs 9] [--work 20] [--device pixel2] [--quantile 0.5]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hwnas.cli.common import format_table
from hwnas.data.datasets import load
from hwnas.evaluators.inherit import CheckpointStore
from hwnas.evaluators.tabular import nb201_accuracy, nb201_latency
from hwnas.evaluators.training import TrainingAccuracy
from hwnas.spaces import get_space
from hwnas.strategies import Problem, get_reward, get_strategy, run
from hwnas.strategies.schedules import get_schedule
from hwnas.target import Target
from tools.bench_cheap_eval import space_for

ROOT = Path(__file__).resolve().parent.parent


def one(variant: str, seed: int, args: argparse.Namespace, data, out: Path) -> dict:
    space = space_for("nb201", args.resolution)
    full = get_space("nb201")
    latency = nb201_latency(full, args.device)
    budget = float(np.quantile(latency.values, args.quantile))
    early = args.p if variant == "early-stop" else None
    store = CheckpointStore(out / f"checkpoints-{seed}", capacity=args.population) if variant == "inherit" else None
    evaluator = TrainingAccuracy(data, epochs=args.epochs, batch_size=args.batch_size, seed=seed, early_stop=early,
                                 inherit=store)
    problem = Problem([Target(args.device, latency, budget)], evaluator, get_reward("hard"))
    schedule = get_schedule(variant, 3, 1 / 9) if variant in ("sh", "hyperband", "asha") else None
    if variant in ("tpe", "bohb"):
        pruner = {"eta": 3, "min_resource": 1} if variant == "bohb" else {}
        strategy = get_strategy(variant, space, seed=seed, **pruner)
    else:
        strategy = get_strategy("evolution", space, seed=seed, population=args.population)
    t0 = time.perf_counter()
    _, log = run(strategy, problem, 10_000, state_file=out / f"{variant}-{seed}.json", schedule=schedule,
                 max_work=args.work, meta={"problem": {"variant": variant, "work": args.work, "device": args.device,
                                       "quantile": args.quantile, "population": args.population}})
    best = log.best()
    cifar = 100 * float(nb201_accuracy(full)([full.parse(str(best.arch))])[0])
    return {"variant": variant, "seed": seed, "arch": str(best.arch), "proxy_acc": best.accuracy,
            "cifar10": cifar, "candidates": log.queries, "work": log.work,
            "seconds": sum(t.cost.get("seconds", 0.0) for t in log.trials if not t.cached),
            "wall_s_this_call": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="plain,early-stop,hyperband,asha")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=9)
    ap.add_argument("--work", type=float, default=20.0, help="full trainings' worth of epochs per run")
    ap.add_argument("--p", type=float, default=0.1, help="early-stop threshold")
    ap.add_argument("--population", type=int, default=10)
    ap.add_argument("--device", default="pixel2")
    ap.add_argument("--quantile", type=float, default=0.5)
    ap.add_argument("--data", default="digits")
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_schedules"))
    args = ap.parse_args()
    out = Path(args.out) / (f"{args.data}-r{args.resolution}-e{args.epochs}-w{args.work:g}"
                            f"-{args.device}-q{args.quantile:g}-p{args.population}")
    out.mkdir(parents=True, exist_ok=True)
    data = load(args.data, resolution=args.resolution, seed=0)
    variants = args.variants.split(",")
    runs = []
    for variant in variants:
        for seed in tqdm(range(args.seeds), desc=variant, unit="run"):
            r = one(variant, seed, args, data, out)
            runs.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    rows, summary = [], {}
    for variant in variants:
        mine = [r for r in runs if r["variant"] == variant]
        s = {k: (float(np.mean([r[k] for r in mine])), float(np.std([r[k] for r in mine])))
             for k in ("proxy_acc", "cifar10", "candidates", "work", "seconds")}
        summary[variant] = s
        label = f"early-stop {args.p:g}" if variant == "early-stop" else variant
        rows.append([label, f"{100 * s['proxy_acc'][0]:.2f} ± {100 * s['proxy_acc'][1]:.2f}",
                     f"{s['cifar10'][0]:.2f} ± {s['cifar10'][1]:.2f}", f"{s['candidates'][0]:.1f}",
                     f"{s['work'][0]:.1f}", f"{s['seconds'][0]:.0f}"])
    print(f"\nevolution on nb201 cells (proxy skeleton), {args.epochs} epochs on {args.data} ({args.resolution} px), "
          f"{args.device} budget at q{args.quantile:g}, {args.work:g} full trainings' work per run, "
          f"{args.seeds} seeds")
    print(format_table(rows, ["variant", "proxy acc %", "NB201 CIFAR-10 %", "candidates", "work", "seconds"]))
    (out / "results.json").write_text(json.dumps({"args": vars(args), "runs": runs, "summary": summary}, indent=1))
    plot(summary, out / "schedules.png")
    print(f"wrote {out / 'results.json'} and {out / 'schedules.png'}", file=sys.stderr)


def plot(summary: dict, path: Path) -> None:
    from hwnas.plots import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    names = list(summary)
    ax.bar(range(len(names)), [summary[n]["cifar10"][0] for n in names],
           yerr=[summary[n]["cifar10"][1] for n in names], color=[f"C{i}" for i in range(len(names))])
    ax.set_xticks(range(len(names)), names)
    low = min(summary[n]["cifar10"][0] - summary[n]["cifar10"][1] for n in names)
    ax.set_ylim(max(0.0, low - 2), None)
    ax.set_ylabel("answer's NAS-Bench-201 CIFAR-10 acc. (%)")
    ax.set_title("evolution at equal evaluation work")
    save(fig, path)


if __name__ == "__main__":
    main()
