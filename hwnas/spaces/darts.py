"""The ``darts`` space: the NASNet / DARTS cell space (Zoph et al. 2018; Liu et al. 2019).

A network is a stem and ``cells`` cells (DARTS's ``layers``), each reading the outputs of the two cells before
it; the cells at 1/3 and 2/3 of the depth are reduction cells (stride 2 on the cell's
inputs, channels doubled), the others normal cells, and every normal cell shares one
genotype, every reduction cell the other. A cell preprocesses its two inputs to ``C``
channels (a 1x1 ReLU-conv-BN, or a factorized reduction after a reduction cell), then each
of its ``nodes`` intermediate nodes sums two operations, each on an earlier state of the
cell (either input or an earlier node), and the cell's output concatenates nodes: all of
them in the DARTS space, those no other node reads in NASNet's (the ``nasnet`` preset).

Decisions, per cell type and per node: two edges, each an operation on an earlier state
(``op~state``), 2 x 4 x 2 = 16 of them in the DARTS space. A node may read one state twice,
as NASNet's and AmoebaNet's cells do (DARTS's derivation picks two distinct ones). The arch string is DARTS's own genotype notation, e.g.
``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...],
reduce_concat=[2, 3, 4, 5])``; it is read without evaluating code (``range(2, 6)`` is
accepted for a concat). The layers, the module and the counts follow the published DARTS
code (``cnn/model.py``, ``cnn/operations.py``): DARTS_V2 at C = 36, 20 cells, 10 classes has
3,349,342 parameters without its auxiliary head, the figure that code prints.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Sequence

import numpy as np

from hwnas.errors import ArchError
from hwnas.layers import LayerSpec, Shape
from hwnas.ops import Counts, conv_counts, lazy_builder, register_op
from hwnas.spaces.base import Arch, Decision, SearchSpace
from hwnas.spaces.darts_genotypes import GENOTYPES

PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
              "dil_conv_3x3", "dil_conv_5x5")
"""The DARTS search space's eight operations, in DARTS's order."""
NASNET_OPS = PRIMITIVES + ("sep_conv_7x7", "conv_7x1_1x7")
"""NASNet's and AmoebaNet's cells also use these (the DARTS code builds them too)."""
CELLS = ("normal", "reduce")
RELU_FIRST = ("sep_conv", "dil_conv", "conv_7x1_1x7")
"""Operations whose first step is a ReLU of their input (DARTS's ``operations.py``)."""
WEIGHTLESS = ("none", "max_pool_3x3", "avg_pool_3x3")

Edge = tuple[str, int]
"""(operation, the state it reads: 0 and 1 the cell's inputs, 2.. its nodes)."""


@dataclass(frozen=True, repr=False)
class DartsArch(Arch):
    space: "DartsSpace"
    normal: tuple[Edge, ...]
    reduce: tuple[Edge, ...]

    def __post_init__(self) -> None:
        for cell in CELLS:
            edges = getattr(self, cell)
            if len(edges) != 2 * self.space.nodes:
                raise ArchError(f"darts: a {cell} cell has {2 * self.space.nodes} (operation, input) pairs, two per "
                                f"node, not {len(edges)}")
            for e, (op, src) in enumerate(edges):
                if op not in self.space.ops:
                    raise ArchError(f"darts: unknown operation {op!r} in the {cell} cell; allowed: "
                                    f"{', '.join(self.space.ops)}")
                if not 0 <= src < e // 2 + 2:
                    raise ArchError(f"darts: node {e // 2 + 2} of the {cell} cell reads state {src}, but only "
                                    f"states 0..{e // 2 + 1} come before it")

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(f"{op}~{src}" for cell in CELLS for op, src in getattr(self, cell))

    def concat(self, cell: str) -> list[int]:
        return self.space.concat_of(getattr(self, cell))


@dataclass(frozen=True)
class DartsSpace(SearchSpace):
    overridable: ClassVar[tuple[str, ...]] = ("resolution", "num_classes", "channels", "cells", "auxiliary")
    preset: str = "cifar"
    resolution: int = 32
    #: C, the first cells' channels (doubled at each reduction), and the number of cells
    channels: int = 36
    cells: int = 20
    num_classes: int = 10
    #: intermediate nodes per cell, each summing two inputs from earlier nodes
    nodes: int = 4
    #: the auxiliary classifier at 2/3 of the depth (trained, not exported)
    auxiliary: bool = True
    ops: tuple[str, ...] = PRIMITIVES
    #: which nodes a cell outputs: ``all`` (DARTS) or ``unused``, those no node reads (NASNet)
    output: str = "all"
    #: the stem's width, in multiples of C
    stem_multiplier: int = 3
    name = "darts"

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "cifar": {},
        "small": {"channels": 8, "cells": 5, "auxiliary": False},
        "nasnet": {"nodes": 5, "ops": NASNET_OPS, "output": "unused"},
    }

    def __post_init__(self) -> None:
        if self.resolution % 4 or self.channels % 2 or self.cells < 3:
            raise ArchError(f"darts: the resolution must be a multiple of 4 (two reductions), the channels even "
                            f"(factorized reductions halve them) and at least 3 cells; got {self.resolution} px, "
                            f"C = {self.channels}, {self.cells} cells")

    # -- decisions and strings ------------------------------------------------------
    def decisions(self) -> tuple[Decision, ...]:
        """One per edge: which operation on which earlier state (``op~state``), so that each
        decision alone fixes its layer and latency is additive over decisions."""
        return tuple(Decision(f"{cell}.node{k + 2}.edge{j}",
                              tuple(f"{op}~{src}" for src in range(k + 2) for op in self.ops))
                     for cell in CELLS for k in range(self.nodes) for j in range(2))

    def from_choices(self, choices: Sequence[str]) -> DartsArch:
        pairs = []
        for c in choices:
            op, _, src = str(c).rpartition("~")
            if not op or not src.isdigit():
                raise ArchError(f"darts: a choice is 'operation~state' (e.g. sep_conv_3x3~0), not {c!r}")
            pairs.append((op, int(src)))
        half = len(pairs) // 2
        return DartsArch(self, tuple(pairs[:half]), tuple(pairs[half:]))

    def concat_of(self, edges: Sequence[Edge]) -> list[int]:
        states = range(2, 2 + self.nodes)
        if self.output == "all":
            return list(states)
        read = {src for _, src in edges}
        return [s for s in states if s not in read]

    def format(self, arch: Arch) -> str:
        a: DartsArch = arch  # type: ignore[assignment]
        return (f"Genotype(normal={list(a.normal)}, normal_concat={a.concat('normal')}, "
                f"reduce={list(a.reduce)}, reduce_concat={a.concat('reduce')})")

    def parse(self, text: str) -> DartsArch:
        """DARTS's genotype notation, read as literals only (never evaluated)."""
        m = re.fullmatch(r"\s*Genotype\((.*)\)\s*", text, re.S)
        hint = ("expected DARTS's notation, e.g. Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], "
                "reduce=[...], reduce_concat=[2, 3, 4, 5])")
        if m is None:
            raise ArchError(f"malformed darts arch string {text[:80]!r}: {hint}")
        body = re.sub(r"range\(\s*(\d+)\s*,\s*(\d+)\s*\)", lambda r: str(list(range(int(r[1]), int(r[2])))), m[1])
        body = re.sub(r"(?<![\w'])(\w+)\s*=", r"'\1':", body)
        try:
            fields = ast.literal_eval("{" + body + "}")
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise ArchError(f"malformed darts arch string {text[:80]!r}: {hint}") from None
        if not isinstance(fields, dict) or set(fields) != {"normal", "normal_concat", "reduce", "reduce_concat"}:
            raise ArchError(f"darts arch string: need exactly normal, normal_concat, reduce, reduce_concat; {hint}")
        cells = {}
        for cell in CELLS:
            edges = fields[cell]
            if not isinstance(edges, (list, tuple)) or not all(
                    isinstance(e, (list, tuple)) and len(e) == 2 and isinstance(e[0], str) and isinstance(e[1], int)
                    for e in edges):
                raise ArchError(f"darts arch string: {cell} must be a list of (operation, input) pairs; {hint}")
            cells[cell] = tuple((str(op), int(src)) for op, src in edges)
        arch = DartsArch(self, cells["normal"], cells["reduce"])
        for cell in CELLS:
            if list(fields[f"{cell}_concat"]) != arch.concat(cell):
                raise ArchError(f"darts arch string: {cell}_concat {list(fields[f'{cell}_concat'])} is not what this "
                                f"space's cells output ({arch.concat(cell)}: {self.output} of the nodes)")
        return arch

    # -- layers ---------------------------------------------------------------------
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.resolution, self.resolution)

    def reductions(self) -> tuple[int, int]:
        return (self.cells // 3, 2 * self.cells // 3)

    # -- dead cells -----------------------------------------------------------------
    #: a cell that reads neither the cell before it nor the one before that leaves that
    #: cell's output unread; when no later cell reads a cell, the exported graph drops it
    #: whole (ONNX export and ONNX Runtime remove what does not reach the output). Such
    #: networks run much faster than their genotype says. A ``none`` edge reads its state:
    #: it is DARTS's multiplication by zero, which the runtime computes (it cannot fold
    #: ``x * 0`` to zeros, since ``inf * 0`` is NaN), so it keeps the cell it reads alive.
    has_dead_ops: ClassVar[bool] = True

    def live_indices(self, idx: np.ndarray) -> np.ndarray:
        """Dead code here is whole cells, not operations (see :meth:`live_weights`)."""
        return idx

    def connected_indices(self, idx: np.ndarray) -> np.ndarray:
        return np.ones(len(idx), dtype=bool)

    @cached_property
    def _reads(self) -> list[np.ndarray]:
        """Per decision and option, the cell input it reads (0 or 1), else -1 (a node)."""
        states = [np.array([int(c.rpartition("~")[2]) for c in d.choices]) for d in self.decisions()]
        return [np.where(s < 2, s, -1) for s in states]

    def live_cells(self, idx: np.ndarray) -> np.ndarray:
        """(n, cells) booleans: which cells' outputs reach the classifier."""
        idx = np.asarray(idx)
        half = len(self._reads) // 2
        src = np.stack([reads[idx[:, i]] for i, reads in enumerate(self._reads)], axis=1)
        uses = {False: ((src[:, :half] == 0).any(1), (src[:, :half] == 1).any(1)),
                True: ((src[:, half:] == 0).any(1), (src[:, half:] == 1).any(1))}
        live = np.zeros((len(idx), self.cells), dtype=bool)
        live[:, -1] = True
        for k in range(self.cells - 1, -1, -1):
            reads_pp, reads_p = uses[k in self.reductions()]
            if k >= 1:
                live[:, k - 1] |= live[:, k] & reads_p
            if k >= 2:
                live[:, k - 2] |= live[:, k] & reads_pp
        return live

    def live_weights(self, idx: np.ndarray) -> np.ndarray:
        """Per decision, the share of its cell type's cells that are live (a decision's layers
        are one per cell of its type, see :meth:`option_layers`)."""
        live = self.live_cells(idx)
        reduction = np.array([k in self.reductions() for k in range(self.cells)])
        half = len(self._reads) // 2
        normal, reduce = live[:, ~reduction].mean(axis=1), live[:, reduction].mean(axis=1)
        return np.concatenate([np.repeat(normal[:, None], half, axis=1), np.repeat(reduce[:, None], half, axis=1)],
                              axis=1)

    def wiring_counts(self, idx: np.ndarray, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Per cell type, the ReLUs and the weightless operations (``none``, the poolings)
        that two or more edges apply to the same state: every convolution here starts with
        a ReLU of its input, and ONNX Runtime computes a repeated one once. With
        :meth:`live_weights`, each count is weighted by its cell type's share of live cells."""
        idx = np.asarray(idx)
        per_cell = 2 * self.nodes
        states, codes = self.nodes + 2, len(self.ops) * (self.nodes + 2)
        out: dict[str, np.ndarray] = {}
        for c, cell in enumerate(CELLS):
            edges = range(c * per_cell, (c + 1) * per_cell)
            relu = np.stack([self._relu_state[i][idx[:, i]] for i in edges], 1)
            weightless = np.stack([self._weightless_code[i][idx[:, i]] for i in edges], 1)
            share = 1.0 if weights is None else weights[:, c * per_cell]
            out[f"{cell}.shared_relu"] = share * ((relu >= 0).sum(1) - _distinct(relu, states))
            out[f"{cell}.shared_weightless"] = share * ((weightless >= 0).sum(1) - _distinct(weightless, codes))
        return out

    @cached_property
    def _relu_state(self) -> list[np.ndarray]:
        """Per decision and option, the state a ReLU-first operation reads, else -1."""
        return [np.array([int(c.rpartition("~")[2]) if c.startswith(RELU_FIRST) else -1 for c in d.choices])
                for d in self.decisions()]

    @cached_property
    def _weightless_code(self) -> list[np.ndarray]:
        """Per decision and option, (operation, state) as one code for a weightless
        operation, else -1."""
        out = []
        for d in self.decisions():
            codes = []
            for c in d.choices:
                op, _, src = c.rpartition("~")
                codes.append(self.ops.index(op) * (self.nodes + 2) + int(src) if op in WEIGHTLESS else -1)
            out.append(np.array(codes))
        return out

    def plan(self, arch: DartsArch) -> dict[str, Any]:
        """The network's layers: the stem, per cell its two preprocessing layers, its edge
        layers with the states they read and its concat, the head, and the auxiliary head's
        input channels."""
        r = self.resolution
        c_stem = self.stem_multiplier * self.channels
        stem = LayerSpec("conv_bn", (r, r, 3), (r, r, c_stem), kernel=3, stride=1)
        pp: Shape = (r, r, c_stem)
        p: Shape = (r, r, c_stem)
        c, reduction_prev, aux_channels = self.channels, False, 0
        cells = []
        for i in range(self.cells):
            reduction = i in self.reductions()
            c = 2 * c if reduction else c
            edges = arch.reduce if reduction else arch.normal
            h = p[0]
            pre0 = LayerSpec("factorized_reduce", pp, (h, h, c)) if reduction_prev else \
                LayerSpec("nor_conv_1x1", pp, (pp[0], pp[1], c), kernel=1, stride=1)
            pre1 = LayerSpec("nor_conv_1x1", p, (h, h, c), kernel=1, stride=1)
            out = h // 2 if reduction else h
            layers = [edge_layer(op, (h, h, c) if src < 2 else (out, out, c), (out, out, c),
                                 2 if reduction and src < 2 else 1) for op, src in edges]
            concat = self.concat_of(edges)
            cells.append({"pre": [pre0, pre1], "edges": layers, "inputs": [src for _, src in edges],
                          "concat": concat, "reduction": reduction})
            pp, p = p, (out, out, len(concat) * c)
            reduction_prev = reduction
            if i == self.reductions()[1]:
                aux_channels = p[2]
        head = LayerSpec("gap_linear", p, (1, 1, self.num_classes))
        return {"stem": stem, "cells": cells, "head": head, "aux_channels": aux_channels}

    @cached_property
    def _skeleton(self) -> dict[str, Any]:
        """The plan of one genotype: its shapes and fixed layers are every genotype's when cells
        output all their nodes (asked once per decision and option by the predictors)."""
        return self.plan(self.from_choices([d.choices[0] for d in self.decisions()]))

    def _additive(self) -> None:
        if self.output != "all":
            raise NotImplementedError(f"darts/{self.preset}: a cell that outputs only its unused nodes makes the next "
                                      "cell's preprocessing depend on the whole genotype, so latency is not additive "
                                      "over decisions; tables and LUT-sum work on whole networks (arch.keys())")

    def fixed_layers(self) -> list[LayerSpec]:
        """The stem, every cell's two preprocessing layers and the head (the same for every
        genotype when cells output all their nodes)."""
        self._additive()
        plan = self._skeleton
        return [plan["stem"], *(s for cell in plan["cells"] for s in cell["pre"]), plan["head"]]

    def option_layers(self, position: int, option: str) -> list[LayerSpec]:
        """The layers of edge ``position`` when it is ``op~state``: one in every cell of its type."""
        self._additive()
        cell_type = CELLS[position // (2 * self.nodes)]
        op, _, src = option.rpartition("~")
        out = []
        for cell in self._skeleton["cells"]:
            if (cell_type == "reduce") != cell["reduction"]:
                continue
            h_in, c, h_out = cell["pre"][1].output[0], cell["pre"][1].output[2], cell["edges"][0].output[0]
            reads_input = int(src) < 2
            out.append(edge_layer(op, (h_in, h_in, c) if reads_input else (h_out, h_out, c), (h_out, h_out, c),
                                  2 if cell["reduction"] and reads_input else 1))
        return out

    def counted_as(self, position: int, option: str) -> str:
        """``cell.op``, and ``.stride2`` for a reduction cell's edge on a cell input: what
        an edge costs depends on its cell type and stride, not on which state it reads
        (this grouping raised the shipped small set's hold-out τ from 0.745 to 0.79)."""
        cell_type = CELLS[position // (2 * self.nodes)]
        op, _, src = option.rpartition("~")
        strided = cell_type == "reduce" and int(src) < 2
        return f"{cell_type}.{op}" + (".stride2" if strided else "")

    def layers(self, arch: Arch) -> list[LayerSpec]:
        plan = self.plan(arch)  # type: ignore[arg-type]
        return [plan["stem"], *(s for cell in plan["cells"] for s in (*cell["pre"], *cell["edges"])), plan["head"]]

    def all_layers(self) -> list[LayerSpec]:
        """Every operation on either kind of input in every cell, and the preprocessing and head
        for every number of nodes a cell may output (one number in the DARTS space)."""
        seen: dict[LayerSpec, None] = {}
        widths = [self.nodes] if self.output == "all" else list(range(1, self.nodes + 1))
        r = self.resolution
        c_stem = self.stem_multiplier * self.channels
        stem = LayerSpec("conv_bn", (r, r, 3), (r, r, c_stem), kernel=3, stride=1)
        seen[stem] = None
        shapes: set[tuple[Shape, Shape]] = {((r, r, c_stem), (r, r, c_stem))}
        c, reduction_prev = self.channels, False
        for i in range(self.cells):
            reduction = i in self.reductions()
            c = 2 * c if reduction else c
            after: set[tuple[Shape, Shape]] = set()
            for pp, p in sorted(shapes):
                h = p[0]
                out = h // 2 if reduction else h
                seen.setdefault(LayerSpec("factorized_reduce", pp, (h, h, c)) if reduction_prev else
                                LayerSpec("nor_conv_1x1", pp, (pp[0], pp[1], c), kernel=1, stride=1), None)
                seen.setdefault(LayerSpec("nor_conv_1x1", p, (h, h, c), kernel=1, stride=1), None)
                for op in self.ops:
                    seen.setdefault(edge_layer(op, (h, h, c), (out, out, c), 2 if reduction else 1), None)
                    seen.setdefault(edge_layer(op, (out, out, c), (out, out, c), 1), None)
                after |= {(p, (out, out, w * c)) for w in widths}
            shapes, reduction_prev = after, reduction
        for _, p in sorted(shapes):
            seen.setdefault(LayerSpec("gap_linear", p, (1, 1, self.num_classes)), None)
        return list(seen)

    def references(self) -> dict[str, Arch]:
        out = {}
        for name, text in GENOTYPES.items():
            try:
                out[name] = self.parse(text)
            except ArchError:
                continue  # a genotype of the other variant (4 or 5 nodes, DARTS's or NASNet's operations)
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "resolution": self.resolution, "channels": self.channels, "cells": self.cells,
                "nodes": self.nodes, "output": self.output, "auxiliary": self.auxiliary, "ops": list(self.ops)}

    def mixed_edges(self, cell: dict[str, Any]) -> dict[tuple[int, int], list[LayerSpec]]:
        """For the supernet: every operation's layer on every (node, earlier state) edge of a cell of
        :meth:`plan`."""
        h_in, c = cell["pre"][1].output[0], cell["pre"][1].output[2]
        h_out = h_in // 2 if cell["reduction"] else h_in
        edges = {}
        for k in range(self.nodes):
            for s in range(k + 2):
                inp = (h_in, h_in, c) if s < 2 else (h_out, h_out, c)
                stride = 2 if cell["reduction"] and s < 2 else 1
                edges[(k, s)] = [edge_layer(op, inp, (h_out, h_out, c), stride) for op in self.ops]
        return edges

    def supernet(self, partial_channels: int = 1) -> Any:
        """DARTS's supernet: both cells, every node on every earlier state (:mod:`hwnas.nn.darts_supernet`)."""
        from hwnas.nn.darts_supernet import darts_supernet

        return darts_supernet(self, partial_channels)

    def build(self, arch: Arch) -> Any:
        from hwnas.nn.darts import DartsCell, DartsNet

        plan = self.plan(arch)  # type: ignore[arg-type]
        cells = [DartsCell(c["pre"], c["edges"], c["inputs"], c["concat"]) for c in plan["cells"]]
        return DartsNet(plan["stem"], cells, plan["head"], str(arch),
                        aux_at=self.reductions()[1] if self.auxiliary else None,
                        aux_channels=plan["aux_channels"], num_classes=self.num_classes)


def _distinct(values: np.ndarray, size: int) -> np.ndarray:
    """Per row, how many distinct values in 0..size-1 it holds (negative ones ignored)."""
    seen = np.zeros((len(values), size + 1), dtype=bool)
    seen[np.arange(len(values))[:, None], np.where(values >= 0, values, size)] = True
    return seen[:, :size].sum(1)


def edge_layer(op: str, inp: Shape, out: Shape, stride: int) -> LayerSpec:
    """The layer of one operation of a cell (as DARTS's ``OPS`` builds it)."""
    if op == "none":
        return LayerSpec("none", inp, out, stride=stride)
    if op == "skip_connect":
        return LayerSpec("skip_connect", inp, out) if stride == 1 else LayerSpec("factorized_reduce", inp, out)
    if op == "conv_7x1_1x7":
        return LayerSpec("conv_7x1_1x7", inp, out, kernel=7, stride=stride)
    kind, _, size = op.rpartition("_")
    kernel = int(size.split("x")[0])
    name = {"max_pool": "max_pool", "avg_pool": "avg_pool_3x3", "sep_conv": "sep_conv", "dil_conv": "dil_conv"}[kind]
    return LayerSpec(name, inp, out, kernel=kernel, stride=stride)


def _sep_conv_count(s: LayerSpec) -> Counts:
    c, k, (h, w, _) = s.input[2], s.kernel or 3, s.output
    first = conv_counts(c, (h, w, c), k, groups=c, bn=False) + conv_counts(c, (h, w, c), 1)
    return first + conv_counts(c, (h, w, c), k, groups=c, bn=False) + conv_counts(c, s.output, 1)


def _dil_conv_count(s: LayerSpec) -> Counts:
    c, (h, w, _) = s.input[2], s.output
    return conv_counts(c, (h, w, c), s.kernel or 3, groups=c, bn=False) + conv_counts(c, s.output, 1)


def _factorized_reduce_count(s: LayerSpec) -> Counts:
    h, w, c = s.output
    half = conv_counts(s.input[2], (h, w, c // 2), 1, bn=False)
    return half + half + Counts(2 * c, 0)


def _conv_7x1_1x7_count(s: LayerSpec) -> Counts:
    c, (h, w, c_out) = s.input[2], s.output
    first = Counts(c * c * 7, s.input[0] * w * c * c * 7)
    return first + Counts(c_out * c * 7 + 2 * c_out, h * w * c_out * c * 7)


def _register_ops() -> None:
    zero = lambda s: Counts(0, 0)  # noqa: E731
    for name, build, count in (
            ("sep_conv", lazy_builder("sep_conv", "darts"), _sep_conv_count),
            ("dil_conv", lazy_builder("dil_conv", "darts"), _dil_conv_count),
            ("conv_7x1_1x7", lazy_builder("conv_7x1_1x7", "darts"), _conv_7x1_1x7_count),
            ("max_pool", lazy_builder("max_pool", "darts"), zero),
            ("factorized_reduce", lazy_builder("FactorizedReduce", "darts"), _factorized_reduce_count),
            ("gap_linear", lazy_builder("GapLinear", "darts"),
             lambda s: Counts(s.input[2] * s.output[2] + s.output[2], s.input[2] * s.output[2]))):
        register_op(name, build, count)


_register_ops()
