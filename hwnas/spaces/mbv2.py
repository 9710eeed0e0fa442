"""The ``mbv2`` space: the ProxylessNAS / MobileNetV2 chain of inverted-residual blocks.

Skeleton: stem conv, a fixed expansion-1 block, stages of searchable blocks
(channels x repeats x stride), a 1x1 head conv, pooling and a classifier. Every
searchable block picks kernel 3/5/7 x expansion 3/6, or ``zero`` (skipped) when it is
not the first block of its stage (the first one changes the shape, so it must exist).

Arch string: the blocks of a stage joined by ``-``, stages joined by ``_``, e.g.
``k3e6-zero_k5e3-k7e6-zero-zero_...``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

from hwnas.errors import ArchError
from hwnas.layers import LayerSpec, Shape
from hwnas.spaces.base import Arch, Decision, SearchSpace

ZERO = "zero"


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without losing more than 10 % (torchvision)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


@dataclass(frozen=True)
class Stage:
    channels: int
    repeats: int
    stride: int


PRESETS: dict[str, dict[str, Any]] = {
    "proxyless": dict(
        resolution=224, stem_channels=32, stem_stride=2, first_channels=16, head_channels=1280, num_classes=1000,
        stages=(Stage(24, 4, 2), Stage(40, 4, 2), Stage(80, 4, 2), Stage(96, 4, 1), Stage(192, 4, 2), Stage(320, 1, 1)),
    ),
    "mobilenetv2": dict(
        resolution=224, stem_channels=32, stem_stride=2, first_channels=16, head_channels=1280, num_classes=1000,
        stages=(Stage(24, 2, 2), Stage(32, 3, 2), Stage(64, 4, 2), Stage(96, 3, 1), Stage(160, 3, 2), Stage(320, 1, 1)),
    ),
    "small": dict(
        resolution=32, stem_channels=16, stem_stride=1, first_channels=16, head_channels=512, num_classes=10,
        stages=(Stage(24, 2, 2), Stage(32, 3, 2), Stage(64, 3, 2), Stage(96, 2, 1)),
    ),
}


def _out(size: int, stride: int) -> int:
    return math.ceil(size / stride)


@dataclass(frozen=True, repr=False)
class MBV2Arch(Arch):
    space: "MBV2Space"
    blocks: tuple[tuple[str, ...], ...]

    def __post_init__(self) -> None:
        self.space.validate_blocks(self.blocks)

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(b for stage in self.blocks for b in stage)


@dataclass(frozen=True)
class MBV2Space(SearchSpace):
    overridable: ClassVar[tuple[str, ...]] = ("resolution", "num_classes", "width_mult")
    preset: str = "custom"
    resolution: int = 224
    stem_channels: int = 32
    stem_stride: int = 2
    first_channels: int = 16
    stages: tuple[Stage, ...] = field(default_factory=lambda: PRESETS["proxyless"]["stages"])
    head_channels: int = 1280
    num_classes: int = 1000
    width_mult: float = 1.0
    kernels: tuple[int, ...] = (3, 5, 7)
    expands: tuple[int, ...] = (3, 6)
    name = "mbv2"

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = PRESETS

    def __post_init__(self) -> None:
        if self.resolution < 8 or self.width_mult <= 0 or self.num_classes < 1:
            raise ArchError("mbv2: resolution must be >= 8, width_mult > 0 and num_classes >= 1")

    # -- the skeleton ---------------------------------------------------------------
    @property
    def block_options(self) -> tuple[str, ...]:
        return tuple(f"k{k}e{e}" for k in self.kernels for e in self.expands)

    def _c(self, channels: int) -> int:
        return make_divisible(channels * self.width_mult)

    def decisions(self) -> tuple[Decision, ...]:
        out = []
        for s, stage in enumerate(self.stages, 1):
            for b in range(1, stage.repeats + 1):
                options = self.block_options if b == 1 else self.block_options + (ZERO,)
                out.append(Decision(f"stage{s}.block{b}", options))
        return tuple(out)

    def input_shape(self) -> tuple[int, int, int]:
        return (3, self.resolution, self.resolution)

    def _fixed_head(self) -> tuple[LayerSpec, LayerSpec, Shape]:
        """Stem and first block; returns them and the shape entering stage 1."""
        r = self.resolution
        stem_out = (_out(r, self.stem_stride), _out(r, self.stem_stride), self._c(self.stem_channels))
        stem = LayerSpec("Conv", (r, r, 3), stem_out, kernel=3, stride=self.stem_stride)
        first_out = (stem_out[0], stem_out[1], self._c(self.first_channels))
        first = LayerSpec("expanded_conv", stem_out, first_out, kernel=3, expand=1, stride=1,
                          idskip=stem_out == first_out)
        return stem, first, first_out

    def _tail(self, shape: Shape) -> list[LayerSpec]:
        head = make_divisible(self.head_channels * max(1.0, self.width_mult))
        h, w, _ = shape
        return [LayerSpec("Conv_1", shape, (h, w, head), kernel=1, stride=1),
                LayerSpec("Logits", (h, w, head), (1, 1, self.num_classes))]

    def _positions(self) -> list[tuple[Shape, Shape, int]]:
        """(input shape, output shape, stride) of every searchable block position."""
        *_, shape = self._fixed_head()
        out = []
        for stage in self.stages:
            for b in range(stage.repeats):
                stride = stage.stride if b == 0 else 1
                nxt = (_out(shape[0], stride), _out(shape[1], stride), self._c(stage.channels))
                out.append((shape, nxt, stride))
                shape = nxt
        return out

    def block_layer(self, position: int, option: str) -> LayerSpec | None:
        """The layer a block position becomes with ``option`` (None for ``zero``)."""
        if option == ZERO:
            return None
        m = re.fullmatch(r"k(\d+)e(\d+)", option)
        assert m, option
        shape_in, shape_out, stride = self._positions()[position]
        return LayerSpec("expanded_conv", shape_in, shape_out, kernel=int(m.group(1)), expand=int(m.group(2)),
                         stride=stride, idskip=stride == 1 and shape_in == shape_out)

    def fixed_layers(self) -> list[LayerSpec]:
        stem, first, _ = self._fixed_head()
        return [stem, first, *self._tail(self._positions()[-1][1])]

    def growth(self) -> tuple[tuple[int, ...], ...]:
        """Stage by stage from the input: the simplest network has each stage's first block at
        its smallest and the rest skipped; a step specifies every block of the next stage."""
        stages: dict[str, list[int]] = {}
        for i, d in enumerate(self.decisions()):
            stages.setdefault(d.name.split(".")[0], []).append(i)
        return tuple(tuple(v) for v in stages.values())

    def option_layers(self, position: int, option: str) -> list[LayerSpec]:
        spec = self.block_layer(position, option)
        return [] if spec is None else [spec]

    def layers(self, arch: Arch) -> list[LayerSpec]:
        stem, first, _ = self._fixed_head()
        blocks = [self.block_layer(i, c) for i, c in enumerate(arch.choices)]
        positions = self._positions()
        return [stem, first, *(b for b in blocks if b is not None), *self._tail(positions[-1][1])]

    def all_layers(self) -> list[LayerSpec]:
        stem, first, _ = self._fixed_head()
        seen = {stem: None, first: None}
        for i, d in enumerate(self.decisions()):
            for option in d.choices:
                spec = self.block_layer(i, option)
                if spec is not None:
                    seen.setdefault(spec, None)
        for spec in self._tail(self._positions()[-1][1]):
            seen.setdefault(spec, None)
        return list(seen)

    # -- the architecture object ----------------------------------------------------
    def validate_blocks(self, blocks: tuple[tuple[str, ...], ...]) -> None:
        if len(blocks) != len(self.stages):
            raise ArchError(f"mbv2 ({self.preset}): expected {len(self.stages)} stages, got {len(blocks)}")
        for s, (stage, got) in enumerate(zip(self.stages, blocks), 1):
            if len(got) != stage.repeats:
                raise ArchError(
                    f"mbv2 ({self.preset}): stage {s} (channels {stage.channels}, stride {stage.stride}) "
                    f"has {stage.repeats} blocks, got {len(got)}")
            for b, option in enumerate(got, 1):
                if option == ZERO and b == 1:
                    raise ArchError(
                        f"mbv2: 'zero' at stage {s} block 1: the first block of a stage changes the shape and "
                        f"cannot be skipped; use one of {', '.join(self.block_options)}")
                if option != ZERO and option not in self.block_options:
                    raise ArchError(f"mbv2: unknown block {option!r} at stage {s} block {b}; "
                                    f"allowed: {', '.join(self.block_options + (ZERO,))}")

    def from_choices(self, choices: Sequence[str]) -> MBV2Arch:
        total = sum(s.repeats for s in self.stages)
        if len(choices) != total:
            raise ArchError(f"mbv2 ({self.preset}): expected {total} blocks, got {len(choices)}")
        blocks, i = [], 0
        for stage in self.stages:
            blocks.append(tuple(choices[i:i + stage.repeats]))
            i += stage.repeats
        return MBV2Arch(self, tuple(blocks))

    def parse(self, text: str) -> MBV2Arch:
        text = text.strip()
        if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*(_[a-z0-9]+(-[a-z0-9]+)*)*", text):
            raise ArchError(
                f"malformed mbv2 arch string {text!r}: expected blocks like 'k3e6' or 'zero' joined by '-', "
                f"stages joined by '_' (e.g. {self.format(self.references()['mobilenetv2'])!r})")
        return MBV2Arch(self, tuple(tuple(stage.split("-")) for stage in text.split("_")))

    def format(self, arch: Arch) -> str:
        assert isinstance(arch, MBV2Arch)
        return "_".join("-".join(stage) for stage in arch.blocks)

    def references(self) -> dict[str, Arch]:
        def uniform(option: str) -> MBV2Arch:
            return MBV2Arch(self, tuple((option,) * s.repeats for s in self.stages))

        smallest = f"k{min(self.kernels)}e{min(self.expands)}"
        return {
            "mobilenetv2": uniform("k3e6"),
            "largest": uniform(f"k{max(self.kernels)}e{max(self.expands)}"),
            "smallest": MBV2Arch(self, tuple((smallest,) + (ZERO,) * (s.repeats - 1) for s in self.stages)),
        }

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "resolution": self.resolution, "width_mult": self.width_mult, "num_classes": self.num_classes,
            "stem": {"channels": self._c(self.stem_channels), "stride": self.stem_stride},
            "first_block": {"channels": self._c(self.first_channels), "expand": 1, "kernel": 3},
            "stages": [{"channels": self._c(s.channels), "repeats": s.repeats, "stride": s.stride}
                       for s in self.stages],
            "head_channels": make_divisible(self.head_channels * max(1.0, self.width_mult)),
            "block_options": list(self.block_options) + [ZERO],
        }

    # -- the module -----------------------------------------------------------------
    def build(self, arch: Arch) -> Any:
        from hwnas.nn.blocks import ChainNet

        return ChainNet(self.layers(arch), str(arch))

    def supernet(self, partial_channels: int = 1) -> Any:
        from hwnas.nn.supernets import ChainSupernet

        return ChainSupernet(self, partial_channels)
