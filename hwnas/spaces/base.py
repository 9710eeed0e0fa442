"""What every search space provides.

A space is a list of categorical :class:`Decision` s plus a macro skeleton. Its
architecture object is the one thing everything else derives from: the arch string
(``space.parse(str(a)) == a``), the per-layer :class:`~hwnas.layers.LayerSpec` s and
their latency-table keys, parameter and multiply-add counts, the predictor encoding
and the ``nn.Module``. Sampling, one-step neighbours, encoding and enumeration are
written once here in terms of decisions, so a user-defined space only says what its
decisions are and how an architecture maps to layers and a module.
"""

from __future__ import annotations

import itertools
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Iterator, Sequence

import numpy as np

from hwnas.errors import ArchError
from hwnas.layers import LayerSpec
from hwnas.ops import Counts, count_layer

Seed = int | np.random.Generator | None


def rng_of(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


@dataclass(frozen=True)
class Decision:
    """One categorical choice of a space, e.g. ``stage2.block3`` in {k3e3, ..., zero}."""

    name: str
    choices: tuple[str, ...]


class Arch(ABC):
    """Base of the per-space architecture objects (frozen dataclasses with a ``space``)."""

    space: "SearchSpace"

    @property
    @abstractmethod
    def choices(self) -> tuple[str, ...]:
        """The chosen option of each decision, in the space's decision order."""

    def __str__(self) -> str:
        return self.space.format(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.space.preset or self.space.name}, {str(self)!r})"

    def indices(self) -> tuple[int, ...]:
        return self._indices

    @cached_property
    def _indices(self) -> tuple[int, ...]:
        lookup = self.space.choice_lookup
        return tuple(lookup[i][c] for i, c in enumerate(self.choices))

    def layers(self) -> list[LayerSpec]:
        return self.space.layers(self)

    def keys(self) -> list[str]:
        return [layer.key for layer in self.layers()]

    def counts(self) -> Counts:
        total = Counts(0, 0)
        for layer in self.layers():
            total += count_layer(layer)
        return total

    def build(self) -> Any:
        """A standalone, trainable ``torch.nn.Module``; its ``hwnas_recipe`` (space, preset,
        overrides, arch string: plain data) rebuilds it elsewhere, e.g. on a GPU agent."""
        module = self.space.build(self)
        module.hwnas_recipe = {"kind": "arch", **self.space.recipe(), "arch": str(self)}
        return module


