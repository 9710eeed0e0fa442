"""Candidate evaluation on Ray workers against one process: throughput, and the same answer?

Runs ``hwnas search --accuracy train:EPOCHS`` on ``mbv2/small`` (digits) several ways, each
a fresh run directory, each timed from the command's start to its end (Ray's start
included, and shown apart):

each strategy in this process at torch's default threads, on ``--workers`` Ray workers (one
thread each), and in this process at one thread (``OMP_NUM_THREADS=1``). The last gives the
most the workers can gain here (``ideal``: workers x the training seconds per candidate at
the default threads / at one thread, before any start-up cost); for a synchronous strategy (``reinforce``: batches of one candidate per
worker, the same batches in this process) it also trains every candidate in the workers'
arithmetic, so the answer must be the same. ``evolution`` is asynchronous: each result is
told as it comes back, so its answer may differ.

Prints queries per minute, the speed-up, the ideal, the answer and its accuracy; writes
``bench_ray.json`` and ``bench_ray.png`` to ``--out``. Finished runs are kept and reused:
rerun to resume.

``--ceiling K`` measures instead the most any pool of ``--workers`` workers can gain on
this machine, on the same work: K sampled ``mbv2/small`` candidates trained ``train:EPOCHS``
one after another in one process at torch's default threads, then the same K shared among
``--workers`` plain processes of one thread each, started together (no Ray: a scheduler can
only add to that); each side timed over its trainings alone, process start-up excluded.

    .venv/bin/python -m tools.bench_ray [--workers 2] [--queries 12] [--epochs 1] [--strategies reinforce,evolution]
        [--out runs/bench_ray]
    .venv/bin/python -m tools.bench_ray --ceiling 8 [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from hwnas.cli.common import format_table
from hwnas.plots import pyplot, save
from hwnas.strategies import STRATEGIES

ROOT = Path(__file__).resolve().parent.parent
HWNAS = str(Path(sys.executable).parent / "hwnas")


def ray_start_seconds(workers: int) -> float:
    """Seconds to start (and stop) a local Ray instance, the fixed cost of --workers."""
    code = ("import time,ray; t=time.perf_counter(); ray.init(num_cpus=%d, include_dashboard=False, "
            "log_to_driver=False, object_store_memory=100*2**20); ray.shutdown(); print(time.perf_counter()-t)")
    out = subprocess.run([sys.executable, "-c", code % workers], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def search(out: Path, name: str, strategy: str, args: argparse.Namespace, extra: list[str],
           env: dict[str, str] | None = None) -> dict:
    run = out / name
    done = run / "bench.json"
    if done.exists():
        return json.loads(done.read_text())
    cmd = [HWNAS, "search", "--strategy", strategy, "--space", "mbv2", "--preset", "small",
           "--lut", str(ROOT / "latency_tables" / "mbv2-small.cpu-ort.lut.json"), "--budget-quantile", "0.5",
           "--accuracy", f"train:{args.epochs}", "--queries", str(args.queries), "--seed", str(args.seed),
           "--population", "4", "-o", str(run), "--quiet", "--json", *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - t0
    if r.returncode not in (0, 3):
        raise SystemExit(f"{name} failed:\n{r.stderr[-3000:]}")
    result = json.loads(r.stdout)
    trials = json.loads((run / "state.json").read_text())["trials"]
    told = [t for t in trials if t["accuracy"] is not None and not t["cached"]]
    row = {"name": name, "seconds": seconds, "queries": result["queries"], "arch": result["arch"],
           "accuracy": result["accuracy"], "train_seconds": sum(t["cost"].get("seconds", 0) for t in told),
           "workers": result.get("workers")}
    done.write_text(json.dumps(row, indent=1))
    return row


CEILING_WORKER = """
import json, sys, time
import torch
from hwnas.data.datasets import load
from hwnas.evaluators.training import TrainingAccuracy
from hwnas.spaces import get_space

threads, epochs, seed, strings = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
if threads:
    torch.set_num_threads(threads)
space = get_space("mbv2", preset="small")
evaluator = TrainingAccuracy(load("digits", resolution=space.input_shape()[1], seed=seed), epochs=epochs, seed=seed)
evaluator.evaluate([space.parse(strings[0])])  # warm-up, untimed (first-call costs)
print("ready", flush=True)
sys.stdin.readline()
t0 = time.perf_counter()
for s in strings:
    evaluator.evaluate([space.parse(s)])
