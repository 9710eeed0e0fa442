"""TPE (Bergstra et al. 2011) through Optuna's sampler, behind hwnas's ask/tell.

Optuna's ``TPESampler`` does the work; this class only adapts it. Each decision is a
categorical parameter. Optuna keeps its state in a study, not in JSON, so the strategy
keeps the trials it was told (indices, rewards, and the per-epoch accuracies a pruner saw:
JSON) as its state, and an in-memory
study beside it that a resumed strategy rebuilds from that history; every ``ask`` draws
with a new sampler seeded by (seed, trials told), so the proposal is a function of the
history alone and a resumed search equals an uninterrupted one. Several asked at once are drawn from one study with Optuna's constant
liar for the pending ones. A proposal the strategy made before is drawn again (another
sub-seed), and after 20 draws a random new one is taken. A candidate a hard budget
rejected enters the study at the lowest reward seen. ``optuna`` is an optional extra
(``pip install hwnas[optuna]``).
"""

from __future__ import annotations

from typing import Any, Callable

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
        #: every trial told: indices, reward, the accuracies a monitor saw per epoch, pruned or not
        self.history: list[tuple[list[int], float | None, list[float], bool]] = []
        #: study trial numbers Optuna spent on draws that repeated a proposal (told as failed), so
        #: a rebuilt study numbers its trials as the live one did
        self.failed: list[int] = []
        self._storage: Any = None  # Optuna's in-memory study: not state, rebuilt from the history
        self._asked: dict[tuple[int, ...], Any] = {}
        self._added = 0

    def params(self) -> dict[str, Any]:
        return {"startup": self.startup, "candidates": self.candidates}

    def _pruner(self) -> Any:
        return None

    def _study(self, attempt: int) -> tuple[Any, dict[str, Any]]:
        """The study of every trial told (kept between asks, rebuilt from the history after a
        resume), loaded with a sampler seeded by (seed, trials told, attempt)."""
        optuna = _optuna()
        names = [f"d{i}" for i in range(len(self.space.decisions()))]
        dists = {n: optuna.distributions.CategoricalDistribution(list(range(len(d.choices))))
                 for n, d in zip(names, self.space.decisions())}
        rebuild = self._storage is None
        if rebuild:
            self._storage = optuna.storages.InMemoryStorage()
            optuna.create_study(storage=self._storage, study_name="hwnas", direction="maximize")
            self._asked = {}
            self._added = 0
        study = optuna.load_study(study_name="hwnas", storage=self._storage, pruner=self._pruner(),
                                  sampler=optuna.samplers.TPESampler(
                                      n_startup_trials=self.startup, n_ei_candidates=self.candidates,
                                      constant_liar=True,
                                      seed=(self.seed * 1_000_003 + len(self.history)) * 31 + attempt))
        scored = [h[1] for h in self.history if h[1] is not None]
        low = min(scored) if scored else 0.0
        failed = set(self.failed) if rebuild else set()
        for idx, r, curve, pruned in self.history[self._added:]:
            while len(study.trials) in failed:
                study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
            value = low if r is None else r
            live = self._asked.pop(tuple(idx), None)
            state = optuna.trial.TrialState.PRUNED if pruned else optuna.trial.TrialState.COMPLETE
            if live is None:
                study.add_trial(optuna.trial.create_trial(
                    params=dict(zip(names, idx)), distributions=dists, state=state,
                    value=None if pruned else value, intermediate_values=dict(enumerate(curve, 1))))
            elif pruned:
                study.tell(live, state=state)
            else:
                study.tell(live, value)
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
                    self.failed.append(trial.number)
                    continue
                self.seen.add(arch.indices())
                self._asked[arch.indices()] = trial
                out.append(arch)
            if len(out) == n:
                return out
        return out + [self.fresh(self.random_arch) for _ in range(n - len(out))]

    def _tell(self, trials: list[Trial]) -> None:
        for t in trials:
            pruned = bool(t.cost.get("pruned"))
            self.history.append((list(t.arch.indices()), t.reward, [float(v) for v in t.cost.get("curve", [])],
                                 pruned))

    def _state(self) -> dict[str, Any]:
        return {"history": [list(h) for h in self.history], "failed": self.failed}

    def _load(self, state: dict[str, Any]) -> None:
        self.history = [([int(x) for x in h[0]], None if h[1] is None else float(h[1]),
                         [float(v) for v in (h[2] if len(h) > 2 else [])], bool(h[3]) if len(h) > 3 else False)
                        for h in state["history"]]
        self.failed = [int(n) for n in state.get("failed", [])]
        self._storage = None


@register_strategy
class BOHB(TPE):
    """BOHB (Falkner et al. 2018) as Optuna builds it: TPE proposes, Optuna's ``HyperbandPruner``
    stops training runs by their validation accuracy after each epoch (brackets of successive
    halving from ``min_resource`` epochs, ``reduction_factor`` eta, the full run's epochs
    learnt from the first run that completes). Pruned runs enter TPE's model through their
    last reported accuracy, as Optuna's pruned trials do. It prunes only what reports epochs
    (``--accuracy train:EPOCHS``); on other evaluators it is TPE."""

    name = "bohb"

    def __init__(self, space: SearchSpace, seed: int = 0, startup: int = 10, candidates: int = 24, eta: int = 3,
                 min_resource: int = 1) -> None:
        super().__init__(space, seed, startup, candidates)
        if eta < 2 or min_resource < 1:
            raise HwnasError("bohb needs eta >= 2 and min_resource >= 1 (epochs)")
        self.eta, self.min_resource = int(eta), int(min_resource)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "eta": self.eta, "min_resource": self.min_resource}

    def _pruner(self) -> Any:
        return _optuna().pruners.HyperbandPruner(min_resource=self.min_resource, max_resource="auto",
                                                 reduction_factor=self.eta)

    def monitor(self, arch: Arch) -> Callable[[int, float], bool]:
        """For the training run of an asked architecture: report its accuracy after an epoch and
        answer whether the pruner stops it."""
        trial = self._asked[arch.indices()]

        def watch(epoch: int, accuracy: float) -> bool:
            trial.report(accuracy, epoch)
            return bool(trial.should_prune())

        return watch
