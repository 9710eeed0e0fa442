"""The main job: search under a budget per device, train the found network, export it,
measure the exported file on every device, refine when over budget, report.

``search_once`` runs one search (differentiable or black-box) for a list of targets;
``main_job`` wraps it in the closed loop: after a round whose measured latency is over a
budget, ``refine`` fits each device's correction on the measurements of the networks
found so far and searches again (in ``RUN_DIR/refine-K``), until every budget is met or
the rounds are spent. The report is written either way.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError
from hwnas.spaces.base import SearchSpace
from hwnas.targets import DeviceTarget

BLACKBOX = ("random", "evolution", "reinforce", "pareto")
DIFFERENTIABLE = ("proxyless", "darts", "gdas")


def default_warmup(o: dict[str, Any]) -> int:
    """Warm-up epochs: as given, else 2 but never more than half the epochs (a short search
    still searches)."""
    return o["warmup_epochs"] if o["warmup_epochs"] is not None else min(2, o["epochs"] // 2)


def smallest_latency(predictor: Any) -> float:
    lat = predictor.option_latency()
    return float(lat.fixed + sum(float(o.min()) for o in lat.options))


def check_reachable(space: SearchSpace, target: DeviceTarget) -> None:
    if target.budget_ms is None:
        return
    best = smallest_latency(target.predictor)
    if target.budget_ms < best:
        raise HwnasError(f"no architecture of {space.name}/{space.preset} can meet {target.budget_ms:.4f} ms on "
                         f"{target.name}: the smallest predicted latency in the space is {best:.4f} ms")


def set_budgets(space: SearchSpace, targets: list[DeviceTarget], budgets: list[float | None],
                quantile: float | None) -> None:
    """Each target's budget: the one given, else the quantile of its predicted latencies."""
    from hwnas.supernet.search import budget_from_quantile

    for t, b in zip(targets, budgets):
        if b is None and quantile is not None:
            if not 0 < quantile < 1:
                raise HwnasError(f"--budget-quantile must be between 0 and 1, not {quantile}")
            b = budget_from_quantile(space, t.predictor.option_latency(), quantile)
        t.budget_ms = b
        check_reachable(space, t)


def finalist_measure(space: SearchSpace, targets: list[DeviceTarget], log_dir: Path) -> Any:
    """``arch -> {device: measured ms}`` over the targets with a budget, or None when one of
    them has no device to measure on (a predictor-only target)."""
    from hwnas.verify import measure_arch

    budgeted = [t for t in targets if t.budget_ms is not None]
    if not budgeted or any(not t.spec for t in budgeted):
        return None
    return lambda arch: {t.name: measure_arch(space, arch, t, log_dir) for t in budgeted}


def search_once(o: dict[str, Any], space: SearchSpace, targets: list[DeviceTarget], run: Path,
                progress: bool, log_dir: Path | None = None) -> dict[str, Any]:
    run.mkdir(parents=True, exist_ok=True)
    (run / "recipe.json").write_text(json.dumps({**o, "budgets_ms": [t.budget_ms for t in targets],
                                                 "targets": [t.describe() for t in targets]}, indent=1))
    if o["strategy"] in BLACKBOX:
        from hwnas.blackbox import run_blackbox

        result = run_blackbox(o, space, [(t.name, t.predictor, t.budget_ms) for t in targets], run, progress,
                              measure=finalist_measure(space, targets, log_dir or run))
    else:
        from hwnas.data.datasets import load
        from hwnas.supernet.search import DifferentiableSearch, SearchConfig, Target

        if any(t.budget_ms is None for t in targets):
            raise HwnasError("a differentiable search needs a budget for every device")
        data = load(o["data"], o["data_dir"], resolution=space.input_shape()[1], seed=o["seed"])
        if data.num_classes != getattr(space, "num_classes", data.num_classes):
            raise HwnasError(f"the data has {data.num_classes} classes but the space is built for "
                             f"{space.num_classes}; pass --num-classes {data.num_classes} (and a table for it)")
        cfg = SearchConfig(strategy=o["strategy"], loss=o["loss"], epochs=o["epochs"],
                           warmup_epochs=default_warmup(o), batch_size=o["batch_size"], lr=o["lr"],
                           arch_lr=o["arch_lr"], unrolled=bool(o["unrolled"]), seed=o["seed"],
                           derive=o.get("derive") or "argmax")
        search = DifferentiableSearch(space, [Target(t.name, t.predictor.option_latency(), float(t.budget_ms),
                                                     t.predictor) for t in targets], data, cfg, run,
                                      progress=progress)
        result = search.run()
    result["data"] = {"name": o["data"], "data_dir": o["data_dir"]}
    (run / "result.json").write_text(json.dumps(result, indent=1))
    return result


def export_formats(targets: list[DeviceTarget], wanted: str | None) -> tuple[str, ...]:
    from hwnas.verify import FORMAT_OF_RUNTIME

    if wanted in ("onnx", "tflite"):
        return (wanted,)
    if wanted == "all":
        return ("onnx", "tflite")
    need = {FORMAT_OF_RUNTIME.get(str(t.device.runtime), "onnx") for t in targets if t.spec}
    return tuple(sorted(need or {"onnx"}))


def main_job(o: dict[str, Any], space: SearchSpace, targets: list[DeviceTarget], run: Path,
             progress: bool = True) -> dict[str, Any]:
    from hwnas.export.run import export_run
    from hwnas.train import retrain_run
    from hwnas.verify import CorrectedPredictor, measured_rows, verify_target

    run.mkdir(parents=True, exist_ok=True)
    base = {t.name: t.predictor for t in targets}
    rounds: list[dict[str, Any]] = []
    max_rounds = 1 + (int(o.get("refine_rounds") or 0) if o.get("refine") else 0)
    for k in range(max_rounds):
        rdir = run if k == 0 else run / f"refine-{k}"
        if k:
            for t in targets:
                t.predictor = CorrectedPredictor(base[t.name], measured_rows(run, t.name))
        result = search_once(o, space, targets, rdir, progress, log_dir=run)
        record: dict[str, Any] = {"round": k, "run_dir": str(rdir), "search": result}
        if o.get("retrain_epochs"):
            record["train"] = retrain_run(rdir, int(o["retrain_epochs"]), quiet=not progress)
        verifiable = [t for t in targets if t.spec]
        record["export"] = export_run(rdir, export_formats(verifiable, o.get("export")))
        record["verify"] = [verify_target(rdir, result["arch"], t, log_dir=run) for t in verifiable]
        record["meets_all_measured"] = all(v["meets_budget"] for v in record["verify"]) if verifiable else None
        rounds.append(record)
        if record["meets_all_measured"] in (True, None):
            break
    final = rounds[-1]
    if final["run_dir"] != str(run):
        for name in ("model.onnx", "model.tflite", "model.safetensors", "arch.json", "export.json"):
            src = Path(final["run_dir"]) / name
            if src.is_file():
                shutil.copy2(src, run / name)
    job = {"space": space.name, "preset": space.preset, "strategy": o["strategy"], "arch": final["search"]["arch"],
           "targets": [t.describe() for t in targets], "rounds": rounds, "final_round": final["round"],
           "meets_all_measured": final["meets_all_measured"],
           "accuracy": (final.get("train") or {}).get("test_acc", final["search"].get("accuracy"))}
    from hwnas.report import write_report

    job["report"] = write_report(run, job)
    return job
