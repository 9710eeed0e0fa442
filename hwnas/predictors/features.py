"""Vectorised features of architectures, derived from the architecture object.

Latency, multiply-adds, parameters and activation bytes are additive over the space's
fixed layers and per-decision option layers (``SearchSpace.fixed_layers`` /
``option_layers``), so each is precomputed once per (decision, option) and gathered with
the (n, decisions) index matrix: no Python work per architecture beyond its indices.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hwnas.layers import LayerSpec
from hwnas.ops import count_layer
from hwnas.spaces.base import Arch, SearchSpace

ArchBatch = Sequence[Arch] | np.ndarray


def _act_bytes(spec: LayerSpec) -> int:
    return 4 * (int(np.prod(spec.input)) + int(np.prod(spec.output)))


class OptionTable:
    """Per-(decision, option) totals of one quantity, plus the fixed layers' total."""

    def __init__(self, fixed: float, options: list[np.ndarray]) -> None:
        self.fixed = float(fixed)
        self.options = [np.asarray(o, dtype=np.float64) for o in options]

    @classmethod
    def of(cls, space: SearchSpace, value: Any) -> "OptionTable":
        fixed = sum(value(s) for s in space.fixed_layers())
        options = [np.array([sum(value(s) for s in space.option_layers(i, o)) for o in d.choices])
                   for i, d in enumerate(space.decisions())]
        return cls(fixed, options)

    def per_decision(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty(idx.shape, dtype=np.float64)
        for i, opts in enumerate(self.options):
            out[:, i] = opts[idx[:, i]]
        return out

    def total(self, idx: np.ndarray) -> np.ndarray:
        return self.fixed + self.per_decision(idx).sum(axis=1)

    def to_json(self) -> dict[str, Any]:
        return {"fixed": self.fixed, "options": [o.tolist() for o in self.options]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "OptionTable":
        return cls(d["fixed"], [np.array(o) for o in d["options"]])


def latency_options(space: SearchSpace, table: Any) -> OptionTable:
    """LUT latencies (ms) per option; raises naming every key the table lacks."""
    keys = [s.key for s in space.fixed_layers()]
    for i, d in enumerate(space.decisions()):
        for o in d.choices:
            keys += [s.key for s in space.option_layers(i, o)]
    table.lookup(keys)  # one error naming all missing keys
    return OptionTable.of(space, lambda s: table.latency_ms(s.key))


def index_matrix(space: SearchSpace, archs: ArchBatch) -> np.ndarray:
    if isinstance(archs, np.ndarray):
        return archs.astype(np.int64, copy=False)
    return space.index_matrix(list(archs))


class Features:
    """Feature matrix: one-hot decisions; per-decision LUT latency and LUT-sum (with a
    table); total MACs, parameters, activation and weight bytes; and, for small spaces,
    pairwise decision interactions (which op sits beside which)."""

    def __init__(self, space: SearchSpace, latency: OptionTable | None = None,
                 interactions: bool | None = None) -> None:
        self.space = space
        self.sizes = [len(d.choices) for d in space.decisions()]
        self.latency = latency
        self.macs = OptionTable.of(space, lambda s: count_layer(s).macs / 1e6)
        self.params = OptionTable.of(space, lambda s: count_layer(s).params / 1e6)
        self.act = OptionTable.of(space, lambda s: _act_bytes(s) / 1e6)
        self.interactions = space.encoding_size() <= 64 if interactions is None else interactions
        self.pairs = [(i, j) for i in range(len(self.sizes)) for j in range(i + 1, len(self.sizes))]

    def names(self) -> list[str]:
        names = [f"{d.name}={c}" for d in self.space.decisions() for c in d.choices]
        if self.latency is not None:
            names += [f"lut_ms[{d.name}]" for d in self.space.decisions()] + ["lutsum_ms"]
        names += ["macs_m", "params_m", "act_mb", "weight_mb"]
        if self.interactions:
            decisions = self.space.decisions()
            names += [f"{decisions[i].name}={a}&{decisions[j].name}={b}" for i, j in self.pairs
                      for a in decisions[i].choices for b in decisions[j].choices]
        return names

    def transform(self, idx: np.ndarray) -> np.ndarray:
        parts = [self.space.encode_indices(idx).astype(np.float64)]
        if self.latency is not None:
            per = self.latency.per_decision(idx)
            parts += [per, (self.latency.fixed + per.sum(axis=1))[:, None]]
        params = self.params.total(idx)
        parts.append(np.stack([self.macs.total(idx), params, self.act.total(idx), 4 * params], axis=1))
        if self.interactions:
            width = sum(self.sizes[i] * self.sizes[j] for i, j in self.pairs)
            inter = np.zeros((len(idx), width))
            offset = 0
            rows = np.arange(len(idx))
            for i, j in self.pairs:
                inter[rows, offset + idx[:, i] * self.sizes[j] + idx[:, j]] = 1.0
                offset += self.sizes[i] * self.sizes[j]
            parts.append(inter)
        return np.hstack(parts)
