"""The one-call search loop over any ask/tell strategy, with resume.

A query is one accuracy evaluation of a new architecture. Candidates a hard budget
rejects, and architectures proposed again (served from the cache), are told to the
strategy but do not count as queries. With ``state_file`` the strategy state and every
trial are written atomically after each tell, and a later call with the same file
continues where the last one stopped. Saving waits at least ``save_every_s`` between
writes (cheap tabular evaluations would otherwise spend their time writing), and always
happens when the loop ends or is interrupted.

With a ``schedule`` (:mod:`hwnas.strategies.schedules`: successive halving, Hyperband,
ASHA) candidates are scored at lower fidelities first and only the best go on; without one
every candidate gets the full evaluation. A strategy that watches training runs (``bohb``:
``monitor(arch)``) gets a monitor per candidate when the evaluator trains; an evaluator that
inherits weights (``inherits``) gets each candidate's parent from a strategy that mutates
(``parent_of(arch)``).

When the accuracy is evaluated elsewhere (an :class:`~hwnas.strategies.asynchronous.AsyncEvaluator`:
Ray workers), a strategy that is ``asynchronous`` is driven by
:func:`hwnas.strategies.asynchronous.drive` (every worker busy, each result told as it comes
back); any other, and every schedule, sends its batches through the same evaluator.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from hwnas.errors import HwnasError
from hwnas.files import interpreting, read_json, require, write_json
from hwnas.spaces.base import Arch
from hwnas.strategies.asynchronous import AsyncEvaluator, drive
from hwnas.strategies.base import Strategy, Trial, strategy_from_state
from hwnas.strategies.pareto import pareto_front
from hwnas.strategies.problem import Problem
from hwnas.strategies.schedules import Schedule

STATE_FORMAT = "hwnas.blackbox_state"


@dataclass
class SearchLog:
    """Every trial in the order it was told (rejected ones included) and the query count."""

    trials: list[Trial] = field(default_factory=list)
    queries: int = 0
    proposals: int = 0
    exhausted: bool = False
    #: evaluation work spent, in full evaluations (a lower rung or a stopped run counts its fraction)
    work: float = 0.0
    #: architectures asked for and out for evaluation, not yet told (an asynchronous search's)
    pending: list[Arch] = field(default_factory=list)

    def evaluated(self) -> list[Trial]:
        return [t for t in self.trials if t.accuracy is not None]

    def best(self) -> Trial | None:
        """The highest-reward feasible trial evaluated at full fidelity (else the highest-reward
        feasible one, else the highest-reward one)."""
        done = [t for t in self.evaluated() if t.reward is not None]
        feasible = [t for t in done if t.feasible]
        pool = [t for t in feasible if t.fidelity >= 1] or feasible or done
        return max(pool, key=lambda t: t.score()) if pool else None

    def front(self) -> list[Trial]:
        return pareto_front(self.trials)

    def curve(self) -> list[float]:
        """Best feasible full-fidelity accuracy after each query (NaN before the first one)."""
        out, best = [], -math.inf
        for t in self.trials:
            if t.accuracy is None or t.cached:
                continue
            if t.feasible and t.fidelity >= 1:
                best = max(best, t.accuracy)
            out.append(best if best > -math.inf else math.nan)
        return out


def _save(path: Path, strategy: Strategy, log: SearchLog, meta: dict[str, Any],
          schedule: Schedule | None = None) -> None:
    write_json(path, {"format": STATE_FORMAT, "meta": meta, "strategy": strategy.state(),
                      "queries": log.queries, "proposals": log.proposals, "work": log.work,
                      "trials": [t.to_json() for t in log.trials], "pending": [str(a) for a in log.pending],
                      "schedule": None if schedule is None else schedule.state()})


def load_state(path: Path, space: Any) -> tuple[Strategy, SearchLog, dict[str, Any]]:
    data = read_json(path, "search state", "delete it to start over")
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        raise HwnasError(f"{path} is not an hwnas black-box search state")
    what = "search state"
    require(data, path, what, {"strategy": dict, "queries": int, "proposals": int, "trials": list})
    with interpreting(path, what):
        strategy = strategy_from_state(space, data["strategy"])
        log = SearchLog(queries=int(data["queries"]), proposals=int(data["proposals"]),
                        work=float(data.get("work", 0.0)))
        log.trials = [Trial.from_json(space, d) for d in data["trials"]]
        log.pending = [space.parse(a) for a in data.get("pending", [])]
    return strategy, log, {**data.get("meta", {}), "schedule_state": data.get("schedule")}


class Session:
    """One search as a schedule drives it: ask, evaluate (with the cache of past trials and the
    query count), tell, and save."""

    def __init__(self, strategy: Strategy, problem: Problem, log: SearchLog, queries: int, batch: int,
                 save: Callable[[bool], None], on_tell: Callable[[list[Trial]], None] | None, bar: Any,
                 stop_at: int | None = None) -> None:
        self.strategy, self.problem, self.log, self.queries, self.batch = strategy, problem, log, queries, batch
        self.stop_at = stop_at
        self.cache = {t.arch.indices(): t for t in log.trials}
        self._save, self.on_tell, self.bar = save, on_tell, bar
        self.watch = getattr(strategy, "monitor", None) if hasattr(problem.accuracy, "evaluate_at") else None
        self.parent_of = getattr(strategy, "parent_of", None) if getattr(problem.accuracy, "inherits", False) else None

    def remaining(self) -> int:
        return self.queries - self.log.queries

    def should_stop(self) -> bool:
        """Whether this call's time box (``stop_after`` queries) is spent: a schedule pauses
        there, its state saved, and a later call resumes it."""
        return self.stop_at is not None and self.log.queries >= self.stop_at

    def ask(self, n: int) -> list[Arch]:
        archs = self.strategy.ask(n) if n > 0 else []
        self.log.proposals += len(archs)
        return archs

    def evaluate(self, archs: Sequence[Arch], fraction: float = 1.0,
                 before: dict[str, Trial] | None = None) -> list[Trial]:
        """Trials for ``archs`` at ``fraction`` of the full evaluation, in order. New ones are
        evaluated (their first evaluation is a query); one in ``before`` (by arch string) is
        evaluated again at the higher fidelity, its costs added up; others come from the cache.
        A schedule passes ``before`` (even empty): each trial's cost then lists its rungs."""
        scheduled = before is not None
        before = before or {}
        todo: list[Arch] = []
        keys: set[tuple[int, ...]] = set()
        for a in archs:
            if (a.indices() not in self.cache or str(a) in before) and a.indices() not in keys:
                todo.append(a)
                keys.add(a.indices())
        hints: dict[tuple[int, ...], dict[str, Any]] = {a.indices(): {} for a in todo}
        for a in todo:
            if self.watch is not None and fraction >= 1:
                hints[a.indices()]["monitor"] = self.watch(a)
            if self.parent_of is not None and str(a) not in before:
                hints[a.indices()]["parent"] = self.parent_of(a)
        done = {t.arch.indices(): t for t in self.problem.evaluate(todo, fraction, hints)}
        if (status := getattr(self.problem.accuracy, "status", None)) is not None:
            self.bar.set_postfix(status(), refresh=False)  # workers: running, finished, failed
        out, fresh = [], set()
        for a in archs:
            key = a.indices()
            if key in done and key not in fresh:
                self.log.work += float(done[key].cost.get("work", 0.0))
                t = _merged(before.get(str(a)), done[key]) if scheduled else done[key]
                if str(a) not in before and t.accuracy is not None:
                    self.log.queries += 1
                    self.bar.update(1)
                self.cache[key] = t
                fresh.add(key)
                out.append(t)
            else:
                out.append(self.cache[key].copy_cached())
        return out

    def current(self, name: str) -> Trial:
        """The search's latest trial of an architecture (by string) already told."""
        return next(t for t in reversed(self.log.trials) if str(t.arch) == name and not t.cached)

    def tell(self, trials: list[Trial]) -> None:
        self.strategy.tell(trials)
        self.log.trials.extend(trials)
        if self.on_tell is not None:
            self.on_tell(trials)

    def replace(self, trial: Trial) -> None:
        """A told architecture scored again (a promotion): the search's record of it, not the
        strategy's, becomes the new trial."""
        i = max(j for j, t in enumerate(self.log.trials) if t.arch.indices() == trial.arch.indices()
                and not t.cached)
        self.log.trials[i] = trial

    def checkpoint(self, force: bool = False) -> None:
        self._save(force)


