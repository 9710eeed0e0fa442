"""Weight inheritance by network morphism: how fast does a grown child reach its parent?

For ``--parents`` sampled architectures of each space (``nb201``: the cell on the proxy
skeleton, ``mbv2``: mbv2/small), the parent is trained ``--epochs`` epochs on the offline
proxy task and scored on the validation split (batch norm re-estimated). A child is grown
from it by one random function-preserving step (:mod:`hwnas.nn.morphism`: deepen, widen or
enlarge a kernel), checked to compute the parent's function, then trained two ways for
``--epochs`` epochs, scored after each: from the parent's weights (inherited) and from
scratch (the inherited one at ``--finetune-lr``). Reported: the epochs each needs to reach the parent's accuracy (less 0.5 points, the
noise of a 718-image validation split; never within the budget counts as the budget + 1),
as a median and as a share of the scratch epochs, and the accuracies after the first
epoch and at the end. The issue's goal: inherited children reach their parent's accuracy
in <= 25 % of the epochs from scratch. Writes results.json and morphism.png.

    .venv/bin/python -m tools.bench_morphism [--spaces nb201,mbv2] [--parents 8] [--epochs 8]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hwnas.cli.common import format_table
from hwnas.data.datasets import load
from hwnas.nn.morphism import grows, morph
from hwnas.train import accuracy, recalibrated, train_arch
from tools.bench_cheap_eval import space_for

ROOT = Path(__file__).resolve().parent.parent
SLACK = 0.005


def grow(space, arch, rng: np.random.Generator):
    """The parent with one decision grown by a function-preserving step (None when none can grow)."""
    options = [(i, o) for i, d in enumerate(space.decisions()) for o in d.choices
               if o != arch.choices[i] and grows(space.name, arch.choices[i], o)]
    if not options:
        return None
    i, o = options[int(rng.integers(len(options)))]
    choices = list(arch.choices)
    choices[i] = o
    return space.from_choices(choices)


def curve(arch, data, epochs: int, seed: int, start=None, lr: float = 0.05) -> tuple[list[float], object]:
    out: list[float] = []

    def on_epoch(epoch: int, model) -> bool:
        with torch.random.fork_rng(devices=[]):
            with recalibrated(model, data, 8, 64, torch.device("cpu")):
                out.append(accuracy(model, data, "val", torch.device("cpu")))
        return False

    result = train_arch(arch, data, epochs=epochs, seed=seed, device="cpu", progress=False, train_split="train",
                        eval_split="val", recalibrate=8, on_epoch=on_epoch, start=start, lr=lr)
    return out, result.model


def reach(c: list[float], target: float) -> int:
    return next((i + 1 for i, a in enumerate(c) if a >= target - SLACK), len(c) + 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spaces", default="nb201,mbv2")
    ap.add_argument("--parents", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--data", default="digits")
    ap.add_argument("--resolution", type=int, default=16)
    ap.add_argument("--finetune-lr", type=float, default=0.05,
                    help="learning rate of the inherited child's fine-tuning (training from scratch: 0.05)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_morphism"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load(args.data, resolution=args.resolution, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    results: dict = {"args": vars(args), "spaces": {}}
    for name in args.spaces.split(","):
        space = space_for(name, args.resolution)
        rows = []
        for parent in tqdm(space.sample(args.parents, seed=args.seed), desc=name, unit="parent"):
            child = grow(space, parent, rng)
            if child is None:
                continue
            parent_curve, trained = curve(parent, data, args.epochs, args.seed)
            target = parent_curve[-1]
            grown = morph(space, parent, trained.eval(), child, seed=args.seed)
            x = next(iter(data.loader("val", 64, False)))[0]
            with torch.no_grad():
                same = float((grown.eval()(x) - trained.eval()(x)).abs().max())
            inherited, _ = curve(child, data, args.epochs, args.seed, start=grown, lr=args.finetune_lr)
            scratch, _ = curve(child, data, args.epochs, args.seed)
            rows.append({"parent": str(parent), "child": str(child), "parent_acc": target, "max_output_diff": same,
                         "inherited": inherited, "scratch": scratch, "inherited_epochs": reach(inherited, target),
                         "scratch_epochs": reach(scratch, target)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        inh = np.array([r["inherited_epochs"] for r in rows])
        scr = np.array([r["scratch_epochs"] for r in rows])
        entry = {"rows": rows, "median_inherited_epochs": float(np.median(inh)),
                 "median_scratch_epochs": float(np.median(scr)),
                 "share": float(np.median(inh) / np.median(scr)),
                 "first_epoch_inherited": float(np.mean([r["inherited"][0] for r in rows])),
                 "first_epoch_scratch": float(np.mean([r["scratch"][0] for r in rows])),
                 "final_inherited": float(np.mean([r["inherited"][-1] for r in rows])),
                 "final_scratch": float(np.mean([r["scratch"][-1] for r in rows])),
                 "parent_acc": float(np.mean([r["parent_acc"] for r in rows]))}
        results["spaces"][name] = entry
        print(f"\n{name}: {len(rows)} parents trained {args.epochs} epochs on {args.data} ({args.resolution} px), "
              f"mean accuracy {100 * entry['parent_acc']:.2f} %; one growth step each")
        print(format_table([
            ["inherited", f"{entry['median_inherited_epochs']:g}", f"{100 * entry['first_epoch_inherited']:.2f}",
             f"{100 * entry['final_inherited']:.2f}"],
            ["from scratch", f"{entry['median_scratch_epochs']:g}", f"{100 * entry['first_epoch_scratch']:.2f}",
             f"{100 * entry['final_scratch']:.2f}"]],
            ["child", "median epochs to parent acc", "acc after 1 epoch %", f"acc after {args.epochs} %"]))
        print(f"inherited / scratch epochs: {100 * entry['share']:.0f} % (goal <= 25 %)")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot(results, out / "morphism.png")
    print(f"wrote {out / 'results.json'} and {out / 'morphism.png'}", file=sys.stderr)


def plot(results: dict, path: Path) -> None:
    from hwnas.plots import pyplot, save

    plt = pyplot()
    fig, axes = plt.subplots(1, len(results["spaces"]), figsize=(5 * len(results["spaces"]), 3.6), squeeze=False)
    for ax, (name, entry) in zip(axes[0], results["spaces"].items()):
        for kind, color in (("inherited", "C0"), ("scratch", "C1")):
            curves = np.array([r[kind] for r in entry["rows"]]) * 100
            ax.plot(range(1, curves.shape[1] + 1), curves.mean(axis=0), color=color, label=kind)
        ax.axhline(100 * entry["parent_acc"], color="k", ls="--", lw=0.8, label="parent")
        ax.set_xlabel("epochs of the child")
        ax.set_ylabel("val accuracy (%)")
        ax.set_title(name)
        ax.legend(fontsize=8)
    save(fig, path)


if __name__ == "__main__":
    main()
