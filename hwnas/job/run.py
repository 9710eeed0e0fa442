"""The main job: search under a budget per device, train the found network, export it,
measure the exported file on every device, refine when over budget, report.

:func:`run_job` runs the closed loop: after a round whose measured latency is over a
budget, each device's correction is refitted on the measurements of the networks found
so far and the search runs again (in ``RUN_DIR/refine-K``), until every budget is met or
the rounds are spent. The report is written either way.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError
from hwnas.files import read_fields, write_atomic
from hwnas.job.recipe import SearchRecipe
from hwnas.job.search import SearchContext, SearchResult, make_search
from hwnas.spaces.base import SearchSpace
from hwnas.target import Target

FINAL_FILES = ("result.json", "train.json", "model.onnx", "model.tflite", "model.safetensors", "arch.json",
               "export.json")
"""What the run directory holds of the final round, so that it describes the answer (``hwnas
export``/``verify RUN_DIR`` read them); every round's result stays in ``report.json``."""


@dataclass
class Round:
    """One search (the first, or a refinement) and what followed it."""

    round: int
    run_dir: Path
    search: SearchResult
    train: dict[str, Any] | None = None
    export: dict[str, Any] | None = None
    verify: list[dict[str, Any]] = field(default_factory=list)

    @property
    def meets_all_measured(self) -> bool | None:
        """Every measured budget met (None: nothing was measured)."""
        return all(v["meets_budget"] for v in self.verify) if self.verify else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"round": self.round, "run_dir": str(self.run_dir), "search": self.search.to_json()}
        if self.train is not None:
            out["train"] = self.train
        out.update({"export": self.export, "verify": self.verify, "meets_all_measured": self.meets_all_measured})
        return out


@dataclass
class Job:
    recipe: SearchRecipe
    space: SearchSpace
    targets: list[Target]
    rounds: list[Round]
    report: dict[str, Any] = field(default_factory=dict)  # the report's files, once written

    @property
    def final(self) -> Round:
        return self.rounds[-1]

    @property
    def accuracy(self) -> float | None:
        return (self.final.train or {}).get("test_acc", self.final.search.accuracy)

    def to_json(self) -> dict[str, Any]:
        from hwnas.job.targets import predictor_quality

        return {"space": self.space.name, "preset": self.space.preset, "strategy": self.recipe.strategy,
                "arch": self.final.search.arch,
                "targets": [{**t.describe(), "predictor_quality": predictor_quality(t)} for t in self.targets],
                "rounds": [r.to_json() for r in self.rounds], "final_round": self.final.round,
                "meets_all_measured": self.final.meets_all_measured, "accuracy": self.accuracy,
                **({"report": self.report} if self.report else {})}


def write_recipe(recipe: SearchRecipe, space: SearchSpace, targets: list[Target], run: Path) -> None:
    """``recipe.json``: the recipe, the space it made and each target's budget."""
    write_atomic(run / "recipe.json", json.dumps({**recipe.to_json(), "space_recipe": space.recipe(),
                                                  "budgets_ms": [t.budget_ms for t in targets],
                                                  "targets": [t.describe() for t in targets]}, indent=1))


def check_resume(recipe: SearchRecipe, run: Path) -> None:
    """A run directory holding a search's state resumes only the recipe that made it."""
    stored = run / "recipe.json"
    if not stored.is_file() or not any((run / f).is_file() for f in ("checkpoint.pt", "state.json")):
        return
    diff = recipe.differences(read_fields(stored, "search recipe", "search into a new run directory", {}))
    if diff:
        raise HwnasError(f"{run} holds a search made by another recipe ({'; '.join(diff)}); resume it with the same "
                         "settings, or search into a new run directory")


def search_once(recipe: SearchRecipe, space: SearchSpace, targets: list[Target], run: Path, progress: bool,
                log_dir: Path | None = None) -> SearchResult:
    run.mkdir(parents=True, exist_ok=True)
    write_recipe(recipe, space, targets, run)
    result = make_search(SearchContext(recipe, space, targets, run, log_dir or run, progress)).run()
    result.save(run)
    return result


def export_formats(targets: list[Target], wanted: str | None) -> tuple[str, ...]:
    """The formats to export: those asked for, else what the devices run (ONNX without one)."""
    if wanted in ("onnx", "tflite"):
        return (wanted,)
    if wanted == "all":
        return ("onnx", "tflite")
    need = {t.device.export_format or "onnx" for t in targets if t.measurable}
    return tuple(sorted(need or {"onnx"}))


def run_job(recipe: SearchRecipe, space: SearchSpace, targets: list[Target], run: Path,
            progress: bool = True) -> Job:
    from hwnas.export.run import export_run
    from hwnas.job.report import write_report
    from hwnas.job.verify import CorrectedPredictor, measured_rows, verify_target
    from hwnas.train import retrain_run

    run.mkdir(parents=True, exist_ok=True)
    check_resume(recipe, run)
    rounds: list[Round] = []
    max_rounds = 1 + (recipe.refine_rounds if recipe.refine else 0)
    current = list(targets)
    for k in range(max_rounds):
        rdir = run if k == 0 else run / f"refine-{k}"
        if k:
            current = [replace(t, model=CorrectedPredictor(t.model, measured_rows(run, t.name))) for t in targets]
        result = search_once(recipe, space, current, rdir, progress, log_dir=run)
        r = Round(k, rdir, result)
        if recipe.retrain_epochs:
            r.train = retrain_run(rdir, recipe.retrain_epochs, quiet=not progress)
        verifiable = [t for t in current if t.measurable]
        r.export = export_run(rdir, export_formats(verifiable, recipe.export))
        r.verify = [verify_target(rdir, result.arch, t, log_dir=run) for t in verifiable]
        rounds.append(r)
        if r.meets_all_measured in (True, None):
            break
    job = Job(recipe, space, current, rounds)
    if job.final.run_dir != run:
        for name in FINAL_FILES:
            src = job.final.run_dir / name
            if src.is_file():
                shutil.copy2(src, run / name)
    write_report(run, job)
    return job
