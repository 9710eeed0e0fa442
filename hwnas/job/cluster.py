"""Candidate evaluation on a Ray cluster: ``hwnas search --workers N`` (a local Ray instance
with N workers) or ``--ray-address ADDRESS`` (a cluster someone started with ``ray start``).

Only accuracy evaluations go to the workers, as Ray tasks; the search (strategy, latency
screen, cache, query count, saved state) stays on the driver
(:mod:`hwnas.strategies.asynchronous`). A task takes plain values: the run's recipe as JSON
(from which the worker builds, once per process, the same space and accuracy evaluator the
driver would), an architecture string and a fidelity, and it returns a number and a dict of
costs. Each task declares the CPUs it uses (torch gets as many threads) and a GPU when the
evaluator trains and the cluster has GPUs.

A task whose worker or node died is submitted again (up to ``retries`` times) and counted as
failed in the progress line; it is told once, when a result comes back. An evaluation that
raises an error stops the search with that error (the state is saved; fix and rerun).
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

from hwnas.errors import HwnasError
from hwnas.job.recipe import SearchRecipe
from hwnas.spaces.base import Arch
from hwnas.strategies.asynchronous import Batches, Finished

RAY_MISSING = ("--workers and --ray-address evaluate candidates on Ray, which is not installed here: "
               "pip install 'hwnas[ray]' (or drop the flags to search in this process)")

_BUILT: dict[str, tuple[Any, Any]] = {}
"""Per worker process: (space, accuracy evaluator) by the spec that built them."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HwnasError(RAY_MISSING) from None
    return ray


def evaluate_task(spec: str, arch: str, fraction: float, best: float | None, threads: int) -> tuple[float, dict]:
    """What a Ray task runs on a worker: the accuracy of ``arch`` at ``fraction`` under the
    recipe in ``spec``, and its cost (with the worker that paid it)."""
    import torch

    from hwnas.job.blackbox import accuracy_evaluator
    from hwnas.spaces import get_space
    from hwnas.strategies.problem import evaluate_with_cost

    if spec not in _BUILT:
        recipe = SearchRecipe.parse(None, json.loads(spec))
        space = get_space(recipe.space, recipe.preset, **recipe.space_overrides())
        _BUILT[spec] = (space, accuracy_evaluator(recipe, space)[0])
    space, evaluator = _BUILT[spec]
    torch.set_num_threads(threads)
    if best is not None and hasattr(evaluator, "best"):
        evaluator.best = best if evaluator.best is None else max(best, evaluator.best)
    acc, costs = evaluate_with_cost(evaluator, [space.parse(arch)], fraction)
    import ray

    node = ray.get_runtime_context().get_node_id()[:8]
    return float(acc[0]), {**costs[0], "worker": f"{node}:{os.getpid()}"}


def _check_reachable(address: str) -> None:
    """Refuse at once a ``host:port`` nothing listens on (Ray would retry for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as e:
        raise HwnasError(f"no Ray cluster answers at {address} ({e.strerror or e}); start one with 'ray start --head "
                         "--port PORT' and give its host:PORT, or use --workers N for a local one") from None


class RayPool(Batches):
    """An :class:`~hwnas.strategies.asynchronous.AsyncEvaluator` on Ray tasks, and (through
    :class:`~hwnas.strategies.asynchronous.Batches`) a batch evaluator for strategies that are
    not asynchronous."""

    def __init__(self, recipe: SearchRecipe, local: Any, cpus_per_task: int = 1, retries: int = 3) -> None:
        ray = import_ray()
        self.ray, self.local, self.retries = ray, local, retries
        self.spec = json.dumps({**recipe.to_json(), "workers": None, "ray_address": None}, sort_keys=True)
        if not ray.is_initialized():
            if recipe.ray_address:
                _check_reachable(recipe.ray_address)
                try:
                    ray.init(address=recipe.ray_address, log_to_driver=False, configure_logging=False)
                except (ConnectionError, RuntimeError) as e:
                    raise HwnasError(f"no Ray cluster answers at {recipe.ray_address} ({e}); start one with "
                                     "'ray start --head' and give the address it prints, or use --workers N") from None
            else:
                ray.init(num_cpus=(recipe.workers or 1) * cpus_per_task, include_dashboard=False,
                         log_to_driver=False, configure_logging=False, object_store_memory=100 * 2**20)
        total = ray.cluster_resources()
        gpus = 1 if getattr(local, "wants_gpu", False) and total.get("GPU", 0) >= 1 else 0
        capacity = int(total.get("GPU", 0)) if gpus else int(total.get("CPU", 0) // cpus_per_task)
        if capacity < 1:
            raise HwnasError(f"the Ray cluster has no room for one evaluation ({cpus_per_task} CPU each): it has "
                             f"{total.get('CPU', 0)} CPUs; start workers with more (ray start --num-cpus N)")
        self.slots = min(capacity, recipe.workers) if recipe.workers else capacity
        self.threads = cpus_per_task
        self.remote = ray.remote(evaluate_task).options(num_cpus=cpus_per_task, num_gpus=gpus, max_retries=0)
        self.refs: dict[Any, tuple[Arch, float, int]] = {}
        self.finished = self.failed = 0
        self.best: float | None = getattr(local, "best", None)

    # -- asynchronous ---------------------------------------------------------------
    def submit(self, arch: Arch, fraction: float = 1.0, attempt: int = 0) -> None:
        ref = self.remote.remote(self.spec, str(arch), float(fraction), self.best, self.threads)
        self.refs[ref] = (arch, fraction, attempt)

    def wait(self) -> list[Finished]:
        """At least one result (every one that is ready); lost tasks go out again."""
        out: list[Finished] = []
        while not out and self.refs:
            ready, rest = self.ray.wait(list(self.refs), num_returns=1)
            if rest:
                ready += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            for ref in ready:
                arch, fraction, attempt = self.refs.pop(ref)
                try:
                    acc, cost = self.ray.get(ref)
                except self.ray.exceptions.RayTaskError as e:
                    raise HwnasError(f"evaluating {arch} on a Ray worker failed: {e.cause or e}") from None
                except self.ray.exceptions.RayError as e:
                    self.failed += 1
                    if attempt >= self.retries:
                        raise HwnasError(f"evaluating {arch} lost its Ray worker {attempt + 1} times (last: "
                                         f"{type(e).__name__}); check the cluster ('ray status') and rerun the "
                                         "same command to resume") from None
                    self.submit(arch, fraction, attempt + 1)
                    continue
                self.finished += 1
                if float(cost.get("fidelity", 1.0)) >= 1 and not cost.get("stopped"):
                    self.best = acc if self.best is None else max(self.best, acc)
                out.append(Finished(arch, acc, cost))
        return out

    def status(self) -> dict[str, int]:
        return {"running": len(self.refs), "finished": self.finished, "failed": self.failed}

    def observe(self, trials: Sequence[Any]) -> None:
        observe = getattr(self.local, "observe", None)
        if observe is not None:
            observe(trials)
            self.best = getattr(self.local, "best", self.best)

    def describe(self) -> dict[str, Any]:
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        return {"slots": self.slots, "nodes": len(nodes), "cpus_per_task": self.threads, **self.status()}

    def close(self) -> None:
        self.ray.shutdown()
