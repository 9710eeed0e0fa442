"""Cheaper candidate evaluation: how well does each cheap score rank architectures like full
training, and at what cost? Prints a table, writes results.json and cheap_eval.png.

For each space (``mbv2`` = mbv2/small, ``nb201`` = the NAS-Bench-201 cell on a proxy
skeleton), ``--archs`` sampled architectures are trained for ``--epochs`` epochs on the
offline proxy task, their validation accuracy (batch norm re-estimated) recorded after every
epoch. The full score is the last epoch's. The cheap scores, each replayed on those curves:

- ``early-stop P``: learning-curve early stopping (:mod:`hwnas.evaluators.curves`) in the
  order the architectures were sampled, exactly as ``--accuracy train:EPOCHS --early-stop P``
  decides (the same function; scoring does not move the training's random state, so a run
  replayed from its curve is the run the evaluator would train): a stopped run scores its
  extrapolated final accuracy and costs the epochs it used;
- ``epoch k``: the accuracy after k epochs of the same schedule (a successive-halving rung
  that continues its runs), cost k / epochs;
- ``rung f``: the lowest rung of ``--schedule`` as hwnas runs it (``evaluate_at``): each
  architecture trained from scratch at fraction f of the epochs (its own cosine schedule),
  of the train split (``data f``) or of the compute by resolution (``resolution f``);
  cost f. These are trained too (``rungs.jsonl``, resumable);
- ``inherit K``: weight inheritance by network morphism as ``--inherit`` meets a child: each
  architecture's parent is itself one growth step smaller (:func:`~hwnas.nn.morphism.shrunk_parent`),
  trained fully; the child is grown from it (function-preserving) and fine-tuned K epochs at
  the fine-tuning rate. Its cost is the K epochs, as a search that already trained the parent
  pays it; a child with nothing to shrink (a cell without convolutions) is trained fully and
  costs a full training. The parents' training is not counted; the children's scores are
  cached in ``inherit.jsonl`` (resumable);
- ``hypernet E`` (``nb201``): a SMASH hypernetwork trained ``E`` epochs on random cells
  (:mod:`hwnas.evaluators.hypernet`) scores every architecture with generated weights; its
  cost is the seconds of training it and scoring all of them over the seconds of training
  them all fully (three full trainings timed in the same process, scaled).

With ``--repeat`` every architecture is trained fully again with another seed: τ between the
two full trainings is the noise ceiling of the full score, which no cheap score can beat
against an independent training. Each score's τ against that second training is printed
too: a score read off the full run's own curve shares that run's noise, so its τ against
its own run's end overstates how well it ranks the architectures.

Reported: Kendall τ and Spearman ρ against full training, the cost as a fraction of full
training, and whether the score "earns its place" (τ ≥ 0.6 at ≤ 30 % of the cost). On
``nb201`` also τ of the full proxy score against NAS-Bench-201's CIFAR-10 accuracy.

Curves are appended to ``OUT/curves.jsonl`` as they are trained; a rerun resumes.

    .venv/bin/python -m tools.bench_cheap_eval [--spaces nb201,mbv2] [--archs 30] [--epochs 10]
        [--data digits] [--resolution 16] [--fractions 0.1111,0.3333] [--fidelities epochs,data,resolution]
        [--inherit-epochs 1,2]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr
from tqdm import tqdm

from hwnas.cli.common import format_table
from hwnas.data.datasets import load
from hwnas.evaluators.training import TrainingAccuracy, stop_verdict
from hwnas.spaces import get_space
from hwnas.train import accuracy, recalibrated, train_arch

ROOT = Path(__file__).resolve().parent.parent
PLACE_TAU, PLACE_COST = 0.6, 0.3


def space_for(name: str, resolution: int):
    if name == "nb201":
        return get_space("nb201", resolution=resolution, channels=8, cells_per_stage=1)
    return get_space("mbv2", "small", resolution=resolution)


def cached(path: Path, key: Callable[[dict], tuple], value: str) -> dict:
    """``key(row) -> row[value]`` for every row already appended to the JSONL file ``path``."""
    if not path.exists():
        return {}
    return {key(row): row[value] for row in map(json.loads, path.read_text().splitlines())}


def append(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def curve_of(arch, data, epochs: int, batch_size: int, seed: int) -> list[float]:
    curve: list[float] = []

    def on_epoch(epoch: int, model) -> bool:
        with torch.random.fork_rng(devices=[]):
            with recalibrated(model, data, 8, batch_size, torch.device("cpu")):
                curve.append(accuracy(model, data, "val", torch.device("cpu")))
        return False

    train_arch(arch, data, epochs=epochs, batch_size=batch_size, seed=seed, device="cpu", progress=False,
               train_split="train", eval_split="val", recalibrate=8, on_epoch=on_epoch)
    return curve


def curves(name: str, archs: list, data, args, path: Path, seed: int | None = None) -> list[list[float]]:
    """Every architecture's validation curve over a full training with ``seed`` (the run's seed
    unless given), cached in ``path``."""
    seed = args.seed if seed is None else seed
    done = cached(path, lambda row: (row["space"], row["arch"], row.get("seed", args.seed)), "curve")
    out = []
    for arch in tqdm(archs, desc=f"{name}: training {args.epochs} epochs (seed {seed})", unit="net"):
        key = (name, str(arch), seed)
        if key not in done:
            done[key] = curve_of(arch, data, args.epochs, args.batch_size, seed)
            append(path, {"space": name, "arch": str(arch), "seed": seed, "curve": done[key]})
        out.append(done[key])
    return out


def rung_scores(name: str, archs: list, data, args, fidelity: str, fraction: float, path: Path) -> list[float]:
    """Each architecture's accuracy at ``fraction`` of a full training by ``fidelity``, as a
    schedule's rung scores it (cached in ``path``)."""
    done = cached(path, lambda row: (row["space"], row["fidelity"], row["fraction"], row["arch"]), "acc")
    ev = TrainingAccuracy(data, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, fidelity=fidelity)
    out = []
    for arch in tqdm(archs, desc=f"{name}: {fidelity} {fraction:g}", unit="net"):
        key = (name, fidelity, fraction, str(arch))
        if key not in done:
            done[key] = float(ev.evaluate_at([arch], fraction)[0][0])
            append(path, {"space": name, "fidelity": fidelity, "fraction": fraction, "arch": str(arch),
                          "acc": done[key]})
        out.append(done[key])
    return out


