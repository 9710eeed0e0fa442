"""``hwnas search`` (differentiable and black-box strategies) and ``hwnas train``.

Recipes under ``search/`` are TOML files with the same keys as the flags (dashes or
underscores); flags given on the command line override the recipe.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from hwnas.cli.blackbox_cmd import BLACKBOX
from hwnas.cli.common import add_json, emit_json
from hwnas.errors import HwnasError
from hwnas.files import read_toml

DIFFERENTIABLE = ("proxyless", "darts", "gdas")
DEFAULTS: dict[str, Any] = {
    "strategy": "proxyless", "space": "mbv2", "preset": None, "num_classes": None, "resolution": None,
    "lut": None, "predictor": None, "budget_ms": None, "budget_quantile": None, "data": "digits",
    "data_dir": None, "epochs": 10, "warmup_epochs": 2, "batch_size": 64, "loss": "mul#log", "seed": 0,
    "unrolled": False, "lr": 0.05, "arch_lr": 6e-3, "output": None, "retrain_epochs": 0,
    "queries": 100, "reward": None, "accuracy": None, "mnas_w": -0.07, "population": None, "batch": 1,
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search for an architecture under a latency budget")
    p.add_argument("--recipe", help="TOML recipe (e.g. search/proxyless-small.toml); flags override it")
    p.add_argument("--strategy", choices=DIFFERENTIABLE + BLACKBOX,
                   help="differentiable: proxyless, darts, gdas; black-box: random, evolution, reinforce, pareto")
    p.add_argument("--space")
    p.add_argument("--preset")
    p.add_argument("--num-classes", type=int)
    p.add_argument("--resolution", type=int)
    p.add_argument("--lut", help="latency table of the target device")
    p.add_argument("--predictor", help="fitted predictor of the target device (its correction is applied)")
    p.add_argument("--budget-ms", type=float, help="latency budget on the device (ms)")
    p.add_argument("--budget-quantile", type=float,
                   help="instead of --budget-ms: this quantile of the space's predicted latencies (0..1)")
    p.add_argument("--data", help="digits (offline default), cifar10 or imagefolder")
    p.add_argument("--data-dir")
    p.add_argument("--epochs", type=int)
    p.add_argument("--warmup-epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--loss", choices=["mul#log", "add#linear"])
    p.add_argument("--lr", type=float)
    p.add_argument("--arch-lr", type=float)
    p.add_argument("--unrolled", action="store_true", default=None, help="darts: second-order gradient")
    p.add_argument("--seed", type=int)
    p.add_argument("--retrain-epochs", type=int, help="then train the derived network this many epochs")
    g = p.add_argument_group("black-box strategies")
    g.add_argument("--queries", type=int, help="accuracy evaluations to spend (default 100)")
    g.add_argument("--reward", choices=["hard", "mnas", "pareto"],
                   help="hard budget (default), MnasNet soft constraint, or the Pareto front (pareto strategy)")
    g.add_argument("--mnas-w", type=float, help="MnasNet exponent w in ACC*(LAT/T)^w (default -0.07)")
    g.add_argument("--accuracy", metavar="EVALUATOR",
                   help="table:DATASET (nb201 benchmark table), supernet:RUN_DIR, train:EPOCHS "
                        "(default table:cifar10 for nb201, train:1 otherwise)")
    g.add_argument("--population", type=int, help="evolution / pareto population size (default 20)")
    g.add_argument("--batch", type=int, help="architectures asked per step (default 1)")
    p.add_argument("-o", "--output", help="run directory (resumes if it holds a checkpoint)")
    p.add_argument("--quiet", action="store_true")
    add_json(p)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("train", help="train a search's derived architecture from scratch, evaluate, export ONNX")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--quiet", action="store_true")
    add_json(p)
    p.set_defaults(func=cmd_train)


def merged(args: argparse.Namespace) -> dict[str, Any]:
    recipe: dict[str, Any] = {}
    if args.recipe:
        path = Path(args.recipe)
        raw = read_toml(path, "recipe", "see search/ for examples")
        raw = raw.get("search", raw)
        recipe = {k.replace("-", "_"): v for k, v in raw.items()}
        unknown = set(recipe) - set(DEFAULTS)
        if unknown:
            raise HwnasError(f"recipe {path}: unknown key(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(DEFAULTS))}")
    out = {**DEFAULTS, **recipe}
    for k in DEFAULTS:
        v = getattr(args, k, None)
        if v is not None:
            out[k] = v
    if out["output"] is None:
        raise HwnasError("say where the run goes: -o RUN_DIR (or 'output' in the recipe)")
    if out["budget_ms"] is None and out["budget_quantile"] is None and not (
            out["strategy"] == "pareto" and out["reward"] in (None, "pareto")):
        raise HwnasError("give a budget: --budget-ms B (or --budget-quantile Q)")
    if out["lut"] is None and out["predictor"] is None:
        raise HwnasError("give the target device's latency table (--lut TABLE) or a fitted predictor (--predictor)")
    return out


def cmd_search(args: argparse.Namespace) -> int:
    from hwnas.lut.table import LatencyTable
    from hwnas.predictors import LutSumPredictor, load_predictor
    from hwnas.spaces import get_space

    o = merged(args)
    space = get_space(o["space"], o["preset"], num_classes=o["num_classes"], resolution=o["resolution"])
    if o["predictor"]:
        predictor = load_predictor(o["predictor"], space=space)
    else:
        predictor = LutSumPredictor(space, LatencyTable.load(o["lut"], space=space))
    name = Path(o["predictor"] or o["lut"]).name
    run = Path(o["output"])
    if o["strategy"] in BLACKBOX:
        result = _blackbox(o, space, predictor, name, run, args.quiet)
    else:
        result = _differentiable(o, space, predictor, name, run, args.quiet)
    result["data"] = {"name": o["data"], "data_dir": o["data_dir"]}
    (run / "result.json").write_text(json.dumps(result, indent=1))
    if o["retrain_epochs"]:
        result["retrain"] = retrain(run, o["retrain_epochs"], quiet=args.quiet)
    if args.json:
        emit_json(result)
        return 0
    print(f"{result['strategy']} on {space.name}/{space.preset}: {result['arch']}")
    if result.get("accuracy") is not None:
        print(f"accuracy ({result['accuracy_evaluator']}) {100 * result['accuracy']:.2f} % after "
              f"{result['queries']} queries; Pareto front of {len(result['front'])} (front.png)")
    for d in result["devices"]:
        verdict = "meets" if d["meets_budget"] else "DOES NOT meet"
        print(f"predicted {d['predicted_ms']:.4f} ms on {d['device']}, budget {d['budget_ms']:.4f} ms: {verdict}")
    if "retrain" in result:
        r = result["retrain"]
        print(f"retrained {r['epochs']} epochs: test accuracy {100 * r['test_acc']:.2f} %; exported {r['onnx']}")
    print(f"run directory: {run}")
    return 0


def _differentiable(o: dict[str, Any], space: Any, predictor: Any, name: str, run: Path, quiet: bool
                    ) -> dict[str, Any]:
    from hwnas.data.datasets import load
    from hwnas.supernet.search import DifferentiableSearch, SearchConfig, Target, budget_from_quantile

    latency = predictor.option_latency()
    budget = o["budget_ms"] if o["budget_ms"] is not None else budget_from_quantile(space, latency, o["budget_quantile"])
    _check_reachable(space, predictor, budget)
    data = load(o["data"], o["data_dir"], resolution=space.input_shape()[1], seed=o["seed"])
    if data.num_classes != getattr(space, "num_classes", data.num_classes):
        raise HwnasError(f"the data has {data.num_classes} classes but the space is built for {space.num_classes}; "
                         f"pass --num-classes {data.num_classes} (and a table measured for that class count)")
    cfg = SearchConfig(strategy=o["strategy"], loss=o["loss"], epochs=o["epochs"], warmup_epochs=o["warmup_epochs"],
                       batch_size=o["batch_size"], lr=o["lr"], arch_lr=o["arch_lr"], unrolled=bool(o["unrolled"]),
                       seed=o["seed"])
    run.mkdir(parents=True, exist_ok=True)
    (run / "recipe.json").write_text(json.dumps({**o, "budget_ms": budget}, indent=1))
    search = DifferentiableSearch(space, [Target(name, latency, budget, predictor)], data, cfg, run,
                                  progress=not quiet)
    return search.run()


def _blackbox(o: dict[str, Any], space: Any, predictor: Any, name: str, run: Path, quiet: bool) -> dict[str, Any]:
    from hwnas.cli.blackbox_cmd import budget_quantile, export_choice, run_blackbox

    budget = o["budget_ms"]
    if budget is None and o["budget_quantile"] is not None:
        budget = budget_quantile(space, predictor, o["budget_quantile"])
    if budget is not None:
        _check_reachable(space, predictor, budget)
    run.mkdir(parents=True, exist_ok=True)
    (run / "recipe.json").write_text(json.dumps({**o, "budget_ms": budget}, indent=1))
    result = run_blackbox(o, space, predictor, name, budget, progress=not quiet)
    result["export"] = export_choice(run, space, result["arch"])
    return result


def _check_reachable(space: Any, predictor: Any, budget: float) -> None:
    lat = predictor.option_latency()
    best = lat.fixed + sum(float(o.min()) for o in lat.options)
    if budget < best:
        raise HwnasError(f"no architecture of {space.name}/{space.preset} can meet {budget:.4f} ms: the smallest "
                         f"predicted latency in the space is {best:.4f} ms")


def retrain(run: Path, epochs: int, quiet: bool = False) -> dict[str, Any]:
    from safetensors.torch import save_file

    from hwnas.data.datasets import load
    from hwnas.export.onnx import export_onnx, onnx_parity
    from hwnas.spaces import get_space
    from hwnas.train import train_arch

    path = run / "result.json"
    if not path.is_file():
        raise HwnasError(f"{run} has no result.json: run 'hwnas search -o {run}' first")
    result = json.loads(path.read_text())
    recipe = json.loads((run / "recipe.json").read_text())
    space = get_space(result["space"], result["preset"], num_classes=recipe.get("num_classes"),
                      resolution=recipe.get("resolution"))
    arch = space.parse(result["arch"])
    data = load(recipe["data"], recipe.get("data_dir"), resolution=space.input_shape()[1], seed=recipe.get("seed", 0))
    trained = train_arch(arch, data, epochs=epochs, seed=recipe.get("seed", 0), progress=not quiet)
    onnx_path = run / "model.onnx"
    export_onnx(trained.model, space.input_shape(), onnx_path, metadata={"arch": str(arch), "space": space.name})
    parity = onnx_parity(onnx_path, trained.model, space.input_shape())
    save_file(trained.model.state_dict(), str(run / "model.safetensors"))
    out = {"arch": str(arch), "epochs": epochs, "test_acc": trained.test_acc, "seconds": trained.seconds,
           "onnx": str(onnx_path), "onnx_parity_ok": parity.ok, "history": trained.history}
    (run / "train.json").write_text(json.dumps(out, indent=1))
    return out


def cmd_train(args: argparse.Namespace) -> int:
    out = retrain(Path(args.run_dir), args.epochs, quiet=args.quiet)
    if args.json:
        emit_json(out)
    else:
        print(f"{out['arch']}: test accuracy {100 * out['test_acc']:.2f} % after {out['epochs']} epochs; "
              f"exported {out['onnx']} (onnxruntime parity {'ok' if out['onnx_parity_ok'] else 'FAILED'})")
    return 0
