"""The shipped learned predictor on networks it has never seen, measured on this machine now.

The shipped figures come from one machine on one day; a user's machine with the same
fingerprint is another. This draws ``--n`` networks of the space that are not in the
shipped measured set (seed 777), measures each ``--passes`` times here (``cpu-ort``, the
protocol spread over ``--spread`` attempts, through the device's kept calibration), and
prints: how well two passes agree here (Kendall τ; the τ ceiling a perfect predictor could
reach against the passes' mean, by ``tools.noise_ceiling``'s model), the predictor's τ
against that mean, the median measured / predicted (the scale a spot check corrects), and
the MAPE before and after that one scale. Plots predicted against measured.

    .venv/bin/python -m tools.bench_transfer --space randwire [--n 40 --passes 2 --spread 3 --out DIR]
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau
from tqdm import tqdm

from hwnas.devices import get_device
from hwnas.devices.calibration import device_calibration
from hwnas.measure.protocol import MeasureProtocol
from hwnas.paths import REPO_ROOT
from hwnas.plots import pyplot, save
from hwnas.predictors import load_predictor
from hwnas.spaces import get_space
from tools.noise_ceiling import ceiling


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", required=True)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--spread", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_transfer"))
    args = ap.parse_args()
    stem = REPO_ROOT / "latency_tables" / f"{args.space}-{args.preset}.cpu-ort"
    space = get_space(args.space, args.preset)
    with open(f"{stem}.measured.csv", newline="") as f:
        shipped = {r["arch"] for r in csv.DictReader(f)}
    predictor = load_predictor(f"{stem}.learned.json", space=space)
    archs = [a for a in space.sample(args.n + len(shipped), seed=777) if str(a) not in shipped][:args.n]
    device = get_device("cpu-ort:threads=1")
    reference_ms = float(device_calibration(device)["calibrated_ms"])
    protocol = MeasureProtocol(spread=args.spread)
    modules = [a.build().eval() for a in archs]
    passes = np.array([[device.measure(m, space.input_shape(), protocol, reference_ms=reference_ms).latency_ms
                        for m in tqdm(modules, desc=f"pass {k + 1}/{args.passes}", unit="net")]
                       for k in range(args.passes)]).T
    measured, predicted = passes.mean(1), np.asarray(predictor.predict(archs))
    scale = float(np.median(measured / predicted))
    c = ceiling(passes) if args.passes > 1 else None
    print(f"{args.space}/{args.preset}: {len(archs)} networks not in {stem.name}.measured.csv, "
          f"{args.passes} passes here ({device.fingerprint()['cpu_model']}, spread={args.spread})")
    if c is not None:
        print(f"  two passes here agree to τ {c['pass_pair_tau']:.3f}; τ ceiling against their mean {c['tau_ceiling']:.3f}")
    print(f"  shipped predictor: τ {kendalltau(predicted, measured)[0]:.3f}; measured / predicted {scale:.3f} "
          f"(median); MAPE {100 * np.mean(np.abs(predicted / measured - 1)):.2f} %, after that one scale "
          f"{100 * np.mean(np.abs(scale * predicted / measured - 1)):.2f} %")
    args.out.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(predicted, measured, s=10, label="measured here")
    ax.scatter(scale * predicted, measured, s=10, label=f"predicted × {scale:.3f}")
    lo, hi = float(min(predicted.min() * scale, measured.min())), float(max(predicted.max(), measured.max()))
    ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
    ax.set(xlabel="predicted latency_ms", ylabel="measured median_ms", title=f"{args.space}: unseen networks")
    ax.legend()
    print(f"plot: {save(fig, args.out / f'{args.space}.png')}")


if __name__ == "__main__":
    main()
