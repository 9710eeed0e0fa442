"""TPE (Bergstra et al. 2011) through Optuna's sampler, behind hwnas's ask/tell.

Optuna's ``TPESampler`` does the work; this class only adapts it. Each decision is a
categorical parameter. Optuna keeps its state in a study, not in JSON, so the strategy
keeps the trials it was told (indices and rewards, JSON) as its state, and an in-memory
study beside it that a resumed strategy rebuilds from that history; every ``ask`` draws
with a new sampler seeded by (seed, trials told), so the proposal is a function of the
history alone and a resumed search equals an uninterrupted one. Several asked at once are drawn from one study with Optuna's constant
liar for the pending ones. A proposal the strategy made before is drawn again (another
sub-seed), and after 20 draws a random new one is taken. A candidate a hard budget
rejected enters the study at the lowest reward seen. ``optuna`` is an optional extra
(``pip install hwnas[optuna]``).
"""

from __future__ import annotations

from typing import Any

from hwnas.errors import HwnasError
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies.base import Strategy, Trial, register_strategy


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise HwnasError("the tpe strategy uses Optuna: pip install 'hwnas[optuna]' (or optuna)") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@register_strategy
class TPE(Strategy):
    name = "tpe"

    def __init__(self, space: SearchSpace, seed: int = 0, startup: int = 10, candidates: int = 24) -> None:
        super().__init__(space, seed)
        if startup < 1 or candidates < 1:
            raise HwnasError("tpe needs startup >= 1 and candidates >= 1")
        self.startup, self.candidates = int(startup), int(candidates)
        self.history: list[tuple[list[int], float | None]] = []
        self._storage: Any = None  # Optuna's in-memory study: not state, rebuilt from the history
        self._asked: dict[tuple[int, ...], int] = {}
        self._added = 0

    def params(self) -> dict[str, Any]:
        return {"startup": self.startup, "candidates": self.candidates}

    def _study(self, attempt: int) -> tuple[Any, dict[str, Any]]:
        """The study of every trial told (kept between asks, rebuilt from the history after a
        resume), loaded with a sampler seeded by (seed, trials told, attempt)."""
        optuna = _optuna()
        names = [f"d{i}" for i in range(len(self.space.decisions()))]
        dists = {n: optuna.distributions.CategoricalDistribution(list(range(len(d.choices))))
                 for n, d in zip(names, self.space.decisions())}
        if self._storage is None:
            self._storage = optuna.storages.InMemoryStorage()
            optuna.create_study(storage=self._storage, study_name="hwnas", direction="maximize")
            self._asked = {}
            self._added = 0
        study = optuna.load_study(study_name="hwnas", storage=self._storage, sampler=optuna.samplers.TPESampler(
            n_startup_trials=self.startup, n_ei_candidates=self.candidates, constant_liar=True,
            seed=(self.seed * 1_000_003 + len(self.history)) * 31 + attempt))
        scored = [r for _, r in self.history if r is not None]
        low = min(scored) if scored else 0.0
        for idx, r in self.history[self._added:]:
            value = low if r is None else r
            number = self._asked.pop(tuple(idx), None)
            if number is None:
                study.add_trial(optuna.trial.create_trial(params=dict(zip(names, idx)), distributions=dists,
                                                          value=value))
            else:
                study.tell(number, value)
        self._added = len(self.history)
        return study, dists

    def ask(self, n: int = 1) -> list[Arch]:
        optuna = _optuna()
        out: list[Arch] = []
        for attempt in range(20):
            study, dists = self._study(attempt)
            for _ in range(n - len(out)):
                trial = study.ask(dists)
                arch = self.space.from_indices([int(trial.params[k]) for k in dists])
                if arch.indices() in self.seen:
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # TPE leaves failed trials out
                    continue
                self.seen.add(arch.indices())
                self._asked[arch.indices()] = trial.number
                out.append(arch)
            if len(out) == n:
                return out
        return out + [self.fresh(self.random_arch) for _ in range(n - len(out))]

    def _tell(self, trials: list[Trial]) -> None:
        for t in trials:
            self.history.append((list(t.arch.indices()), t.reward))

    def _state(self) -> dict[str, Any]:
        return {"history": [[i, r] for i, r in self.history]}

    def _load(self, state: dict[str, Any]) -> None:
        self.history = [([int(x) for x in i], None if r is None else float(r)) for i, r in state["history"]]
        self._storage = None
