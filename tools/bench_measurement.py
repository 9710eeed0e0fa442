"""Benchmark of the measurement core; prints one table per part and writes PNGs.

(a) stability: the same 10 architectures measured in 5 separate processes; per
    architecture, the CV of the 5 results, raw and drift-compensated (goal: median
    compensated CV <= 2 %);
(b) LUT-sum against whole-network measurements: 50 architectures of each shipped
    measured set against the shipped table (MAPE, Kendall tau);
(c) the time each shipped table took to build;
(d) two measured sets of the same 100 mbv2/small networks, made by ``hwnas measure`` in
    separate processes with a pause between them (``--pause`` seconds), each through the
    device's one kept calibration: the median ratio between them (goal 1.00 ± 0.02) and
    a learned predictor fitted on one scored on the other (goal MAPE <= 3 %).

    .venv/bin/python -m tools.bench_measurement [--runtimes ort,tflite] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

ROOT = Path(__file__).resolve().parent.parent

from hwnas.cli.common import format_table
from hwnas.devices import get_device
from hwnas.lut.table import LatencyTable
from hwnas.spaces import get_space

SUFFIX = {"ort": ".onnx", "tflite": ".tflite"}


def child(runtime: str, files: list[str], reference_ms: float) -> None:
    device = get_device(f"cpu-{runtime}:threads=1")
    device.reference_ms = reference_ms
    shape = get_space("mbv2", "small").input_shape()
    out = []
    for f in files:
        m = device.measure(f, shape)
        out.append({"raw_ms": m.stats.median_ms, "compensated_ms": m.latency_ms})
    print(json.dumps(out))


def stability(runtime: str, n_archs: int, n_procs: int) -> dict:
    from hwnas.export.onnx import export_onnx
    from hwnas.export.tflite import export_tflite

    space = get_space("mbv2", "small")
    archs = space.sample(n_archs, seed=123)
    device = get_device(f"cpu-{runtime}:threads=1")
    reference_ms = device.calibrate_reference()
    with tempfile.TemporaryDirectory() as d:
        files = []
        for i, a in enumerate(archs):
            path = Path(d) / f"m{i}{SUFFIX[runtime]}"
            (export_onnx if runtime == "ort" else export_tflite)(a.build(), space.input_shape(), path)
            files.append(str(path))
        runs = []
        for p in range(n_procs):
            r = subprocess.run([sys.executable, __file__, "--child", runtime, "--reference-ms", str(reference_ms),
                                *files], capture_output=True, text=True, check=True)
            runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
            print(f"  {runtime}: process {p + 1}/{n_procs} done", file=sys.stderr)
    raw = np.array([[r["raw_ms"] for r in run] for run in runs])  # procs x archs
    comp = np.array([[r["compensated_ms"] for r in run] for run in runs])

    def cv(x: np.ndarray) -> np.ndarray:
        return x.std(axis=0, ddof=1) / x.mean(axis=0)

    return {"runtime": runtime, "archs": n_archs, "processes": n_procs, "reference_ms": reference_ms,
            "raw_cv_median": float(np.median(cv(raw))), "raw_cv_max": float(cv(raw).max()),
            "comp_cv_median": float(np.median(cv(comp))), "comp_cv_max": float(cv(comp).max())}


def lutsum(runtime: str, preset: str, n: int, out: Path) -> dict | None:
    lut_path = ROOT / "latency_tables" / f"mbv2-{preset}.cpu-{runtime}.lut.json"
    set_path = ROOT / "latency_tables" / f"mbv2-{preset}.cpu-{runtime}.measured.csv"
    if not lut_path.exists() or not set_path.exists():
        return None
    space = get_space("mbv2", preset)
    lut = LatencyTable.load(lut_path, space=space)
    rows = list(csv.DictReader(open(set_path)))[:n]
    measured = np.array([float(r["latency_ms"]) for r in rows])
    predicted = np.array([lut.arch_latency_ms(space.parse(r["arch"])) for r in rows])
    mape = float(np.mean(np.abs(predicted - measured) / measured) * 100)
    tau = float(kendalltau(predicted, measured).statistic)
    from hwnas.plots import pyplot, save

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(measured, predicted, s=10)
    lim = [min(measured.min(), predicted.min()), max(measured.max(), predicted.max())]
    ax.plot(lim, lim, "k--", lw=0.8)
    ax.set_xlabel("measured whole network (ms)")
    ax.set_ylabel("LUT-sum (ms)")
    ax.set_title(f"mbv2/{preset} cpu-{runtime}: MAPE {mape:.1f} %, tau {tau:.2f}", fontsize=9)
    save(fig, out / f"lutsum-{preset}-{runtime}.png")
    return {"runtime": runtime, "preset": preset, "n": len(rows), "mape_pct": mape, "kendall": tau,
            "bias": float(np.median(predicted / measured))}


def two_sets(runtime: str, n: int, pause_s: float, out: Path) -> dict:
    import time

    from hwnas.predictors import LearnedPredictor
    from hwnas.predictors.data import one_column
    from hwnas.predictors.metrics import metrics

    hwnas = str(Path(sys.executable).parent / "hwnas")
    paths = [out / f"two-sets-{runtime}-{k}.csv" for k in "ab"]
    for i, path in enumerate(paths):
        if i:
            time.sleep(pause_s)
        for f in (path, path.with_name(path.name + ".meta.json")):
            f.unlink(missing_ok=True)
        subprocess.run([hwnas, "measure", "--space", "mbv2", "--preset", "small", "--device",
                        f"cpu-{runtime}:threads=1", "-n", str(n), "--seed", "7", "-o", str(path), "--quiet"],
                       check=True)
    space = get_space("mbv2", "small")
    (a, col), (b, _) = one_column(str(paths[0])), one_column(str(paths[1]))
    assert a.archs == b.archs
    ya, yb = a.column(col), b.column(col)
    refs = [json.loads(p.with_name(p.name + ".meta.json").read_text())["header"]["reference"]["calibrated_ms"]
            for p in paths]
    pred = LearnedPredictor(space).fit(a.archs, ya, validate=False)
    m = metrics(pred.predict(b.archs), yb)
    return {"runtime": runtime, "n": n, "pause_s": pause_s, "calibrations_ms": refs,
            "median_ratio": float(np.median(yb / ya)), "cross_mape_pct": m["mape_pct"],
            "cross_within_10pct": m["pct_within_10pct"]}


def build_times() -> list[list[str]]:
    rows = []
    for p in sorted((ROOT / "latency_tables").glob("*.lut.json")):
        h = json.loads(p.read_text())["header"]
        secs = (dt.datetime.fromisoformat(h["updated"]) - dt.datetime.fromisoformat(h["created"])).total_seconds()
        n = len(json.loads(p.read_text())["entries"])
        rows.append([p.name, str(n), f"{secs:.0f}", f"{secs / max(n, 1):.2f}"])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", metavar="RUNTIME")
    ap.add_argument("--reference-ms", type=float)
    ap.add_argument("files", nargs="*")
    ap.add_argument("--runtimes", default="ort,tflite")
    ap.add_argument("--archs", type=int, default=10)
    ap.add_argument("--processes", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_measurement"))
    ap.add_argument("--parts", default="a,b,c,d")
    ap.add_argument("--pause", type=float, default=300.0, help="(d): seconds between the two measured sets")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.files, args.reference_ms)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runtimes = args.runtimes.split(",")

    parts = set(args.parts.split(","))
    results: dict = {}
    if "d" in parts:
        print("(d) two measured sets of the same 100 networks in separate processes, "
              f"{args.pause:.0f} s apart, through the device's kept calibration")
        two = results["two_sets"] = [two_sets(r, 100, args.pause, out) for r in runtimes]
        print(format_table([[t["runtime"], t["n"], " / ".join(f"{c:.4f}" for c in t["calibrations_ms"]),
                             f"{t['median_ratio']:.4f}", f"{t['cross_mape_pct']:.2f} %",
                             f"{t['cross_within_10pct']:.0f} %"] for t in two],
                           ["runtime", "networks", "calibrations ms", "median ratio b/a", "MAPE a -> b",
                            "within 10 %"]))
        print()
    if not parts & {"a", "b", "c"}:
        (out / "results.json").write_text(json.dumps(results, indent=1))
        return
    print("(a) stability across processes (mbv2/small, threads=1): CV of each architecture's 5 results")
    stab = [stability(r, args.archs, args.processes) for r in runtimes]
    print(format_table([[s["runtime"], s["archs"], s["processes"], f"{100 * s['raw_cv_median']:.2f} %",
                  f"{100 * s['raw_cv_max']:.2f} %", f"{100 * s['comp_cv_median']:.2f} %",
                  f"{100 * s['comp_cv_max']:.2f} %", "yes" if s["comp_cv_median"] <= 0.02 else "NO"]
                 for s in stab],
                ["runtime", "archs", "procs", "raw CV median", "raw CV max", "comp. CV median", "comp. CV max",
                 "goal <= 2 %"]))
    print()
    print("(b) LUT-sum vs whole-network measurement (first 50 of each shipped measured set)")
    lut = [r for r in (lutsum(rt, p, 50, out) for rt in runtimes for p in ("small", "proxyless")) if r]
    print(format_table([[r["runtime"], r["preset"], r["n"], f"{r['mape_pct']:.1f} %", f"{r['kendall']:.3f}",
                  f"{r['bias']:.3f}"] for r in lut],
                ["runtime", "preset", "n", "MAPE", "Kendall tau", "median LUT/measured"]))
    print()
    print("(c) time to build each shipped table")
    print(format_table(build_times(), ["table", "layers", "seconds", "s/layer"]))
    (out / "results.json").write_text(json.dumps({**results, "stability": stab, "lutsum": lut}, indent=1))
    print(f"\nplots and results.json in {out}")


if __name__ == "__main__":
    main()
