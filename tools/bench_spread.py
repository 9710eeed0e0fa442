"""How much does one latency figure depend on what else the machine is doing, and how much
does spreading the protocol over attempts (``MeasureProtocol.spread``) take out?

For each of ``--archs`` networks of a space (exported to ONNX, ``cpu-ort:threads=1``), the
protocol's single attempt is taken ``--attempts`` times in a row (each with its own
warm-up, as between the attempts of a spread measurement), drift-compensated through the
device's kept calibration. Then every run of ``k`` consecutive attempts is reported as a
spread measurement would report it (:func:`hwnas.measure.protocol.quietest`), for k = 1
(today's single attempt), 3, 5, 9 and 15: the median figure, and the width from the 10th
to the 90th percentile of the figures as a share of their median (how far two
measurements of one network, taken at different moments, can disagree). Beside it: how
the figure follows the machine's state (Pearson r between an attempt's reference raw time
and its figure; the figure in the quietest and in the loudest third of the attempts).

    .venv/bin/python -m tools.bench_spread [--space darts --preset small --archs 3 --attempts 240 --out DIR]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hwnas.cli.common import format_table
from hwnas.devices import get_device
from hwnas.devices.calibration import device_calibration
from hwnas.export.onnx import onnx_bytes
from hwnas.measure.protocol import Measurement, measure, quietest
from hwnas.plots import pyplot, save
from hwnas.spaces import get_space

SPREADS = (1, 3, 5, 9, 15)


def attempts_of(device: object, model: bytes, shape: tuple[int, int, int], reference_ms: float, n: int,
                label: str) -> list[Measurement]:
    runner, reference = device.load(model, shape), device.reference_runner()  # type: ignore[attr-defined]
    one = replace(device.protocol, retries=0, spread=1)  # type: ignore[attr-defined]
    return [measure(runner, one, reference=reference, reference_ms=reference_ms)
            for _ in tqdm(range(n), desc=label, unit="attempt")]


def windows(attempts: list[Measurement], k: int) -> np.ndarray:
    return np.array([quietest(attempts[w:w + k]).latency_ms for w in range(len(attempts) - k + 1)])


def summary(name: str, attempts: list[Measurement]) -> tuple[list[list[str]], dict[int, np.ndarray]]:
    figures = np.array([m.latency_ms for m in attempts])
    states = np.array([m.reference_raw_ms for m in attempts])
    order = np.argsort(states)
    third = len(order) // 3
    r = float(np.corrcoef(states, figures)[0, 1])
    quiet, loud = float(np.median(figures[order[:third]])), float(np.median(figures[order[-third:]]))
    rows, per_k = [], {}
    for k in SPREADS:
        est = per_k[k] = windows(attempts, k)
        med = float(np.median(est))
        width = 100 * float(np.percentile(est, 90) - np.percentile(est, 10)) / med
        rows.append([name, str(k), f"{med:.4f}", f"{width:.1f}", f"{100 * (est.max() / est.min() - 1):.1f}",
                     f"{r:.2f}", f"{quiet:.4f}", f"{loud:.4f}"])
    return rows, per_k


def plot(results: dict[str, tuple[list[Measurement], dict[int, np.ndarray]]], path: Path) -> Path:
    plt = pyplot()
    fig, axes = plt.subplots(2, len(results), figsize=(4.2 * len(results), 7), squeeze=False)
    for col, (name, (attempts, per_k)) in enumerate(results.items()):
        ax = axes[0, col]
        ax.scatter([m.reference_raw_ms for m in attempts], [m.latency_ms for m in attempts], s=6)
        ax.set(title=name, xlabel="reference raw median_ms (the machine's state)", ylabel="figure, latency_ms")
        ax = axes[1, col]
        ax.boxplot([per_k[k] for k in SPREADS], tick_labels=[str(k) for k in SPREADS], whis=(10, 90))
        ax.set(xlabel="attempts spread over (k)", ylabel="reported latency_ms")
    return save(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="darts")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--archs", type=int, default=3)
    ap.add_argument("--attempts", type=int, default=240)
    ap.add_argument("--device", default="cpu-ort:threads=1")
    ap.add_argument("--out", type=Path, default=Path("runs/bench_spread"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    space = get_space(args.space, args.preset)
    device = get_device(args.device)
    reference_ms = float(device_calibration(device)["calibrated_ms"])
    shape = space.input_shape()
    results, rows = {}, []
    for i, arch in enumerate(space.sample(args.archs, seed=0)):
        name = f"{args.space}#{i}"
        attempts = attempts_of(device, onnx_bytes(arch.build().eval(), shape), shape, reference_ms,
                               args.attempts, name)
        got, per_k = summary(name, attempts)
        rows += got
        results[name] = (attempts, per_k)
    print(f"{args.device} ({device.fingerprint()['cpu_model']}), reference calibrated at {reference_ms:.4f} ms; "
          f"{args.attempts} attempts per network")
    print(format_table(rows, ["network", "k", "median_ms", "p10-p90 %", "max/min-1 %", "r(state)",
                              "quiet third ms", "loud third ms"]))
    print(f"plot: {plot(results, args.out / 'spread.png')}")


if __name__ == "__main__":
    main()
