"""``hwnas verify RUN_DIR --device SPEC``: measure a run's exported model on a device (local
or through an agent) and set it against the prediction and the budget."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwnas.cli.common import answers_json, emit_json
from hwnas.errors import HwnasError
from hwnas.job.recipe import SearchRecipe


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="measure a run's exported model on a device against its budget")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--device", required=True, help="device spec or profile (e.g. remote:tcp://127.0.0.1:7777)")
    p.add_argument("--budget-ms", type=float, help="budget on this device (default: the run's first budget)")
    p.add_argument("--lut", help="the device's latency table (default: shipped with the same fingerprint, or built)")
    p.add_argument("--predictor", help="the device's predictor (default: shipped beside the table, or LUT-sum)")
    p.add_argument("--correction-networks", type=int, default=SearchRecipe.correction_networks, metavar="N",
                   help="on a device no shipped table matches: measure N networks there first and correct the "
                        "table's LUT-sum on them (default %(default)s; 0: plain LUT-sum), as 'hwnas search' does")
    p.add_argument("--spot-check", type=int, default=SearchRecipe.spot_check, metavar="N",
                   help="on a device a shipped table matches: scale the shipped predictor by N networks of its "
                        "measured set measured here, as 'hwnas search' does (default %(default)s; 0: no check)")
    p.add_argument("--quiet", action="store_true")
    answers_json(p, cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from hwnas.devices import parse_device_spec
    from hwnas.export.run import load_run
    from hwnas.job.targets import resolve_target
    from hwnas.job.verify import verify_target

    for flag, value in (("--correction-networks", args.correction_networks), ("--spot-check", args.spot_check)):
        if value < 0:
            raise HwnasError(f"{flag} is a count of networks >= 0, not {value}")
    run = Path(args.run_dir)
    space, arch, result, _ = load_run(run)
    budget = args.budget_ms
    if budget is None:
        budgets = [d.get("budget_ms") for d in result.get("devices", []) if d.get("budget_ms") is not None]
        if not budgets:
            raise HwnasError(f"{run} has no budget; give --budget-ms")
        budget = budgets[0]
    target = replace(resolve_target(space, parse_device_spec(args.device), run, lut=args.lut,
                                    predictor=args.predictor, progress=not args.quiet,
                                    correction_networks=args.correction_networks, spot_check=args.spot_check),
                     budget_ms=budget)
    out = verify_target(run, str(arch), target)
    if args.json:
        emit_json(out)
    else:
        print(f"{arch} on {target.name}: predicted {out['predicted_ms']:.4f} ms, measured {out['measured_ms']:.4f} ms "
              f"({Path(out['file']).name}), budget {budget:.4f} ms: {'MET' if out['meets_budget'] else 'OVER BUDGET'}")
        print(f"recorded in {run / 'measurements.csv'}")
    return 0 if out["meets_budget"] else 3
