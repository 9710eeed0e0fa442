"""The ``randwire`` space: randomly wired networks (Xie et al. 2019, "Exploring Randomly Wired
Neural Networks for Image Recognition").

A network is the paper's small-regime skeleton: a 3x3 conv (C/2), a ReLU-3x3 conv-BN (C, stride
2), three *random stages* of N/2, N and N nodes at C, 2C and 4C channels, then a ReLU-1x1
conv-BN to ``head_channels``, global pooling and the classifier. Each stage's graph comes
from a random graph generator, run by networkx and turned into a DAG as the paper does:
nodes keep the generator's indices and every edge points from the lower index to the
higher. A node sums its inputs with positive learned weights (sigmoid), then ReLU, a 3x3
separable convolution and BN; nodes with no input read the stage's input (stride 2), and
the stage's output is the plain average of the nodes with no output.

Decisions: one per stage, the generator with its parameters and a seed (``ws-k4-p0.75-s3``:
Watts-Strogatz with K = 4, P = 0.75, seed 3; ``er-p0.2-s0``: Erdos-Renyi, ``ba-m5-s1``:
Barabasi-Albert). A seed fixes the realised graph, so a choice fixes a stage's layers and
latency is additive over stages; mutating a decision resamples a stage. The arch string
joins the stages' choices with ``_``. The generators run on every platform the same way
(networkx draws from Python's ``random.Random(seed)``); ``arch.graphs`` holds the realised
DAGs.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Sequence

import numpy as np

from hwnas.errors import ArchError, HwnasError
from hwnas.layers import LayerSpec, Shape
from hwnas.ops import Counts, conv_counts, lazy_builder, register_op
from hwnas.spaces.base import Arch, Decision, SearchSpace

GENERATORS: tuple[str, ...] = ("er-p0.2", "er-p0.4", "er-p0.6", "ba-m1", "ba-m2", "ba-m3", "ba-m5",
                               "ws-k2-p0.25", "ws-k4-p0.25", "ws-k4-p0.75", "ws-k6-p0.75")
"""The generator settings a stage may take (the paper's families; its best of each: ER(0.2),
BA(5), WS(4, 0.75)), where the stage has enough nodes for them."""
FAMILIES = {"er": ("p",), "ba": ("m",), "ws": ("k", "p")}
_CHOICE = re.compile(r"^(er|ba|ws)((?:-[kmp][0-9.]+)+)-s(\d+)$")

GRAPH_STATS = ("input_nodes", "edges", "merges", "outputs")
"""What :meth:`RandWireSpace.wiring_counts` counts per stage."""
Parents = tuple[tuple[int, ...], ...]
"""Per node of a stage, the nodes it reads (empty: it reads the stage's input)."""


def generator_params(generator: str) -> tuple[str, dict[str, float]]:
    """``ws-k4-p0.75`` -> ("ws", {"k": 4, "p": 0.75}), checked against the family's parameters."""
    family, *fields = generator.split("-")
    if family not in FAMILIES:
        raise ArchError(f"randwire: unknown generator family {family!r} in {generator!r}; known: er, ba, ws")
    params = {}
    for f in fields:
        if not f[:1] or not re.fullmatch(r"[0-9]+(\.[0-9]+)?", f[1:]):
            raise ArchError(f"randwire: malformed generator parameter {f!r} in {generator!r}")
        params[f[0]] = float(f[1:])
    if set(params) != set(FAMILIES[family]):
        raise ArchError(f"randwire: generator {family} takes {', '.join(FAMILIES[family])}, got {generator!r}")
    return family, params


def valid_for(generator: str, n: int) -> bool:
    """Whether the generator can make a graph of ``n`` nodes (BA needs M < N, WS K < N, K even)."""
    family, p = generator_params(generator)
    if family == "ba":
        return 1 <= p["m"] < n
    if family == "ws":
        return 2 <= p["k"] < n and p["k"] % 2 == 0
    return 0.0 <= p["p"] <= 1.0


@functools.lru_cache(maxsize=4096)
def realise(generator: str, n: int, seed: int) -> Parents:
    """The DAG of one stage: the generator's undirected graph, edges from lower to higher index."""
    try:
        import networkx as nx
    except ImportError:
        raise HwnasError("the randwire space draws its graphs with networkx: pip install 'hwnas[randwire]'") from None
    family, p = generator_params(generator)
    if not valid_for(generator, n):
        raise ArchError(f"randwire: {generator} cannot make a graph of {n} nodes (BA needs M < N, WS an even K < N)")
    if family == "er":
        g = nx.erdos_renyi_graph(n, p["p"], seed=seed)
    elif family == "ba":
        g = nx.barabasi_albert_graph(n, int(p["m"]), seed=seed)
    else:
        g = nx.watts_strogatz_graph(n, int(p["k"]), p["p"], seed=seed)
    parents: list[list[int]] = [[] for _ in range(n)]
    for a, b in g.edges():
        lo, hi = sorted((int(a), int(b)))
        parents[hi].append(lo)
    return tuple(tuple(sorted(ps)) for ps in parents)


def stage_choice(text: str) -> tuple[str, int]:
    """``ws-k4-p0.75-s3`` -> ("ws-k4-p0.75", 3)."""
    m = _CHOICE.match(text)
    if m is None:
        raise ArchError(f"randwire: a stage is generator-parameters-seed (e.g. ws-k4-p0.75-s3, er-p0.2-s0, ba-m5-s1), "
                        f"not {text!r}")
    return m[1] + m[2], int(m[3])


def sinks(parents: Parents) -> tuple[int, ...]:
    """The nodes no other node reads: the stage's output averages them."""
    read = {p for ps in parents for p in ps}
    return tuple(i for i in range(len(parents)) if i not in read)


@dataclass(frozen=True, repr=False)
class RandWireArch(Arch):
    space: "RandWireSpace"
    stages: tuple[tuple[str, int], ...]
    """(generator, seed) per random stage."""

    def __post_init__(self) -> None:
        sizes = self.space.stage_nodes()
        if len(self.stages) != len(sizes):
            raise ArchError(f"randwire: {len(sizes)} random stages, got {len(self.stages)}")
        for i, ((generator, seed), n) in enumerate(zip(self.stages, sizes)):
            if generator not in self.space.generators:
                raise ArchError(f"randwire: generator {generator!r} is not one of this space's: "
                                f"{', '.join(self.space.generators)}")
            if not valid_for(generator, n):
                raise ArchError(f"randwire: stage {i} has {n} nodes, too few for {generator} "
                                "(BA needs M < N, WS K < N)")
            if not 0 <= seed < self.space.seeds:
                raise ArchError(f"randwire: seed {seed} of stage {i} is outside 0..{self.space.seeds - 1}")

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(f"{g}-s{s}" for g, s in self.stages)

    @cached_property
    def graphs(self) -> tuple[Parents, ...]:
        """The realised DAG of each stage."""
        return tuple(realise(g, n, s) for (g, s), n in zip(self.stages, self.space.stage_nodes()))


@dataclass(frozen=True)
class RandWireSpace(SearchSpace):
    overridable: ClassVar[tuple[str, ...]] = ("resolution", "num_classes", "channels", "nodes", "seeds")
    preset: str = "imagenet"
    resolution: int = 224
    #: C, the first stage's width (doubled at each later stage), and N, the nodes of a full stage
    channels: int = 78
    nodes: int = 32
    num_classes: int = 1000
    #: the 1x1 conv-BN before global pooling, and the stride of the stem's first conv
    head_channels: int = 1280
    stem_stride: int = 2
    #: graph seeds a stage may draw (its decision is a generator setting and one of these seeds)
    seeds: int = 10
    generators: tuple[str, ...] = GENERATORS
    name = "randwire"

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "imagenet": {},
        "small": {"resolution": 32, "channels": 16, "nodes": 12, "num_classes": 10, "head_channels": 256,
                  "stem_stride": 1},
    }

    def __post_init__(self) -> None:
        step = 16 * self.stem_stride
        if self.resolution % step or self.channels % 2 or self.nodes < 4 or self.seeds < 1:
            raise ArchError(f"randwire: the resolution must be a multiple of {step} (four halvings after a stride-"
                            f"{self.stem_stride} stem), the channels even, at least 4 nodes and 1 seed; got "
                            f"{self.resolution} px, C = {self.channels}, N = {self.nodes}, {self.seeds} seeds")

    def stage_nodes(self) -> tuple[int, ...]:
        return (self.nodes // 2, self.nodes, self.nodes)

    # -- decisions and strings ------------------------------------------------------
    def stage_generators(self, stage: int) -> tuple[str, ...]:
        n = self.stage_nodes()[stage]
        return tuple(g for g in self.generators if valid_for(g, n))

    def decisions(self) -> tuple[Decision, ...]:
        """One per stage: a generator setting and a seed (``ws-k4-p0.75-s3``)."""
        return tuple(Decision(f"stage{i + 3}", tuple(f"{g}-s{s}" for g in self.stage_generators(i)
                                                      for s in range(self.seeds)))
                     for i in range(len(self.stage_nodes())))

    def from_choices(self, choices: Sequence[str]) -> RandWireArch:
        return RandWireArch(self, tuple(stage_choice(str(c)) for c in choices))

    def parse(self, text: str) -> RandWireArch:
        return self.from_choices(text.strip().split("_"))

    def format(self, arch: Arch) -> str:
        return "_".join(arch.choices)

    def references(self) -> dict[str, Arch]:
        """The paper's best setting of each generator family, seed 0 in every stage."""
        return {name: self.from_choices([f"{g}-s0"] * 3) for name, g in
                (("ws", "ws-k4-p0.75"), ("er", "er-p0.2"), ("ba", "ba-m5"))
                if all(valid_for(g, n) for n in self.stage_nodes()) and g in self.generators}

    # -- layers ---------------------------------------------------------------------
    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.resolution, self.resolution)

    def _shapes(self) -> list[tuple[Shape, Shape]]:
        """(input, output) shape of each random stage."""
        h = self.resolution // self.stem_stride // 2
        c_in, out = self.channels, []
        for i in range(len(self.stage_nodes())):
            c = self.channels * 2 ** i
            out.append(((h, h, c_in), (h // 2, h // 2, c)))
            h, c_in = h // 2, c
        return out

    def stage_layers(self, stage: int, parents: Parents) -> tuple[list[LayerSpec], LayerSpec | None]:
        """One layer per node (its aggregation, ReLU, separable conv and BN; the input of a node
        reading k others is their k x C channels side by side) and the output average (none
        when one node is the output)."""
        inp, (h, w, c) = self._shapes()[stage]
        nodes = [LayerSpec("rw_node", inp, (h, w, c), kernel=3, stride=2) if not ps else
                 LayerSpec("rw_node", (h, w, len(ps) * c), (h, w, c), kernel=3, stride=1) for ps in parents]
        k = len(sinks(parents))
        return nodes, LayerSpec("rw_mean", (h, w, k * c), (h, w, c)) if k > 1 else None

    def fixed_layers(self) -> list[LayerSpec]:
        r, c = self.resolution, self.channels
        h1 = r // self.stem_stride
        (_, _, _), (h, _, c_last) = self._shapes()[-1]
        return [LayerSpec("conv_bn", (r, r, 3), (h1, h1, c // 2), kernel=3, stride=self.stem_stride),
                LayerSpec("nor_conv_3x3", (h1, h1, c // 2), (h1 // 2, h1 // 2, c), kernel=3, stride=2),
                LayerSpec("nor_conv_1x1", (h, h, c_last), (h, h, self.head_channels), kernel=1, stride=1),
                LayerSpec("relu_gap_linear", (h, h, self.head_channels), (1, 1, self.num_classes))]

    def option_layers(self, position: int, option: str) -> list[LayerSpec]:
        generator, seed = stage_choice(option)
        nodes, mean = self.stage_layers(position, realise(generator, self.stage_nodes()[position], seed))
        return nodes + ([mean] if mean else [])

    def layers(self, arch: Arch) -> list[LayerSpec]:
        stem, conv2, head, logits = self.fixed_layers()
        out = [stem, conv2]
        for i, option in enumerate(arch.choices):
            out += self.option_layers(i, option)
        return out + [head, logits]

    def all_layers(self) -> list[LayerSpec]:
        """Per stage: an input node, a node reading k = 1..N-1 others, the average of k = 2..N
        nodes; and the fixed layers."""
        stem, conv2, head, logits = self.fixed_layers()
        seen: dict[LayerSpec, None] = {stem: None, conv2: None}
        for i, n in enumerate(self.stage_nodes()):
            inp, (h, w, c) = self._shapes()[i]
            seen[LayerSpec("rw_node", inp, (h, w, c), kernel=3, stride=2)] = None
            for k in range(1, n):
                seen[LayerSpec("rw_node", (h, w, k * c), (h, w, c), kernel=3, stride=1)] = None
            for k in range(2, n + 1):
                seen[LayerSpec("rw_mean", (h, w, k * c), (h, w, c))] = None
        seen[head] = seen[logits] = None
        return list(seen)

    def wiring_counts(self, idx: np.ndarray, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Per stage, its graph's input nodes, edges, merging nodes (two or more inputs) and
        outputs. The table measures a node on its inputs side by side in one tensor and the
        average on one tensor, where the network stacks separate tensors, and the nodes on
        the stage's input share its ReLU: costs per edge, merge and output the layers alone
        do not show."""
        idx = np.asarray(idx)
        out: dict[str, np.ndarray] = {}
        for i, d in enumerate(self.decisions()):
            stats = self._graph_stats[i][idx[:, i]]
            for j, name in enumerate(GRAPH_STATS):
                out[f"{d.name}.{name}"] = stats[:, j]
        return out

    @cached_property
    def _graph_stats(self) -> list[np.ndarray]:
        """Per decision, an (options, 4) array of :data:`GRAPH_STATS` of each option's graph."""
        out = []
        for i, d in enumerate(self.decisions()):
            rows = []
            for option in d.choices:
                generator, seed = stage_choice(option)
                parents = realise(generator, self.stage_nodes()[i], seed)
                rows.append([sum(not ps for ps in parents), sum(len(ps) for ps in parents),
                             sum(len(ps) > 1 for ps in parents), len(sinks(parents))])
            out.append(np.array(rows, dtype=np.float64))
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "resolution": self.resolution, "channels": self.channels, "nodes": self.nodes,
                "stage_nodes": list(self.stage_nodes()), "head_channels": self.head_channels,
                "stem_stride": self.stem_stride, "seeds": self.seeds, "generators": list(self.generators)}

    def build(self, arch: Arch) -> Any:
        from hwnas.nn.randwire import RandWireNet, RandWireStage

        a: RandWireArch = arch  # type: ignore[assignment]
        stem, conv2, head, logits = self.fixed_layers()
        stages = []
        for i, parents in enumerate(a.graphs):
            nodes, mean = self.stage_layers(i, parents)
            stages.append(RandWireStage(nodes, parents, sinks(parents), mean))
        return RandWireNet([stem, conv2], stages, [head, logits], str(arch))


def node_inputs(spec: LayerSpec) -> int:
    """How many nodes a ``rw_node`` reads (1 for a node on the stage's input)."""
    return 1 if spec.stride == 2 else spec.input[2] // spec.output[2]


def _node_count(s: LayerSpec) -> Counts:
    k = node_inputs(s)
    c_in = s.input[2] // k
    sep = conv_counts(c_in, (s.output[0], s.output[1], c_in), 3, groups=c_in, bn=False)
    return sep + conv_counts(c_in, s.output, 1) + Counts(k if k > 1 else 0, 0)


def _register_ops() -> None:
    register_op("rw_node", lazy_builder("RandWireNode", "randwire"), _node_count)
    register_op("rw_mean", lazy_builder("StageMean", "randwire"), lambda s: Counts(0, 0))
    register_op("relu_gap_linear", lazy_builder("ReLUGapLinear", "randwire"),
                lambda s: Counts(s.input[2] * s.output[2] + s.output[2], s.input[2] * s.output[2]))


_register_ops()
