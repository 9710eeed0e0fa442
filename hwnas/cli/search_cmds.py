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

from hwnas.cli.common import add_json, emit_json
from hwnas.errors import HwnasError
from hwnas.files import read_toml
from hwnas.pipeline import BLACKBOX, DIFFERENTIABLE

LISTS = ("device", "budget_ms", "lut", "predictor")
DEFAULTS: dict[str, Any] = {
    "strategy": "proxyless", "space": "mbv2", "preset": None, "num_classes": None, "resolution": None,
    "device": [], "lut": [], "predictor": [], "budget_ms": [], "budget_quantile": None, "data": "digits",
    "data_dir": None, "epochs": 10, "warmup_epochs": None, "batch_size": 64, "loss": "mul#log", "seed": 0,
    "unrolled": False, "lr": 0.05, "arch_lr": 6e-3, "output": None, "retrain_epochs": 0,
    "queries": 100, "reward": None, "accuracy": None, "mnas_w": -0.07, "population": None, "batch": 1,
    "export": None, "refine": False, "refine_rounds": 2, "derive": "argmax", "screen_margin": 0.0, "finalists": 0,
}


SEARCH_EXAMPLES = """examples:
  hwnas search --recipe search/quickstart.toml          # the main job: this CPU, digits, 30th-percentile budget
  hwnas search --strategy proxyless --space mbv2 --preset small --device cpu-ort:threads=1 \\
      --budget-ms 0.20 --derive budget --epochs 4 --retrain-epochs 6 --refine -o runs/small
  hwnas search --strategy evolution --space nb201 --predictor pixel2.json --budget-quantile 0.25 \\
      --queries 200 -o runs/evo-pixel2                  # black-box, tabular accuracy, a phone's predictor
  hwnas search --recipe search/proxyless-small.toml --strategy gdas -o runs/gdas   # flags override a recipe
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "search", help="search for an architecture under a latency budget",
        description="Search a space for the most accurate network under a latency budget on a device; with "
                    "--device, also train it, export it, measure the exported file there and report.",
        epilog=SEARCH_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", help="TOML recipe (e.g. search/proxyless-small.toml); flags override it")
    p.add_argument("--strategy", choices=DIFFERENTIABLE + BLACKBOX,
                   help="differentiable: proxyless, darts, gdas; black-box: random, evolution, reinforce, pareto")
    p.add_argument("--space", help="search space: mbv2 (default) or nb201 ('hwnas space list' shows all)")
    p.add_argument("--preset", help="the space's preset (mbv2: proxyless, mobilenetv2, small; nb201: cifar, "
                                    "imagenet16; default: the space's first)")
    p.add_argument("--num-classes", type=int, help="classifier outputs (default: the dataset's)")
    p.add_argument("--resolution", type=int, help="input resolution in pixels (default: the preset's)")
    p.add_argument("--device", action="append",
                   help="target device spec or profile (repeatable, one budget each); the exported model is "
                        "measured there. Its table: --lut, else a shipped one with the same fingerprint, else "
                        "one is built first")
    p.add_argument("--lut", action="append", help="latency table of the (each) target device")
    p.add_argument("--predictor", action="append",
                   help="fitted predictor of the (each) target device (its correction is applied)")
    p.add_argument("--budget-ms", type=float, action="append", help="latency budget on the (each) device (ms)")
    p.add_argument("--budget-quantile", type=float,
                   help="instead of --budget-ms: this quantile of the space's predicted latencies (0..1)")
    p.add_argument("--data", help="digits (offline default), cifar10 or imagefolder")
    p.add_argument("--data-dir", help="cifar10: the folder holding cifar-10-batches-bin/ (the binary version); "
                                      "imagefolder: one sub-folder of images per class")
    p.add_argument("--epochs", type=int, help="differentiable: supernet training epochs (default 10)")
    p.add_argument("--warmup-epochs", type=int, help="differentiable: first epochs train weights only (default 2, at most half the epochs)")
    p.add_argument("--batch-size", type=int, help="training batch size (default 64)")
    p.add_argument("--loss", choices=["mul#log", "add#linear"],
                   help="differentiable latency loss: ProxylessNAS's CE*0.2*(log E[lat]/log T)^0.3 (default) or "
                        "CE + lambda*(E[lat]-T)/T")
    p.add_argument("--lr", type=float, help="weight learning rate (SGD, cosine schedule; default 0.05)")
    p.add_argument("--arch-lr", type=float, help="differentiable: architecture learning rate (Adam; default 6e-3)")
    p.add_argument("--unrolled", action="store_true", default=None, help="darts: second-order gradient")
    p.add_argument("--derive", choices=["argmax", "budget"],
                   help="differentiable: the final architecture is the argmax (default) or the most likely one "
                        "that fills the budget (predicted latency in [0.9 B, B])")
    p.add_argument("--seed", type=int, help="seed of everything random in the search (default 0)")
    p.add_argument("--retrain-epochs", type=int, help="then train the derived network this many epochs")
    p.add_argument("--export", choices=["onnx", "tflite", "all"],
                   help="formats to export (default: what the devices run; onnx without a device)")
    p.add_argument("--refine", action="store_true", default=None,
                   help="when the measured latency is over a budget: refit the device's correction on the "
                        "measurements and search again")
    p.add_argument("--refine-rounds", type=int, help="at most this many refinement rounds (default 2)")
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
    g.add_argument("--screen-margin", metavar="FRACTION|auto",
                   help="hard budget: also evaluate candidates predicted up to this fraction over it, for a "
                        "predictor less sure than that ('auto': its hold-out error; default 0); use with --finalists")
    g.add_argument("--finalists", type=int, metavar="K",
                   help="measure the best candidates on the device, best first, and answer with the first that "
                        "meets the budget (at most K; default 0: trust the predictor)")
    p.add_argument("-o", "--output", help="run directory (resumes if it holds a checkpoint)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_json(p)
    p.set_defaults(func=cmd_search, parser=p)

    p = sub.add_parser("train", help="train a search's derived architecture from scratch, evaluate, export ONNX")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--quiet", action="store_true")
    add_json(p)
    p.set_defaults(func=cmd_train)


def merged(args: argparse.Namespace) -> dict[str, Any]:
    recipe: dict[str, Any] = {}
    where = f" in the recipe {args.recipe}" if args.recipe else ""
    if args.recipe:
        path = Path(args.recipe)
        raw = read_toml(path, "recipe", "see search/ for examples")
        raw = raw.get("search", raw)
        recipe = {k.replace("-", "_"): v for k, v in raw.items()}
        unknown = set(recipe) - set(DEFAULTS)
        if unknown:
            raise HwnasError(f"recipe {path}: unknown key(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(DEFAULTS))}")
        recipe = check_recipe(path, recipe, args.parser)
    out = {**DEFAULTS, **recipe}
    for k in DEFAULTS:
        v = getattr(args, k, None)
        if v is not None:
            out[k] = v
    for k in LISTS:
        if out[k] is None:
            out[k] = []
        elif not isinstance(out[k], list):
            out[k] = [out[k]]
    if out["output"] is None:
        raise HwnasError(f"say where the run goes: -o RUN_DIR (or field 'output'{where or ' in a recipe'})")
    if not out["budget_ms"] and out["budget_quantile"] is None and not (
            out["strategy"] == "pareto" and out["reward"] in (None, "pareto")):
        raise HwnasError(f"give a budget: --budget-ms B or --budget-quantile Q (or field 'budget_ms' or "
                         f"'budget_quantile'{where or ' in a recipe'})")
    if not (out["device"] or out["lut"] or out["predictor"]):
        raise HwnasError("give the target device (--device SPEC), or its latency table (--lut TABLE) or a fitted "
                         f"predictor (--predictor){where and ' (fields device, lut or predictor' + where + ')'}")
    n = max(len(out["device"]), 1)
    for k in ("lut", "predictor", "budget_ms"):
        if len(out[k]) not in (0, 1, n):
            raise HwnasError(f"give one --{k.replace('_', '-')} per --device ({n}), or one for all")
    return out


def check_recipe(path: Path, recipe: dict[str, Any], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Hold each recipe value to the flag of the same name: its type, its choices, true/false
    for switches, a list only where the flag repeats; one line naming the file and the key.
    Returns the recipe with each value converted as the flag would convert it."""
    actions = {a.dest: a for a in parser._actions}
    out = dict(recipe)
    for key, value in recipe.items():
        action = actions.get(key)
        if action is None:
            continue
        values = value if isinstance(value, list) and key in LISTS else [value]
        converted_values = []
        for v in values:
            converted: Any = v
            if isinstance(action, argparse._StoreTrueAction) or action.const is True:
                ok, want = isinstance(v, bool), "true or false"
            elif isinstance(v, (dict, list, bool)):
                ok, want = False, _flag_value(action)
            else:
                want = _flag_value(action)
                try:
                    converted = action.type(v) if action.type is not None else v
                    ok = not (isinstance(v, float) and action.type is int)  # 2.5 epochs is no integer
                    ok = ok and (not action.choices or converted in action.choices)
                except (TypeError, ValueError):
                    ok = False
            if not ok:
                raise HwnasError(f"recipe {path}: field {key!r} should be {want}, not {v!r}")
            converted_values.append(converted)
        out[key] = converted_values if isinstance(value, list) and key in LISTS else converted_values[0]
    return out


