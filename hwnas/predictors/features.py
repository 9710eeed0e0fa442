"""Vectorised features of architectures, derived from the architecture object.

Latency, multiply-adds, parameters and activation bytes are additive over the space's
fixed layers and per-decision option layers (``SearchSpace.fixed_layers`` /
``option_layers``), so each is precomputed once per (decision, option) and gathered with
the (n, decisions) index matrix: no Python work per architecture beyond its indices.
In a space that is not additive over decisions (``SearchSpace.additive`` False: a motif
used several times) they are summed over each network's layers instead, and what stands
for the per-decision figures is per layer operation: how many layers of each operation the
network has, and their table latency.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwnas.layers import LayerSpec
from hwnas.ops import count_layer
from hwnas.spaces.base import Arch, SearchSpace
from hwnas.spaces.option_table import CostTable, LayerTotals, cost_table

ArchBatch = Sequence[Arch] | np.ndarray


def _act_bytes(spec: LayerSpec) -> int:
    return 4 * (int(np.prod(spec.input)) + int(np.prod(spec.output)))


def latency_options(space: SearchSpace, table: Any) -> CostTable:
    """LUT latencies (ms) per option (per layer, where the space is not additive); raises
    naming every key the table lacks."""
    if space.additive:
        keys = [s.key for s in space.fixed_layers()]
        for i, d in enumerate(space.decisions()):
            for o in d.choices:
                keys += [s.key for s in space.option_layers(i, o)]
    else:
        keys = [s.key for s in space.all_layers()]
    table.lookup(keys)  # one error naming all missing keys
    return cost_table(space, lambda s: table.latency_ms(s.key))


def index_matrix(space: SearchSpace, archs: ArchBatch) -> np.ndarray:
    if isinstance(archs, np.ndarray):
        return archs.astype(np.int64, copy=False)
    return space.index_matrix(list(archs))


LEVELS = ("ops", "counts", "onehot", "pairs")
GRAPHS = ("written", "live")
"""``written``: every operation the architecture names; ``live``: only those a runtime that
removes dead code executes (:meth:`SearchSpace.live`; for whole dead cells, each decision's
counts and costs weighted by :meth:`SearchSpace.live_weights`), plus whether the network
computes nothing from its input at all. Which one a device's latency follows is a property of its
runtime, so the learned predictor chooses by cross-validation."""


class Features:
    """Feature matrix at one of four capacities (``level``):

    - ``ops``: which option each decision takes (one-hot), nothing else: the plain
      per-operation linear model, a baseline any richer level must beat.
    - ``counts``: how often each option is chosen (options the space counts as one,
      :meth:`SearchSpace.counted_as`, together); total MACs, parameters, activation and
      weight bytes; what the wiring costs beyond the layers (work a runtime computes once for
      several edges, the glue of merges: :meth:`SearchSpace.wiring_counts`); LUT-sum with a
      table. Few numbers: right for noisy devices.
    - ``onehot``: + which option each decision takes, and each decision's table latency.
    - ``pairs``: + pairwise decision interactions (which option sits beside which), for
      spaces with small encodings (NAS-Bench-201).

    and of the ``written`` or ``live`` graph (see :data:`GRAPHS`).
    """

    def __init__(self, space: SearchSpace, latency: CostTable | None = None, level: str = "onehot",
                 graph: str = "written") -> None:
        if level not in LEVELS:
            raise ValueError(f"feature level must be one of {LEVELS}")
        if graph not in GRAPHS:
            raise ValueError(f"feature graph must be one of {GRAPHS}")
        self.space = space
        self.level, self.graph = level, graph
        decisions = space.decisions()
        self.sizes = [len(d.choices) for d in decisions]
        counted = [[space.counted_as(i, c) for c in d.choices] for i, d in enumerate(decisions)]
        self.options = sorted({c for labels in counted for c in labels})
        pos = {c: i for i, c in enumerate(self.options)}
        self.option_of = [np.array([pos[c] for c in labels]) for labels in counted]
        self.latency = latency
        self.macs = cost_table(space, lambda s: count_layer(s).macs / 1e6)
        self.params = cost_table(space, lambda s: count_layer(s).params / 1e6)
        self.act = cost_table(space, lambda s: _act_bytes(s) / 1e6)
        self.layer_count = None if space.additive else LayerTotals.of(space, lambda s: 1.0)
        self.layer_ops = [] if self.layer_count is None else self.layer_count.ops()
        self.pairs = [(i, j) for i in range(len(self.sizes)) for j in range(i + 1, len(self.sizes))]
        self.wiring = list(space.wiring_counts(np.zeros((1, len(self.sizes)), dtype=np.int64)))

    def names(self) -> list[str]:
        decisions = self.space.decisions()
        onehot = [f"{d.name}={c}" for d in decisions for c in d.choices]
        live = ["computes_nothing"] if self.graph == "live" else []
        if self.level == "ops":
            return onehot + live
        counted = self.layer_ops if self.layer_count is not None else self.options
        names = [f"count[{c}]" for c in counted] + ["macs_m", "params_m", "act_mb", "weight_mb"] + self.wiring
        if self.latency is not None:
            names.append("lutsum_ms")
        if self.level in ("onehot", "pairs"):
            names += onehot
            if self.latency is not None:
                names += [f"lut_ms[{c}]" for c in self.layer_ops] if self.layer_count is not None else \
                    [f"lut_ms[{d.name}]" for d in decisions]
        if self.level == "pairs":
            names += [f"{decisions[i].name}={a}&{decisions[j].name}={b}" for i, j in self.pairs
                      for a in decisions[i].choices for b in decisions[j].choices]
        return names + live

    def transform(self, idx: np.ndarray) -> np.ndarray:
        live: list[np.ndarray] = []
        weights = None
        if self.graph == "live":
            idx = self.space.live_indices(idx)
            live = [(~self.space.connected_indices(idx)).astype(np.float64)[:, None]]
            weights = self.space.live_weights(idx)
        if self.level == "ops":
            return np.hstack([self.space.encode_indices(idx).astype(np.float64)] + live)
        n = len(idx)
        if self.layer_count is not None:
            counts = self.layer_count.by_op(idx, self.layer_ops)
        else:
            counts = np.zeros((n, len(self.options)))
            for i, mapping in enumerate(self.option_of):
                np.add.at(counts, (np.arange(n), mapping[idx[:, i]]), 1.0 if weights is None else weights[:, i])
        totals = [t.total(idx) if weights is None else t.total(idx, weights) for t in (self.macs, self.params, self.act)]
        parts = [counts, np.stack([*totals, 4 * totals[1]], axis=1)]
        if self.wiring:
            parts.append(np.stack(list(self.space.wiring_counts(idx, weights).values()), axis=1))
        per = None
        if isinstance(self.latency, LayerTotals):
            per = self.latency.by_op(idx, self.layer_ops)
        elif self.latency is not None:
            per = self.latency.per_decision(idx) * (1.0 if weights is None else weights)
        if per is not None:
            parts.append((self.latency.fixed + per.sum(axis=1))[:, None])
        if self.level in ("onehot", "pairs"):
            parts.append(self.space.encode_indices(idx).astype(np.float64))
            if per is not None:
                parts.append(per)
        if self.level == "pairs":
            width = sum(self.sizes[i] * self.sizes[j] for i, j in self.pairs)
            inter = np.zeros((n, width))
            offset = 0
            rows = np.arange(n)
            for i, j in self.pairs:
                inter[rows, offset + idx[:, i] * self.sizes[j] + idx[:, j]] = 1.0
                offset += self.sizes[i] * self.sizes[j]
            parts.append(inter)
        return np.hstack(parts + live)
