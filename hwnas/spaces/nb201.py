"""The ``nb201`` space: the NAS-Bench-201 cell (also the DARTS-style cell space).

A cell has 4 nodes; node j sums one operation applied to each earlier node i, so there
are 6 edges, each one of ``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``,
``avg_pool_3x3`` (15,625 cells). The macro skeleton is NAS-Bench-201's: a 3x3 conv stem
of 16 channels, three stages of 5 cells (16, 32, 64 channels) separated by residual
reduction blocks, then BN-ReLU, global pooling and the classifier.

Arch string (the standard one): ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` where ``op~i``
is the operation on the edge from node i into the node of that group.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np

from hwnas.errors import ArchError
from hwnas.layers import LayerSpec, Shape
from hwnas.nn.cell import EDGES, NODES
from hwnas.spaces.base import Arch, Decision, SearchSpace

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")

_EDGE_OP = {"nor_conv_1x1": 1, "nor_conv_3x3": 3, "avg_pool_3x3": 3}


@dataclass(frozen=True, repr=False)
class NB201Arch(Arch):
    space: "NB201Space"
    edges: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.edges) != len(EDGES):
            raise ArchError(f"nb201: a cell has {len(EDGES)} edges, got {len(self.edges)}")
        for (to, frm), op in zip(EDGES, self.edges):
            if op not in OPS:
                raise ArchError(f"nb201: unknown op {op!r} on edge {frm}->{to}; allowed: {', '.join(OPS)}")

    @property
    def choices(self) -> tuple[str, ...]:
        return self.edges


@dataclass(frozen=True)
class NB201Space(SearchSpace):
    overridable: ClassVar[tuple[str, ...]] = ("resolution", "num_classes", "channels", "cells_per_stage")
    preset: str = "cifar"
    resolution: int = 32
    channels: int = 16
    cells_per_stage: int = 5
    num_classes: int = 10
    name = "nb201"

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"cifar": {}, "imagenet16": {"resolution": 16, "num_classes": 120}}

    def decisions(self) -> tuple[Decision, ...]:
        return tuple(Decision(f"edge{frm}->{to}", OPS) for to, frm in EDGES)

    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.resolution, self.resolution)

    def _stage_shapes(self) -> list[Shape]:
        r, c = self.resolution, self.channels
        return [(r, r, c), (-(-r // 2), -(-r // 2), 2 * c), (-(-r // 4), -(-r // 4), 4 * c)]

    def edge_layer(self, op: str, shape: Shape) -> LayerSpec:
        return LayerSpec(op, shape, shape, kernel=_EDGE_OP.get(op), stride=1)

    def plan(self, arch: Arch) -> list[LayerSpec | list[LayerSpec]]:
        """The network in order: single layers, and cells as lists of their 6 edge layers."""
        shapes = self._stage_shapes()
        r = self.resolution
        out: list[LayerSpec | list[LayerSpec]] = [LayerSpec("conv_bn", (r, r, 3), shapes[0], kernel=3, stride=1)]
        for i, shape in enumerate(shapes):
            if i:
                out.append(LayerSpec("resblock", shapes[i - 1], shape, kernel=3, stride=2))
            out += [[self.edge_layer(op, shape) for op in arch.choices] for _ in range(self.cells_per_stage)]
        h, w, c = shapes[-1]
        out.append(LayerSpec("lastact_logits", (h, w, c), (1, 1, self.num_classes)))
        return out

    def fixed_layers(self) -> list[LayerSpec]:
        return [item for item in self.plan(self.from_choices(["none"] * len(EDGES))) if not isinstance(item, list)]

    def option_layers(self, position: int, option: str) -> list[LayerSpec]:
        return [self.edge_layer(option, shape) for shape in self._stage_shapes() for _ in range(self.cells_per_stage)]

    def layers(self, arch: Arch) -> list[LayerSpec]:
        return [spec for item in self.plan(arch) for spec in (item if isinstance(item, list) else [item])]

    def all_layers(self) -> list[LayerSpec]:
        seen: dict[LayerSpec, None] = {}
        for op in OPS:
            for spec in self.layers(self.from_choices([op] * len(EDGES))):
                seen.setdefault(spec, None)
        return list(seen)

    has_dead_ops = True

    def connected(self, arch: Arch) -> bool:
        return NODES - 1 in _reached(arch.choices)

    def live(self, arch: Arch) -> NB201Arch:
        """Edges whose operation reads a node the input reaches and feeds a node that reaches
        the output; the others become ``none`` (all six, when the cell is disconnected)."""
        forward = _reached(arch.choices)
        backward = {NODES - 1}
        for (to, frm), op in reversed(list(zip(EDGES, arch.choices))):
            if op != "none" and to in backward:
                backward.add(frm)
        return self.from_choices([op if frm in forward and to in backward else "none"
                                  for (to, frm), op in zip(EDGES, arch.choices)])

    def live_indices(self, idx: np.ndarray) -> np.ndarray:
        """Through a table of all 15,625 cells' live forms (built once per process)."""
        if not len(idx):
            return idx
        return _live_table()[_codes(idx)]

    def connected_indices(self, idx: np.ndarray) -> np.ndarray:
        if not len(idx):
            return np.zeros(0, dtype=bool)
        return (_live_table()[_codes(idx)] != OPS.index("none")).any(axis=1)

    def path_encoding_size(self) -> int:
        return sum((len(OPS) - 1) ** len(path) for path in _paths())

    def path_encode_indices(self, idx: np.ndarray) -> np.ndarray:
        """One feature per path from the input node to the output node and per sequence of
        operations on it (``none`` ends a path): 4 + 2 x 16 + 64 = 100 features; an edge
        that lies on no path does not show (dead operations encode like ``none``)."""
        idx = np.asarray(idx, dtype=np.int64)
        out = np.zeros((len(idx), self.path_encoding_size()), dtype=np.float32)
        rows, base, labels = np.arange(len(idx)), 0, len(OPS) - 1
        for path in _paths():
            ops = idx[:, list(path)] - 1  # none is option 0: -1 means the path is cut
            alive = (ops >= 0).all(axis=1)
            slot = (np.maximum(ops, 0) * labels ** np.arange(len(path))).sum(axis=1)
            out[rows[alive], base + slot[alive]] = 1.0
            base += labels ** len(path)
        return out

    def growth(self) -> tuple[tuple[int, ...], ...]:
        """Node by node, as PNAS adds blocks: the edge from the input to the output first (a
        one-operation cell), then node 1 with its edges in and out, then node 2 with its three."""
        return ((EDGES.index((3, 0)),), (EDGES.index((1, 0)), EDGES.index((3, 1))),
                (EDGES.index((2, 0)), EDGES.index((2, 1)), EDGES.index((3, 2))))

    def from_choices(self, choices: Sequence[str]) -> NB201Arch:
        return NB201Arch(self, tuple(choices))

    def parse(self, text: str) -> NB201Arch:
        text = text.strip()
        groups = text.split("+")
        shape_ok = len(groups) == 3 and all(re.fullmatch(r"\|([^|~]+~\d\|)+", g) for g in groups)
        if not shape_ok:
            raise ArchError(f"malformed nb201 arch string {text!r}: expected "
                            "'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|' with ops from " + ", ".join(OPS))
        ops = []
        for to, group in enumerate(groups, 1):
            items = group.strip("|").split("|")
            if len(items) != to:
                raise ArchError(f"nb201: node {to} needs {to} incoming edges, got {len(items)} in {group!r}")
            for frm, item in enumerate(items):
                op, src = item.split("~")
                if int(src) != frm:
                    raise ArchError(f"nb201: edge {item!r} into node {to} should come from node {frm}")
                ops.append(op)
        return NB201Arch(self, tuple(ops))

    def format(self, arch: Arch) -> str:
        e = arch.choices
        return f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|"

    def references(self) -> dict[str, Arch]:
        return {
            "best-cifar10": self.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                                       "|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"),
            "resnet": self.parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"),
            "all-skip": self.from_choices(["skip_connect"] * 6),
            "largest": self.from_choices(["nor_conv_3x3"] * 6),
        }

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "resolution": self.resolution, "channels": self.channels,
                "cells_per_stage": self.cells_per_stage, "num_classes": self.num_classes, "ops": list(OPS)}

    def build(self, arch: Arch) -> Any:
        from hwnas.nn.blocks import CellNet

        return CellNet(self.plan(self.live(arch)), str(arch))  # dead operations are not built

    def supernet(self, partial_channels: int = 1) -> Any:
        from hwnas.nn.supernets import CellSupernet

        return CellSupernet(self, partial_channels)


