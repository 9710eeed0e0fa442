"""Latency-aware differentiable search on NAS-Bench-201 cells: is the derived cell better
than a random one under the same budget? Prints a table per device and budget, writes
results.json and cells.png.

For each device (a column of ../shared/data/nb201/latency_ms.csv) and budget (a quantile of
that column), a predictor is fitted on 200 cells' latencies of the device; each mode and
variant then searches on the offline proxy task (``clutter``, a small proxy skeleton), and
the derived cell is judged by the table: true latency, CIFAR-10 accuracy, and the
percentile of that accuracy among every cell under the same budget. Variants (the
mechanisms against collapse, each shown on its own):

- ``fixed``: the published loss, a fixed latency term;
- ``tracking``: the latency term's weight tracks the budget (dual ascent);
- ``none``: no latency term at all (the budget acts only at derivation).

``enas`` (a controller samples the trained path; REINFORCE on accuracy × MnasNet's latency
factor) takes ``fixed`` (w = -0.07) and ``none`` (w = 0); its "argmax" is the controller's
greedy decoding and its "budget" derivation is ENAS's own (sampled cells under the budget,
ranked by their accuracy under the shared weights).

Each search is derived twice: ``argmax`` (each edge's most likely operation, as published)
and ``budget`` (the most likely connected cell whose predicted latency fills 90-100 % of
the budget). References: 200 random cells under the budget, and regularized evolution at
200 queries with the same predictor (``hwnas bench nb201``).

Searches resume from their run directories (``OUT/runs/KEY``): an interrupted benchmark
picks up where it stopped, and a finished search is only derived again.

    .venv/bin/python -m tools.bench_cells [--devices pixel2,gold_6226] [--quantiles 0.25,0.5]
        [--modes proxyless,gdas,darts,enas] [--variants fixed,tracking,none] [--seeds 5] [--epochs 8]
        [--partial-channels K]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, percentileofscore

from hwnas.bench.nb201 import BenchConfig, run_bench
from hwnas.cli.common import format_table
from hwnas.data.datasets import load
from hwnas.evaluators.supernet import SupernetAccuracy
from hwnas.evaluators.tabular import nb201_accuracy, nb201_latency
from hwnas.plots import pyplot, save
from hwnas.predictors import LearnedPredictor
from hwnas.predictors.base import holdout_error
from hwnas.spaces import get_space
from hwnas.strategies.base import STRATEGIES
from hwnas.supernet.config import SANDWICH
from hwnas.supernet.search import SearchConfig, make_search
from hwnas.target import Target

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = {"fixed": {}, "tracking": {"budget_tracking": True}, "none": {"loss": "add#linear", "lam": 0.0}}
CONTROLLER_VARIANTS = {"fixed": {}, "none": {"mnas_w": 0.0}}
"""ENAS's latency term is its reward's exponent: ``fixed`` keeps MnasNet's -0.07, ``none`` drops it."""


def fit_predictor(space, latency, device: str, n: int = 200, seed: int = 0) -> LearnedPredictor:
    cells = space.sample(n, seed=seed)
    return LearnedPredictor(space).fit([str(c) for c in cells], latency(cells).tolist(), device={"name": device})


def judge(space, arch, accuracy, latency, budget: float, under_acc: np.ndarray, target: Target) -> dict:
    arch = space.parse(str(arch))
    acc = float(100 * accuracy([arch])[0])
    true_ms = float(latency([arch])[0])
    return {"arch": str(arch), "predicted_ms": target.predict_one(arch), "true_ms": true_ms,
            "met": true_ms <= budget, "connected": space.connected(arch), "cifar10": acc,
            "percentile": float(percentileofscore(under_acc, acc, kind="weak")),
            "skip_none_only": set(arch.choices) <= {"none", "skip_connect"}}


