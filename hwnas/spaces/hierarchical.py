"""The ``hierarchical`` space: Liu et al. 2018, "Hierarchical Representations for Efficient
Architecture Search" (ICLR), the three-level representation it searches on CIFAR-10.

- Level 1, six primitives on C channels, stride 1, resolution kept: ``conv1x1``,
  ``dw3x3`` (depthwise), ``sep3x3`` (depthwise then pointwise), each followed by BN and
  ReLU, ``max3x3`` and ``avg3x3`` pooling, and ``id`` (identity); ``none`` is no edge.
- Level 2, six motifs ``m1``..``m6``: DAGs of 4 nodes whose 6 edges (i -> j, i < j) each hold a
  primitive or ``none``.
- Level 3, one motif (the cell): a DAG of 5 nodes whose 10 edges each hold a level-2 motif
  or ``none``.

A node merges its inputs by depthwise concatenation, as in the paper; a 1x1 convolution (BN,
ReLU) then returns the concatenation to C channels so that every primitive reads C channels
(the paper fixes primitives to C channels without saying how the concatenation's width
returns to C). A node with one input passes it on. The first node of a motif is its input,
the last its output. Only the *live* operations are built: those on a path from the input
to the output through edges that are not ``none`` (a motif with no such path counts as
``none`` where it is used); a cell with no live path outputs zeros.

The skeleton is the paper's small CIFAR model: a 3x3 conv (C), the cell, a 3x3 separable
conv of stride 2 (2C), the cell, another (4C), the cell, a 3x3 separable conv (4C), global
pooling and the classifier. The same cell is used at the three resolutions, each with
its own weights (as is every occurrence of a motif).

Decisions: the 36 edges of the six level-2 motifs (``m1.e12`` ... ``m6.e34``), then the 10 of
the cell (``cell.e12`` ... ``cell.e45``); edges are ordered by target node, then source. The
arch string gives each motif's edges in that order: ``m1=sep3x3.id.none.conv1x1.max3x3.none|...|
cell=m1.none.m2...``. Because a motif's layers appear once per live use, latency is not
additive over decisions (``additive = False``): tables and predictors sum over the layers the
network really has. Mutation is the paper's: a level, a motif of it, an edge, a new
operation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Sequence

from hwnas.errors import ArchError
from hwnas.layers import LayerSpec, Shape
from hwnas.ops import Counts, conv_counts, lazy_builder, register_op
from hwnas.spaces.base import Arch, Decision, SearchSpace, Seed, rng_of

PRIMITIVES: tuple[str, ...] = ("none", "id", "conv1x1", "dw3x3", "sep3x3", "max3x3", "avg3x3")
"""Level-1 operations (``none``: no edge)."""
MOTIFS = 6
MOTIF_NODES = 4
CELL_NODES = 5
LEVEL3: tuple[str, ...] = ("none",) + tuple(f"m{i + 1}" for i in range(MOTIFS))
PRIMITIVE_OPS = {"conv1x1": "hier_conv1x1", "dw3x3": "hier_dw3x3", "sep3x3": "hier_sep3x3",
                 "max3x3": "max_pool", "avg3x3": "avg_pool_3x3"}
"""Each layer-making primitive's op in layer specs (the pools are the DARTS space's layers)."""
MAX_IN = CELL_NODES - 1


def edges(nodes: int) -> tuple[tuple[int, int], ...]:
    """Edges (source, target) of a motif of ``nodes`` nodes, 0-based, by target then source."""
    return tuple((i, j) for j in range(1, nodes) for i in range(j))


def live_edges(ops: Sequence[str], nodes: int, usable: Any = None) -> tuple[bool, ...]:
    """Which edges are on a path from node 0 to the last node through usable edges (an edge
    whose operation is not ``none`` and, when ``usable`` is given, for which it says True)."""
    es = edges(nodes)
    ok = [op != "none" and (usable is None or usable(op)) for op in ops]
    forward = [True] + [False] * (nodes - 1)
    for (i, j), good in zip(es, ok):
        forward[j] = forward[j] or (good and forward[i])
    backward = [False] * (nodes - 1) + [True]
    for (i, j), good in sorted(zip(es, ok), key=lambda e: -e[0][0]):
        backward[i] = backward[i] or (good and backward[j])
    return tuple(good and forward[i] and backward[j] for (i, j), good in zip(es, ok))


def in_degrees(live: Sequence[bool], nodes: int) -> list[int]:
    deg = [0] * nodes
    for (_, j), on in zip(edges(nodes), live):
        deg[j] += on
    return deg


@dataclass(frozen=True, repr=False)
class HierarchicalArch(Arch):
    space: "HierarchicalSpace"
    motifs: tuple[tuple[str, ...], ...]
    """The six level-2 motifs' edge operations."""
    cell: tuple[str, ...]
    """The level-3 motif's edge operations."""

    def __post_init__(self) -> None:
        n2, n3 = len(edges(MOTIF_NODES)), len(edges(CELL_NODES))
        if len(self.motifs) != MOTIFS or any(len(m) != n2 for m in self.motifs) or len(self.cell) != n3:
            raise ArchError(f"hierarchical: {MOTIFS} level-2 motifs of {n2} edges and a cell of {n3} edges")
        for m in self.motifs:
            for op in m:
                if op not in PRIMITIVES:
                    raise ArchError(f"hierarchical: unknown primitive {op!r}; known: {', '.join(PRIMITIVES)}")
        for op in self.cell:
            if op not in LEVEL3:
                raise ArchError(f"hierarchical: a cell edge holds none or a motif m1..m{MOTIFS}, not {op!r}")

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(op for m in self.motifs for op in m) + self.cell

    @cached_property
    def live_motifs(self) -> tuple[tuple[bool, ...], ...]:
        """Per level-2 motif, which of its edges are live within it."""
        return tuple(live_edges(m, MOTIF_NODES) for m in self.motifs)

    @cached_property
    def live_cell(self) -> tuple[bool, ...]:
        """Which cell edges are live (their motif has a live path, and they lie on one)."""
        return live_edges(self.cell, CELL_NODES, lambda op: any(self.live_motifs[int(op[1:]) - 1]))

    def used_motifs(self) -> set[int]:
        return {int(op[1:]) - 1 for op, on in zip(self.cell, self.live_cell) if on}


