"""Is the offline proxy task fit for purpose? Prints tables, writes results.json and a PNG.

(a) nb201: ``--cells`` cells sampled uniformly, each trained standalone on the proxy task
    with the same fixed budget of epochs (on a proxy skeleton: ``--channels`` channels,
    ``--cells-per-stage`` cells per stage), then Kendall tau and Spearman rho between their
    proxy test accuracy and NAS-Bench-201's CIFAR-10 accuracy
    (../shared/data/nb201/accuracy.csv). Goal: tau >= 0.5.
(b) mbv2/small: ``--networks`` random networks trained the same way; the spread between
    the 10th and the 90th percentile of their accuracy. Goal: at least 5 points.

Each trained network is appended to ``OUT/trained.jsonl``; a rerun skips what is there
(an interrupted benchmark resumes).

    .venv/bin/python -m tools.bench_proxy [--data clutter] [--cells 30] [--networks 20] [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr
from tqdm import tqdm

from hwnas.cli.common import format_table
from hwnas.data.datasets import DATASETS, load
from hwnas.evaluators.tabular import nb201_accuracy
from hwnas.plots import pyplot, save
from hwnas.spaces import get_space
from hwnas.train import train_arch

ROOT = Path(__file__).resolve().parent.parent


def trained(path: Path) -> dict[tuple[str, str], float]:
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {(r["part"], r["arch"]): r["acc"] for r in rows}


def train_all(part: str, archs: list, data, epochs: int, path: Path, seed: int) -> list[float]:
    done = trained(path)
    out = []
    for arch in tqdm(archs, desc=f"{part}: training", unit="net"):
        key = (part, str(arch))
        if key not in done:
            acc = train_arch(arch, data, epochs=epochs, seed=seed, progress=False).test_acc
            with open(path, "a") as f:
                f.write(json.dumps({"part": part, "arch": str(arch), "acc": acc}) + "\n")
            done[key] = acc
        out.append(done[key])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="clutter", choices=[d for d in DATASETS if d in ("digits", "clutter")])
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--cells", type=int, default=30)
    ap.add_argument("--networks", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--cells-per-stage", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_proxy"))
    args = ap.parse_args()
    out = Path(args.out) / f"{args.data}-r{args.resolution}-e{args.epochs}-c{args.channels}n{args.cells_per_stage}"
    out.mkdir(parents=True, exist_ok=True)
    data = load(args.data, resolution=args.resolution, seed=args.seed)
    table = get_space("nb201")
    truth = nb201_accuracy(table)
    results: dict = {"args": vars(args)}

    space = get_space("nb201", resolution=args.resolution, channels=args.channels,
                      cells_per_stage=args.cells_per_stage)
    cells = space.sample(args.cells, seed=args.seed)
    proxy = train_all("nb201", cells, data, args.epochs, out / "trained.jsonl", args.seed)
    real = (100 * truth([table.parse(str(c)) for c in cells])).tolist()
    tau, rho = float(kendalltau(proxy, real).statistic), float(spearmanr(proxy, real).statistic)
    results["nb201"] = {"cells": [str(c) for c in cells], "proxy_acc": proxy, "cifar10": real,
                        "kendall_tau": tau, "spearman_rho": rho}
    print(f"(a) nb201, {args.cells} sampled cells on {args.data} (skeleton C={args.channels}, "
          f"N={args.cells_per_stage}, {args.resolution}px, {args.epochs} epochs)")
    order = np.argsort(real)[::-1]
    print(format_table([[str(cells[i]), f"{real[i]:.2f}", f"{100 * proxy[i]:.1f}"] for i in order],
                       ["cell", "CIFAR-10 %", "proxy %"]))
    print(f"Kendall tau {tau:.3f} (goal >= 0.5), Spearman rho {rho:.3f}")
    print()

    if args.networks:
        mb = get_space("mbv2", "small", resolution=args.resolution)
        nets = mb.sample(args.networks, seed=args.seed)
        accs = train_all("mbv2", nets, data, args.epochs, out / "trained.jsonl", args.seed)
        p10, p90 = (float(np.percentile(100 * np.asarray(accs), q)) for q in (10, 90))
        results["mbv2"] = {"archs": [str(a) for a in nets], "acc": accs, "p10": p10, "p90": p90}
        print(f"(b) mbv2/small, {args.networks} random networks on {args.data}: accuracy p10 {p10:.1f} %, "
              f"p90 {p90:.1f} %, spread {p90 - p10:.1f} points (goal >= 5); "
              f"min {100 * min(accs):.1f}, max {100 * max(accs):.1f}")

    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "proxy.png", args)
    print(f"wrote {out / 'results.json'} and {out / 'proxy.png'}", file=sys.stderr)


def plot(results: dict, path: Path, args: argparse.Namespace) -> None:
    plt = pyplot()

    r = results["nb201"]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(r["cifar10"], [100 * a for a in r["proxy_acc"]], s=14)
    ax.set_xlabel("NAS-Bench-201 CIFAR-10 accuracy (%)")
    ax.set_ylabel(f"{args.data} proxy accuracy (%)")
    ax.set_title(f"{len(r['cells'])} cells: Kendall tau {r['kendall_tau']:.2f}")
    save(fig, path, dpi=110)


if __name__ == "__main__":
    main()