def _flag_value(action: argparse.Action) -> str:
    if action.choices:
        return "one of " + ", ".join(map(str, action.choices))
    return {int: "an integer", float: "a number"}.get(action.type, "a string")  # type: ignore[arg-type]


def build_targets(o: dict[str, Any], space: Any, run: Path, progress: bool) -> list[Any]:
    from hwnas.lut.table import LatencyTable
    from hwnas.pipeline import set_budgets
    from hwnas.predictors import LutSumPredictor, load_predictor
    from hwnas.targets import DeviceTarget, resolve_target

    def pick(k: str, i: int) -> Any:
        v = o[k]
        return v[i] if len(v) > 1 else (v[0] if v else None)

    targets = []
    if o["device"]:
        run.mkdir(parents=True, exist_ok=True)
        for i, spec in enumerate(o["device"]):
            targets.append(resolve_target(space, spec, None, run, lut=pick("lut", i), predictor=pick("predictor", i),
                                          progress=progress))
    else:
        lut, pred = pick("lut", 0), pick("predictor", 0)
        predictor = load_predictor(pred, space=space) if pred else LutSumPredictor(space, LatencyTable.load(lut, space=space))
        targets.append(DeviceTarget("", Path(pred or lut).name, None, predictor, table_path=lut, predictor_path=pred))
    set_budgets(space, targets, [pick("budget_ms", i) for i in range(len(targets))], o["budget_quantile"])
    return targets


def cmd_search(args: argparse.Namespace) -> int:
    from hwnas.pipeline import main_job
    from hwnas.spaces import get_space

    o = merged(args)
    space = get_space(o["space"], o["preset"], num_classes=o["num_classes"], resolution=o["resolution"])
    run = Path(o["output"])
    targets = build_targets(o, space, run, progress=not args.quiet)
    job = main_job(o, space, targets, run, progress=not args.quiet)
    final = job["rounds"][-1]
    result = {**final["search"], "job": job}
    if "train" in final:
        result["retrain"] = final["train"]
    if "export" in final:
        result["export"] = final["export"]
    result["verify"] = final["verify"]
    if args.json:
        emit_json(result)
        return 0
    print(f"{job['strategy']} on {space.name}/{space.preset}: {job['arch']}")
    if final["search"].get("accuracy") is not None:
        s = final["search"]
        print(f"accuracy ({s['accuracy_evaluator']}) {100 * s['accuracy']:.2f} % after {s['queries']} queries; "
              f"Pareto front of {len(s['front'])} (front.png)")
    if final["search"].get("finalists"):
        fin = final["search"]["finalists"]
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
    return 0 if job["meets_all_measured"] in (True, None) else 3


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
