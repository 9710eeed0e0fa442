"""Benchmark of the kernel-level predictor on models it was never fitted on.

Builds (or loads) a kernel predictor for the device from random sample networks, then, for
every model in ``--models`` of the device's format (``.onnx`` for onnxruntime, ``.tflite`` for
LiteRT: torchvision classification networks exported by ``tools/export_torchvision.py``), measures the whole model with the protocol and predicts it
from its kernels. Prints each model's measured and predicted latency, the share within
±10 %, MAPE and Kendall's tau (goals: >= 95 % within ±10 %, tau >= 0.9), the same for a
FLOPs-proportional baseline (one rate fitted on the sample networks), and writes a PNG of
predicted against measured latency. Measurements are kept in ``--cache`` so reruns only
predict. ``--check N`` also times N of the predictor's own sample networks again: whether
the host runs as it did when the predictor was built (a shared host does not stay put).
``--decompose`` (onnxruntime) profiles every model too and splits each error into the
predictor's two steps: its kernel models (the predicted kernel times' sum against the
profiled one) and its whole-model step applied to the profiled kernel times (against the
measured whole model), so a miss is found in the step that makes it.

    PYTHONPATH=. /tmp/tv/bin/python -m tools.export_torchvision -o /tmp/tvonnx
    .venv/bin/python -m tools.bench_kernel_predictor --models /tmp/tvonnx --predictor kp.json [--nets 300] [--decompose]
    .venv/bin/python -m tools.bench_kernel_predictor --device cpu-tflite:threads=1 --models /tmp/tvtflite \
        --predictor kt.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from hwnas.cli.common import format_table
from hwnas.devices import get_device
from hwnas.devices.calibration import device_calibration
from hwnas.devices.profile import load_model
from hwnas.kernels.build import build_kernel_predictor
from hwnas.kernels.graph import family_of, kernels_from_profile, model_kernels
from hwnas.kernels.model import KernelPredictor
from hwnas.kernels.sampler import is_single
from hwnas.kernels.tflite_graph import tflite_kernels
from hwnas.measure.op_profile import profile_onnx
from hwnas.measure.protocol import MeasureProtocol


def measured(device, path: Path, protocol: MeasureProtocol, cache: dict, reference_ms: float | None,
             repeat: int = 0) -> float:
    data = path.read_bytes()
    key = (f"{hashlib.sha256(data).hexdigest()[:16]}:{device.spec}:{reference_ms}:{protocol.runs}x{protocol.rounds}:"
           f"{protocol.compensate}" + (f":{repeat}" if repeat else ""))
    if key not in cache:
        m = device.measure(data, load_model(str(path)).input_shape, protocol=protocol, reference_ms=reference_ms)
        cache[key] = {"model": path.stem, "latency_ms": m.latency_ms, "raw_ms": m.stats.median_ms, "cv": m.stats.cv}
    return cache[key]["latency_ms"]


def summary(meas: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    rel = np.abs(pred / meas - 1)
    return {"within_10_pct": float(100 * (rel <= 0.10).mean()), "within_5_pct": float(100 * (rel <= 0.05).mean()),
            "mape_pct": float(100 * rel.mean()), "max_err_pct": float(100 * rel.max()),
            "kendall_tau": float(kendalltau(meas, pred)[0])}


def macs_of(kernels) -> float:
    return float(sum(np.exp(k.features["log_macs"]) for k in kernels if k.family in ("conv", "gemm")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", required=True, help="folder of .onnx or .tflite models, the device's format "
                                                    "(python -m tools.export_torchvision)")
    ap.add_argument("--device", default="cpu-ort:threads=1",
                    help="the device (default cpu-ort:threads=1; add ,compensate=false for raw medians)")
    ap.add_argument("--predictor", required=True, help="kernel predictor JSON (built here first if missing)")
    ap.add_argument("--nets", type=int, default=300, help="sample networks when building (default 300)")
    ap.add_argument("--runs", type=int, default=20, help="protocol runs per round (default 20)")
    ap.add_argument("--rounds", type=int, default=5, help="protocol rounds (default 5)")
    ap.add_argument("--cache", default="runs/bench_kernel_predictor/measured.json")
    ap.add_argument("--plot", default="runs/bench_kernel_predictor/predicted_vs_measured.png")
    ap.add_argument("--repeats", type=int, default=1,
                    help="measure every model this many times, in passes over all models (the spread between "
                         "passes is the measurement's own noise, the ceiling of any predictor; default 1)")
    ap.add_argument("--check", type=int, default=0, metavar="N",
                    help="also time N of the predictor's sample networks again (hwnas profile check-predictor): "
                         "whether the host runs as it did when the predictor was built (default 0)")
    ap.add_argument("--decompose", action="store_true",
                    help="onnxruntime: also profile each model and split its error into the kernel models' and "
                         "the whole-model step's")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    device = get_device(args.device)
    if not Path(args.predictor).exists():
        t0 = time.time()
        build_kernel_predictor(device, args.predictor, nets=args.nets)
        print(f"built {args.predictor} from {args.nets} sample networks in {time.time() - t0:.0f} s")
    predictor = KernelPredictor.load(args.predictor)
    reference_ms = device_calibration(device)["calibrated_ms"] if device.protocol.compensate else None
    protocol = MeasureProtocol(runs=args.runs, rounds=args.rounds, compensate=device.protocol.compensate)
    cache_path = Path(args.cache)
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    fmt = device.export_format or "onnx"
    if args.decompose and fmt != "onnx":
        print(f"--decompose needs onnxruntime's profiler, and {args.device} runs {fmt} files (LiteRT's Python "
              "interpreter has no op profiler): drop --decompose, or use an onnxruntime device such as "
              "cpu-ort:threads=1", file=sys.stderr)
        return 2
    files = sorted(Path(args.models).glob(f"*.{fmt}"))
    if not files:
        print(f"no .{fmt} files in {args.models}: export some with python -m tools.export_torchvision "
              f"--format {fmt}", file=sys.stderr)
        return 2
    # the FLOPs baseline: one rate (ms per MAC) fitted on the whole times of the sample networks
    # that do arithmetic, not the single operators (an activation alone has no MACs, a small
    # convolution alone is mostly the runtime's fixed cost)
    rows = predictor.rows
    sample_macs = np.array([sum(np.exp(rows[i]["features"]["log_macs"]) for i in n["kernels"]
                                if family_of(rows[i]["op"]) in ("conv", "gemm"))
                            for n in predictor.nets])
    sample_ms = np.array([n["whole_ms"] for n in predictor.nets])
    arithmetic = (sample_macs > 0) & np.array([not any(is_single(str(k)) for k in n.get("blocks", []))
                                                    for n in predictor.nets])
    rate = float(np.median(sample_ms[arithmetic] / sample_macs[arithmetic]))
    passes = np.zeros((args.repeats, len(files)))
    for r in range(args.repeats):
        for i, f in enumerate(files):
            passes[r, i] = measured(device, f, protocol, cache, reference_ms, r)
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            cache_path.write_text(json.dumps(cache, indent=1))
    table, meas, pred, flops, steps = [], [], [], [], []
    for f, m in zip(files, np.median(passes, axis=0)):
        kernels = tflite_kernels(f.read_bytes()) if fmt == "tflite" else model_kernels(f.read_bytes(), device.threads)
        p = predictor.predict(kernels)
        macs = macs_of(kernels)
        meas.append(m)
        pred.append(p)
        flops.append(rate * macs)
        table.append([f.stem, f"{macs / 1e9:.3f}", len(kernels), f"{m:.3f}", f"{p:.3f}", f"{100 * (p / m - 1):+.1f} %",
                      f"{100 * (rate * macs / m - 1):+.1f} %"])
        if args.decompose:
            steps.append(decomposed(predictor, f, kernels, m, device.threads))
            table[-1] += [f"{100 * steps[-1]['kernel_err']:+.1f} %", f"{100 * steps[-1]['whole_step_err']:+.1f} %"]
    meas_a, pred_a, flops_a = map(np.array, (meas, pred, flops))
    out = {"device": args.device, "predictor": args.predictor, "models": len(files),
           "sample_nets": len(predictor.nets), "kernel_predictor": summary(meas_a, pred_a),
           "flops_baseline": summary(meas_a, flops_a)}
    if steps:
        out["steps"] = {f.stem: s for f, s in zip(files, steps)}
        whole_step = np.array([s["whole_step_ms"] for s in steps])
        out["whole_step_alone"] = summary(meas_a, whole_step)
    if args.check:
        from hwnas.kernels.check import check_predictor

        c = check_predictor(predictor, device, args.check, progress=False)
        out["check"] = {k: c[k] for k in ("median_ratio", "p10_ratio", "p90_ratio", "holds")}
    if args.repeats > 1:  # each pass against the others' median: how far the measurement itself moves
        others = np.array([np.median(np.delete(passes, r, axis=0), axis=0) for r in range(args.repeats)])
        out["measurement_repeatability"] = summary(others.ravel(), passes.ravel())
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        print(format_table(table, ["model", "GMACs", "kernels", "measured ms", "predicted ms", "error",
                                   "FLOPs baseline"] + (["kernel step", "whole step"] if steps else [])))
        if "check" in out:
            c = out["check"]
            print(f"check: the predictor's sample networks now / when built: median {c['median_ratio']:.3f} "
                  f"(p10 {c['p10_ratio']:.3f}, p90 {c['p90_ratio']:.3f})")
        for name in ("kernel_predictor", "flops_baseline", "measurement_repeatability", "whole_step_alone"):
            if name not in out:
                continue
            s = out[name]
            print(f"{name}: {s['within_10_pct']:.1f} % within ±10 % ({s['within_5_pct']:.1f} % within ±5 %), "
                  f"MAPE {s['mape_pct']:.2f} %, worst {s['max_err_pct']:.1f} %, Kendall tau {s['kendall_tau']:.3f}")
    _plot(files, meas_a, pred_a, args.plot, out)
    return 0


def decomposed(predictor: KernelPredictor, path: Path, kernels, measured_ms: float, threads: int) -> dict:
    """The two steps' errors on one model: the predicted kernels' sum against the runtime's
    profiled one, and the whole-model step applied to the profiled kernels against the
    measured whole model."""
    prof = profile_onnx(str(path), threads=threads)
    profiled = kernels_from_profile(prof)
    profiled_ms = float(sum(k.ms for k in profiled))
    predicted_ms = float(predictor.kernel_ms(kernels).sum())
    whole_step_ms = predictor.whole_ms(profiled_ms, len(profiled))
    return {"profiled_kernels_ms": profiled_ms, "profiled_kernels": len(profiled), "predicted_kernels_ms": predicted_ms,
            "kernel_err": predicted_ms / profiled_ms - 1, "whole_step_ms": whole_step_ms,
            "whole_step_err": whole_step_ms / measured_ms - 1}


def _plot(files, meas, pred, path: str, out: dict) -> None:
    from hwnas.plots import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(meas, pred, s=14)
    for f, m, p in zip(files, meas, pred):
        ax.annotate(f.stem, (m, p), fontsize=6)
    lo, hi = float(min(meas.min(), pred.min())) * 0.8, float(max(meas.max(), pred.max())) * 1.25
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="0.85", label="±10 %")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured ms")
    ax.set_ylabel("predicted ms")
    s = out["kernel_predictor"]
    ax.set_title(f"kernel predictor on {out['device']}: {s['within_10_pct']:.0f} % within ±10 %, "
                 f"tau {s['kendall_tau']:.3f}", fontsize=9)
    ax.legend()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save(fig, path)
    print(f"plot: {path}")


if __name__ == "__main__":
    sys.exit(main())