class SearchSpace(ABC):
    """A search space: decisions, a skeleton, parsing and building.

    Subclasses are frozen dataclasses (hashable, so an architecture's equality includes
    the skeleton it was made for).
    """

    name: str = ""
    preset: str = ""
    #: the parameters a preset's values may be overridden with (``get_space(name, preset, **overrides)``)
    overridable: ClassVar[tuple[str, ...]] = ()
    #: preset name -> the parameters it sets; the first is the default
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def from_preset(cls, preset: str | None = None, **overrides: Any) -> Any:
        """The space of ``preset`` with ``overrides`` (None values ignored); an unknown preset is named."""
        preset = preset or next(iter(cls.PRESETS))
        if preset not in cls.PRESETS:
            raise ArchError(f"unknown {cls.name} preset {preset!r}; known: {', '.join(cls.PRESETS)}")
        return cls(preset=preset, **{**cls.PRESETS[preset], **{k: v for k, v in overrides.items() if v is not None}})

    # -- what a space must say -------------------------------------------------------
    @abstractmethod
    def decisions(self) -> tuple[Decision, ...]: ...

    @abstractmethod
    def from_choices(self, choices: Sequence[str]) -> Arch:
        """The architecture with these options (validated)."""

    @abstractmethod
    def parse(self, text: str) -> Arch: ...

    @abstractmethod
    def format(self, arch: Arch) -> str: ...

    @abstractmethod
    def layers(self, arch: Arch) -> list[LayerSpec]: ...

    @abstractmethod
    def build(self, arch: Arch) -> Any: ...

    @abstractmethod
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one input sample."""

    @abstractmethod
    def all_layers(self) -> list[LayerSpec]:
        """Every distinct layer any architecture of the space can contain (for tables)."""

    def references(self) -> dict[str, Arch]:
        """Named reference architectures."""
        return {}

    def fixed_layers(self) -> list[LayerSpec]:
        """Layers every architecture has (stem, head, ...)."""
        raise NotImplementedError(f"space {self.name} does not say which layers are fixed")

    def option_layers(self, position: int, option: str) -> list[LayerSpec]:
        """The layers that decision ``position`` contributes when it takes ``option``.

        With :meth:`fixed_layers` these make latency, MACs and parameters additive over
        decisions: what the expected-latency loss and vectorised predictors rely on.
        """
        raise NotImplementedError(f"space {self.name} does not say which layers each decision contributes")

    def counted_as(self, position: int, option: str) -> str:
        """The name under which features count ``option`` chosen at decision ``position``.
        Options that run the same kind of layer at the same place share one, so a count
        stands for one cost; by default each option is its own (an operation's name)."""
        return option

    @cached_property
    def choice_lookup(self) -> list[dict[str, int]]:
        return [{c: j for j, c in enumerate(d.choices)} for d in self.decisions()]

    def index_matrix(self, archs: Sequence[Arch]) -> np.ndarray:
        """(n, decisions) int array of chosen option indices."""
        d = len(self.decisions())
        flat = itertools.chain.from_iterable(a.indices() for a in archs)
        return np.fromiter(flat, dtype=np.int64, count=len(archs) * d).reshape(len(archs), d)

    def describe(self) -> dict[str, Any]:
        return {"space": self.name, "preset": self.preset, "size": self.size(),
                "decisions": [{"name": d.name, "choices": list(d.choices)} for d in self.decisions()]}

    def supernet(self, partial_channels: int = 1) -> Any:
        """The supernet differentiable search trains (a :class:`hwnas.nn.supernets.Supernet`);
        ``partial_channels`` > 1: PC-DARTS's partial channels, where the space supports them."""
        raise ArchError(f"space {self.name} provides no supernet, so it has no differentiable search; define "
                        "supernet() (see hwnas.nn.supernets), or search it with a black-box strategy")

    # -- identity: what rebuilds this space elsewhere -----------------------------------
    def recipe(self) -> dict[str, Any]:
        """Plain data that :func:`hwnas.spaces.space_from_recipe` rebuilds this space from:
        name, preset and every overridable parameter (resolution, class count, width)."""
        return {"space": self.name, "preset": self.preset,
                "overrides": {k: getattr(self, k) for k in self.overridable}}

    def skeleton(self) -> dict[str, Any]:
        """The parts that decide which layers and shapes exist (stored in tables and predictors
        to refuse another skeleton)."""
        d = self.describe()
        d.pop("decisions", None)
        return json.loads(json.dumps(d))

    # -- derived, the same for every space --------------------------------------------
    def resolve(self, text: str) -> Arch:
        """A reference name (``mobilenetv2``) or an arch string."""
        refs = self.references()
        return refs[text] if text in refs else self.parse(text)

    def from_indices(self, indices: Sequence[int]) -> Arch:
        decisions = self.decisions()
        if len(indices) != len(decisions):
            raise ArchError(f"{self.name}: expected {len(decisions)} decisions, got {len(indices)}")
        arch = self.from_choices([d.choices[int(i)] for d, i in zip(decisions, indices)])
        arch.__dict__["_indices"] = tuple(int(i) for i in indices)  # prefill the cached property
        return arch

    def connected(self, arch: Arch) -> bool:
        """False when the network's output cannot depend on its input (a cell whose output node
        has no path of operations from its input). Chains of blocks are always connected."""
        return True

    #: whether latency, MACs and parameters are additive over decisions (:meth:`option_layers`);
    #: where not (a motif used several times), they are summed over each network's layers
    additive: ClassVar[bool] = True

    #: whether some architectures have operations whose result never reaches the output
    #: (a runtime that removes dead code does not run them; see :meth:`live`)
    has_dead_ops: ClassVar[bool] = False

    def live(self, arch: Arch) -> Arch:
        """``arch`` as a runtime that removes dead code executes it: every operation on no path
        from the input to the output replaced by the space's no-op (a network whose output does
        not depend on its input keeps none). Chains of blocks have no dead operations."""
        return arch

    def live_weights(self, idx: np.ndarray) -> np.ndarray | None:
        """Per row of an (n, decisions) index matrix and per decision, the share of that
        decision's layers a runtime that removes dead code still runs, where whole repeated
        units die (a DARTS cell whose output no later cell reads); None where dead code, if
        any, is per operation (:meth:`live`) and every decision's layers run."""
        return None

    def wiring_counts(self, idx: np.ndarray, weights: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Per row of an (n, decisions) index matrix, counts (by name) of what a network's
        wiring costs beyond its layers' table entries, each weighted by the live share of its
        layers where :meth:`live_weights` are given: work a runtime that eliminates common
        subexpressions computes once for several edges (ONNX Runtime does: two edges that
        apply the same weightless operation to the same tensor run it once), and the glue
        of merging edges and outputs that a layer measured alone does not show. Empty where
        the wiring is the same in every network."""
        return {}

    def live_indices(self, idx: np.ndarray) -> np.ndarray:
        """:meth:`live` of every row of an (n, decisions) index matrix."""
        if not self.has_dead_ops or not len(idx):
            return idx
        return self.index_matrix([self.live(self.from_indices(row)) for row in idx])

    def connected_indices(self, idx: np.ndarray) -> np.ndarray:
        """:meth:`connected` of every row of an (n, decisions) index matrix (booleans)."""
        if not self.has_dead_ops:
            return np.ones(len(idx), dtype=bool)
        return np.array([self.connected(self.from_indices(row)) for row in idx], dtype=bool)

    def size(self) -> int:
        return int(np.prod([len(d.choices) for d in self.decisions()], dtype=object))

    def sample(self, n: int, seed: Seed = None) -> list[Arch]:
        """``n`` architectures drawn uniformly (each decision independently); prefix-stable."""
        rng = rng_of(seed)
        sizes = np.array([len(d.choices) for d in self.decisions()])
        # One architecture at a time, so the first k of n samples are the k samples.
        return [self.from_indices((rng.random(len(sizes)) * sizes).astype(int)) for _ in range(n)]

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Every architecture that differs from ``arch`` in exactly one decision."""
        out = []
        current = list(arch.choices)
        for i, d in enumerate(self.decisions()):
            for option in d.choices:
                if option != current[i]:
                    out.append(self.from_choices(current[:i] + [option] + current[i + 1:]))
        return out

    def mutate(self, arch: Arch, seed: Seed = None) -> Arch:
        """One random one-step neighbour (a uniformly chosen decision gets a new option)."""
        rng = rng_of(seed)
        decisions = self.decisions()
        i = int(rng.integers(len(decisions)))
        options = [c for c in decisions[i].choices if c != arch.choices[i]]
        choices = list(arch.choices)
        choices[i] = options[int(rng.integers(len(options)))]
        return self.from_choices(choices)

    def exchanges(self, arch: Arch, position: int, option: str) -> list[Arch]:
        """``arch`` with ``option`` moved to ``position`` from another decision that holds it (the
        two exchange options, each only where the other's is allowed).

        The operations stay the same, and so, roughly, does the cost on a device: under a tight
        budget this reaches what a one-step change at ``position`` would, without adding cost.
        """
        d, c = self.decisions(), arch.choices
        out: list[Arch] = []
        if option not in d[position].choices:
            return out
        for j in range(len(d)):
            if j != position and c[j] == option and c[position] != option and c[position] in d[j].choices:
                choices = list(c)
                choices[position], choices[j] = option, c[position]
                out.append(self.from_choices(choices))
        return out

    def encoding_size(self) -> int:
        return sum(len(d.choices) for d in self.decisions())

    def encode(self, archs: Sequence[Arch]) -> np.ndarray:
        """Fixed-length one-hot encoding, shape (n, sum of choice counts), float32."""
        return self.encode_indices(self.index_matrix(archs))

    def encode_indices(self, idx: np.ndarray) -> np.ndarray:
        offsets = np.cumsum([0] + [len(d.choices) for d in self.decisions()])[:-1]
        out = np.zeros((len(idx), self.encoding_size()), dtype=np.float32)
        if len(idx):
            np.put_along_axis(out, idx + offsets, 1.0, axis=1)
        return out

    def path_encoding_size(self) -> int:
        return self.encoding_size()

    def path_encode_indices(self, idx: np.ndarray) -> np.ndarray:
        """BANANAS's path encoding (White et al. 2021) of an (n, decisions) index matrix: one
        feature per operation-labelled path from the input to the output. A chain has one path,
        labelled by every decision; its features truncated to one label each (as BANANAS
        truncates long paths) are the one-hot encoding, which is this default."""
        return self.encode_indices(idx)

    def growth(self) -> tuple[tuple[int, ...], ...]:
        """The order in which a network grows from :meth:`simplest` to a full one, as groups of
        decision positions (PNAS's blocks, added one group at a time); by default one decision
        at a time, in decision order."""
        return tuple((i,) for i in range(len(self.decisions())))

    def simplest(self) -> tuple[int, ...]:
        """Each decision's cheapest option (fewest multiply-adds of the layers it contributes,
        the first option on a tie): ``none`` on a cell's edges, ``zero`` on a chain's
        skippable blocks, the smallest block where a block cannot be skipped."""
        out = []
        for i, d in enumerate(self.decisions()):
            macs = [sum(count_layer(s).macs for s in self.option_layers(i, c)) for c in d.choices]
            out.append(int(np.argmin(macs)))
        return tuple(out)

    def enumerate(self) -> Iterator[Arch]:
        """Every architecture, in decision order (only sensible for small spaces)."""
        for combo in itertools.product(*(d.choices for d in self.decisions())):
            yield self.from_choices(combo)
