"""Benchmark of the differentiable search; prints tables, writes results.json.

(a) peak memory and step time of the ProxylessNAS supernet, the DARTS supernet (full, and
    with PC-DARTS partial channels K = 2 and 4: ``darts-pcK``) and the derived single-path
    network at one batch size (GPU when there is one, else CPU;
    on the CPU, memory is the growth of the process's peak RSS, each in a fresh process);
(b) mbv2 `small` with the shipped cpu-ort predictor, budget at the 30th percentile of the
    space's predicted latency: does each seed's derived architecture meet it, and its
    accuracy after retraining beside as many random architectures under the same budget
    (``--seeds``), searched and retrained on ``--data`` at ``--resolution`` (``clutter`` at
    16 px is the proxy task on which mbv2 networks differ); each result is kept in
    ``part_b.jsonl`` in ``--out`` as it comes, so an interrupted run resumes;
(c) nb201: each mode's derived cell and its CIFAR-10 accuracy from
    ../shared/data/nb201/accuracy.csv, with and without the latency term.

    .venv/bin/python -m tools.bench_supernet [--parts a,b,c] [--seeds 10] [--epochs 4] [--retrain-epochs 6]
        [--data clutter --resolution 16]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hwnas.cli.common import format_table
from hwnas.data.datasets import load
from hwnas.paths import shared_data_dir
from hwnas.predictors import LearnedPredictor, load_predictor
from hwnas.spaces import get_space
from hwnas.supernet.config import SANDWICH
from hwnas.supernet.search import DifferentiableSearch, SearchConfig
from hwnas.target import Target
from hwnas.train import train_arch

ROOT = Path(__file__).resolve().parent.parent


def memory_child(kind: str, batch: int, steps: int) -> None:
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    space = get_space("mbv2", "small")
    if kind == "single":
        net = space.resolve("largest").build().to(dev)
    else:
        mode, _, pc = kind.partition("-pc")
        net = space.supernet(partial_channels=int(pc or 1)).to(dev)
        net.set_mode(mode, "weights")
    x = torch.randn(batch, *space.input_shape(), device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    base = torch.cuda.memory_allocated() if dev.type == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if dev.type == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(json.dumps({"kind": kind, "device": dev.type, "batch": batch, "peak_mb": peak_mb,
                      "step_ms": 1000 * float(np.median(times[2:]))}))


def part_a(batch: int) -> list[dict]:
    rows = []
    for kind in ("single", "proxyless", "darts", "darts-pc2", "darts-pc4"):
        r = subprocess.run([sys.executable, __file__, "--memory-child", kind, "--batch", str(batch)],
                           capture_output=True, text=True, check=True)
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return rows


def shipped_predictor(space):
    return load_predictor(ROOT / "latency_tables" / "mbv2-small.cpu-ort.learned.json", space=space)


def part_b(seeds: int, epochs: int, retrain_epochs: int, derive: str = "budget", data_name: str = "digits",
           resolution: int = 32, kept: Path | None = None, sandwich: str | None = None) -> dict:
    """Each seed's derived network and as many random ones under the budget, retrained alike;
    each result is appended to ``kept`` (JSON lines) as it comes, so a rerun resumes (the
    random networks' results serve every ``sandwich`` rule)."""
    space = get_space("mbv2", "small")
    pred = shipped_predictor(space)
    pool = space.sample(20000, seed=123)
    pool_lat = pred.predict(pool)
    budget = float(np.quantile(pool_lat, 0.3))
    data = load(data_name, resolution=resolution)
    base = {"data": data_name, "resolution": resolution, "epochs": epochs, "retrain_epochs": retrain_epochs,
            "derive": derive}
    setting = {"derived": {**base, **({"sandwich": sandwich} if sandwich else {})}, "random": base}
    done = {}
    if kept is not None and kept.is_file():
        for line in kept.read_text().splitlines():
            r = json.loads(line)
            if r.get("setting") == setting[r["kind"]]:
                done[(r["kind"], r["index"])] = r

    def keep(r: dict) -> dict:
        if kept is not None:
            with kept.open("a") as f:
                f.write(json.dumps({**r, "setting": setting[r["kind"]]}) + "\n")
        return r
    found = []
    for seed in range(seeds):
        if ("derived", seed) not in done:
            with tempfile.TemporaryDirectory() as d:
                cfg = SearchConfig(strategy="proxyless", epochs=epochs, warmup_epochs=1, seed=seed, derive=derive,
                                   sandwich=sandwich)
                s = DifferentiableSearch(space, [Target("cpu-ort", pred, budget)], data, cfg, d, progress=False)
                r = s.run()
            arch = space.parse(r["arch"])
            acc = train_arch(arch, data, epochs=retrain_epochs, seed=0, progress=False).test_acc
            done[("derived", seed)] = keep({"kind": "derived", "index": seed, "arch": str(arch),
                                            "predicted_ms": r["devices"][0]["predicted_ms"],
                                            "meets": r["devices"][0]["meets_budget"], "test_acc": acc})
        found.append({"seed": seed, **{k: done[("derived", seed)][k] for k in ("arch", "predicted_ms", "meets",
                                                                             "test_acc")}})
        print(f"  seed {seed}: {found[-1]}", file=sys.stderr)
    under = [a for a, lat in zip(pool, pool_lat) if lat <= budget][:seeds]
    random_accs = []
    for i, a in enumerate(under):
        if ("random", i) not in done:
            acc = train_arch(a, data, epochs=retrain_epochs, seed=0, progress=False).test_acc
            done[("random", i)] = keep({"kind": "random", "index": i, "arch": str(a), "test_acc": acc})
        random_accs.append(done[("random", i)]["test_acc"])
    return {"budget_ms": budget, **setting["derived"], "found": found, "random_acc": random_accs}


def nb201_accuracy() -> dict[str, float]:
    with open(shared_data_dir() / "nb201" / "accuracy.csv", newline="") as f:
        return {r["arch"]: float(r["cifar10"]) for r in csv.DictReader(f)}


def part_c(epochs: int) -> list[dict]:
    space = get_space("nb201")
    acc = nb201_accuracy()
    with open(shared_data_dir() / "nb201" / "latency_ms.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    pick = np.random.default_rng(0).choice(len(rows), 900, replace=False)
    pred = LearnedPredictor(space).fit([rows[i]["arch"] for i in pick], [float(rows[i]["pixel2"]) for i in pick],
                                       device={"name": "pixel2"}, validate=False)
    latency = pred.option_latency()
    budget = latency.quantile(space, 0.5)
    data = load("digits", resolution=32)
    out = []
    for mode in ("darts", "proxyless", "gdas"):
        for with_latency in (False, True):
            cfg = SearchConfig(strategy=mode, epochs=epochs, warmup_epochs=1, loss="add#linear",
                               lam=1.0 if with_latency else 0.0, seed=0)
            with tempfile.TemporaryDirectory() as d:
                s = DifferentiableSearch(space, [Target("pixel2", pred, budget)], data, cfg, d, progress=False)
                r = s.run()
            out.append({"mode": mode, "latency_term": with_latency, "arch": r["arch"],
                        "cifar10": acc[r["arch"]], "pixel2_ms": r["devices"][0]["predicted_ms"],
                        "budget_ms": budget, "all_skip": set(space.parse(r["arch"]).choices) <= {"skip_connect", "none"}})
            print(f"  {out[-1]}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--memory-child")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--parts", default="a,b,c")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--retrain-epochs", type=int, default=6)
    ap.add_argument("--derive", default="budget", help="part b: argmax or budget (default)")
    ap.add_argument("--data", default="digits", help="part b: the task searched and retrained on (digits, or "
                    "clutter: the proxy task that makes mbv2 networks differ)")
    ap.add_argument("--resolution", type=int, default=32, help="part b: the images' resolution (default 32)")
    ap.add_argument("--sandwich", choices=sorted(SANDWICH), help="part b: the search's sandwich rule (default none)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_supernet"))
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.batch, steps=8)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parts = set(args.parts.split(","))
    results: dict = {}
    if "a" in parts:
        rows = results["memory"] = part_a(args.batch)
        single = rows[0]
        print(f"(a) memory and step time, mbv2/small, batch {args.batch}, on {single['device']}")
        print(format_table([[r["kind"], f"{r['peak_mb']:.1f}", f"{r['peak_mb'] / max(single['peak_mb'], 1e-9):.2f}x",
                      f"{r['step_ms']:.1f}", f"{r['step_ms'] / single['step_ms']:.2f}x"] for r in rows],
                    ["network", "peak MB", "vs single", "step ms", "vs single"]))
        print()
    if "b" in parts:
        b = results["budget"] = part_b(args.seeds, args.epochs, args.retrain_epochs, args.derive, args.data,
                                       args.resolution, out / "part_b.jsonl", args.sandwich)
        met = sum(f["meets"] for f in b["found"])
        accs = [f["test_acc"] for f in b["found"]]
        print(f"(b) proxyless on mbv2/small, budget {b['budget_ms']:.4f} ms (30th percentile, shipped cpu-ort "
              f"predictor), {args.data} at {args.resolution} px"
              + (f", sandwich rule {args.sandwich}" if args.sandwich else ""))
        print(format_table([[f["seed"], f["arch"], f"{f['predicted_ms']:.4f}", "yes" if f["meets"] else "NO",
                      f"{100 * f['test_acc']:.1f} %"] for f in b["found"]],
                    ["seed", "derived", "predicted ms", "meets", "test acc"]))
        print(f"met in {met}/{len(b['found'])} seeds; retrained accuracy: derived {100 * np.mean(accs):.1f} ± "
              f"{100 * np.std(accs):.1f} %, random under budget {100 * np.mean(b['random_acc']):.1f} ± "
              f"{100 * np.std(b['random_acc']):.1f} %")
        print()
    if "c" in parts:
        rows = results["nb201"] = part_c(args.epochs)
        print("(c) nb201 derived cells (digits proxy task), CIFAR-10 accuracy from the NAS-Bench-201 table")
        print(format_table([[r["mode"], "yes" if r["latency_term"] else "no", r["arch"], f"{r['cifar10']:.2f}",
                      f"{r['pixel2_ms']:.2f}", "yes" if r["all_skip"] else "no"] for r in rows],
                    ["mode", "latency term", "cell", "CIFAR-10 %", "pixel2 ms (pred.)", "skip/none only"]))
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
