"""Asynchronous search: candidates are evaluated elsewhere (workers of a cluster), several at a
time, and each result is told to the strategy as soon as it is back.

The search itself (the strategy, the latency screen, the cache of past trials, the query
count and the saved state) stays in the driving process; only accuracy evaluations go out,
through an :class:`AsyncEvaluator`. A strategy that can propose while earlier proposals are
still being evaluated (``asynchronous = True``: random search, regularized evolution) keeps
every slot busy, as Real et al.'s asynchronous evolution does; any other is driven in
synchronous batches by :func:`hwnas.strategies.loop.run`, which evaluates a batch through the
same evaluator's ``evaluate_at``.

A query counts when its result is told, once. Architectures out for evaluation are saved
with the state (``pending``): a search whose driver was killed evaluates them again when it
resumes, before asking for new ones, so none is lost and none is proposed twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from hwnas.spaces.base import Arch
from hwnas.strategies.problem import Screened


@dataclass(frozen=True)
class Finished:
    """One accuracy evaluation back from a worker."""

    arch: Arch
    accuracy: float
    cost: dict[str, Any]


@runtime_checkable
class AsyncEvaluator(Protocol):
    """Accuracy evaluations out of process: ``submit`` one, ``wait`` for at least one result.
    ``slots`` is how many it evaluates at once; ``status()`` counts ``running``, ``finished``
    and ``failed`` (attempts lost with their worker and evaluated again)."""

    slots: int

    def submit(self, arch: Arch, fraction: float = 1.0) -> None: ...

    def wait(self) -> list[Finished]: ...

    def status(self) -> dict[str, int]: ...


def drive(session: Any, pool: AsyncEvaluator, queries: int, limit: int, max_work: float | None) -> None:
    """Keep ``pool.slots`` evaluations running until ``queries`` are told (or ``limit``
    proposals, ``max_work`` work, or the session's time box is spent), telling each result
    as it comes back. ``session`` is a :class:`hwnas.strategies.loop.Session`."""
    log, problem = session.log, session.problem
    flying: dict[tuple[int, ...], Screened] = {}
    waiting: dict[tuple[int, ...], int] = {}  # proposed again while out for evaluation

    def sync() -> None:
        log.pending = [s.arch for s in flying.values()]
        session.bar.set_postfix(pool.status(), refresh=False)

    def send(s: Screened) -> None:
        pool.submit(s.arch)
        flying[s.arch.indices()] = s

    for arch in log.pending:
        send(problem.screen([arch])[0])
    sync()

    def room() -> bool:
        told = log.queries + len(flying)
        return (told < queries and log.proposals < limit and not log.exhausted
                and (session.stop_at is None or told < session.stop_at)
                and (max_work is None or log.work < max_work))

    while True:
        while len(flying) < pool.slots and room():
            archs = session.ask(1)
            if not archs:
                log.exhausted = True
                break
            arch = archs[0]
            key = arch.indices()
            if key in flying:
                waiting[key] = waiting.get(key, 0) + 1
            elif key in session.cache:
                session.tell([session.cache[key].copy_cached()])
            else:
                s = problem.screen([arch])[0]
                if s.evaluate:
                    send(s)
                else:
                    rejected = problem.trial(s)
                    session.cache[key] = rejected
                    session.tell([rejected])
            sync()
            session.checkpoint()
        if not flying:
            break
        for done in pool.wait():
            key = done.arch.indices()
            trial = problem.trial(flying.pop(key), done.accuracy, done.cost)
            log.work += float(trial.cost.get("work", 0.0))
            if trial.accuracy is not None:
                log.queries += 1
                session.bar.update(1)
            session.cache[key] = trial
            session.tell([trial] + [trial.copy_cached() for _ in range(waiting.pop(key, 0))])
        sync()
        session.checkpoint()
    if log.proposals >= limit and log.queries < queries:
        log.exhausted = True


def refuse_hints(hints: Any) -> None:
    """Hints (a pruner's per-epoch monitor, a parent's weights on this disk) stay in the
    driving process: an evaluation sent elsewhere cannot take them."""
    if hints is not None and any(hints):
        from hwnas.errors import HwnasError

        raise HwnasError(f"evaluations on workers take no hints ({', '.join(sorted({k for h in hints if h for k in h}))}):"
                         " bohb's pruner and --inherit run in one process; drop --workers/--ray-address for them")


class Batches:
    """A synchronous batch through an :class:`AsyncEvaluator`'s ``submit``/``wait`` (for the
    strategies that are not asynchronous, and a schedule's rungs): every architecture sent,
    the results returned in the batch's order. Mixed into the pools."""

    def evaluate_at(self, archs: Any, fraction: float = 1.0, hints: Any = None) -> tuple[Any, list[dict[str, Any]]]:
        import numpy as np

        refuse_hints(hints)
        for a in archs:
            self.submit(a, fraction)  # type: ignore[attr-defined]
        done: dict[tuple[int, ...], Finished] = {}
        while len(done) < len({a.indices() for a in archs}):
            done.update((f.arch.indices(), f) for f in self.wait())  # type: ignore[attr-defined]
        return (np.array([done[a.indices()].accuracy for a in archs]),
                [dict(done[a.indices()].cost) for a in archs])

    def evaluate_with_cost(self, archs: Any) -> tuple[Any, list[dict[str, Any]]]:
        return self.evaluate_at(archs, 1.0)

    def evaluate(self, archs: Any) -> Any:
        return self.evaluate_at(archs, 1.0)[0]


class FuturesPool(Batches):
    """An :class:`AsyncEvaluator` on a :mod:`concurrent.futures` executor of this machine (a
    thread pool for evaluators that release the GIL or wait on devices): the asynchronous search
    without a cluster. Its evaluations run ``evaluator`` itself, so it must be safe to call
    from several threads at once (the tabular and predictor evaluators are)."""

    def __init__(self, evaluator: Any, slots: int, executor: Any = None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        if slots < 1:
            raise ValueError(f"a pool needs at least 1 slot, not {slots}")
        self.evaluator, self.slots = evaluator, slots
        self.executor = executor if executor is not None else ThreadPoolExecutor(slots)
        self.futures: dict[Any, Arch] = {}
        self.finished = 0

    def submit(self, arch: Arch, fraction: float = 1.0) -> None:
        from hwnas.strategies.problem import evaluate_with_cost

        self.futures[self.executor.submit(evaluate_with_cost, self.evaluator, [arch], fraction)] = arch

    def wait(self) -> list[Finished]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
        out = []
        for f in done:
            arch = self.futures.pop(f)
            acc, costs = f.result()
            out.append(Finished(arch, float(acc[0]), costs[0]))
            self.finished += 1
        return out

    def status(self) -> dict[str, int]:
        return {"running": len(self.futures), "finished": self.finished, "failed": 0}
