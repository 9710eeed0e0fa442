"""What the model-based strategies (``gp``, ``bananas``, ``pnas``) share: the history as a
regression data set, and candidates to score.

A candidate a hard budget rejected has no reward; it enters the model at the lowest reward
seen, so a search learns to leave its region.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

History = list[tuple[list[int], "float | None"]]


def history_xy(history: History) -> tuple[np.ndarray, np.ndarray]:
    """(n, decisions) index rows and their rewards, a rejected one at the lowest reward seen."""
    rewards = [r for _, r in history if r is not None]
    low = min(rewards) if rewards else 0.0
    idx = np.array([i for i, _ in history], dtype=np.int64)
    return idx, np.array([low if r is None else r for _, r in history], dtype=np.float64)


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
