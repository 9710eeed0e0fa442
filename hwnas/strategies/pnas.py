"""PNAS (Liu et al. 2018): progressive search from simple to full networks, guided by a surrogate.

A network grows from the space's simplest one (:meth:`SearchSpace.simplest`: ``none`` on
every edge of a cell, every skippable block of a chain skipped) by specifying one group of
decisions at a time (:meth:`SearchSpace.growth`: a cell node by node, from the edge that
joins input and output; a chain stage by stage from the input). Level 1 queries the
children of the simplest network (``beam`` of them at random when there are more). Each
next level expands the ``beam`` best of the level before by every option of the next
group's decisions (``expand`` of them at random per parent when there are more), scores the
children with the surrogate, an ensemble of small MLPs on the path encoding trained on
everything told, and queries the ``beam`` best (mean + ``kappa`` x spread). After the last
level the search goes on the same way from the ``beam`` best networks so far, their
children now being their one-decision neighbours. Under a hard budget the children that the
budget likely lets through (:func:`hwnas.strategies.surrogate.feasibility`) rank first.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from hwnas.errors import HwnasError
from hwnas.spaces.base import SearchSpace
from hwnas.strategies.bananas import fit_surrogate
from hwnas.strategies.base import register_strategy
from hwnas.strategies.surrogate import ModelBased, best_rows, feasibility, neighbour_rows, unseen


@register_strategy
class Pnas(ModelBased):
    name = "pnas"

    def __init__(self, space: SearchSpace, seed: int = 0, beam: int = 10, expand: int = 500, members: int = 5,
                 kappa: float = 0.5, steps: int = 300) -> None:
        super().__init__(space, seed)
        if min(beam, expand, members, steps) < 1 or kappa < 0:
            raise HwnasError("pnas needs beam, expand, members and steps >= 1 and kappa >= 0")
        self.beam, self.expand, self.members = int(beam), int(expand), int(members)
        self.kappa, self.steps = float(kappa), int(steps)
        self.groups = space.growth()
        #: how many groups the networks of the current level specify (past the last: refining)
        self.level = 0
        #: the current level's networks, asked or still to ask
        self.current: list[list[int]] = []

    def params(self) -> dict[str, Any]:
        return {"beam": self.beam, "expand": self.expand, "members": self.members, "kappa": self.kappa,
                "steps": self.steps}

    def _parents(self) -> list[list[int]]:
        """The ``beam`` best of the current level (its told rewards; those not yet told after),
        or of everything so far once every group is specified; the simplest network at the
        start and when a hard budget rejected every one of them."""
        parents: list[list[int]] = []
        if self.level > len(self.groups):
            parents = best_rows(self.history, self.beam)
        elif self.level > 0:
            told = {tuple(i): r for i, r in self.history}
            level = [row for row in self.current if told.get(tuple(row)) is not None]
            level.sort(key=lambda row: -told[tuple(row)])  # type: ignore[operator]
            waiting = [row for row in self.current if tuple(row) not in told]
            parents = (level + waiting)[:self.beam]
        return parents or [list(self.space.simplest())]

    def _children(self, parents: list[list[int]]) -> np.ndarray:
        if self.level >= len(self.groups):
            return neighbour_rows(self.sizes, parents)
        group = self.groups[self.level]
        combos = np.array(list(itertools.product(*(range(self.sizes[d]) for d in group))), dtype=np.int64)
        out = []
        for parent in parents:
            pick = combos if len(combos) <= self.expand else combos[self.rng.choice(len(combos), self.expand,
                                                                                      replace=False)]
            block = np.repeat(np.array(parent, dtype=np.int64)[None, :], len(pick), axis=0)
            block[:, list(group)] = pick
            out.append(block)
        return np.concatenate(out)

    def _refill(self) -> None:
        cand = unseen(self._children(self._parents()), self.seen)
        self.level += 1
        if not len(cand):
            self.current = []
            return
        if len(cand) <= self.beam:
            chosen = cand
        elif not any(r is not None for _, r in self.history):
            chosen = cand[np.sort(self.rng.choice(len(cand), self.beam, replace=False))]
        else:
            model = fit_surrogate(self.space, self.history, self.members, self.steps,
                                  int(self.rng.integers(2 ** 31)))
            mu, sd = model.predict(self.space.path_encode_indices(cand))
            chance = feasibility(self.space, self.history, cand)
            chosen = cand[np.lexsort((-(mu + self.kappa * sd), chance < 0.5))[:self.beam]]
        self.current = chosen.tolist()
        self.queue = list(self.current)

    def _model_state(self) -> dict[str, Any]:
        return {"level": self.level, "current": self.current}

    def _model_load(self, state: dict[str, Any]) -> None:
        self.level = int(state["level"])
        self.current = [[int(x) for x in row] for row in state["current"]]
