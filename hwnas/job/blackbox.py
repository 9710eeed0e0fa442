"""The black-box search: any ask/tell strategy (random, evolution, reinforce, pareto, or one
a plugin registers).

Puts the space, the targets (each device's latency model, budget and screen margin), an
accuracy evaluator and the reward into :func:`hwnas.strategies.run`; writes the trials
table and the Pareto front (CSV and PNG) to the run directory, which also holds the
resumable search state.
"""

from __future__ import annotations

import contextlib
import csv
import sys
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError
from hwnas.job.recipe import SearchRecipe
from hwnas.job.search import SearchContext, SearchResult, device_rows
from hwnas.spaces.base import SearchSpace
from hwnas.target import Target


def accuracy_evaluator(recipe: SearchRecipe, space: SearchSpace, run_dir: Path | None = None) -> tuple[Any, str]:
    """``table:DATASET`` (nb201), ``supernet:RUN_DIR``, ``hypernet:RUN_DIR`` (nb201) or ``train[:EPOCHS]``."""
    spec = recipe.accuracy
    if spec is None:
        spec = "table:cifar10" if space.name == "nb201" else "train:1"
    kind, _, arg = spec.partition(":")
    if recipe.early_stop is not None and kind != "train":
        raise HwnasError(f"--early-stop stops training runs by their learning curves: it needs --accuracy "
                         f"train:EPOCHS, not {spec}")
    if recipe.inherit and kind != "train":
        raise HwnasError(f"--inherit fine-tunes inherited weights instead of training from scratch: it needs "
                         f"--accuracy train:EPOCHS, not {spec}")
    if (recipe.schedule is not None or recipe.strategy == "bohb") and kind != "train":
        what = f"--schedule {recipe.schedule}" if recipe.schedule else "bohb"
        raise HwnasError(f"{what} scores candidates at lower fidelities of a training run: it needs --accuracy "
                         f"train:EPOCHS, not {spec}")
    if kind == "table":
        from hwnas.evaluators.tabular import nb201_accuracy

        return nb201_accuracy(space, arg or "cifar10"), spec
    from hwnas.data.datasets import load

    data = load(recipe.data, recipe.data_dir, resolution=space.input_shape()[1], seed=recipe.seed)
    if kind == "supernet":
        from hwnas.evaluators.supernet import SupernetAccuracy

        if not arg:
            raise HwnasError("say which supernet: --accuracy supernet:RUN_DIR (a differentiable search's run)")
        return SupernetAccuracy(arg, space, data), spec
    if kind == "hypernet":
        from hwnas.evaluators.hypernet import HypernetAccuracy

        if not arg:
            raise HwnasError("say which hypernetwork: --accuracy hypernet:RUN_DIR (from 'hwnas hypernet train')")
        return HypernetAccuracy(arg, space, data), spec
    if kind == "train":
        from hwnas.evaluators.training import TrainingAccuracy

        try:
            epochs = int(arg or 1)
        except ValueError:
            raise HwnasError(f"--accuracy train:EPOCHS wants a whole number of epochs, not {arg!r}") from None
        if recipe.schedule is not None and recipe.fidelity == "epochs":
            _distinct_epochs(recipe, epochs)
        store = None
        if recipe.inherit:
            from hwnas.evaluators.inherit import CheckpointStore

            if run_dir is None:
                raise HwnasError("--inherit keeps trained weights in the run directory: give one (-o RUN_DIR)")
            store = CheckpointStore(run_dir / "checkpoints", capacity=recipe.population or 20)
        return TrainingAccuracy(data, epochs=epochs, batch_size=recipe.batch_size, seed=recipe.seed,
                                early_stop=recipe.early_stop, fidelity=recipe.fidelity, inherit=store,
                                inherit_epochs=recipe.inherit_epochs), spec
    raise HwnasError(f"unknown accuracy evaluator {spec!r}; use table:DATASET, supernet:RUN_DIR, hypernet:RUN_DIR or "
                     "train:EPOCHS")


def _distinct_epochs(recipe: SearchRecipe, epochs: int) -> None:
    """Refuse rungs that would train the same number of epochs (a schedule that gains nothing)."""
    from hwnas.strategies.schedules import rung_fractions

    rungs = rung_fractions(recipe.eta, recipe.lowest_fidelity)
    counts = [max(1, int(round(f * epochs))) for f in rungs]
    if len(set(counts)) < len(counts):
        raise HwnasError(f"with train:{epochs} the rungs {', '.join(f'{f:.3g}' for f in rungs)} train "
                         f"{', '.join(map(str, counts))} epochs: some alike; train more epochs, raise --min-fidelity "
                         "or use --fidelity data")