def one_search(key: str, mode: str, variant: str, seed: int, space, proxy, target: Target, data, args,
               out: Path) -> dict:
    margin = holdout_error(target.model) if args.derive_margin == "auto" else float(args.derive_margin)
    variants = CONTROLLER_VARIANTS if getattr(STRATEGIES[mode], "controller", False) else VARIANTS
    if variant not in variants:
        raise SystemExit(f"variant {variant!r} does not apply to {mode}; use {', '.join(variants)}")
    cfg = SearchConfig(strategy=mode, epochs=args.epochs, warmup_epochs=args.warmup, seed=seed, derive="budget",
                       derive_margin=margin, batch_size=args.batch_size, partial_channels=args.partial_channels,
                       torch_device="cpu", sandwich=args.sandwich, **{"loss": args.loss, **variants[variant]})
    s = make_search(space, [target], data, cfg, out / "runs" / key, progress=False, proxy=proxy)
    s.run()
    log = [json.loads(line) for line in (out / "runs" / key / "log.jsonl").read_text().splitlines()]
    return {"argmax": str(s.derive()), "budget": str(s.final_arch()), "probabilities": s.probabilities(),
            "final_train_acc": log[-1]["train_acc"], "final_val_acc": log[-1]["val_acc"],
            "expected_ms": log[-1]["expected_ms"][target.name],
            "oneshot_tau": oneshot_tau(s.net, space, proxy, data, args.oneshot) if args.oneshot else None}


