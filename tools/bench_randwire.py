"""RandWire: do generators matter more than the graphs they draw? (Xie et al. 2019, Fig. 3)

For each generator setting (default: the paper's best of each family, WS(4, 0.75), ER(0.2),
BA(5), and a poor one of each, WS(2, 0.25), ER(0.6), BA(1)), ``--graphs`` networks of the
``randwire`` space's small preset are drawn (network i takes seeds 3i, 3i+1, 3i+2 mod the
space's seed count in its three stages, so no two stages or networks share a graph), each
trained ``--epochs`` epochs from scratch on the offline proxy task and scored on its
validation split (batch norm re-estimated). Printed: per generator the mean, standard
deviation, min and max accuracy; a one-way ANOVA across generators (F and p: is the
between-generator spread larger than the graph-to-graph spread within one?); the
multiply-adds of each generator's networks. Writes results.json and randwire.png (a box
per generator).

    .venv/bin/python -m tools.bench_randwire [--graphs 10] [--epochs 3] [--data clutter]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hwnas.cli.common import format_table
from hwnas.data.datasets import load
from hwnas.plots import pyplot, save
from hwnas.spaces import get_space
from hwnas.train import train_arch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = "ws-k4-p0.75,er-p0.2,ba-m5,ws-k2-p0.25,er-p0.6,ba-m1"


def networks(space, generator: str, graphs: int) -> list:
    s = space.seeds
    return [space.from_choices([f"{generator}-s{(3 * i + j) % s}" for j in range(3)]) for i in range(graphs)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generators", default=DEFAULT)
    ap.add_argument("--graphs", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--data", default="clutter")
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_randwire"))
    args = ap.parse_args()
    from scipy.stats import f_oneway

    space = get_space("randwire", "small", resolution=args.resolution, seeds=max(10, 3 * args.graphs))
    data = load(args.data, resolution=args.resolution, seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "results.json"
    results: dict[str, list[dict]] = json.loads(saved.read_text()) if saved.is_file() else {}
    generators = args.generators.split(",")
    todo = [(g, a) for g in generators for a in networks(space, g, args.graphs)
            if str(a) not in {r["arch"] for r in results.get(g, [])}]
    for g, arch in tqdm(todo, desc="train", unit="net", file=sys.stderr):
        r = train_arch(arch, data, epochs=args.epochs, seed=args.seed, device="cpu", progress=False,
                       train_split="train", eval_split="val", recalibrate=8)
        results.setdefault(g, []).append({"arch": str(arch), "val_acc": 100 * r.test_acc,
                                          "macs_m": arch.counts().macs / 1e6, "params_k": arch.counts().params / 1e3})
        saved.write_text(json.dumps(results, indent=1))  # resumable: a re-run trains only what is missing
    rows, groups = [], []
    for g in generators:
        acc = np.array([r["val_acc"] for r in results[g]][:args.graphs])
        macs = np.array([r["macs_m"] for r in results[g]][:args.graphs])
        groups.append(acc)
        rows.append([g, len(acc), f"{acc.mean():.2f}", f"{acc.std(ddof=1):.2f}", f"{acc.min():.2f}", f"{acc.max():.2f}",
                     f"{macs.mean():.2f} ± {macs.std(ddof=1):.2f}"])
    print(f"randwire/small at {args.resolution} px, {args.data}, {args.epochs} epochs from scratch, "
          f"{args.graphs} graphs per generator: validation accuracy (%)")
    print(format_table(rows, ["generator", "graphs", "mean", "std", "min", "max", "MMACs"]))
    f, p = f_oneway(*groups)
    means = np.array([a.mean() for a in groups])
    within = float(np.sqrt(np.mean([a.var(ddof=1) for a in groups])))
    print(f"spread of generator means (std) {means.std(ddof=1):.2f} points; graph-to-graph within a generator "
          f"(pooled std) {within:.2f}; one-way ANOVA F = {f:.2f}, p = {p:.2g}")
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot(groups, tick_labels=generators)
    for i, a in enumerate(groups):
        ax.scatter(np.full(len(a), i + 1) + np.random.default_rng(i).uniform(-0.08, 0.08, len(a)), a, s=10, alpha=0.6)
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"randwire/small, {args.graphs} graphs per generator, {args.epochs} epochs on {args.data}")
    save(fig, out / "randwire.png", dpi=120)
    print(f"wrote {saved} and {out / 'randwire.png'}")


if __name__ == "__main__":
    main()
