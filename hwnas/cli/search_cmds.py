"""``hwnas search`` (the main job: search, train, export, verify on the device, report) and
``hwnas train``.

Recipes under ``search/`` are TOML files with the same keys as the flags (dashes or
underscores); flags given on the command line override the recipe. ``--device``,
``--budget-ms``, ``--lut`` and ``--predictor`` may be repeated (one per device, in order).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hwnas.cli.common import answers_json, emit_json
from hwnas.job.recipe import CHOICES, SearchRecipe
from hwnas.spaces import SPACES, space_presets
from hwnas.supernet.config import SANDWICH


SEARCH_EXAMPLES = """examples:
  hwnas search --recipe search/quickstart.toml          # the main job: this CPU, digits, 30th-percentile budget
  hwnas search --strategy proxyless --space mbv2 --preset small --device cpu-ort:threads=1 \\
      --budget-ms 0.20 --derive budget --epochs 4 --retrain-epochs 6 --refine -o runs/small
  hwnas search --strategy evolution --space nb201 --predictor pixel2.json --budget-quantile 0.25 \\
      --queries 200 -o runs/evo-pixel2                  # black-box, tabular accuracy, a phone's predictor
  hwnas search --recipe search/proxyless-small.toml --strategy gdas -o runs/gdas   # flags override a recipe