def inherited_scores(name: str, space, archs: list, cs: list[list[float]], data, args,
                     path: Path) -> dict[int, tuple[list[float], int, int]]:
    """Per fine-tuning length K: (each architecture's accuracy grown from a trained parent one
    step smaller and fine-tuned K epochs, the epochs spent on the children, how many had no
    parent and were trained fully), cached in ``path``."""
    from hwnas.evaluators.training import FINETUNE_LR
    from hwnas.nn.morphism import morph, shrunk_parent

    ks = sorted(map(int, args.inherit_epochs.split(",")))
    done = cached(path, lambda row: (row["space"], row["arch"], row["k"]), "acc")
    rng = np.random.default_rng(args.seed)
    parents = [shrunk_parent(space, arch, rng) for arch in archs]
    out = {k: ([], 0, 0) for k in ks}
    for arch, parent, curve in tqdm(list(zip(archs, parents, cs)), desc=f"{name}: inherit {args.inherit_epochs}",
                                    unit="net"):
        if parent is not None and any((name, str(arch), k) not in done for k in ks):
            trained = train_arch(parent, data, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                 device="cpu", progress=False, train_split="train", eval_split="val",
                                 recalibrate=8).model
            for k in ks:
                child = morph(space, parent, trained.eval(), arch, seed=args.seed)
                done[(name, str(arch), k)] = train_arch(
                    arch, data, epochs=k, batch_size=args.batch_size, lr=FINETUNE_LR, seed=args.seed, device="cpu",
                    progress=False, train_split="train", eval_split="val", recalibrate=8, start=child).test_acc
                append(path, {"space": name, "arch": str(arch), "parent": str(parent), "k": k,
                              "acc": done[(name, str(arch), k)]})
        for k in ks:
            scores, spent, scratch = out[k]
            if parent is None:
                out[k] = (scores + [curve[-1]], spent + args.epochs, scratch + 1)
            else:
                out[k] = (scores + [done[(name, str(arch), k)]], spent + k, scratch)
    return out


