"""Multi-fidelity evaluation schedules for any ask/tell strategy: successive halving,
Hyperband and ASHA.

A schedule decides at which fidelity (a fraction of the full evaluation: of the epochs, the
train split or the image resolution; :mod:`hwnas.evaluators.training`) each candidate is
scored, and which candidates earn a fuller evaluation. The rungs are the fractions
``eta^-s_max, ..., 1/eta, 1`` with ``s_max = floor(log_eta(1 / min_fraction))``.

- ``sh`` (Jamieson & Talwalkar 2016): brackets of ``eta^s_max`` candidates asked at once,
  scored on the lowest rung; the best ``floor(m / eta)`` of the ``m`` scored on a rung (at
  least one) go up to the next, until one or more reach the full evaluation.
- ``hyperband`` (Li et al. 2018): successive halving over the brackets ``s = s_max .. 0``
  in turn, bracket ``s`` starting ``ceil((s_max + 1) / (s + 1) eta^s)`` candidates at rung
  ``eta^-s``, which hedges against a lowest rung that ranks badly.
- ``asha`` (Li et al. 2020): asynchronous; each step either promotes a candidate that is in
  the top ``1 / eta`` of its rung and was not promoted yet (highest rung first) or asks one
  new candidate for the lowest rung. It never waits for a rung to fill.

The strategy is told a candidate once: after its bracket ends (``sh``, ``hyperband``: with its
highest-rung result) or after its lowest rung (``asha``: a promotion later updates the
search's record of it, not the strategy). A query is a new candidate's first evaluation;
promotions cost evaluations but not queries, and each trial's cost sums all its rungs
(``work``: in full evaluations). The answer is the best candidate scored at full fidelity.
A schedule's state is JSON; a search interrupted mid-bracket resumes there.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from hwnas.errors import HwnasError
from hwnas.registry import Registry
from hwnas.spaces.base import SearchSpace
from hwnas.strategies.base import Trial

if TYPE_CHECKING:
    from hwnas.strategies.loop import Session


def rung_fractions(eta: int, min_fraction: float) -> list[float]:
    """The fidelities of the rungs, lowest first, ending at 1."""
    s_max = int(math.floor(math.log(1.0 / min_fraction) / math.log(eta) + 1e-9))
    return [float(eta) ** (k - s_max) for k in range(s_max + 1)]


def bracket_sizes(eta: int, min_fraction: float) -> list[tuple[int, int]]:
    """Hyperband's brackets as (candidates started, index of the rung they start on), most
    aggressive first (Li et al. 2018, Algorithm 1)."""
    s_max = len(rung_fractions(eta, min_fraction)) - 1
    return [(int(math.ceil((s_max + 1) / (s + 1) * eta ** s - 1e-9)), s_max - s) for s in range(s_max, -1, -1)]


class Schedule(ABC):
    """How many candidates to ask and at which fidelities to score them; one ``step`` at a time."""

    name: ClassVar[str] = ""

    def __init__(self, eta: int = 3, min_fraction: float = 1 / 9) -> None:
        if int(eta) != eta or eta < 2:
            raise HwnasError(f"a schedule's eta (--eta) is a whole number >= 2, not {eta}")
        if not 0 < min_fraction < 1 or min_fraction > 1 / eta + 1e-9:
            raise HwnasError(f"the lowest fidelity (--min-fidelity) must be in (0, 1/eta] = (0, {1 / eta:.3g}], "
                             f"not {min_fraction}")
        self.eta, self.min_fraction = int(eta), float(min_fraction)
        self.rungs = rung_fractions(self.eta, self.min_fraction)

    @abstractmethod
    def step(self, session: "Session") -> bool:
        """Ask, evaluate and tell some candidates; False when nothing could be done."""

    @abstractmethod
    def busy(self) -> bool:
        """Whether work started must still be finished (a bracket, promotions) before the search
        may end."""

    def describe(self) -> dict[str, Any]:
        return {"schedule": self.name, "eta": self.eta, "rungs": self.rungs}

    def state(self) -> dict[str, Any]:
        return {}

    def load(self, state: dict[str, Any], space: SearchSpace) -> None:
        pass


SCHEDULES: Registry[type] = Registry("evaluation schedule")


def register_schedule(cls: type) -> type:
    SCHEDULES.register(cls.name, cls)
    return cls


def get_schedule(name: str, eta: int = 3, min_fraction: float = 1 / 9) -> Schedule:
    return SCHEDULES[name](eta=eta, min_fraction=min_fraction)


def survivors(trials: list[Trial], eta: int) -> list[Trial]:
    """The best ``floor(m / eta)`` (at least one) of the ``m`` trials scored, best first."""
    scored = sorted((t for t in trials if t.reward is not None and not t.cached), key=lambda t: -t.score())
    return scored[:max(1, len(scored) // eta)] if scored else []


@register_schedule
class Hyperband(Schedule):
    name = "hyperband"

    def __init__(self, eta: int = 3, min_fraction: float = 1 / 9) -> None:
        super().__init__(eta, min_fraction)
        self.brackets = bracket_sizes(self.eta, self.min_fraction)
        self.started = 0
        #: the bracket under way: its members (arch strings, in the order asked), the rung being
        #: scored, who is alive on it, and each member's latest trial
        self.pending: dict[str, Any] | None = None
        self._trials: dict[str, Trial] = {}
        self._archs: dict[str, Any] = {}

    def bracket(self) -> tuple[int, int]:
        return self.brackets[self.started % len(self.brackets)]

    def busy(self) -> bool:
        return self.pending is not None

    def step(self, session: "Session") -> bool:
        if self.pending is None:
            n, first = self.bracket()
            archs = session.ask(min(n, session.remaining()))
            if not archs:
                return False
            self.started += 1
            names = [str(a) for a in archs]
            self.pending = {"members": names, "rung": first, "alive": list(dict.fromkeys(names)), "done": []}
            self._trials = {}
            self._archs = {str(a): a for a in archs}
            session.checkpoint()
        self._run_bracket(session)
        return True

    def _run_bracket(self, session: "Session") -> None:
        p = self.pending
        assert p is not None
        while True:
            fraction = self.rungs[p["rung"]]
            todo = [a for a in p["alive"] if a not in p["done"]]
            for i in range(0, len(todo), session.batch):
                chunk = [self._archs[a] for a in todo[i:i + session.batch]]
                for t in session.evaluate(chunk, fraction, before=self._trials):
                    self._trials[str(t.arch)] = t
                    p["done"].append(str(t.arch))
                session.checkpoint()
                if session.should_stop():
                    return
            if p["rung"] == len(self.rungs) - 1:
                break
            up = survivors([self._trials[a] for a in p["alive"]], self.eta)
            p.update(rung=p["rung"] + 1, alive=[str(t.arch) for t in up], done=[])
            if not up:
                break
        told, seen = [], set()
        for a in p["members"]:
            t = self._trials[a]
            told.append(t if a not in seen else t.copy_cached())
            seen.add(a)
        session.tell(told)
        self.pending, self._trials = None, {}
        session.checkpoint()

    def state(self) -> dict[str, Any]:
        pending = None
        if self.pending is not None:
            pending = {**self.pending, "trials": {a: t.to_json() for a, t in self._trials.items()}}
        return {"started": self.started, "pending": pending}

    def load(self, state: dict[str, Any], space: SearchSpace) -> None:
        self.started = int(state.get("started", 0))
        pending = state.get("pending")
        if pending is None:
            self.pending, self._trials = None, {}
            return
        self.pending = {k: pending[k] for k in ("members", "rung", "alive", "done")}
        self._trials = {a: Trial.from_json(space, d) for a, d in pending["trials"].items()}
        self._archs = {a: space.parse(a) for a in self.pending["members"]}


@register_schedule
class SuccessiveHalving(Hyperband):
    name = "sh"

    def __init__(self, eta: int = 3, min_fraction: float = 1 / 9) -> None:
        super().__init__(eta, min_fraction)
        self.brackets = self.brackets[:1]


@register_schedule
class ASHA(Schedule):
    name = "asha"

    def __init__(self, eta: int = 3, min_fraction: float = 1 / 9) -> None:
        super().__init__(eta, min_fraction)
        #: per rung, each candidate scored on it (arch string -> reward), and who left it
        self.scores: list[dict[str, float]] = [{} for _ in self.rungs]
        self.promoted: list[list[str]] = [[] for _ in self.rungs]

    def promotable(self) -> tuple[str, int] | None:
        """The best candidate in the top 1/eta of a rung that has not gone up yet, highest rung first."""
        for k in range(len(self.rungs) - 2, -1, -1):
            ranked = sorted(self.scores[k], key=lambda a: -self.scores[k][a])
            for a in ranked[:len(ranked) // self.eta]:
                if a not in self.promoted[k]:
                    return a, k
        return None

    def busy(self) -> bool:
        return self.promotable() is not None

    def step(self, session: "Session") -> bool:
        job = self.promotable()
        if job is not None:
            name, k = job
            before = session.current(name)
            t = session.evaluate([before.arch], self.rungs[k + 1], before={name: before})[0]
            session.replace(t)
            self.promoted[k].append(name)
            if t.reward is not None:
                self.scores[k + 1][name] = t.score()
        else:
            if session.remaining() < 1:
                return False
            archs = session.ask(1)
            if not archs:
                return False
            t = session.evaluate(archs, self.rungs[0], before={})[0]
            session.tell([t])
            if t.reward is not None and not t.cached:
                self.scores[0][str(t.arch)] = t.score()
        session.checkpoint()
        return True

    def state(self) -> dict[str, Any]:
        return {"scores": self.scores, "promoted": self.promoted}

    def load(self, state: dict[str, Any], space: SearchSpace) -> None:
        if len(state.get("scores", [])) != len(self.rungs):
            raise HwnasError("the saved asha state has other rungs than --eta/--min-fidelity give; resume with the "
                             "same settings")
        self.scores = [{a: float(v) for a, v in r.items()} for r in state["scores"]]
        self.promoted = [list(r) for r in state["promoted"]]
