"""Deriving the final architecture from the architecture probabilities.

``argmax`` takes each decision's most likely option. ``budget`` takes the most likely
architecture (the largest Σ log p) whose latency uses the budget: predicted latency at
most the budget and, when such an architecture exists, at least ``fill`` of it. Argmax
alone often lands far below the budget, because the latency term keeps pulling on
probabilities that the data term barely separates (a short search on a small dataset);
filling the budget keeps the supernet's preferences and spends the latency the user
allowed. Solved exactly for the additive per-option latencies by dynamic programming
over decisions with the latency discretised into ``bins`` steps of budget / bins.

Spaces small enough to list (a NAS-Bench-201 cell: 15,625) are solved by enumeration
instead, which also honours constraints that do not add up over decisions: a derived cell
must be connected (``SearchSpace.connected``), however likely a cell of ``none`` edges is.
"""

from __future__ import annotations

import itertools
from typing import Callable, Sequence

import numpy as np

from hwnas.spaces.option_table import OptionTable

ENUMERABLE = 200_000
"""Spaces with at most this many architectures are derived by enumeration."""

DERIVATIONS = ("argmax", "budget")


def derive_under_budget(probs: Sequence[Sequence[float]], latency: OptionTable, budget_ms: float, fill: float = 0.9,
                        bins: int = 4000) -> list[int] | None:
    """Indices maximising Σ log p with latency in [fill·budget, budget] (else just ≤ budget);
    None when no architecture meets the budget."""
    # options may be deltas from a base architecture (negative ones too): shift each
    # decision's cheapest option to zero and move the shift into the fixed part
    options = [np.asarray(o, dtype=np.float64) - float(np.min(o)) for o in latency.options]
    fixed = latency.fixed + sum(float(np.min(o)) for o in latency.options)
    step = budget_ms / bins
    room = budget_ms - fixed
    if room < 0:
        return None
    cap = int(np.floor(room / step))
    neg = -np.inf
    score = np.full(cap + 1, neg)
    score[0] = 0.0
    choice = []
    for p, lat in zip(probs, options):
        logp = np.log(np.clip(np.asarray(p, dtype=np.float64), 1e-12, None))
        cost = np.maximum(np.round(lat / step).astype(int), 0)
        new = np.full(cap + 1, neg)
        arg = np.full(cap + 1, -1)
        for j, (c, lp) in enumerate(zip(cost, logp)):
            if c > cap:
                continue
            cand = np.full(cap + 1, neg)
            cand[c:] = score[: cap + 1 - c] + lp
            better = cand > new
            new[better], arg[better] = cand[better], j
        score = new
        choice.append(arg)
    if not np.isfinite(score).any():
        return None
    used = np.arange(cap + 1) * step + fixed
    band = np.isfinite(score) & (used >= fill * budget_ms)
    pool = np.flatnonzero(band) if band.any() else np.flatnonzero(np.isfinite(score))
    b = int(pool[np.argmax(score[pool])])
    out = []
    for d in range(len(probs) - 1, -1, -1):
        j = int(choice[d][b])
        out.append(j)
        b -= int(max(np.round(options[d][j] / step), 0))
    return out[::-1]


def derive_by_enumeration(probs: Sequence[Sequence[float]], latency: OptionTable, budget_ms: float,
                          fill: float = 0.9, accept: Callable[[list[int]], bool] | None = None,
                          predict: Callable[[np.ndarray], np.ndarray] | None = None) -> list[int] | None:
    """Like :func:`derive_under_budget`, exactly, over every architecture; only those
    ``accept`` takes (e.g. connected cells) count. ``predict`` (an index matrix's latencies)
    stands for the table's totals where the table only approximates the latency model
    (``OptionTable.exact`` False). None when none is accepted under the budget."""
    idx = np.array(list(itertools.product(*(range(len(p)) for p in probs))), dtype=np.int64)
    logp = np.zeros(len(idx))
    for d, p in enumerate(probs):
        logp += np.log(np.clip(np.asarray(p, dtype=np.float64), 1e-12, None))[idx[:, d]]
    total = latency.total(idx) if predict is None else np.asarray(predict(idx), dtype=np.float64)
    under = total <= budget_ms
    for pool in (under & (total >= fill * budget_ms), under):
        for i in np.flatnonzero(pool)[np.argsort(-logp[pool], kind="stable")]:
            if accept is None or accept(idx[i].tolist()):
                return idx[i].tolist()
    return None


def derive(probs: Sequence[Sequence[float]], latency: OptionTable, budget_ms: float, fill: float = 0.9,
           accept: Callable[[list[int]], bool] | None = None,
           predict: Callable[[np.ndarray], np.ndarray] | None = None) -> list[int] | None:
    """The most likely architecture that fills the budget: by enumeration for small spaces
    (on ``predict``'s latencies where given), else by dynamic programming on the table (whose
    answer must still pass ``accept``)."""
    if int(np.prod([len(p) for p in probs], dtype=object)) <= ENUMERABLE:
        return derive_by_enumeration(probs, latency, budget_ms, fill, accept, predict)
    out = derive_under_budget(probs, latency, budget_ms, fill)
    return out if out is None or accept is None or accept(out) else None
