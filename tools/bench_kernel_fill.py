"""A latency table predicted by the kernel predictor, against one measured on the device.

Fills an empty table for the measured table's space from the kernel predictor (no layer
measured), then compares layer by layer (Spearman, Kendall τ, median ratio) and as the
search uses it: LUT-sum against whole networks measured on the device (a measured set),
plain (rank) and corrected as a search on an unmatched device corrects it (a·sum + b fitted
on ``--correction`` networks, scored on the rest). Writes a scatter plot of the layers.

    .venv/bin/python -m tools.bench_kernel_fill --predictor KP.json \\
        [--table latency_tables/mbv2-small.cpu-ort.lut.json] [--measured latency_tables/mbv2-small.cpu-ort.measured.csv]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from hwnas.cli.common import format_table
from hwnas.lut.table import LatencyTable
from hwnas.plots import pyplot, save
from hwnas.predictors.kernel_fill import fill_table
from hwnas.spaces.stored import space_from_skeleton

ROOT = Path(__file__).resolve().parent.parent


def lut_sum_scores(table: LatencyTable, archs: list, measured: np.ndarray, k: int, seed: int) -> list[str]:
    sums = np.array([table.arch_latency_ms(a) for a in archs])
    fit = np.random.default_rng(seed).permutation(len(archs))
    train, test = fit[:k], fit[k:]
    a, b = np.polyfit(sums[train], measured[train], 1)
    err = np.abs(a * sums[test] + b - measured[test]) / measured[test]
    return [f"{spearmanr(sums, measured)[0]:.3f}", f"{kendalltau(sums, measured)[0]:.3f}",
            f"{100 * err.mean():.2f}", f"{100 * np.mean(err <= 0.10):.1f}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--predictor", required=True, help="the device's kernel predictor")
    ap.add_argument("--table", default=str(ROOT / "latency_tables" / "mbv2-small.cpu-ort.lut.json"))
    ap.add_argument("--measured", default=str(ROOT / "latency_tables" / "mbv2-small.cpu-ort.measured.csv"))
    ap.add_argument("--correction", type=int, default=20, help="networks the affine correction is fitted on")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot", default=str(ROOT / "runs" / "bench_kernel_fill" / "layers.png"))
    args = ap.parse_args()
    measured_table = LatencyTable.load(args.table)
    h = measured_table.header
    space = space_from_skeleton(h["space"], h["preset"], h["skeleton"])
    with tempfile.TemporaryDirectory() as d:
        report = fill_table(Path(d) / "predicted.lut.json", args.predictor, space)
        predicted = LatencyTable.load(report.table)
    keys = sorted(set(measured_table.entries) & set(predicted.entries))
    x = np.array([measured_table.latency_ms(k) for k in keys])
    y = np.array([predicted.latency_ms(k) for k in keys])
    print(f"{space.name}/{space.preset}: {len(keys)} layers predicted in {report.seconds:.1f} s, none measured")
    print(f"layers: Spearman {spearmanr(x, y)[0]:.3f}, Kendall tau {kendalltau(x, y)[0]:.3f}, "
          f"median predicted/measured {np.median(y / x):.3f}")
    with open(args.measured, newline="") as f:
        rows = list(csv.DictReader(f))
    archs = [space.parse(r["arch"]) for r in rows]
    ms = np.array([float(r["latency_ms"]) for r in rows])
    print(f"\nLUT-sum against {len(rows)} whole networks measured on the device ({Path(args.measured).name}); "
          f"corrected: a*sum + b fitted on {args.correction}, scored on the other {len(rows) - args.correction}")
    print(format_table([[name, *lut_sum_scores(t, archs, ms, args.correction, args.seed)]
                        for name, t in (("measured table", measured_table), ("predicted table", predicted))],
                       ["table", "Spearman", "Kendall tau", "corrected MAPE %", "within 10 %"]))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.scatter(x, y, s=10)
    ax.set_xlabel("measured layer ms (table)")
    ax.set_ylabel("predicted layer ms (kernel predictor)")
    ax.set_title(f"{space.name}/{space.preset} layers", fontsize=9)
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    print(f"\nwrote {save(fig, args.plot)}")


if __name__ == "__main__":
    main()
