"""``hwnas device``, ``hwnas lut ...`` and ``hwnas measure``: latency on real devices."""

from __future__ import annotations

import argparse
import math

import numpy as np

from hwnas.cli.common import answers_json, add_space_args, emit_json, space_from_args, format_table
from hwnas.devices import get_device, parse_device_spec
from hwnas.errors import HwnasError
from hwnas.lut.table import LatencyTable
from hwnas.spaces.stored import space_from_skeleton


def register(sub: argparse._SubParsersAction) -> None:
    dev = sub.add_parser("device", help="inspect a device")
    dsub = dev.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = dsub.add_parser("info", help="fingerprint and reference latency of a device")
    p.add_argument("device", metavar="SPEC", help="e.g. cpu-ort:threads=1 or devices/NAME.toml")
    p.add_argument("--calibrate", action="store_true",
                   help="also time the drift-compensation reference, beside the device's kept calibration")
    p.add_argument("--recalibrate", action="store_true",
                   help="with --calibrate: keep this measurement as the device's calibration from now on (later "
                        "tables and sets are reported through it; earlier files keep theirs)")
    answers_json(p, cmd_device_info)

    lut = sub.add_parser("lut", help="build, show and compare latency tables")
    lsub = lut.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = lsub.add_parser("build", help="measure every layer of a space on a device (resumable)")
    add_space_args(p, positional=False)
    p.add_argument("--device", required=True, metavar="SPEC", action="append",
                   help="e.g. cpu-ort:threads=1; give it again, or a pool file (devices/NAME.toml with 'urls'), "
                        "for a pool of identical devices (agents of one kind) "
                        "that share the layers, each taking the next when it is free")
    p.add_argument("-o", "--output", required=True, help="table file (JSON); re-run to resume")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    answers_json(p, cmd_lut_build)

    p = lsub.add_parser("fill", help="predict the layers a table lacks with the device's kernel predictor "
                                     "(no device needed; 'lut build' measures them later)")
    p.add_argument("table", metavar="FILE", help="the table to complete (made for --space when it does not exist)")
    p.add_argument("--predictor", required=True, metavar="KP",
                   help="the device's kernel predictor (hwnas profile build-predictor)")
    add_space_args(p, positional=False, required=False)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    answers_json(p, cmd_lut_fill)

    p = lsub.add_parser("show", help="summary of a table and its coverage of its space")
    p.add_argument("table", metavar="FILE")
    answers_json(p, cmd_lut_show)

    p = lsub.add_parser("diff", help="per-key latency ratios B/A of two tables")
    p.add_argument("a", metavar="A")
    p.add_argument("b", metavar="B")
    answers_json(p, cmd_lut_diff)

    p = lsub.add_parser("rebase", help="report tables or measured sets through another reference calibration")
    p.add_argument("files", nargs="+", metavar="FILE", help="latency tables (.lut.json) and measured sets (.csv)")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--reference-ms", type=float, help="the calibration to report through (ms)")
    how.add_argument("--device", metavar="SPEC", help="the device's kept calibration (see hwnas device info --calibrate)")
    answers_json(p, cmd_lut_rebase)

    p = sub.add_parser("measure", help="sample and measure whole networks into a CSV (resumable)")
    add_space_args(p, positional=False)
    p.add_argument("--device", required=True, metavar="SPEC", action="append",
                   help="where to measure: a spec (cpu-ort:threads=1, cpu-tflite:threads=1, cpu-torch, cuda-torch, "
                        "remote:tcp://HOST:PORT?runtime=tflite, ...) or a profile (devices/NAME.toml); give it again "
                        "for a pool of identical devices that share the networks (or a pool file: 'urls' in the "
                        "profile)")
    p.add_argument("-n", type=int, required=True, help="how many distinct architectures")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True, help="CSV file; provenance goes to FILE.meta.json")
    p.add_argument("--remeasure-noisy", action="store_true", help="also measure again the rows flagged noisy")
    p.add_argument("--passes", type=int, metavar="N",
                   help="measure the whole set N times, one pass after the other, and keep each network's median "
                        "over the passes: drift that differs between passes averages out (default: as many as "
                        "the file was measured with, else 1; a larger N on a finished set adds the missing passes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    answers_json(p, cmd_measure)


def cmd_device_info(args: argparse.Namespace) -> int:
    device = get_device(args.device)
    info = {"spec": device.spec, "fingerprint": device.fingerprint(), "protocol": device.protocol.to_dict()}
    if args.calibrate:
        from hwnas.devices.calibration import device_calibration, keep

        kept = device_calibration(device)
        info["reference_ms"] = device.calibrate_reference()
        if args.recalibrate:
            kept = keep(device.fingerprint(), info["reference_ms"], "measured (hwnas device info --recalibrate)")
        info["calibration"] = {**kept, "drift_pct": 100.0 * (info["reference_ms"] / kept["calibrated_ms"] - 1.0)}
    if args.json:
        emit_json(info)
    else:
        for k, v in info["fingerprint"].items():
            print(f"{k}: {v}")
        if args.calibrate:
            c = info["calibration"]
            print(f"reference latency now: {info['reference_ms']:.4f} ms; the device's calibration: "
                  f"{c['calibrated_ms']:.4f} ms ({c['source']}), {c['drift_pct']:+.1f} % from it")
    return 0


def cmd_lut_rebase(args: argparse.Namespace) -> int:
    from hwnas.devices.calibration import device_calibration
    from hwnas.lut.rebase import rebase_file

    ms = args.reference_ms if args.reference_ms is not None else device_calibration(get_device(args.device))["calibrated_ms"]
    out = {str(f): rebase_file(f, ms) for f in args.files}
    if args.json:
        emit_json({"calibrated_ms": ms, "factors": out})
    else:
        for f, factor in out.items():
            print(f"{f}: x{factor:.4f} (now reported through {ms:.4f} ms)")
    return 0


def cmd_lut_build(args: argparse.Namespace) -> int:
    from hwnas.lut.build import build_table

    space = space_from_args(args)
    devices = [d for spec in args.device for d in parse_device_spec(spec).open_all()]
    report = build_table(space, devices if len(devices) > 1 else devices[0], args.output, progress=not args.quiet)
    if args.json:
        emit_json(report.__dict__)
    else:
        print(f"{report.path}: {report.total} layers, {report.measured} measured now, {report.kept} kept, "
              f"{report.noisy} flagged noisy, {report.seconds:.1f} s")
        for spec, n in (report.per_device or {}).items():
            print(f"  {spec}: {n} layers" + (f" (dropped out: {report.dropped[spec]})"
                                             if spec in (report.dropped or {}) else ""))
    return 0


def cmd_lut_fill(args: argparse.Namespace) -> int:
    from hwnas.predictors.kernel_fill import fill_table

    space = space_from_args(args) if args.space else None
    report = fill_table(args.table, args.predictor, space, progress=not args.quiet)
    if args.json:
        emit_json(report.__dict__)
    else:
        print(f"{report.table}: {report.total} layers, {report.predicted} predicted now, {report.had} there before "
              f"(calibration scale {report.scale:.3f}), {report.seconds:.1f} s; 'hwnas lut build' on the device "
              "measures the predicted ones")
    return 0


def cmd_lut_show(args: argparse.Namespace) -> int:
    t = LatencyTable.load(args.table)
    h = t.header
    lat = np.array([e["median_ms"] for e in t.entries.values()]) if t.entries else np.zeros(0)
    info = {"path": t.path, "space": h["space"], "preset": h["preset"], "device_spec": h.get("device_spec"),
            "device": h["device"], "entries": len(t), "noisy": sum(bool(e.get("noisy")) for e in t.entries.values()),
            "predicted": sum(bool(e.get("predicted_by")) for e in t.entries.values()),
            "reference_ms": h["reference"]["calibrated_ms"], "created": h.get("created"),
            "updated": h.get("updated"), "total_ms": float(lat.sum()),
            "min_ms": float(lat.min()) if lat.size else None, "max_ms": float(lat.max()) if lat.size else None}
    try:
        space = space_from_skeleton(h["space"], h["preset"], h["skeleton"])
        t.check_space(space)
        have, total = t.coverage(space)
        info["coverage"] = {"have": have, "total": total}
    except HwnasError as e:
        info["coverage"] = {"error": str(e)}
    if args.json:
        emit_json(info)
        return 0
    d = h["device"]
    print(f"{t.path}: {h['space']}/{h['preset']} on {h.get('device_spec')}")
    print(f"device: {d.get('cpu_model')}, {d.get('logical_cores')} cores, {d.get('runtime')} "
          f"{d.get('runtime_version')}, threads {d.get('threads')}")
    predicted = f", {info['predicted']} predicted, not measured" if info["predicted"] else ""
    print(f"entries: {len(t)} ({info['noisy']} noisy{predicted})   reference: {info['reference_ms']} ms   "
          f"updated: {info['updated']}")
    cov = info["coverage"]
    print(f"coverage: {cov['have']}/{cov['total']} layers of the space" if "have" in cov else f"coverage: {cov['error']}")
    if lat.size:
        print(f"latency per layer: min {info['min_ms']:.4f} ms, max {info['max_ms']:.4f} ms")
    return 0


def cmd_lut_diff(args: argparse.Namespace) -> int:
    a, b = LatencyTable.load(args.a), LatencyTable.load(args.b)
    common = [k for k in a.entries if k in b.entries]
    if not common:
        raise HwnasError(f"{args.a} and {args.b} share no layer keys (different spaces or presets?)")
    ratios = np.array([b.latency_ms(k) / a.latency_ms(k) if a.latency_ms(k) > 0 else math.inf for k in common])
    rows = sorted(zip(common, ratios), key=lambda kv: -abs(math.log(kv[1])) if kv[1] > 0 and math.isfinite(kv[1]) else 0)
    info = {"a": args.a, "b": args.b, "common": len(common), "only_a": len(a) - len(common),
            "only_b": len(b) - len(common), "median_ratio": float(np.median(ratios)),
            "min_ratio": float(ratios.min()), "max_ratio": float(ratios.max()),
            "ratios": {k: float(r) for k, r in zip(common, ratios)}}
    if args.json:
        emit_json(info)
        return 0
    print(f"{len(common)} common keys ({info['only_a']} only in A, {info['only_b']} only in B); "
          f"B/A median {info['median_ratio']:.3f}, range {info['min_ratio']:.3f}..{info['max_ratio']:.3f}")
    print(format_table([[k, f"{a.latency_ms(k):.4f}", f"{b.latency_ms(k):.4f}", f"{r:.3f}"] for k, r in rows[:15]],
                ["key (largest differences first)", "A ms", "B ms", "B/A"]))
    return 0


def cmd_measure(args: argparse.Namespace) -> int:
    from hwnas.lut.netset import measure_set

    if args.n < 1:
        raise HwnasError("-n must be >= 1")
    space = space_from_args(args)
    devices = [d for spec in args.device for d in parse_device_spec(spec).open_all()]
    report = measure_set(space, devices if len(devices) > 1 else devices[0], args.output, args.n, args.seed, progress=not args.quiet,
                         remeasure_noisy=args.remeasure_noisy, passes=args.passes)
    if args.json:
        emit_json(report.__dict__)
    else:
        print(f"{report.path}: {report.total} networks, {report.measured} measured now, {report.kept} kept, "
              f"{report.remeasured} noisy re-measured, {report.repeated} measured again in later passes, "
              f"{report.seconds:.1f} s")
    return 0
