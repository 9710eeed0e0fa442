"""``hwnas profile MODEL --device SPEC``: how fast any model is on a device, and which
operators take the time."""

from __future__ import annotations

import argparse
from typing import Any

from hwnas.cli.common import answers_json, emit_json, format_table


BUILD = "build-predictor"
CHECK = "check-predictor"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="whole-model and per-operator latency of any model on a device",
                       epilog=f"'hwnas profile {BUILD} --device SPEC -o FILE' measures a kernel-level predictor "
                              "for a device; 'hwnas profile MODEL --predictor FILE' predicts any model's "
                              "latency there without the device (an .onnx model with an onnxruntime "
                              "predictor, a .tflite one with a LiteRT predictor); 'hwnas profile "
                              f"{CHECK} FILE --device SPEC' measures a few of its sample networks again to say "
                              "whether it still describes the device.")
    p.add_argument("model", metavar="MODEL",
                   help="an .onnx or .tflite file, or a torchvision model name (random weights; needs torchvision)")
    p.add_argument("--device", metavar="SPEC",
                   help="a device spec (cpu-ort:threads=1, cpu-tflite:threads=1, cpu-torch, cuda-torch, "
                        "remote:tcp://HOST:PORT?runtime=onnx, ...) or a profile (devices/NAME.toml)")
    p.add_argument("--predictor", metavar="FILE",
                   help=f"a kernel predictor ('hwnas profile {BUILD}'): predict the latency without the device "
                        "(with --device as well: predicted beside measured)")
    p.add_argument("--input-shape", metavar="1xCxHxW",
                   help="one sample's input shape, for a model with dynamic dimensions (default: the model's; "
                        "1x3x224x224 for torchvision models)")
    p.add_argument("--runs", type=int, default=50, help="profiled runs for the per-operator breakdown (default 50)")
    p.add_argument("--no-ops", action="store_true", help="whole-model latency only")
    p.add_argument("--top", type=int, default=20, help="operators listed (default 20; --json has all)")
    p.add_argument("--plot", metavar="PNG", help="also draw the slowest operators as a bar chart")
    answers_json(p, cmd_profile)

    b = sub.add_parser(f"profile-{BUILD}", prog=f"hwnas profile {BUILD}",
                       description="Measure random sample networks on a device (every kernel's time from the "
                                   "runtime's profiler, adaptively sampled where the error is high; resumable), fit a "
                                   "kernel-level latency predictor and save it as JSON.")
    b.add_argument("--device", required=True, metavar="SPEC", help="an onnxruntime or LiteRT device (cpu-ort:"
                                                                  "threads=1, cpu-tflite:threads=1, "
                                                                  "remote:tcp://HOST:PORT?runtime=onnx, ...)")
    b.add_argument("-o", "--output", required=True, metavar="FILE", help="the predictor's JSON file (its measured "
                                                                          "samples go to FILE.samples.jsonl)")
    b.add_argument("--nets", type=int, default=300, help="sample networks to measure (default 300; about 1.3 s each "
                                                         "on one CPU core with onnxruntime, 2.7 s with LiteRT, "
                                                         "which converts each)")
    b.add_argument("--round", type=int, default=30, help="networks per adaptive-sampling round (default 30)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    answers_json(b, cmd_build_predictor)

    c = sub.add_parser(f"profile-{CHECK}", prog=f"hwnas profile {CHECK}",
                       description="Measure a few of a kernel predictor's own sample networks on its device again "
                                   "(the build's protocol and calibration) and compare them with their build-time "
                                   "times: whether the predictor still describes the device now.")
    c.add_argument("predictor", metavar="FILE", help="the kernel predictor's JSON file")
    c.add_argument("--device", required=True, metavar="SPEC", help="the device it was built for")
    c.add_argument("--nets", type=int, default=8, help="sample networks to measure, spread over their range of "
                                                       "times (default %(default)s)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    answers_json(c, cmd_check_predictor)


def route(argv: list[str]) -> list[str]:
    """``profile build-predictor ...`` and ``profile check-predictor ...`` are parsed by their
    own parsers (``profile`` takes a model)."""
    if argv[:1] == ["profile"] and argv[1:2] in ([BUILD], [CHECK]):
        return [f"profile-{argv[1]}", *argv[2:]]
    return argv


def cmd_check_predictor(args: argparse.Namespace) -> int:
    from hwnas.devices import get_device
    from hwnas.kernels.check import check_predictor
    from hwnas.kernels.model import KernelPredictor

    out = check_predictor(KernelPredictor.load(args.predictor), get_device(args.device), args.nets,
                          progress=not args.quiet)
    if args.json:
        emit_json(out)
        return 0 if out["holds"] else 1
    print(format_table([[" ".join(r["blocks"])[:60], f"{r['then_ms']:.3f}", f"{r['now_ms']:.3f}",
                         f"{r['ratio']:.3f}" + (" (noisy)" if r["noisy"] else "")] for r in out["nets"]],
                       ["sample network", "built ms", "now ms", "now / built"]))
    spread = f"median {out['median_ratio']:.3f} (p10 {out['p10_ratio']:.3f}, p90 {out['p90_ratio']:.3f})"
    if out["holds"]:
        print(f"the predictor still describes {out['device']}: now / built {spread}, within "
              f"±{100 * out['tolerance']:.0f} %")
        return 0
    print(f"{out['device']} runs the predictor's sample networks at {spread} of their times when it was built: "
          f"its predictions are off by about as much now. Build it again (a new -o, or move {args.predictor} "
          "and its .samples.jsonl away first)")
    return 1


def cmd_build_predictor(args: argparse.Namespace) -> int:
    from hwnas.devices import get_device
    from hwnas.kernels.build import build_kernel_predictor, samples_path

    device = get_device(args.device)
    predictor = build_kernel_predictor(device, args.output, nets=args.nets, round_size=args.round, seed=args.seed,
                                       progress=not args.quiet)
    meta = predictor.meta
    if args.json:
        emit_json({"output": args.output, **{k: meta[k] for k in ("device", "kernels", "out_of_fold", "rounds")}})
        return 0
    oof = meta["out_of_fold"]
    error = ("too few networks to predict any out of fold" if oof["oof_mape_pct"] is None else
             f"MAPE {oof['oof_mape_pct']:.2f} %, {oof['oof_within_10_pct']:.1f} % within ±10 % "
             f"({oof['predicted']} of {oof['nets']} predicted)")
    print(f"kernel predictor for {meta['device']} ({(meta['fingerprint'] or {}).get('cpu_model')}, "
          f"{meta['runtime']} {meta['runtime_version']}, threads {meta['threads']}): {oof['nets']} sample networks, "
          f"{meta['kernels']} kernels; whole networks out of fold: {error}")
    print(f"saved {args.output} (samples: {samples_path(args.output)})")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from hwnas.devices import get_device
    from hwnas.devices.profile import load_model, parse_input_shape, profile_model
    from hwnas.errors import HwnasError

    if args.runs < 1 or args.top < 1:
        raise HwnasError("--runs and --top must be at least 1")
    if not args.device and not args.predictor:
        raise HwnasError("give the device to measure on (--device SPEC) or a kernel predictor (--predictor FILE)")
    source = load_model(args.model, parse_input_shape(args.input_shape))
    predicted = None
    if args.predictor:
        from hwnas.kernels.model import KernelPredictor
        from hwnas.kernels.predict import predict_source

        predicted = predict_source(source, KernelPredictor.load(args.predictor))
        if not args.device:
            if args.json:
                emit_json(predicted)
            else:
                print_prediction(predicted, args.top)
            return 0
    device = get_device(args.device)
    out = profile_model(source, device, args.runs, ops=not args.no_ops)
    if predicted is not None:
        predicted["measured_ms"] = out["latency_ms"]
        predicted["error_pct"] = 100.0 * (predicted["predicted_ms"] / out["latency_ms"] - 1)
        out["prediction"] = predicted
    if args.plot and "profile" in out:
        plot_ops(out, args.plot, args.top)
    if args.json:
        emit_json(out)
        return 0
    print(f"{out['model']} ({out['format']}, input {'x'.join(map(str, out['input_shape']))}) on {out['device']}")
    print(f"median {out['raw_median_ms']:.4f} ms, p10 {out['p10_ms']:.4f}, p90 {out['p90_ms']:.4f}, CV "
          f"{100 * out['cv']:.1f} %{', NOISY' if out['noisy'] else ''}"
          + (f"; drift-compensated {out['latency_ms']:.4f} ms (through the reference network: comparable with "
             "hwnas's tables and predictions on this device; compare the median with other tools)"
             if out["compensated"] else ""))
    prov = out["provenance"].get("device", {})
    print(f"device: {prov.get('cpu_model', '?')}, {prov.get('runtime')} {prov.get('runtime_version')}, "
          f"threads {prov.get('threads')}")
    if "profile" in out:
        print_profile(out["profile"], args.top)
    if args.plot and "profile" in out:
        print(f"plot: {args.plot}")
    if predicted is not None:
        print(f"kernel predictor: {predicted['predicted_ms']:.4f} ms predicted against {predicted['measured_ms']:.4f} "
              f"ms measured (compensated), {predicted['error_pct']:+.1f} %")
    return 0


def print_prediction(pred: dict[str, Any], top: int) -> None:
    info = pred["predictor"]
    print(f"{pred['model']} (input {'x'.join(map(str, pred['input_shape']))}): predicted {pred['predicted_ms']:.4f} ms "
          f"on {info['device']} ({pred['cpu_model']}, {info['runtime']} {info['runtime_version']}, threads "
          f"{info['threads']}; calibrated through the reference at {info['calibrated_ms']} ms)")
    rows = [[k["name"][:60], k["op"], f"{k['predicted_ms']:.4f}"] for k in pred["kernels"][:top]]
    if len(pred["kernels"]) > top:
        rest = pred["kernels"][top:]
        rows.append([f"({len(rest)} more)", "", f"{sum(k['predicted_ms'] for k in rest):.4f}"])
    print(format_table(rows, ["kernel", "type", "predicted ms"]))
    print(f"{len(pred['kernels'])} kernels sum to {pred['kernels_ms']:.4f} ms; between and around them (the executor's "
          f"cost per kernel and per run, as fitted on the sample networks) {pred['between_kernels_ms']:+.4f} ms")
    for note in pred["notes"]:
        print(f"note: {note}")


def print_profile(prof: dict[str, Any], top: int) -> None:
    ops = prof["ops"]
    if not prof.get("available"):
        print(f"per-operator times: not available ({prof.get('reason')})")
        print(format_table([[o["name"], o["op"]] for o in ops[:top]], ["operator", "type"]))
        return
    print(f"per-operator times from {prof['runtime']} {prof['runtime_version']}'s profiler, mean of "
          f"{prof['runs']} runs, as the runtime fused the graph ({len(ops)} operators):")
    rows = [[o["name"][:60], o["op"], f"{o['ms']:.4f}", f"{o['share_pct']:.1f} %"] for o in ops[:top]]
    share = "of run"
    if len(ops) > top:
        rest = ops[top:]
        rows.append([f"({len(rest)} more)", "", f"{sum(o['ms'] for o in rest):.4f}",
                     f"{sum(o['share_pct'] for o in rest):.1f} %"])
    print(format_table(rows, ["operator", "type", "ms", share]))
    print(format_table([[g["op"], g["nodes"], f"{g['ms']:.4f}", f"{g['share_pct']:.1f} %"] for g in prof["by_op"]],
                       ["type", "operators", "ms", share]))
    acc = prof["accounting"]
    line = (f"operators sum to {acc['ops_ms']:.4f} ms: {acc['ops_vs_whole_pct']:.1f} % of the whole-model median "
            f"{acc['whole_ms']:.4f} ms")
    if "runtime_run_ms" in acc:
        line += (f"; the profiled runs took {acc['runtime_run_ms']:.4f} ms ({acc['profiling_overhead_ms']:+.4f} ms of "
                 f"profiling), {acc['ops_share_of_run_pct']:.1f} % in the operators and {acc['executor_ms']:.4f} ms in "
                 "the executor between them (shares above are of the profiled run)")
    print(line)


def plot_ops(out: dict[str, Any], path: str, top: int) -> None:
    from hwnas.plots import pyplot, save

    ops = [o for o in out["profile"]["ops"] if o.get("ms") is not None][:top]
    if not ops:
        return
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(ops) + 1.5))
    y = list(range(len(ops)))[::-1]
    ax.barh(y, [o["ms"] for o in ops], color="C0")
    ax.set_yticks(y, [f"{o['name'][:40]} ({o['op']})" for o in ops], fontsize=7)
    ax.set_xlabel("ms per run")
    ax.set_title(f"{out['model']} on {out['device']}: whole model {out['raw_median_ms']:.3f} ms (raw median)",
                 fontsize=9)
    save(fig, path)