print(json.dumps({"seconds": time.perf_counter() - t0, "threads": torch.get_num_threads()}), flush=True)
"""


def ceiling(k: int, workers: int, epochs: int, seed: int) -> dict:
    """Seconds to train the same ``k`` candidates in one process at the default threads and
    shared among ``workers`` one-thread processes started together (the ceiling of any pool)."""
    from hwnas.spaces import get_space

    space = get_space("mbv2", preset="small")
    strings = [str(a) for a in space.sample(k, seed=seed)]

    def together(shares: list[list[str]], threads: int) -> tuple[float, int]:
        """The slowest process's training seconds (all start on one signal), and its threads."""
        env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        procs = [subprocess.Popen([sys.executable, "-c", CEILING_WORKER, str(threads), str(epochs), str(seed),
                                   json.dumps(share)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=env) for share in shares]
        for p in procs:
            if p.stdout.readline().strip() != "ready":  # type: ignore[union-attr]
                raise SystemExit(f"a ceiling worker failed to start (exit {p.wait()})")
        for p in procs:
            p.stdin.write("go\n")  # type: ignore[union-attr]
            p.stdin.flush()  # type: ignore[union-attr]
        results = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
        return max(r["seconds"] for r in results), int(results[0]["threads"])

    one, default_threads = together([strings], 0)
    pool, _ = together([strings[i::workers] for i in range(workers)], 1)
    return {"candidates": k, "workers": workers, "one_process_seconds": one, "default_threads": default_threads,
            "pool_seconds": pool, "ceiling": one / pool}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--queries", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--strategies", default="reinforce,evolution")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_ray"))
    ap.add_argument("--ceiling", type=int, metavar="K",
                    help="measure the most a pool of --workers one-thread workers can gain here, on K candidates")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.ceiling:
        c = ceiling(args.ceiling, args.workers, args.epochs, args.seed)
        print(f"train:{args.epochs} on mbv2/small (digits), the same {c['candidates']} candidates, {os.cpu_count()} "
              f"CPUs: one process at torch's {c['default_threads']} threads {c['one_process_seconds']:.1f} s; "
              f"{c['workers']} one-thread processes together {c['pool_seconds']:.1f} s; the most {c['workers']} "
              f"workers can gain here: {c['ceiling']:.2f}x")
        (out / "bench_ray_ceiling.json").write_text(json.dumps(c, indent=1))
        return
    w = ["--workers", str(args.workers)]
    one_thread = {"OMP_NUM_THREADS": "1"}
    rows, table, same = [], [], {}
    for strategy in args.strategies.split(","):
        # a synchronous strategy asks one candidate per worker on the workers: the same batches here
        batch = [] if STRATEGIES[strategy].asynchronous else ["--batch", str(args.workers)]
        base = search(out, f"{strategy}-in-process", strategy, args, batch)
        ray = search(out, f"{strategy}-ray", strategy, args, w)
        alone = search(out, f"{strategy}-in-process-1-thread", strategy, args, batch, one_thread)
        rows += [base, ray, alone]
        # the most that workers of one thread each can gain over this process at its own threads:
        # workers x (training seconds per candidate at the default threads / at one thread)
        ideal = args.workers * (base["train_seconds"] / base["queries"]) / (alone["train_seconds"] / alone["queries"])
        for r in (base, ray, alone):
            table.append([r["name"], r["queries"], f"{r['seconds']:.1f}", f"{60 * r['queries'] / r['seconds']:.2f}",
                          f"{base['seconds'] / r['seconds']:.2f}x", f"{ideal:.2f}x", r["arch"],
                          f"{100 * r['accuracy']:.2f}"])
        same[strategy] = ray["arch"] == alone["arch"] and ray["accuracy"] == alone["accuracy"]
    start = ray_start_seconds(args.workers)
    print(f"train:{args.epochs} on mbv2/small (digits), {args.queries} queries, {os.cpu_count()} CPUs; "
          f"starting a local Ray instance takes {start:.1f} s; ideal: {args.workers} x the one-thread rate "
          "of training a candidate, over the default threads' rate")
    print(format_table(table, ["run", "queries", "seconds", "queries/min", "speed-up", "ideal", "answer", "acc %"]))
    for strategy, ok in same.items():
        kind = "asynchronous" if STRATEGIES[strategy].asynchronous else "synchronous"
        print(f"{strategy} ({kind}): the same answer on the workers as in one process at one thread: {ok}")
    (out / "bench_ray.json").write_text(json.dumps({"rows": rows, "ray_start_seconds": start,
                                                    "same_answer": same}, indent=1))
    plot(out / "bench_ray.png", table)


def plot(path: Path, table: list[list]) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.barh([r[0] for r in table], [float(r[3]) for r in table], color="tab:blue")
    ax.set_xlabel("queries per minute (train:EPOCHS candidates)")
    ax.invert_yaxis()
    save(fig, path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