def oneshot_tau(net, space, proxy, data, n: int) -> float:
    """Kendall τ between the trained supernet's one-shot accuracy of ``n`` sampled cells (inherited
    weights, batch norm re-estimated) and their NAS-Bench-201 CIFAR-10 accuracy: can the supernet
    rank cells at all? (Its probabilities can only be as good as this ranking.)"""
    cells = space.sample(n, seed=12345)
    scored = SupernetAccuracy(net, proxy, data, max_val=2000).evaluate([proxy.parse(str(c)) for c in cells])
    return float(kendalltau(scored, nb201_accuracy(space)(cells))[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", default="pixel2,gold_6226")
    ap.add_argument("--quantiles", default="0.25,0.5")
    ap.add_argument("--modes", default="proxyless,gdas,darts")
    ap.add_argument("--variants", default="fixed,tracking,none")
    ap.add_argument("--loss", default="mul#log")
    ap.add_argument("--derive-margin", default="auto",
                    help="derive under (1 - margin) x budget; auto: the predictor's hold-out error")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--data", default="clutter")
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--cells-per-stage", type=int, default=1)
    ap.add_argument("--partial-channels", type=int, default=1, help="PC-DARTS: searched edges see 1/K of the "
                    "channels (a memory saving; compare with 1, the full mixture)")
    ap.add_argument("--sandwich", choices=list(SANDWICH),
                    help="path-sampling modes: every weight step also trains the largest cell (the sandwich rule; "
                         "distill: the sampled path learns the largest one's predictions)")
    ap.add_argument("--evolution-runs", type=int, default=20)
    ap.add_argument("--oneshot", type=int, default=60, metavar="N",
                    help="after each search, Kendall tau between its supernet's one-shot accuracy of N sampled cells "
                         "and their CIFAR-10 accuracy (0: skip)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_cells"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    space = get_space("nb201")
    proxy = get_space("nb201", resolution=args.resolution, channels=args.channels,
                      cells_per_stage=args.cells_per_stage)
    data = load(args.data, resolution=args.resolution)
    accuracy = nb201_accuracy(space)
    every = accuracy.all_indices()
    done: dict[str, dict] = {}
    tables: list[dict] = []
    for device in args.devices.split(","):
        latency = nb201_latency(space, device)
        pred = fit_predictor(space, latency, device)
        for q in map(float, args.quantiles.split(",")):
            budget = float(np.quantile(latency.values, q))
            under = accuracy.values[latency.values <= budget] * 100
            target = Target(device, pred, budget)
            rng = np.random.default_rng(0)
            pool = every[rng.permutation(len(every))]
            random_under = accuracy.lookup_indices(pool[latency.lookup_indices(pool) <= budget][:200]) * 100
            evo = run_bench(BenchConfig(strategy="evolution", queries=200, runs=args.evolution_runs, latency=device,
                                        budget_ms=budget, predictor=pred, seed=0), progress=False)
            table = {"device": device, "quantile": q, "budget_ms": budget, "rows": [],
                     "under": {"p75": float(np.percentile(under, 75)), "p90": float(np.percentile(under, 90))},
                     "random": {"mean": float(random_under.mean()), "p75": float(np.percentile(random_under, 75)),
                                "p90": float(np.percentile(random_under, 90))},
                     "evolution": {"mean": float(np.nanmean(evo.best)),
                                   "met": float(np.mean([not o for o in evo.over_budget_runs]))}}
            for mode in args.modes.split(","):
                for variant in args.variants.split(","):
                    for seed in range(args.seeds):
                        key = f"{device}-q{q}-{mode}-{variant}-{args.loss}-s{seed}-e{args.epochs}-{args.data}"
                        key += f"-pc{args.partial_channels}" if args.partial_channels > 1 else ""
                        key += f"-sw{args.sandwich}" if args.sandwich else ""
                        print(f"  search {key}", file=sys.stderr)
                        done[key] = one_search(key, mode, variant, seed, space, proxy, target, data, args, out)
                        for how in ("argmax", "budget"):
                            row = judge(space, done[key][how], accuracy, latency, budget, under, target)
                            table["rows"].append({"mode": mode, "variant": variant, "derive": how, "seed": seed,
                                                  "oneshot_tau": done[key].get("oneshot_tau"), **row})
            tables.append(table)
            report(table)
    (out / "results.json").write_text(json.dumps({"args": vars(args), "tables": tables, "searches": done}, indent=1))
    plot(tables, out / "cells.png")
    print(f"wrote {out / 'results.json'} and {out / 'cells.png'}", file=sys.stderr)


def report(t: dict) -> None:
    print(f"\n{t['device']}, budget {t['budget_ms']:.3f} ms ({100 * t['quantile']:.0f} % quantile): cells under it "
          f"p75 {t['under']['p75']:.2f} %, p90 {t['under']['p90']:.2f} %; 200 random under it mean "
          f"{t['random']['mean']:.2f}, p75 {t['random']['p75']:.2f}, p90 {t['random']['p90']:.2f}; evolution "
          f"(200 queries) {t['evolution']['mean']:.2f} %, met {100 * t['evolution']['met']:.0f} %")
    print(format_table([[r["mode"], r["variant"], r["derive"], r["seed"], r["arch"], f"{r['predicted_ms']:.2f}",
                         f"{r['true_ms']:.2f}", "yes" if r["met"] else "NO", "yes" if r["connected"] else "NO",
                         f"{r['cifar10']:.2f}", f"{r['percentile']:.0f}"] for r in t["rows"]],
                       ["mode", "variant", "derive", "seed", "cell", "pred ms", "true ms", "met", "conn",
                        "CIFAR-10 %", "pct"]))
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in t["rows"]:
        groups.setdefault((r["mode"], r["variant"], r["derive"]), []).append(r)
    print(format_table([[m, v, d, f"{np.mean([r['cifar10'] for r in rs]):.2f}",
                         f"{np.std([r['cifar10'] for r in rs]):.2f}",
                         f"{np.mean([r['percentile'] for r in rs]):.0f}", f"{sum(r['met'] for r in rs)}/{len(rs)}",
                         f"{sum(r['connected'] for r in rs)}/{len(rs)}",
                         "yes" if np.mean([r['cifar10'] for r in rs]) >= t["under"]["p75"] else "no", _tau(rs)]
                        for (m, v, d), rs in groups.items()],
                       ["mode", "variant", "derive", "mean %", "std", "mean pct", "met", "connected", ">= p75",
                        "one-shot τ"]))


def _tau(rows: list[dict]) -> str:
    taus = [r["oneshot_tau"] for r in rows if r.get("oneshot_tau") is not None]
    return f"{np.mean(taus):+.2f}" if taus else "-"


def plot(tables: list[dict], path: Path) -> None:
    plt = pyplot()

    fig, axes = plt.subplots(1, len(tables), figsize=(4 * len(tables), 3.6), squeeze=False)
    for ax, t in zip(axes[0], tables):
        labels, values = [], []
        for r in t["rows"]:
            label = f"{r['mode']}\n{r['variant']}/{r['derive']}"
            if label not in labels:
                labels.append(label)
                values.append([])
            values[labels.index(label)].append(r["cifar10"])
        ax.boxplot(values, orientation="horizontal")
        ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=6)
        ax.axvline(t["under"]["p75"], color="tab:orange", ls="--", label="p75 under budget")
        ax.axvline(t["random"]["mean"], color="grey", ls=":", label="random mean")
        ax.set_title(f"{t['device']} {t['budget_ms']:.2f} ms", fontsize=9)
        ax.set_xlabel("CIFAR-10 %")
    axes[0][0].legend(fontsize=6)
    save(fig, path, dpi=110)


if __name__ == "__main__":
    main()
