"""The two ways to search, behind one protocol, and what either returns.

A :class:`Search` is made from a :class:`SearchContext` (the recipe, the space, the
targets with their budgets, the run directory) and ``run()`` returns a
:class:`SearchResult`: the architecture, each device's predicted latency against its
budget, and what the strategy adds (accuracy, Pareto front, supernet figures). Retraining,
export, verification, refinement and the report read that result, as ``result.json``.

Which implementation runs a strategy is said by the strategy's class (``search``:
``blackbox`` or ``differentiable``) and looked up in :data:`SEARCHES`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from hwnas.errors import HwnasError
from hwnas.files import write_atomic
from hwnas.job.recipe import SearchRecipe
from hwnas.registry import Registry
from hwnas.spaces.base import SearchSpace
from hwnas.target import Target


@dataclass
class SearchResult:
    """A search's answer. ``devices``: one row per target (device, budget_ms, predicted_ms,
    meets_budget, and finalist_measured_ms when the answer was measured); ``details``: what
    the strategy adds, written into ``result.json`` beside the common fields."""

    space_recipe: dict[str, Any]
    strategy: str
    arch: str
    devices: list[dict[str, Any]]
    data: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def meets_all_budgets(self) -> bool:
        return all(d["meets_budget"] for d in self.devices)

    @property
    def accuracy(self) -> float | None:
        return self.details.get("accuracy")

    def to_json(self) -> dict[str, Any]:
        return {"space": self.space_recipe["space"], "preset": self.space_recipe["preset"],
                "space_recipe": self.space_recipe, "strategy": self.strategy, "arch": self.arch,
                **self.details, "devices": self.devices, "meets_all_budgets": self.meets_all_budgets,
                "data": self.data}

    def save(self, run_dir: Path) -> None:
        write_atomic(run_dir / "result.json", json.dumps(self.to_json(), indent=1))


def device_rows(targets: list[Target], arch: Any, measured_ms: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Each target's row of a result: predicted latency and whether the budget is met (by the
    measurement where the answer was measured, else by the prediction)."""
    rows = []
    for t in targets:
        predicted = t.predict_one(arch)
        got = (measured_ms or {}).get(t.name)
        row = {"device": t.name, "budget_ms": t.budget_ms, "predicted_ms": predicted,
               "meets_budget": bool(t.meets(predicted if got is None else got))}
        if got is not None:
            row["finalist_measured_ms"] = got
        rows.append(row)
    return rows


@dataclass
class SearchContext:
    """What a search is given: ``log_dir`` collects device measurements across refinement rounds."""

    recipe: SearchRecipe
    space: SearchSpace
    targets: list[Target]
    run_dir: Path
    log_dir: Path
    progress: bool = True


class Search(Protocol):
    def run(self) -> SearchResult: ...


SEARCHES: Registry[Callable[[SearchContext], Search]] = Registry("search kind")
"""``blackbox`` and ``differentiable`` (a strategy class's ``search``) -> the implementation."""


def make_search(ctx: SearchContext) -> Search:
    return SEARCHES[ctx.recipe.search_kind](ctx)


class DifferentiableJob:
    """A supernet trained with the strategy's mode and the recipe's latency loss
    (:mod:`hwnas.supernet.search`), resumed from the run directory's checkpoint."""

    def __init__(self, ctx: SearchContext) -> None:
        if any(t.budget_ms is None for t in ctx.targets):
            raise HwnasError("a differentiable search needs a budget for every device")
        self.ctx = ctx

    def run(self) -> SearchResult:
        from hwnas.data.datasets import load
        from hwnas.supernet.search import SearchConfig, make_search

        r, space = self.ctx.recipe, self.ctx.space
        data = load(r.data, r.data_dir, resolution=space.input_shape()[1], seed=r.seed)
        if data.num_classes != getattr(space, "num_classes", data.num_classes):
            raise HwnasError(f"the data has {data.num_classes} classes but the space is built for "
                             f"{space.num_classes}; pass --num-classes {data.num_classes} (and a table for it)")
        margin = max(r.margin_for(t.model, t.budget_ms, "derive_margin") for t in self.ctx.targets)
        cfg = SearchConfig.of(r, warmup_epochs=r.warmup, derive_margin=margin)
        if r.nproc > 1:
            from hwnas.supernet.worker import train_distributed

            train_distributed(r.nproc, self.ctx.run_dir, space, self.ctx.targets,
                              {"name": r.data, "data_dir": r.data_dir, "seed": r.seed}, cfg, progress=self.ctx.progress)
        search = make_search(space, self.ctx.targets, data, cfg, self.ctx.run_dir,
                             progress=self.ctx.progress)
        out = search.run()
        common = {"space", "preset", "strategy", "arch", "devices", "meets_all_budgets"}
        return SearchResult(space.recipe(), r.strategy, out["arch"], out["devices"],
                            {"name": r.data, "data_dir": r.data_dir}, {k: v for k, v in out.items() if k not in common})


def _blackbox(ctx: SearchContext) -> Search:
    from hwnas.job.blackbox import BlackBoxSearch

    return BlackBoxSearch(ctx)


SEARCHES.register("blackbox", _blackbox)
SEARCHES.register("differentiable", DifferentiableJob)
