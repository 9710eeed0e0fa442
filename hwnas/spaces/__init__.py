"""Search spaces and the registry that names them.

``get_space("mbv2", preset="small")`` returns a space; ``register_space`` adds a
user-defined one (a callable ``(preset, **overrides) -> SearchSpace``) without editing
hwnas.
"""

from __future__ import annotations

from typing import Any, Callable

from hwnas.registry import Registry
from hwnas.spaces.base import Arch, Decision, SearchSpace
from hwnas.spaces.darts import DartsArch, DartsSpace
from hwnas.spaces.hierarchical import HierarchicalArch, HierarchicalSpace
from hwnas.spaces.mbv2 import MBV2Arch, MBV2Space
from hwnas.spaces.nb201 import NB201Arch, NB201Space
from hwnas.spaces.randwire import RandWireArch, RandWireSpace

SpaceFactory = Callable[..., SearchSpace]
SPACES: Registry[tuple[SpaceFactory, tuple[str, ...], str]] = Registry("search space")


def register_space(name: str, factory: SpaceFactory, presets: tuple[str, ...], default_preset: str) -> None:
    SPACES.register(name, (factory, presets, default_preset))


def get_space(name: str, preset: str | None = None, **overrides: Any) -> SearchSpace:
    factory, _, default = SPACES[name]
    return factory(preset or default, **overrides)


def space_presets(name: str) -> tuple[str, ...]:
    return SPACES[name][1]


register_space("mbv2", MBV2Space.from_preset, tuple(MBV2Space.PRESETS), "proxyless")
register_space("nb201", NB201Space.from_preset, tuple(NB201Space.PRESETS), "cifar")
register_space("darts", DartsSpace.from_preset, tuple(DartsSpace.PRESETS), "cifar")
register_space("randwire", RandWireSpace.from_preset, tuple(RandWireSpace.PRESETS), "imagenet")
register_space("hierarchical", HierarchicalSpace.from_preset, tuple(HierarchicalSpace.PRESETS), "cifar")

__all__ = ["Arch", "Decision", "SearchSpace", "DartsArch", "DartsSpace", "HierarchicalArch", "HierarchicalSpace", "MBV2Arch", "MBV2Space", "NB201Arch", "NB201Space",
           "RandWireArch", "RandWireSpace", "get_space", "register_space", "space_presets", "SPACES"]