def hypernet_scores(space, archs: list, data, args) -> list[tuple[int, list[float], float]]:
    """(epochs, each architecture's accuracy with generated weights, cost as a share of full training)."""
    import time

    from hwnas.evaluators.hypernet import HypernetAccuracy, train_hypernet

    t0 = time.perf_counter()
    for arch in archs[:3]:
        train_arch(arch, data, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, device="cpu",
                   progress=False, train_split="train", eval_split="val", recalibrate=8)
    full_s = (time.perf_counter() - t0) / 3 * len(archs)
    out = []
    for epochs in map(int, args.hypernet_epochs.split(",")):
        t0 = time.perf_counter()
        net, _ = train_hypernet(space, data, epochs=epochs, batch_size=args.batch_size, seed=args.seed)
        scores = list(HypernetAccuracy(net, space, data).evaluate(archs))
        out.append((epochs, scores, (time.perf_counter() - t0) / full_s))
    return out


def early_stopped(curves_: list[list[float]], epochs: int, p: float) -> tuple[list[float], int]:
    """Scores and epochs spent when the runs are stopped by their curves, in order."""
    best, scores, spent = None, [], 0
    for curve in curves_:
        for n in range(1, epochs + 1):
            verdict = stop_verdict(curve[:n], epochs, best, p)
            if verdict is not None:
                scores.append(verdict["extrapolated"])
                spent += n
                break
        else:
            scores.append(curve[-1])
            spent += epochs
            best = curve[-1] if best is None else max(best, curve[-1])
    return scores, spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spaces", default="nb201,mbv2")
    ap.add_argument("--archs", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--data", default="digits")
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--p", default="0.01,0.05,0.1", help="early-stopping thresholds")
    ap.add_argument("--rungs", default="1,2,3", help="epochs of the cheap rungs")
    ap.add_argument("--fractions", default="0.1111,0.3333", help="schedule rungs to train, fractions of full")
    ap.add_argument("--fidelities", default="epochs",
                    help="what a rung is a fraction of: epochs,data,resolution ('' trains no rungs)")
    ap.add_argument("--hypernet-epochs", default="", help="nb201: SMASH hypernetworks trained this many epochs "
                                                             "(comma-separated; none by default)")
    ap.add_argument("--inherit-epochs", default="",
                    help="children grown from a trained parent one step smaller, fine-tuned this many epochs "
                         "(comma-separated; none by default)")
    ap.add_argument("--repeat", action="store_true",
                    help="also train every architecture fully with another seed: τ between two full trainings is "
                         "the ceiling any cheap score can reach against a noisy full score")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_cheap_eval"))
    args = ap.parse_args()
    late = [k for k in map(int, args.rungs.split(",")) if not 1 <= k < args.epochs]
    if late:
        ap.error(f"--rungs {args.rungs}: epoch rungs must lie in 1..{args.epochs - 1} (below --epochs "
                 f"{args.epochs}); drop {late} or raise --epochs")
    out = Path(args.out) / f"{args.data}-r{args.resolution}-e{args.epochs}"
    out.mkdir(parents=True, exist_ok=True)
    data = load(args.data, resolution=args.resolution, seed=args.seed)
    results: dict = {"args": vars(args), "spaces": {}}
    for name in args.spaces.split(","):
        space = space_for(name, args.resolution)
        archs = space.sample(args.archs, seed=args.seed)
        cs = curves(name, archs, data, args, out / "curves.jsonl")
        full = [c[-1] for c in cs]
        total = len(cs) * args.epochs
        rows = []
        again = ([c[-1] for c in curves(name, archs, data, args, out / "curves.jsonl", args.seed + 1)]
                 if args.repeat else None)

        def add(method: str, scores: list[float], spent: float, other: list[float] | None = None) -> None:
            tau = float(kendalltau(scores, full)[0])
            rho = float(spearmanr(scores, full)[0])
            cost = spent / total
            row = {"method": method, "tau": tau, "spearman": rho, "cost": cost,
                   "earns_place": bool(tau >= PLACE_TAU and cost <= PLACE_COST)}
            if again is not None:  # against an independent full training: the run's own noise not shared
                row["tau_other_seed"] = float(kendalltau(scores, other or again)[0])
            rows.append(row)

        for p in map(float, args.p.split(",")):
            scores, spent = early_stopped(cs, args.epochs, p)
            add(f"early-stop {p:g}", scores, spent)
        for k in map(int, args.rungs.split(",")):
            add(f"epoch {k}", [c[k - 1] for c in cs], k * len(cs))
        if again is not None:
            add("full, another seed (the ceiling)", again, len(cs) * args.epochs, other=full)
        for fidelity in filter(None, args.fidelities.split(",")):
            for fraction in map(float, args.fractions.split(",")):
                scores = rung_scores(name, archs, data, args, fidelity, fraction, out / "rungs.jsonl")
                work = TrainingAccuracy(data, epochs=args.epochs, fidelity=fidelity).reduced(fraction)[2]
                label = "rung" if fidelity == "epochs" else fidelity
                add(f"{label} {fraction:.3g}", scores, work * total)
        if args.inherit_epochs:
            for k, (scores, spent, scratch) in inherited_scores(name, space, archs, cs, data, args,
                                                                out / "inherit.jsonl").items():
                add(f"inherit {k}" + (f" ({scratch} from scratch)" if scratch else ""), scores, spent)
        if name == "nb201" and args.hypernet_epochs:
            for epochs, scores, share in hypernet_scores(space, archs, data, args):
                add(f"hypernet {epochs}", scores, share * total)
        entry = {"rows": rows, "full_mean": float(np.mean(full)),
                 "full_p10_p90": [float(np.percentile(full, 10)), float(np.percentile(full, 90))]}
        if name == "nb201":
            from hwnas.evaluators.tabular import nb201_accuracy

            truth = nb201_accuracy(get_space("nb201"))([get_space("nb201").parse(str(a)) for a in archs])
            entry["full_vs_cifar10_tau"] = float(kendalltau(full, truth)[0])
        results["spaces"][name] = entry
        print(f"\n{name}: {len(cs)} architectures, {args.epochs} epochs on {args.data} ({args.resolution} px); full "
              f"training mean {100 * entry['full_mean']:.2f} % (p10 {100 * entry['full_p10_p90'][0]:.2f}, p90 "
              f"{100 * entry['full_p10_p90'][1]:.2f})"
              + (f"; full proxy score vs NAS-Bench-201 CIFAR-10: τ {entry['full_vs_cifar10_tau']:+.2f}"
                 if "full_vs_cifar10_tau" in entry else ""))
        other = [[f"{r['tau_other_seed']:+.3f}"] if again is not None else [] for r in rows]
        print(format_table([[r["method"], f"{r['tau']:+.3f}", f"{r['spearman']:+.3f}", *o, f"{100 * r['cost']:.0f} %",
                             "yes" if r["earns_place"] else "no"] for r, o in zip(rows, other)],
                           ["score", "τ vs full", "ρ vs full", *(["τ vs full, seed+1"] if again is not None else []),
                            "cost", f"τ>={PLACE_TAU} at <={100 * PLACE_COST:.0f} %"]))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "cheap_eval.png")
    print(f"wrote {out / 'results.json'} and {out / 'cheap_eval.png'}", file=sys.stderr)


def plot(results: dict, path: Path) -> None:
    from hwnas.plots import pyplot, save

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (name, entry) in enumerate(results["spaces"].items()):
        for r in entry["rows"]:
            ax.scatter(100 * r["cost"], r["tau"], color=f"C{i}", marker={"early": "o", "epoch": "s"}.get(r["method"].split("-")[0].split(" ")[0], "^"))
            ax.annotate(f"{name}: {r['method']}", (100 * r["cost"], r["tau"]), fontsize=6)
    ax.axhline(PLACE_TAU, color="k", ls="--", lw=0.8)
    ax.axvline(100 * PLACE_COST, color="k", ls="--", lw=0.8)
    ax.set_xlabel("cost (% of full training)")
    ax.set_ylabel("Kendall τ with full training")
    save(fig, path)


if __name__ == "__main__":
    main()