def schedule_and_params(recipe: SearchRecipe, epochs: int | None) -> tuple[Any, dict[str, Any]]:
    """The recipe's evaluation schedule (or None) and what bohb's pruner needs from it."""
    from hwnas.strategies.schedules import get_schedule

    schedule = get_schedule(recipe.schedule, recipe.eta, recipe.lowest_fidelity) if recipe.schedule else None
    low = max(1, int(round(recipe.lowest_fidelity * epochs))) if epochs else None
    return schedule, {"eta": recipe.eta, "min_resource": low}


class BlackBoxSearch:
    """The strategy asks, the problem (targets, accuracy evaluator, reward) scores, the loop
    saves its state after every step. With ``finalists`` (K) the answer is the best candidate
    that meets every budget when measured on the devices, trying at most K, best first."""

    def __init__(self, ctx: SearchContext) -> None:
        self.ctx = ctx

    def measure(self) -> Any:
        """``(arch -> {device: measured ms}, width)`` over the targets with a budget, or None when
        one of them has no device to measure on (a prediction-only target). ``width`` is how many
        architectures can be measured at once: the smallest pool's size (1 without pools)."""
        from hwnas.job.verify import measure_arch

        budgeted = [t for t in self.ctx.targets if t.budget_ms is not None]
        if not budgeted or any(not t.measurable for t in budgeted):
            return None
        space, log_dir = self.ctx.space, self.ctx.log_dir

        def measure(arch: Any) -> dict[str, float]:
            return {t.name: t.lender.run(lambda device, t=t: measure_arch(space, arch, t, log_dir, device))
                    for t in budgeted}

        return measure, min(t.lender.width for t in budgeted)

    def run(self) -> SearchResult:
        from hwnas.strategies import REWARDS, STRATEGIES, Problem, get_reward, get_strategy, run
        from hwnas.strategies.base import accepted
        from hwnas.strategies.finalists import measure_finalists
        from hwnas.strategies.pareto import hypervolume_2d

        r, space, targets, run_dir = self.ctx.recipe, self.ctx.space, self.ctx.targets, self.ctx.run_dir
        name = r.reward_name
        reward = get_reward(name, **accepted(REWARDS[name], w=r.mnas_w))
        accuracy, acc_spec = accuracy_evaluator(r, space, run_dir)
        measuring = self.measure() if r.finalists else None
        if r.finalists and measuring is None:
            raise HwnasError("--finalists measures candidates on the device: name it with --device")
        schedule, fidelity = schedule_and_params(r, getattr(accuracy, "epochs", None))
        pool = None
        if r.workers or r.ray_address:
            from hwnas.job.cluster import RayPool

            pool = RayPool(r, accuracy)
        problem = Problem(targets, accuracy if pool is None else pool, reward)
        params = accepted(STRATEGIES[r.strategy], population=r.population, queries=r.queries, **fidelity)
        strategy = get_strategy(r.strategy, space, seed=r.seed, **params)
        meta = {"problem": {**problem.describe(), "accuracy": acc_spec}}
        if schedule is not None:
            meta["problem"]["fidelity"] = r.fidelity
        batch = r.batch if pool is None or r.batch > 1 else pool.slots
        try:
            # Ray's driver prints its workers' failures to stdout, which holds only the answer
            with contextlib.redirect_stdout(sys.stderr) if pool is not None else contextlib.nullcontext():
                strategy, log = run(strategy, problem, r.queries, batch=batch, state_file=run_dir / "state.json",
                                    progress=self.ctx.progress, meta=meta, schedule=schedule)
        finally:
            workers = None if pool is None else pool.describe()
            if pool is not None:
                pool.close()
        best = log.best()
        if best is None:
            raise HwnasError(f"no candidate met the budget in {log.proposals} proposals; raise the budget "
                             "(the smallest predicted latency is printed by 'hwnas search' when none can)")
        measured: list[Any] = []
        if r.finalists:
            measure, width = measuring
            best, measured = measure_finalists(log, targets, measure, r.finalists, r.min_chance, width=width)
            if best is None:
                raise HwnasError(f"none of the {len(measured)} best candidates meets the budget when measured "
                                 f"({'; '.join(f'{f.trial.arch}: {f.measured_ms}' for f in measured[:3])} ...); "
                                 "measure more (--finalists), lower --screen-margin or raise the budget")
        front = log.front()
        _write_trials(run_dir / "trials.csv", log.trials)
        plot_cost(run_dir / "cost.png", log, acc_spec)
        hv = None
        first = targets[0]
        if front:
            ref = first.budget_ms if first.budget_ms is not None else max(
                max(t.latency_ms.values()) for t in log.evaluated())
            hv = hypervolume_2d([(t.latency_ms[first.name], t.accuracy or 0.0) for t in front], ref)
            _write_trials(run_dir / "front.csv", front)
            plot_front(run_dir / "front.png", log, front, first, space)
        details = {"accuracy": best.accuracy, "accuracy_evaluator": acc_spec, "reward": name,
                   "reward_value": best.reward, "queries": log.queries, "proposals": log.proposals,
                   "exhausted": log.exhausted, "front": [t.to_json() for t in front], "hypervolume": hv,
                   "curve": log.curve(), "evaluation_cost": evaluation_cost(log.trials), "screen_margin": {t.name: t.screen_margin for t in targets},
                   "finalists": [f.to_json() for f in measured],
                   "finalist_devices": {t.name: {"per_device": t.lender.per_device, "dropped": t.lender.dropped}
                                        for t in targets if measured and t.budget_ms is not None},
                   "schedule": None if schedule is None else {**schedule.describe(), "fidelity": r.fidelity},
                   "workers": workers}
        answer = next((f for f in measured if f.trial is best), None)
        rows = device_rows(targets, best.arch, answer.measured_ms if answer else None)
        return SearchResult(space.recipe(), r.strategy, str(best.arch), rows,
                            {"name": r.data, "data_dir": r.data_dir}, details)


