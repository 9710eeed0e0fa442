"""A table build on a pool of agents against one agent: faster, the same keys, the same figures?

Starts ``--agents`` TCP agents on loopback (each its own process, onnxruntime, one thread),
builds the space's latency table on the first alone, then on all of them as a pool
(``hwnas lut build --device A --device B ...``), and prints the wall time of each, the
speed-up, whether the keys are the same, and how far the pooled entries are from the
single agent's (median and 90th percentile of |ratio - 1|, beside the single build's own
CV, its noise). Agents measuring side by side on one machine share its caches and memory
bandwidth: on separate boards or phones they would not.

    .venv/bin/python -m tools.bench_pool [--agents 2] [--space mbv2/small] [--protocol runs=30,rounds=3]
        [--out runs/bench_pool]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from hwnas.agent.testing import free_port, start_agent, wait_port
from hwnas.cli.common import format_table

ROOT = Path(__file__).resolve().parent.parent
HWNAS = str(Path(sys.executable).parent / "hwnas")


def build(out: Path, ports: list[int], args: argparse.Namespace) -> float:
    name, preset = args.space.split("/")
    query = args.protocol.replace(",", "&")
    devices = [a for p in ports for a in ("--device", f"remote:tcp://127.0.0.1:{p}?runtime=onnx&{query}")]
    t0 = time.perf_counter()
    r = subprocess.run([HWNAS, "lut", "build", "--space", name, "--preset", preset, *devices, "-o", str(out),
                        "--quiet", "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(r.stderr[-3000:])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=2)
    ap.add_argument("--space", default="mbv2/small")
    ap.add_argument("--protocol", default="runs=30,rounds=3")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_pool"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ports = [free_port() for _ in range(args.agents)]
    procs = [start_agent(["--tcp", f"127.0.0.1:{p}"], log=out / f"agent{i}.log") for i, p in enumerate(ports)]
    try:
        for p in ports:
            wait_port(p)
        for f in ("one.lut.json", "pool.lut.json"):
            (out / f).unlink(missing_ok=True)
        one_s = build(out / "one.lut.json", ports[:1], args)
        pool_s = build(out / "pool.lut.json", ports, args)
    finally:
        for p in procs:
            p.kill()
            p.wait()
    one = json.loads((out / "one.lut.json").read_text())["entries"]
    pool = json.loads((out / "pool.lut.json").read_text())["entries"]
    same_keys = set(one) == set(pool)
    dev = sorted(abs(pool[k]["median_ms"] / one[k]["median_ms"] - 1) for k in one if k in pool)
    cv = statistics.median(e.get("cv", 0.0) for e in one.values())
    shares: dict[str, int] = {}
    for e in pool.values():
        shares[e.get("measured_on", "?")] = shares.get(e.get("measured_on", "?"), 0) + 1
    print(f"{args.space}: {len(one)} layers, protocol {args.protocol}, {os.cpu_count()} CPUs")
    print(format_table([["1 agent", f"{one_s:.1f}", "1.00x"],
                        [f"pool of {args.agents}", f"{pool_s:.1f}", f"{one_s / pool_s:.2f}x"]],
                       ["build", "seconds", "speed-up"]))
    print(f"same keys: {same_keys}; |pooled / single - 1|: median {100 * statistics.median(dev):.1f} %, "
          f"p90 {100 * dev[int(0.9 * (len(dev) - 1))]:.1f} % (the single build's median CV: {100 * cv:.1f} %)")
    print("layers per agent in the pool: " + ", ".join(f"{k.split('?')[0]}: {v}" for k, v in shares.items()))
    (out / "bench_pool.json").write_text(json.dumps({"one_s": one_s, "pool_s": pool_s, "same_keys": same_keys,
                                                     "median_dev": statistics.median(dev), "shares": shares},
                                                    indent=1))


if __name__ == "__main__":
    main()
