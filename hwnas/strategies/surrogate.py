"""What the model-based strategies (``gp``, ``bananas``, ``pnas``) share: the history they
model, proposals queued between fits, the history as a regression data set, and candidates.

A candidate a hard budget rejected has no reward. It does not enter the reward model (as
the lowest reward it would teach the model that the budget's edge, where the best feasible
networks lie, is bad); a second model, a logistic regression on the one-hot decisions
(latency is close to additive over them), learns which candidates the budget lets through,
and the acquisition is weighted by that probability (constrained EI, Gardner et al. 2014).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Sequence

import numpy as np

from hwnas.spaces.base import Arch, SearchSpace
from hwnas.strategies.base import Strategy, Trial

History = list[tuple[list[int], "float | None"]]


class ModelBased(Strategy):
    """A strategy that keeps every trial told (index row, reward) for its model, and a queue of
    proposals made by its last fit: ``ask`` takes from the queue and calls :meth:`_refill` when
    it runs dry; a subclass saves its own fields through ``_model_state`` / ``_model_load``."""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.sizes = [len(d.choices) for d in space.decisions()]
        self.history: History = []
        self.queue: list[list[int]] = []

    def _refill(self) -> None:
        """Put the next proposals in ``self.queue`` (leave it empty when there are none)."""

    def ask(self, n: int = 1) -> list[Arch]:
        out: list[Arch] = []
        while len(out) < n:
            if not self.queue:
                self._refill()
                if not self.queue:
                    break
            row = self.queue.pop(0)
            if tuple(row) not in self.seen:
                self.seen.add(tuple(row))
                out.append(self.space.from_indices(row))
        return out + [self.fresh(self.random_arch) for _ in range(n - len(out))]

    def scored(self) -> int:
        return sum(r is not None for _, r in self.history)

    def _tell(self, trials: list[Trial]) -> None:
        for t in trials:
            self.history.append((list(t.arch.indices()), t.reward))

    @abstractmethod
    def _model_state(self) -> dict[str, Any]: ...

    @abstractmethod
    def _model_load(self, state: dict[str, Any]) -> None: ...

    def _state(self) -> dict[str, Any]:
        return {"history": [[i, r] for i, r in self.history], "queue": self.queue, **self._model_state()}

    def _load(self, state: dict[str, Any]) -> None:
        self.history = [([int(x) for x in i], None if r is None else float(r)) for i, r in state["history"]]
        self.queue = [[int(x) for x in row] for row in state.get("queue", [])]
        self._model_load(state)


def history_xy(history: History) -> tuple[np.ndarray, np.ndarray]:
    """(n, decisions) index rows and their rewards, of the trials that have one."""
    scored = [(i, r) for i, r in history if r is not None]
    idx = np.array([i for i, _ in scored], dtype=np.int64).reshape(len(scored), -1)
    return idx, np.array([r for _, r in scored], dtype=np.float64)


def feasibility(space: SearchSpace, history: History, rows: np.ndarray) -> np.ndarray:
    """The probability that a hard budget lets each row through, learned from the history's
    accepted and rejected trials; 1 everywhere while none has been rejected (or none accepted)."""
    ok = np.array([r is not None for _, r in history], dtype=bool)
    if ok.all() or not ok.any() or not len(rows):
        return np.ones(len(rows))
    from sklearn.linear_model import LogisticRegression

    x = space.encode_indices(np.array([i for i, _ in history], dtype=np.int64))
    model = LogisticRegression(C=10.0, max_iter=1000).fit(x, ok)
    return model.predict_proba(space.encode_indices(rows))[:, 1]


def best_rows(history: History, k: int) -> list[list[int]]:
    """The ``k`` best-rewarded index rows (rejected ones last, never among them)."""
    scored = [(i, r) for i, r in history if r is not None]
    return [i for i, _ in sorted(scored, key=lambda t: -t[1])[:k]]


def neighbour_rows(sizes: Sequence[int], rows: Sequence[Sequence[int]]) -> np.ndarray:
    """Every row that differs from one of ``rows`` in one decision (and those rows themselves)."""
    out = [np.zeros((0, len(sizes)), dtype=np.int64)]
    for row in rows:
        base = np.array(row, dtype=np.int64)
        for d, k in enumerate(sizes):
            block = np.repeat(base[None, :], k, axis=0)
            block[:, d] = np.arange(k)
            out.append(block)
    return np.concatenate(out)


def unseen(rows: np.ndarray, seen: set[tuple[int, ...]]) -> np.ndarray:
    """The distinct rows not proposed before, sorted (so the order does not depend on how they came)."""
    if not len(rows):
        return rows
    rows = np.unique(rows, axis=0)
    keep = np.array([tuple(r) not in seen for r in rows.tolist()], dtype=bool)
    return rows[keep]


def candidates(rng: np.random.Generator, sizes: Sequence[int], seen: set[tuple[int, ...]], history: History,
               pool: int, top: int) -> np.ndarray:
    """Unseen index rows: ``pool`` random ones and every neighbour of the ``top`` best
    (mutation-based acquisition optimisation, as BANANAS does it)."""
    s = np.array(sizes)
    random_rows = (rng.random((pool, len(s))) * s).astype(np.int64)
    return unseen(np.concatenate([random_rows, neighbour_rows(sizes, best_rows(history, top))]), seen)
