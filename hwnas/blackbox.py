"""The black-box half of a search run: random, evolution, reinforce, pareto.

Puts a space, each target device's predictor (a latency objective with its budget), an
accuracy evaluator and a reward into :func:`hwnas.strategies.run`; writes the trials
table and the Pareto front (CSV and PNG) to the run directory, which also holds the
resumable search state.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError
from hwnas.spaces.base import SearchSpace

BLACKBOX = ("random", "evolution", "reinforce", "pareto")


def accuracy_evaluator(spec: str | None, space: SearchSpace, o: dict[str, Any]) -> tuple[Any, str]:
    """``table:DATASET`` (nb201), ``supernet:RUN_DIR`` or ``train[:EPOCHS]``."""
    if spec is None:
        spec = "table:cifar10" if space.name == "nb201" else "train:1"
    kind, _, arg = spec.partition(":")
    if kind == "table":
        from hwnas.evaluators.tabular import nb201_accuracy

        return nb201_accuracy(space, arg or "cifar10"), spec
    from hwnas.data.datasets import load

    data = load(o["data"], o["data_dir"], resolution=space.input_shape()[1], seed=o["seed"])
    if kind == "supernet":
        from hwnas.evaluators.supernet import SupernetAccuracy

        if not arg:
            raise HwnasError("say which supernet: --accuracy supernet:RUN_DIR (a differentiable search's run)")
        return SupernetAccuracy(arg, space, data), spec
    if kind == "train":
        from hwnas.evaluators.training import TrainingAccuracy

        try:
            epochs = int(arg or 1)
        except ValueError:
            raise HwnasError(f"--accuracy train:EPOCHS wants a whole number of epochs, not {arg!r}") from None
        return TrainingAccuracy(data, epochs=epochs, batch_size=o["batch_size"], seed=o["seed"]), spec
    raise HwnasError(f"unknown accuracy evaluator {spec!r}; use table:DATASET, supernet:RUN_DIR or train:EPOCHS")


def run_blackbox(o: dict[str, Any], space: SearchSpace, devices: list[tuple[str, Any, float | None]],
                 run_dir: Path, progress: bool, measure: Any = None) -> dict[str, Any]:
    """``devices``: (name, predictor, budget or None) for every target; all budgets must be met.

    With ``o["finalists"]`` (K) the answer is the best candidate that meets every budget when
    ``measure(arch) -> {device: ms}`` measures it, trying at most K, best first.
    """
    from hwnas.predictors.base import screen_margin
    from hwnas.strategies import LatencyObjective, Problem, get_reward, get_strategy, run
    from hwnas.strategies.finalists import measure_finalists
    from hwnas.strategies.pareto import hypervolume_2d

    reward_name = o["reward"] or ("pareto" if o["strategy"] == "pareto" else "hard")
    if reward_name == "pareto" and o["strategy"] != "pareto":
        raise HwnasError("the pareto reward needs --strategy pareto; use --reward hard or mnas with "
                         f"{o['strategy']}")
    reward = get_reward(reward_name, **({"w": o["mnas_w"]} if reward_name == "mnas" else {}))
    accuracy, acc_spec = accuracy_evaluator(o["accuracy"], space, o)
    finalists = int(o.get("finalists") or 0)
    if finalists and measure is None:
        raise HwnasError("--finalists measures candidates on the device: name it with --device")
    margins = {n: screen_margin(o.get("screen_margin"), p) if b is not None else 0.0 for n, p, b in devices}
    problem = Problem([LatencyObjective(n, p.predict, b, margin=margins[n]) for n, p, b in devices], accuracy, reward)
    params = {"population": o["population"]} if o["strategy"] in ("evolution", "pareto") and o["population"] else {}
    strategy = get_strategy(o["strategy"], space, seed=o["seed"], **params)
    meta = {"problem": {**problem.describe(), "accuracy": acc_spec}}
    strategy, log = run(strategy, problem, o["queries"], batch=o["batch"], state_file=run_dir / "state.json",
                        progress=progress, meta=meta)
    best = log.best()
    if best is None:
        raise HwnasError(f"no candidate met the budget in {log.proposals} proposals; raise the budget "
                         "(the smallest predicted latency is printed by 'hwnas search' when none can)")
    measured: list[Any] = []
    if finalists:
        best, measured = measure_finalists(log, problem.budgets, measure, finalists)
        if best is None:
            raise HwnasError(f"none of the {len(measured)} best candidates meets the budget when measured "
                             f"({'; '.join(f'{f.trial.arch}: {f.measured_ms}' for f in measured[:3])} ...); "
                             "measure more (--finalists), lower --screen-margin or raise the budget")
    front = log.front()
    _write_trials(run_dir / "trials.csv", log.trials)
    hv = None
    first, _, budget = devices[0]
    if front:
        ref = budget if budget is not None else max(max(t.latency_ms.values()) for t in log.evaluated())
        hv = hypervolume_2d([(t.latency_ms[first], t.accuracy or 0.0) for t in front], ref)
        _write_trials(run_dir / "front.csv", front)
        plot_front(run_dir / "front.png", log, front, first, budget, space)
    got = measured[-1].measured_ms if measured else {}
    out_devices = [{"device": n, "budget_ms": b, "predicted_ms": best.latency_ms[n],
                    "meets_budget": b is None or got.get(n, best.latency_ms[n]) <= b,
                    **({"finalist_measured_ms": got[n]} if n in got else {})} for n, _, b in devices]
    return {"space": space.name, "preset": space.preset, "strategy": o["strategy"], "arch": str(best.arch),
            "accuracy": best.accuracy, "accuracy_evaluator": acc_spec, "reward": reward_name,
            "reward_value": best.reward, "queries": log.queries, "proposals": log.proposals,
            "exhausted": log.exhausted, "devices": out_devices,
            "meets_all_budgets": all(d["meets_budget"] for d in out_devices),
            "front": [t.to_json() for t in front], "hypervolume": hv, "curve": log.curve(),
            "screen_margin": margins, "finalists": [f.to_json() for f in measured]}


def _write_trials(path: Path, trials: list) -> None:
    devices = sorted({k for t in trials for k in t.latency_ms})
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "accuracy", "reward", "feasible", "cached"] + [f"{d}_latency_ms" for d in devices])
        for t in trials:
            w.writerow([str(t.arch), "" if t.accuracy is None else f"{t.accuracy:.6f}",
                        "" if t.reward is None else f"{t.reward:.6f}", int(t.feasible), int(t.cached)]
                       + [f"{t.latency_ms.get(d, float('nan')):.6f}" for d in devices])


def plot_front(path: Path, log: Any, front: list, device: str, budget: float | None, space: SearchSpace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