def _write_trials(path: Path, trials: list) -> None:
    devices = sorted({k for t in trials for k in t.latency_ms})
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "accuracy", "reward", "feasible", "cached"] + [f"{d}_latency_ms" for d in devices]
                   + ["cost_seconds", "cost_epochs", "cost_work", "fidelity", "stopped_early"])
        for t in trials:
            w.writerow([str(t.arch), "" if t.accuracy is None else f"{t.accuracy:.6f}",
                        "" if t.reward is None else f"{t.reward:.6f}", int(t.feasible), int(t.cached)]
                       + [f"{t.latency_ms.get(d, float('nan')):.6f}" for d in devices]
                       + [f"{t.cost['seconds']:.3f}" if "seconds" in t.cost else "", t.cost.get("epochs", ""),
                          f"{t.cost['work']:.4g}" if "work" in t.cost else "", f"{t.fidelity:.4g}",
                          int(bool(t.cost.get("stopped", False)))])


def evaluation_cost(trials: list) -> dict[str, Any]:
    """What the accuracy evaluations cost in all: seconds, epochs (training), runs stopped early."""
    paid = [t.cost for t in trials if t.cost and not t.cached]
    out: dict[str, Any] = {"seconds": sum(c.get("seconds", 0.0) for c in paid), "evaluations": len(paid),
                           "full_evaluations": sum(c.get("work", 1.0) for c in paid)}
    if any("epochs" in c for c in paid):
        out["epochs"] = sum(c.get("epochs", 0) for c in paid)
        out["stopped_early"] = sum(1 for c in paid if c.get("stopped"))
        out["inherited"] = sum(1 for c in paid if c.get("inherited_from"))
    return out


def plot_cost(path: Path, log: Any, acc_spec: str) -> None:
    """The best feasible accuracy found against the evaluation cost spent (seconds)."""
    from hwnas.plots import pyplot, save

    spent, best, xs, ys = 0.0, None, [], []
    for t in log.trials:
        if not t.cost or t.cached:
            continue
        spent += t.cost.get("seconds", 0.0)
        if t.feasible and t.accuracy is not None and not t.cost.get("stopped") and t.fidelity >= 1:
            best = t.accuracy if best is None else max(best, t.accuracy)
        if best is not None:
            xs.append(spent)
            ys.append(100 * best)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.step(xs, ys, where="post")
    ax.set_xlabel("evaluation cost spent (s)")
    ax.set_ylabel(f"best accuracy found (%), {acc_spec}")
    save(fig, path)


def plot_front(path: Path, log: Any, front: list, target: Target, space: SearchSpace) -> None:
    from hwnas.plots import pyplot, save

    plt = pyplot()
    device, budget = target.name, target.budget_ms
    done = log.evaluated()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([t.latency_ms[device] for t in done], [100 * (t.accuracy or 0) for t in done], s=8, alpha=0.4,
               label="evaluated")
    ax.plot([t.latency_ms[device] for t in front], [100 * (t.accuracy or 0) for t in front], "o-", color="C3",
            ms=4, label="Pareto front")
    if budget is not None:
        ax.axvline(budget, color="k", ls="--", lw=0.8, label=f"budget {budget:.3g} ms")
    ax.set_xlabel(f"predicted latency on {device} (ms)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{space.name}/{space.preset}: accuracy vs latency")
    ax.legend(fontsize=8)
    save(fig, path)
