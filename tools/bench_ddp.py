"""Supernet training on N processes against one: the same loss curve at the same global batch?

Trains the same search twice from the same seed: one process at batch N·B, then N
processes (torchrun; gloo on the CPU, NCCL on GPUs) at batch B each, and prints each
epoch's training loss and accuracy side by side, with the wall time and training steps per
second of each (the N-process time includes starting torchrun and its processes).

    .venv/bin/python -m tools.bench_ddp [--mode darts] [--space mbv2/small] [--nproc 2] [--batch 32]
        [--epochs 4] [--data digits]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from hwnas.cli.common import format_table
from hwnas.data.datasets import load
from hwnas.lut.table import LatencyTable
from hwnas.predictors.simple import LutSumPredictor
from hwnas.spaces import get_space
from hwnas.supernet.search import DifferentiableSearch, SearchConfig
from hwnas.supernet.worker import train_distributed
from hwnas.target import Target

ROOT = Path(__file__).resolve().parent.parent


def log_of(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", default="darts")
    ap.add_argument("--space", default="mbv2/small")
    ap.add_argument("--table", default=str(ROOT / "latency_tables" / "mbv2-small.cpu-ort.lut.json"))
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32, help="per-process batch (one process gets nproc x batch)")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--data", default="digits")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_ddp"))
    args = ap.parse_args()
    name, preset = args.space.split("/")
    space = get_space(name, preset)
    pred = LutSumPredictor(space, LatencyTable.load(args.table, space=space)).plain()
    target = Target("device", pred, pred.option_latency().quantile(space, 0.3))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = load(args.data, resolution=space.input_shape()[1], seed=args.seed)
    runs = {}
    for n, batch in ((1, args.nproc * args.batch), (args.nproc, args.batch)):
        run = Path(args.out) / f"{args.mode}-n{n}-b{batch}"
        shutil.rmtree(run, ignore_errors=True)
        cfg = SearchConfig(strategy=args.mode, epochs=args.epochs, warmup_epochs=args.warmup, batch_size=batch,
                           seed=args.seed, torch_device=device)
        t0 = time.perf_counter()
        if n > 1:
            train_distributed(n, run, space, [target], {"name": args.data, "data_dir": None, "seed": args.seed}, cfg,
                              progress=False)
        search = DifferentiableSearch(space, [target], data, cfg, run, progress=False)
        out = search.run()
        seconds = time.perf_counter() - t0
        steps = args.epochs * len(data.loader("train", args.nproc * args.batch, False))
        runs[n] = {"log": log_of(run), "seconds": seconds, "steps_per_s": steps / seconds, "arch": out["arch"]}
    one, many = runs[1], runs[args.nproc]
    print(f"{args.mode} on {args.space}, {args.data}, {device}: 1 process at batch {args.nproc * args.batch} vs "
          f"{args.nproc} processes at batch {args.batch}")
    print(format_table([[a["epoch"], f"{a['train_loss']:.4f}", f"{b['train_loss']:.4f}",
                         f"{100 * a['train_acc']:.1f}", f"{100 * b['train_acc']:.1f}"]
                        for a, b in zip(one["log"], many["log"])],
                       ["epoch", "loss, 1 process", f"loss, {args.nproc} processes", "train acc % (1)",
                        f"train acc % ({args.nproc})"]))
    for n, r in runs.items():
        print(f"{n} process(es): {r['seconds']:.1f} s, {r['steps_per_s']:.2f} global steps/s; derived {r['arch']}")


if __name__ == "__main__":
    main()