@dataclass(frozen=True)
class HierarchicalSpace(SearchSpace):
    overridable: ClassVar[tuple[str, ...]] = ("resolution", "num_classes", "channels")
    preset: str = "cifar"
    resolution: int = 32
    channels: int = 16
    num_classes: int = 10
    name = "hierarchical"
    additive: ClassVar[bool] = False

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "cifar": {},
        "small": {"resolution": 16, "channels": 8},
    }

    def __post_init__(self) -> None:
        if self.resolution % 4 or self.channels < 1:
            raise ArchError(f"hierarchical: the resolution must be a multiple of 4 (two halvings) and the channels "
                            f"positive; got {self.resolution} px, C = {self.channels}")

    # -- decisions and strings ------------------------------------------------------
    def decisions(self) -> tuple[Decision, ...]:
        level2 = [Decision(f"m{m + 1}.e{i + 1}{j + 1}", PRIMITIVES) for m in range(MOTIFS)
                  for i, j in edges(MOTIF_NODES)]
        return tuple(level2 + [Decision(f"cell.e{i + 1}{j + 1}", LEVEL3) for i, j in edges(CELL_NODES)])

    def from_choices(self, choices: Sequence[str]) -> HierarchicalArch:
        n2 = len(edges(MOTIF_NODES))
        c = [str(x) for x in choices]
        if len(c) != MOTIFS * n2 + len(edges(CELL_NODES)):
            raise ArchError(f"hierarchical: expected {MOTIFS * n2 + len(edges(CELL_NODES))} decisions, got {len(c)}")
        return HierarchicalArch(self, tuple(tuple(c[m * n2:(m + 1) * n2]) for m in range(MOTIFS)),
                                tuple(c[MOTIFS * n2:]))

    def parse(self, text: str) -> HierarchicalArch:
        parts = dict(p.split("=", 1) for p in text.strip().split("|") if "=" in p)
        names = [f"m{i + 1}" for i in range(MOTIFS)] + ["cell"]
        if sorted(parts) != sorted(names) or text.count("|") != len(names) - 1:
            raise ArchError(f"hierarchical: an arch string is m1=..|..|m{MOTIFS}=..|cell=.. (each motif's edge "
                            f"operations joined by '.'), not {text!r}")
        return self.from_choices([op for n in names for op in parts[n].split(".")])

    def format(self, arch: Arch) -> str:
        a: HierarchicalArch = arch  # type: ignore[assignment]
        return "|".join([f"m{i + 1}=" + ".".join(m) for i, m in enumerate(a.motifs)] + ["cell=" + ".".join(a.cell)])

    def references(self) -> dict[str, Arch]:
        """``trivial``: the paper's starting genotype (every motif a chain of identities);
        ``sep_chain``: every motif a chain of separable convolutions, the cell a chain of m1."""
        def chain(op: str, nodes: int) -> tuple[str, ...]:
            return tuple(op if j == i + 1 else "none" for i, j in edges(nodes))

        return {"trivial": HierarchicalArch(self, (chain("id", MOTIF_NODES),) * MOTIFS, chain("m1", CELL_NODES)),
                "sep_chain": HierarchicalArch(self, (chain("sep3x3", MOTIF_NODES),) * MOTIFS,
                                              chain("m1", CELL_NODES))}

    def connected(self, arch: Arch) -> bool:
        return any(arch.live_cell)  # type: ignore[attr-defined]

    has_dead_ops: ClassVar[bool] = True

    def live(self, arch: Arch) -> Arch:
        """Dead edges as ``none``, and every edge of a motif the cell does not use (nothing of
        them is built); a disconnected network keeps none."""
        a: HierarchicalArch = arch  # type: ignore[assignment]
        used = a.used_motifs()
        motifs = tuple(tuple(op if on and m in used else "none" for op, on in zip(ops, live))
                       for m, (ops, live) in enumerate(zip(a.motifs, a.live_motifs)))
        return HierarchicalArch(self, motifs, tuple(op if on else "none" for op, on in zip(a.cell, a.live_cell)))

    def mutate(self, arch: Arch, seed: Seed = None) -> Arch:
        """The paper's mutation: a level (2 or 3), a motif of it, an edge of that motif, and a new
        operation for it from the level below (``none`` included), other than the current one."""
        rng = rng_of(seed)
        a: HierarchicalArch = arch  # type: ignore[assignment]
        motifs, cell = [list(m) for m in a.motifs], list(a.cell)
        if rng.integers(2) == 0:
            ops, options = motifs[int(rng.integers(MOTIFS))], PRIMITIVES
        else:
            ops, options = cell, LEVEL3
        e = int(rng.integers(len(ops)))
        others = [o for o in options if o != ops[e]]
        ops[e] = others[int(rng.integers(len(others)))]
        return HierarchicalArch(self, tuple(tuple(m) for m in motifs), tuple(cell))

    def simplest(self) -> tuple[int, ...]:
        """Every edge ``none``: the network of the skeleton alone."""
        return (0,) * len(self.decisions())

    # -- layers ---------------------------------------------------------------------
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.resolution, self.resolution)

    def cell_shapes(self) -> tuple[Shape, ...]:
        r, c = self.resolution, self.channels
        return ((r, r, c), (r // 2, r // 2, 2 * c), (r // 4, r // 4, 4 * c))

    def fixed_layers(self) -> list[LayerSpec]:
        """Stem, the two stride-2 separable convolutions, the last one and the classifier, in order."""
        r, c = self.resolution, self.channels
        s1, s2, s3 = self.cell_shapes()
        return [LayerSpec("conv_bn", (r, r, 3), s1, kernel=3, stride=1),
                LayerSpec("hier_sep3x3", s1, s2, kernel=3, stride=2),
                LayerSpec("hier_sep3x3", s2, s3, kernel=3, stride=2),
                LayerSpec("hier_sep3x3", s3, s3, kernel=3, stride=1),
                LayerSpec("gap_linear", s3, (1, 1, self.num_classes))]

    @staticmethod
    def primitive_layer(op: str, shape: Shape) -> LayerSpec | None:
        """The layer of a primitive at one cell's shape (None for the identity)."""
        if op == "id":
            return None
        return LayerSpec(PRIMITIVE_OPS[op], shape, shape, kernel=1 if op == "conv1x1" else 3, stride=1)

    @staticmethod
    def merge_layer(k: int, shape: Shape) -> LayerSpec:
        h, w, c = shape
        return LayerSpec("hier_merge", (h, w, k * c), shape, kernel=1, stride=1)

    def plan(self, nodes: int, ops: Sequence[str], live: Sequence[bool], shape: Shape, what: Any) -> tuple:
        """A motif as its module is built: node count, live edges (source, target, ``what(op)``)
        by target then source, and a merge layer per node of several inputs."""
        deg = in_degrees(live, nodes)
        return (nodes, [(i, j, what(op)) for (i, j), op, on in zip(edges(nodes), ops, live) if on],
                {j: self.merge_layer(deg[j], shape) for j in range(nodes) if deg[j] > 1})

    def cell_plan(self, a: HierarchicalArch, shape: Shape) -> tuple:
        def motif(op: str) -> tuple:
            m = int(op[1:]) - 1
            return self.plan(MOTIF_NODES, a.motifs[m], a.live_motifs[m], shape,
                             lambda p: self.primitive_layer(p, shape))

        return self.plan(CELL_NODES, a.cell, a.live_cell, shape, motif)

    @staticmethod
    def plan_layers(plan: tuple) -> list[LayerSpec]:
        """The layers of a motif's plan in the order they run: per node, its inputs' operations,
        then its merge."""
        nodes, live, merges = plan
        out: list[LayerSpec] = []
        for j in range(1, nodes):
            for _, t, what in live:
                if t == j and what is not None:
                    out += [what] if isinstance(what, LayerSpec) else HierarchicalSpace.plan_layers(what)
            if j in merges:
                out.append(merges[j])
        return out

    def cell_layers(self, a: HierarchicalArch, shape: Shape) -> list[LayerSpec]:
        return self.plan_layers(self.cell_plan(a, shape))

    def layers(self, arch: Arch) -> list[LayerSpec]:
        a: HierarchicalArch = arch  # type: ignore[assignment]
        stem, down1, down2, last, logits = self.fixed_layers()
        s1, s2, s3 = self.cell_shapes()
        return [stem, *self.cell_layers(a, s1), down1, *self.cell_layers(a, s2), down2,
                *self.cell_layers(a, s3), last, logits]

    def all_layers(self) -> list[LayerSpec]:
        """Per cell shape: the five layer-making primitives and merges of 2..4 inputs; the fixed layers."""
        seen: dict[LayerSpec, None] = {s: None for s in self.fixed_layers()}
        for shape in self.cell_shapes():
            for op in PRIMITIVE_OPS:
                seen[self.primitive_layer(op, shape)] = None  # type: ignore[index]
            for k in range(2, MAX_IN + 1):
                seen[self.merge_layer(k, shape)] = None
        return list(seen)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "resolution": self.resolution, "channels": self.channels,
                "num_classes": self.num_classes, "motifs": MOTIFS, "motif_nodes": MOTIF_NODES,
                "cell_nodes": CELL_NODES}

    def build(self, arch: Arch) -> Any:
        from hwnas.nn.hierarchical import HierarchicalNet

        a: HierarchicalArch = arch  # type: ignore[assignment]
        return HierarchicalNet(self.fixed_layers(), [self.cell_plan(a, s) for s in self.cell_shapes()], str(arch))


def _sep_count(s: LayerSpec) -> Counts:
    c_in, (h, w, _) = s.input[2], s.output
    return conv_counts(c_in, (h, w, c_in), s.kernel or 3, groups=c_in, bn=False) + conv_counts(c_in, s.output, 1)


def _register_ops() -> None:
    register_op("hier_conv1x1", lazy_builder("conv1x1", "hierarchical"), lambda s: conv_counts(s.input[2], s.output, 1))
    register_op("hier_dw3x3", lazy_builder("dw3x3", "hierarchical"),
                lambda s: conv_counts(s.input[2], s.output, 3, groups=s.input[2]))
    register_op("hier_sep3x3", lazy_builder("sep3x3", "hierarchical"), _sep_count)
    register_op("hier_merge", lazy_builder("Merge", "hierarchical"), lambda s: conv_counts(s.input[2], s.output, 1))


_register_ops()

