"""``hwnas profile MODEL --device SPEC``: how fast any model is on a device, and which
operators take the time."""

from __future__ import annotations

import argparse
from typing import Any

from hwnas.cli.common import add_json, emit_json, format_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="whole-model and per-operator latency of any model on a device")
    p.add_argument("model", metavar="MODEL",
                   help="an .onnx or .tflite file, or a torchvision model name (random weights; needs torchvision)")
    p.add_argument("--device", required=True, metavar="SPEC",
                   help="a device spec (cpu-ort:threads=1, cpu-tflite:threads=1, cpu-torch, cuda-torch, "
                        "remote:tcp://HOST:PORT?runtime=onnx, ...) or a profile (devices/NAME.toml)")
    p.add_argument("--input-shape", metavar="1xCxHxW",
                   help="one sample's input shape, for a model with dynamic dimensions (default: the model's; "
                        "1x3x224x224 for torchvision models)")
    p.add_argument("--runs", type=int, default=50, help="profiled runs for the per-operator breakdown (default 50)")
    p.add_argument("--no-ops", action="store_true", help="whole-model latency only")
    p.add_argument("--top", type=int, default=20, help="operators listed (default 20; --json has all)")
    p.add_argument("--plot", metavar="PNG", help="also draw the slowest operators as a bar chart")
    add_json(p)
    p.set_defaults(func=cmd_profile)


def cmd_profile(args: argparse.Namespace) -> int:
    from hwnas.devices import get_device
    from hwnas.devices.profile import load_model, parse_input_shape, profile_model
    from hwnas.errors import HwnasError

    if args.runs < 1 or args.top < 1:
        raise HwnasError("--runs and --top must be at least 1")
    source = load_model(args.model, parse_input_shape(args.input_shape))
    device = get_device(args.device)
    out = profile_model(source, device, args.runs, ops=not args.no_ops)
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
    return 0


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