def _merged(before: Trial | None, now: Trial) -> Trial:
    """``now`` with the costs of the lower rungs ``before`` it added, and the rungs' history."""
    cost = dict(now.cost)
    rungs: list[list[float]] = []
    if before is not None:
        rungs = list(before.cost.get("rungs") or [])
        for k in ("seconds", "epochs", "work"):
            if k in before.cost or k in cost:
                cost[k] = before.cost.get(k, 0) + cost.get(k, 0)
    if now.accuracy is not None:
        cost["rungs"] = rungs + [[now.fidelity, now.accuracy]]
    now.cost = cost
    return now


def run(strategy: Strategy, problem: Problem, queries: int, *, batch: int = 1, state_file: str | Path | None = None,
        stop_after: int | None = None, max_proposals: int | None = None, progress: bool = False,
        meta: dict[str, Any] | None = None, on_tell: Callable[[list[Trial]], None] | None = None,
        save_every_s: float = 1.0, schedule: Schedule | None = None,
        max_work: float | None = None) -> tuple[Strategy, SearchLog]:
    """Ask, evaluate and tell until ``queries`` accuracy evaluations are spent.

    Resumes from ``state_file`` when it exists (the strategy passed in is then replaced by
    the saved one). ``stop_after`` ends after that many queries of this call (tests, time
    boxes); ``max_proposals`` (default 50 × queries) bounds proposals when a hard budget
    rejects nearly everything. With a ``schedule``, work it started (a bracket, promotions)
    is finished after the last query. ``max_work`` also ends the search (no new candidates)
    once that many full evaluations' work is spent: searches with and without a schedule or
    early stopping compared at equal cost.
    """
    if queries < 1:
        raise HwnasError("the query budget must be at least 1")
    if batch < 1:
        raise HwnasError("the batch (architectures asked per step) must be at least 1")
    log = SearchLog()
    path = Path(state_file) if state_file else None
    meta = {**(meta or {}), "problem": (meta or {}).get("problem")}
    if schedule is not None:
        meta["schedule"] = schedule.describe()
    if path is not None and path.exists():
        strategy, log, saved_meta = load_state(path, strategy.space)
        if saved_meta.get("problem") != meta["problem"]:
            raise HwnasError(f"{path} holds a search with other objectives ({saved_meta.get('problem')}); "
                             "use another run directory or delete the state file")
        if saved_meta.get("schedule") != meta.get("schedule"):
            raise HwnasError(f"{path} holds a search with another evaluation schedule "
                             f"({saved_meta.get('schedule')}); resume with the same --schedule/--eta/--min-fidelity")
        if schedule is not None and saved_meta.get("schedule_state"):
            schedule.load(saved_meta["schedule_state"], strategy.space)
    problem.observe(log.trials)
    limit = max_proposals if max_proposals is not None else 50 * queries
    start = log.queries
    last_save = [time.monotonic()]

    def save(force: bool) -> None:
        if path is not None and (force or time.monotonic() - last_save[0] >= save_every_s):
            _save(path, session.strategy, log, meta, schedule)
            last_save[0] = time.monotonic()

    bar = tqdm(total=queries, initial=log.queries, desc=f"{strategy.name} search", unit="query",
               disable=not progress, leave=False)
    session = Session(strategy, problem, log, queries, batch, save, on_tell, bar,
                      None if stop_after is None else start + stop_after)
    pool = problem.accuracy if isinstance(problem.accuracy, AsyncEvaluator) else None
    try:
        if pool is not None and schedule is None and session.strategy.asynchronous:
            drive(session, pool, queries, limit, max_work)
        else:
            _synchronous(session, schedule, queries, limit, max_work, start, stop_after)
    finally:
        bar.close()
        if path is not None:
            _save(path, session.strategy, log, meta, schedule)
    return session.strategy, log


def _synchronous(session: Session, schedule: Schedule | None, queries: int, limit: int, max_work: float | None,
                 start: int, stop_after: int | None) -> None:
    """Ask a batch, evaluate it, tell it (or let the schedule step) until the budget is spent.
    Architectures an asynchronous run left out for evaluation are evaluated first."""
    log, batch = session.log, session.batch
    if log.pending:
        session.tell(session.evaluate(log.pending))
        log.pending = []
        session.checkpoint(True)
    while stop_after is None or log.queries - start < stop_after:
        busy = schedule is not None and schedule.busy()
        if (log.queries >= queries or (max_work is not None and log.work >= max_work)) and not busy:
            break
        if log.proposals >= limit and not busy:
            log.exhausted = True
            break
        if schedule is not None:
            if not schedule.step(session):
                log.exhausted = log.queries < queries
                break
            continue
        archs = session.ask(min(batch, queries - log.queries))
        if not archs:
            log.exhausted = True
            break
        session.tell(session.evaluate(archs))
        session.checkpoint()
