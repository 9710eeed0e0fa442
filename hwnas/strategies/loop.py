"""The one-call search loop over any ask/tell strategy, with resume.

A query is one accuracy evaluation of a new architecture. Candidates a hard budget
rejects, and architectures proposed again (served from the cache), are told to the
strategy but do not count as queries. With ``state_file`` the strategy state and every
trial are written atomically after each tell, and a later call with the same file
continues where the last one stopped. Saving waits at least ``save_every_s`` between
writes (cheap tabular evaluations would otherwise spend their time writing), and always
happens when the loop ends or is interrupted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from hwnas.errors import HwnasError
from hwnas.files import interpreting, read_json, require, write_json
from hwnas.strategies.base import Strategy, Trial, strategy_from_state
from hwnas.strategies.pareto import pareto_front
from hwnas.strategies.problem import Problem

STATE_FORMAT = "hwnas.blackbox_state"


@dataclass
class SearchLog:
    """Every trial in the order it was told (rejected ones included) and the query count."""

    trials: list[Trial] = field(default_factory=list)
    queries: int = 0
    proposals: int = 0
    exhausted: bool = False

    def evaluated(self) -> list[Trial]:
        return [t for t in self.trials if t.accuracy is not None]

    def best(self) -> Trial | None:
        """The highest-reward feasible trial (the highest-reward one if none is feasible)."""
        done = [t for t in self.evaluated() if t.reward is not None]
        pool = [t for t in done if t.feasible] or done
        return max(pool, key=lambda t: t.score()) if pool else None

    def front(self) -> list[Trial]:
        return pareto_front(self.trials)

    def curve(self) -> list[float]:
        """Best feasible accuracy after each query (NaN before the first feasible one)."""
        out, best = [], -math.inf
        for t in self.trials:
            if t.accuracy is None or t.cached:
                continue
            if t.feasible:
                best = max(best, t.accuracy)
            out.append(best if best > -math.inf else math.nan)
        return out


def _save(path: Path, strategy: Strategy, log: SearchLog, meta: dict[str, Any]) -> None:
    write_json(path, {"format": STATE_FORMAT, "meta": meta, "strategy": strategy.state(),
                      "queries": log.queries, "proposals": log.proposals,
                      "trials": [t.to_json() for t in log.trials]})


def load_state(path: Path, space: Any) -> tuple[Strategy, SearchLog, dict[str, Any]]:
    data = read_json(path, "search state", "delete it to start over")
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        raise HwnasError(f"{path} is not an hwnas black-box search state")
    what = "search state"
    require(data, path, what, {"strategy": dict, "queries": int, "proposals": int, "trials": list})
    with interpreting(path, what):
        strategy = strategy_from_state(space, data["strategy"])
        log = SearchLog(queries=int(data["queries"]), proposals=int(data["proposals"]))
        log.trials = [Trial.from_json(space, d) for d in data["trials"]]
    return strategy, log, data.get("meta", {})


def run(strategy: Strategy, problem: Problem, queries: int, *, batch: int = 1, state_file: str | Path | None = None,
        stop_after: int | None = None, max_proposals: int | None = None, progress: bool = False,
        meta: dict[str, Any] | None = None, on_tell: Callable[[list[Trial]], None] | None = None,
        save_every_s: float = 1.0) -> tuple[Strategy, SearchLog]:
    """Ask, evaluate and tell until ``queries`` accuracy evaluations are spent.

    Resumes from ``state_file`` when it exists (the strategy passed in is then replaced by
    the saved one). ``stop_after`` ends after that many queries of this call (tests, time
    boxes); ``max_proposals`` (default 50 × queries) bounds proposals when a hard budget
    rejects nearly everything.
    """
    if queries < 1:
        raise HwnasError("the query budget must be at least 1")
    if batch < 1:
        raise HwnasError("the batch (architectures asked per step) must be at least 1")
    log = SearchLog()
    path = Path(state_file) if state_file else None
    meta = {**(meta or {}), "problem": (meta or {}).get("problem")}
    if path is not None and path.exists():
        strategy, log, saved_meta = load_state(path, strategy.space)
        if saved_meta.get("problem") != meta["problem"]:
            raise HwnasError(f"{path} holds a search with other objectives ({saved_meta.get('problem')}); "
                             "use another run directory or delete the state file")
    problem.observe(log.trials)
    cache = {t.arch.indices(): t for t in log.trials}
    limit = max_proposals if max_proposals is not None else 50 * queries
    start = log.queries
    last_save = time.monotonic()
    bar = tqdm(total=queries, initial=log.queries, desc=f"{strategy.name} search", unit="query",
               disable=not progress, leave=False)
    try:
        while log.queries < queries and (stop_after is None or log.queries - start < stop_after):
            if log.proposals >= limit:
                log.exhausted = True
                break
            archs = strategy.ask(min(batch, queries - log.queries))
            if not archs:
                log.exhausted = True
                break
            log.proposals += len(archs)
            told = _evaluate(problem, archs, cache)
            new = sum(1 for t in told if t.accuracy is not None and not t.cached)
            log.queries += new
            bar.update(new)
            strategy.tell(told)
            log.trials.extend(told)
            if on_tell is not None:
                on_tell(told)
            if path is not None and time.monotonic() - last_save >= save_every_s:
                _save(path, strategy, log, meta)
                last_save = time.monotonic()
    finally:
        bar.close()
        if path is not None:
            _save(path, strategy, log, meta)
    return strategy, log


def _evaluate(problem: Problem, archs: list, cache: dict) -> list[Trial]:
    """Trials for ``archs``: new ones evaluated in one batch, repeats copied from the cache."""
    new, keys = [], set()
    for a in archs:
        if a.indices() not in cache and a.indices() not in keys:
            new.append(a)
            keys.add(a.indices())
    for t in problem.evaluate(new):
        cache[t.arch.indices()] = t
    told = []
    for a in archs:
        src = cache[a.indices()]
        if a.indices() in keys:
            keys.discard(a.indices())
            told.append(src)
        else:
            told.append(Trial(src.arch, src.reward, src.accuracy, dict(src.latency_ms), src.feasible, cached=True))
    return told