"""


def _kinds() -> str:
    from hwnas.strategies.base import strategy_names

    return "; ".join(f"{kind}: {', '.join(strategy_names(kind))}" for kind in ("differentiable", "blackbox"))


def _sandwich_help() -> str:
    from hwnas.strategies.base import STRATEGIES, strategy_names

    modes = ", ".join(n for n in strategy_names("differentiable") if STRATEGIES[n].samples_paths)
    rules = "; ".join(f"{k}: {v}" for k, v in SANDWICH.items())
    return f"{modes}: every weight step also trains the space's largest path (the sandwich rule): {rules}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search", help="search for an architecture under a latency budget",
        description="Search a space for the most accurate network under a latency budget on a device; with "
                    "--device, also train it, export it, measure the exported file there and report.",
        epilog=SEARCH_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", help="TOML recipe (e.g. search/proxyless-small.toml); flags override it")
    p.add_argument("--strategy", choices=CHOICES["strategy"](), help=_kinds())
    p.add_argument("--space", choices=SPACES.names(), help="search space (default mbv2; 'hwnas space list' shows each)")
    p.add_argument("--preset", help="the space's preset (" + "; ".join(f"{n}: {', '.join(space_presets(n))}"
                                                                     for n in SPACES.names())
                   + "; default: the space's first)")
    p.add_argument("--num-classes", type=int, help="classifier outputs (default: the dataset's)")
    p.add_argument("--resolution", type=int, help="input resolution in pixels (default: the preset's)")
    p.add_argument("--width-mult", type=float, help="mbv2: channel width multiplier (default: the preset's, 1.0)")
    p.add_argument("--device", action="append",
                   help="target device spec or profile (repeatable, one budget each); the exported model is "
                        "measured there. Its table: --lut, else a shipped one with the same fingerprint, else "
                        "one is built first. A pool file (devices/NAME.toml with 'urls') shares the table build "
                        "and the --finalists checks between its agents")
    p.add_argument("--lut", action="append", help="latency table of the (each) target device")
    p.add_argument("--correction-networks", type=int, metavar="N",
                   help="on a device no shipped table matches: measure N networks there first and correct the "
                        f"table's LUT-sum on them (default {SearchRecipe.correction_networks}; 0: plain LUT-sum)")
    p.add_argument("--spot-check", type=int, metavar="N",
                   help="on a device a shipped table matches: measure N networks of the shipped measured set "
                        "there first and scale the shipped predictor by how far they moved, when more than 2 %% "
                        f"(default {SearchRecipe.spot_check}; 0: trust the shipped figures)")
    p.add_argument("--predictor", action="append",
                   help="fitted predictor of the (each) target device (its correction is applied)")
    p.add_argument("--budget-ms", type=float, action="append", help="latency budget on the (each) device (ms)")
    p.add_argument("--budget-quantile", type=float,
                   help="instead of --budget-ms: this quantile of the space's predicted latencies (0..1)")
    p.add_argument("--data", help="digits (offline default), clutter (offline, digits over photo clutter: a proxy "
                                  "task that separates architectures), cifar10 or imagefolder")
    p.add_argument("--data-dir", help="cifar10: the folder holding cifar-10-batches-bin/ (the binary version); "
                                      "imagefolder: one sub-folder of images per class")
    p.add_argument("--epochs", type=int, help="differentiable: supernet training epochs (default 10)")
    p.add_argument("--warmup-epochs", type=int, help="differentiable: first epochs train weights only (default 2, at most half the epochs)")
    p.add_argument("--batch-size", type=int, help="training batch size (default 64)")
    p.add_argument("--loss", choices=CHOICES["loss"](), help="differentiable latency loss: " + _losses())
    p.add_argument("--lr", type=float, help="weight learning rate (SGD, cosine schedule; default 0.05)")
    p.add_argument("--arch-lr", type=float, help="differentiable: architecture learning rate (Adam; enas: the "
                                                 "controller's; default 6e-3)")
    p.add_argument("--controller-steps", type=int,
                   help="enas: controller REINFORCE steps per epoch, 10 sampled architectures each (default 30)")
    p.add_argument("--unrolled", action="store_true", default=None, help="darts: second-order gradient")
    p.add_argument("--partial-channels", type=int, metavar="K",
                   help="differentiable: PC-DARTS memory saving: searched layers that keep their shape see 1/K of "
                        "the channels (the rest bypass them), the others are recomputed in the backward pass "
                        "(default 1: the full mixture)")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="differentiable: train the supernet on N processes (torchrun; gloo on the CPU, NCCL on "
                        "GPUs), each on its share of every batch; a run resumes with any N (default 1)")
    p.add_argument("--budget-tracking", action="store_true", default=None,
                   help="differentiable: the latency term's weight tracks the budget (dual ascent: it presses only "
                        "while the expected latency is over the budget) instead of a fixed one")
    p.add_argument("--sandwich", choices=CHOICES["sandwich"](), help=_sandwich_help())
    p.add_argument("--derive", choices=CHOICES["derive"](),
                   help="differentiable: the final architecture is the argmax (default; repaired to the most likely "
                        "connected one under the budget when it is not) or the most likely connected one that fills "
                        "the budget (predicted latency in [0.9 B, B])")
    p.add_argument("--derive-margin", metavar="FRACTION|auto",
                   help="differentiable: derive under (1 - margin) x budget, room for the predictor's error (auto: "
                        "0.84 std of its calibrated error at the budget, else its hold-out error; default 0)")
    p.add_argument("--seed", type=int, help="seed of everything random in the search (default 0)")
    p.add_argument("--retrain-epochs", type=int, help="then train the derived network this many epochs")
    p.add_argument("--export", choices=CHOICES["export"](),
                   help="formats to export (default: what the devices run; onnx without a device)")
    p.add_argument("--refine", action="store_true", default=None,
                   help="when the measured latency is over a budget: refit the device's correction on the "
                        "measurements and search again")
    p.add_argument("--refine-rounds", type=int, help="at most this many refinement rounds (default 2)")
    g = p.add_argument_group("black-box strategies")
    g.add_argument("--queries", type=int, help="accuracy evaluations to spend (default 100)")
    g.add_argument("--reward", choices=CHOICES["reward"](),
                   help="hard budget (default), MnasNet soft constraint, or the Pareto front (pareto strategy)")
    g.add_argument("--mnas-w", type=float, help="MnasNet exponent w in ACC*(LAT/T)^w (default -0.07; also "
                                                    "enas's reward)")
    g.add_argument("--accuracy", metavar="EVALUATOR",
                   help="table:DATASET (nb201 benchmark table), supernet:RUN_DIR, hypernet:RUN_DIR (a SMASH "
                        "hypernetwork from 'hwnas hypernet train', nb201), train:EPOCHS "
                        "(default table:cifar10 for nb201, train:1 otherwise)")
    g.add_argument("--early-stop", type=float, metavar="P",
                   help="train:EPOCHS: after each epoch extrapolate the run's learning curve (Domhan et al.) and "
                        "stop it once its chance of ending above the best so far is below P (e.g. 0.05)")
    g.add_argument("--schedule", choices=CHOICES["schedule"](),
                   help="train:EPOCHS: score candidates at lower fidelities first and train only the best fully: "
                        "successive halving (sh), hyperband, or asynchronous asha (default: every one fully)")
    g.add_argument("--eta", type=int, help="schedules and bohb: keep the best 1/eta of each rung (default 3)")
    g.add_argument("--min-fidelity", type=float, metavar="FRACTION",
                   help="schedules and bohb: the lowest rung, as a fraction of the full training (default 1/eta^2)")
    g.add_argument("--fidelity", choices=CHOICES["fidelity"](),
                   help="schedules: a rung is a fraction of the epochs (default), of the train split (data) or of "
                        "the compute by image resolution")
    g.add_argument("--inherit", action="store_true", default=None,
                   help="evolution with train:EPOCHS: a child that grows from its parent (deeper, wider, larger "
                        "kernel) starts from the parent's weights by network morphism and is only fine-tuned; the "
                        "last POPULATION networks' weights are kept in RUN_DIR/checkpoints")
    g.add_argument("--inherit-epochs", type=int, metavar="N",
                   help="--inherit: epochs of fine-tuning for an inherited child (default EPOCHS // 4, at least 1)")
    g.add_argument("--population", type=int, help="evolution / pareto population size (default 20)")
    g.add_argument("--batch", type=int, help="architectures asked per step (default 1; with workers, a strategy "
                                             "that is not asynchronous asks one per worker)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="evaluate candidates on N Ray workers (a local Ray instance; pip install 'hwnas[ray]'); "
                        "random and evolution tell each result as it comes back, other strategies go in batches")
    g.add_argument("--ray-address", metavar="ADDRESS",
                   help="evaluate candidates on an existing Ray cluster (host:port from 'ray start --head'); "
                        "with --workers N, at most N at a time")
    g.add_argument("--screen-margin", metavar="FRACTION|auto",
                   help="hard budget: also evaluate candidates predicted up to this fraction over it, for a "
                        "predictor less sure than that ('auto': as far over as keeps a 20 %% chance of meeting it, "
                        "else its hold-out error; default 0); use with --finalists")
    g.add_argument("--finalists", type=int, metavar="K",
                   help="measure the best candidates on the device, best first, and answer with the first that "
                        "meets the budget (at most K; default 0: trust the predictor)")
    g.add_argument("--min-chance", type=float, metavar="P",
                   help="finalists: measure only candidates that a calibrated predictor gives at least this chance "
                        "of meeting the budget (default 0.2)")
    p.add_argument("-o", "--output", help="run directory (resumes if it holds a checkpoint)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    answers_json(p, cmd_search, parser=p)

    p = sub.add_parser("train", help="train a search's derived architecture from scratch, evaluate, export ONNX")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--quiet", action="store_true")
    answers_json(p, cmd_train)


def _losses() -> str:
    from hwnas.supernet.losses import LOSSES

    return "; ".join(f"{n}: {LOSSES[n].help}" for n in LOSSES)


def cmd_search(args: argparse.Namespace) -> int:
    from hwnas.job.recipe import SearchRecipe
    from hwnas.job.run import run_job
    from hwnas.job.targets import build_targets
    from hwnas.spaces import get_space

    recipe = SearchRecipe.parse(args.recipe, vars(args))
    space = get_space(recipe.space, recipe.preset, **recipe.space_overrides())
    run = Path(str(recipe.output))
    targets = build_targets(recipe, space, run, progress=not args.quiet)
    job = run_job(recipe, space, targets, run, progress=not args.quiet)
    record = job.to_json()
    final = record["rounds"][-1]
    result = {**final["search"], "job": record}
    if "train" in final:
        result["retrain"] = final["train"]
    if final.get("export"):
        result["export"] = final["export"]
    result["verify"] = final["verify"]
    if args.json:
        emit_json(result)
        return 0
    print_search(record, space)
    return 0 if record["meets_all_measured"] in (True, None) else 3


def print_search(job: dict[str, Any], space: Any) -> None:
    final = job["rounds"][-1]
    s = final["search"]
    print(f"{job['strategy']} on {space.name}/{space.preset}: {job['arch']}")
    if s.get("accuracy") is not None:
        print(f"accuracy ({s['accuracy_evaluator']}) {100 * s['accuracy']:.2f} % after {s['queries']} queries; "
              f"Pareto front of {len(s['front'])} (front.png)")
    if s.get("finalists"):
        fin = s["finalists"]
        print(f"measured {len(fin)} finalist(s) on the device, best first; the first that meets every budget is "
              f"the answer ({sum(not f['meets_budget'] for f in fin)} over budget before it)")
    if "train" in final:
        print(f"retrained {final['train']['epochs']} epochs: test accuracy {100 * final['train']['test_acc']:.2f} %")
    for r in job["rounds"]:
        measured = {v["device"]: v for v in r["verify"]}
        for d in r["search"]["devices"]:
            v = measured.get(d["device"])
            line = f"round {r['round']}: {d['device']}: predicted {d['predicted_ms']:.4f} ms"
            if v:
                line += f", measured {v['measured_ms']:.4f} ms ({Path(v['file']).name})"
            if d["budget_ms"] is None:
                line += ", no budget"
            elif v:
                line += f", budget {d['budget_ms']:.4f} ms: {'MET' if v['meets_budget'] else 'OVER BUDGET'}"
            else:
                line += f", budget {d['budget_ms']:.4f} ms: {'meets' if d['meets_budget'] else 'DOES NOT meet'}"
            print(line)
    for kind, path in (final.get("export") or {}).get("files", {}).items():
        print(f"exported {kind}: {path}")
    print(f"report: {job['report']['markdown']}")


def cmd_train(args: argparse.Namespace) -> int:
    from hwnas.export.run import export_run
    from hwnas.train import retrain_run

    run = Path(args.run_dir)
    out = retrain_run(run, args.epochs, quiet=args.quiet)
    out["export"] = export_run(run, ("onnx",))
    ok = out["export"]["onnx_parity"]["ok"]
    if args.json:
        emit_json(out)
    else:
        print(f"{out['arch']}: test accuracy {100 * out['test_acc']:.2f} % after {out['epochs']} epochs; "
              f"exported {out['export']['files']['onnx']} (onnxruntime parity {'ok' if ok else 'FAILED'})")
    return 0
