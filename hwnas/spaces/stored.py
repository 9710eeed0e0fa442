"""Spaces rebuilt from stored data, by one path.

A space writes itself as plain data (:meth:`~hwnas.spaces.base.SearchSpace.recipe`:
name, preset, overrides) and :func:`space_from_recipe` rebuilds it; tables and predictors
store the skeleton too and refuse another one (:func:`check_same_space`). Run directories
name their space the same way (:func:`stored_space`).
"""

from __future__ import annotations

from typing import Any

from hwnas.errors import HwnasError
from hwnas.spaces import get_space, space_presets
from hwnas.spaces.base import SearchSpace


def space_from_recipe(recipe: Any, what: str = "space recipe") -> SearchSpace:
    """The space :meth:`SearchSpace.recipe` describes; refuses unknown spaces, presets and overrides."""
    if not isinstance(recipe, dict) or not isinstance(recipe.get("space"), str):
        raise HwnasError(f"{what}: expected {{'space': NAME, 'preset': ..., 'overrides': {{...}}}}, not {recipe!r}")
    name, preset = recipe["space"], recipe.get("preset")
    overrides = recipe.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise HwnasError(f"{what}: 'overrides' should be an object, not {overrides!r}")
    if preset is not None and preset not in space_presets(name):
        raise HwnasError(f"{what}: space {name} has no preset {preset!r}; it has {', '.join(space_presets(name))}")
    allowed = get_space(name, preset).overridable
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise HwnasError(f"{what}: space {name} cannot override {', '.join(unknown)}; it can override "
                         f"{', '.join(allowed) or 'nothing'}")
    return get_space(name, preset, **{k: v for k, v in overrides.items() if v is not None})


def space_from_skeleton(name: str, preset: str, skeleton: dict[str, Any]) -> SearchSpace:
    """The space a stored skeleton describes (its preset plus the overridable parameters)."""
    allowed = get_space(name, preset).overridable
    return space_from_recipe({"space": name, "preset": preset,
                              "overrides": {k: skeleton[k] for k in allowed if k in skeleton}})


def stored_space(record: dict[str, Any], what: str) -> SearchSpace:
    """The space of a run's ``recipe.json`` / ``result.json``: its ``space_recipe``, or for a run
    written before there was one, its space, preset, class count and resolution."""
    if "space_recipe" in record:
        return space_from_recipe(record["space_recipe"], what)
    overrides = {k: record.get(k) for k in ("num_classes", "resolution")}
    return space_from_recipe({"space": record.get("space"), "preset": record.get("preset"), "overrides": overrides},
                             what)


def skeleton_differences(space: SearchSpace, skeleton: dict[str, Any]) -> list[str]:
    want = space.skeleton()
    return [k for k in sorted(set(want) | set(skeleton)) if want.get(k) != skeleton.get(k)]


def check_same_space(what: str, stored: tuple[str, str, dict[str, Any]], space: SearchSpace, made: str,
                     hint: str = "") -> None:
    """Refuse a file (``what``: "latency table X") whose stored (space, preset, skeleton) is not
    ``space``'s; ``made`` says how it came about ("built", "fitted")."""
    name, preset, skeleton = stored
    if (name, preset) != (space.name, space.preset):
        raise HwnasError(f"{what} is for space {name} preset {preset}, not {space.name} preset {space.preset}")
    diff = skeleton_differences(space, skeleton)
    if diff:
        raise HwnasError(f"{what} was {made} for another {space.name} skeleton (differs in {', '.join(diff)}){hint}")