@functools.lru_cache(maxsize=1)
def _paths() -> tuple[tuple[int, ...], ...]:
    """Every path from node 0 to the last node, as the positions of its edges, shortest first."""
    found: list[tuple[int, ...]] = []

    def walk(node: int, path: tuple[int, ...]) -> None:
        if node == NODES - 1:
            found.append(path)
            return
        for pos, (to, frm) in enumerate(EDGES):
            if frm == node:
                walk(to, path + (pos,))

    walk(0, ())
    return tuple(sorted(found, key=len))


def _reached(choices: Sequence[str]) -> set[int]:
    """The nodes a path of operations from node 0 reaches."""
    reach = {0}
    for (to, frm), op in zip(EDGES, choices):  # edges come in topological order
        if op != "none" and frm in reach:
            reach.add(to)
    return reach


def _codes(idx: np.ndarray) -> np.ndarray:
    """Each row's position in :func:`itertools.product` order."""
    return np.asarray(idx) @ (len(OPS) ** np.arange(len(EDGES) - 1, -1, -1))


@functools.lru_cache(maxsize=1)
def _live_table() -> np.ndarray:
    space = NB201Space()
    every = np.array(list(itertools.product(range(len(OPS)), repeat=len(EDGES))))
    return SearchSpace.live_indices(space, every)
