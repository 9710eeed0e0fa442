"""What the agent adds: the same 20 architectures measured in-process and through an
agent over TCP and over a pseudo-terminal serial line (goal: median latencies agree
within 3 %), and the time a table build takes through each transport.

    .venv/bin/python -m tools.bench_agent [--n 20] [--space mbv2 --preset small] [--skip-tables]

All three devices use one calibrated reference latency (as a table does, which stores
it in its header), so the comparison is of the per-round model/reference ratios.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


from hwnas.agent.testing import PtyBridge, free_port, start_agent, wait_log, wait_port
from hwnas.cli.common import format_table
from hwnas.devices import get_device
from hwnas.lut.build import build_table
from hwnas.spaces import get_space


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--space", default="mbv2")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--skip-tables", action="store_true")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    space = get_space(args.space, args.preset)
    archs = space.sample(args.n, seed=0)
    work = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    port = free_port()
    tcp_agent = start_agent(["--tcp", f"127.0.0.1:{port}"], log=work / "tcp.log")
    bridge = PtyBridge()
    serial_agent = start_agent(["--serial", bridge.agent_port], log=work / "serial.log")
    try:
        wait_port(port)
        wait_log(work / "serial.log", "serving")
        devices = {"in-process": get_device("cpu-ort:threads=1"),
                   "tcp": get_device(f"remote:tcp://127.0.0.1:{port}?runtime=onnx"),
                   "serial (pty)": get_device(f"remote:serial://{bridge.host_port}?runtime=onnx")}
        ref = devices["in-process"].calibrate_reference()
        for d in devices.values():
            d.reference_ms = ref
        lat: dict[str, list[float]] = {k: [] for k in devices}
        secs: dict[str, float] = {}
        for name, dev in devices.items():
            t0 = time.perf_counter()
            for a in archs:
                lat[name].append(dev.measure(a.build().eval(), space.input_shape()).latency_ms)
            secs[name] = time.perf_counter() - t0
        base = np.array(lat["in-process"])
        rows, out = [], {"reference_ms": ref, "n": args.n, "devices": {}}
        for name in devices:
            x = np.array(lat[name])
            diff = np.abs(x / base - 1) * 100
            rows.append([name, f"{np.median(x):.4f}", f"{np.median(diff):.2f} %", f"{diff.max():.2f} %",
                         f"{(x / base).mean():.4f}", f"{secs[name] / args.n:.2f} s"])
            out["devices"][name] = {"latency_ms": lat[name], "median_abs_diff_pct": float(np.median(diff)),
                                    "max_abs_diff_pct": float(diff.max()), "seconds_per_net": secs[name] / args.n}
        print(f"(a) {args.n} {space.name}/{space.preset} networks, cpu-ort threads=1, reference {ref:.4f} ms")
        print(format_table(rows, ["path", "median of medians ms", "median |diff| vs in-process", "max |diff|",
                           "mean ratio", "time per network"]))
        if not args.skip_tables:
            rows = []
            for name, dev in devices.items():
                report = build_table(space, dev, work / f"{name.split()[0]}.lut.json", progress=False)
                rows.append([name, report.total, f"{report.seconds:.1f} s"])
                out["devices"][name]["table_build_s"] = report.seconds
            print(f"(b) building the {space.name}/{space.preset} table through each path")
            print(format_table(rows, ["path", "layers", "build time"]))
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))
        for dev in devices.values():
            dev.close()
    finally:
        tcp_agent.kill()
        serial_agent.kill()
        bridge.close()


if __name__ == "__main__":
    main()
