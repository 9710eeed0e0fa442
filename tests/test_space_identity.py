"""A space writes itself as a recipe and every path that rebuilds it from stored data gets the
same space back: run directories (export), tables and predictors (skeleton), the supernet
evaluator and the torch agent runtime. A width multiplier other than 1 is the case two of
these paths used to drop."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hwnas.agent.torch_runtime import build as agent_build
from hwnas.devices import get_device
from hwnas.errors import HwnasError
from hwnas.export.run import export_run, load_run
from hwnas.job.search import SearchResult
from hwnas.spaces import get_space
from hwnas.spaces.stored import space_from_recipe, space_from_skeleton, stored_space

FAST = "runs=10,rounds=2,warmup=2,retries=0"


def shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_a_narrow_network_is_the_same_module_after_every_rebuild(tmp_path: Path) -> None:
    space = get_space("mbv2", "small", width_mult=0.75, resolution=16)
    assert space.recipe()["overrides"] == {"resolution": 16, "num_classes": 10, "width_mult": 0.75}
    arch = space.resolve("mobilenetv2")
    module = arch.build()
    # a run directory, as a search leaves it, exported and rebuilt
    SearchResult(space.recipe(), "random", str(arch), []).save(tmp_path)
    record = export_run(tmp_path, ("onnx",))
    rebuilt_space, rebuilt_arch, _, _ = load_run(tmp_path)
    assert rebuilt_space == space and rebuilt_arch == arch
    assert shapes(rebuilt_arch.build()) == shapes(module)
    assert record["params"] == arch.counts().params and record["onnx_parity"]["ok"]
    # the torch agent rebuilds it from the recipe the module carries
    assert shapes(agent_build(module.hwnas_recipe, b"")) == shapes(module)
    # tables and predictors rebuild it from the skeleton they store
    assert space_from_skeleton(space.name, space.preset, space.skeleton()) == space
    assert space_from_recipe(space.recipe()) == space and stored_space({"space_recipe": space.recipe()}, "x") == space
    # re-measured: the exported file and the rebuilt module on this CPU
    device = get_device(f"cpu-ort:threads=1,{FAST}")
    assert device.measure(str(tmp_path / "model.onnx"), space.input_shape()).latency_ms > 0
    assert device.measure(rebuilt_arch.build(), space.input_shape()).latency_ms > 0


def test_a_recipe_naming_what_the_space_cannot_be_is_refused() -> None:
    with pytest.raises(HwnasError, match="cannot override width_mult"):
        space_from_recipe({"space": "nb201", "preset": "cifar", "overrides": {"width_mult": 0.5}})
    with pytest.raises(HwnasError, match="has no preset 'tiny'"):
        space_from_recipe({"space": "mbv2", "preset": "tiny"})
    with pytest.raises(HwnasError, match="expected"):
        space_from_recipe(["mbv2"])


def test_the_supernet_evaluator_refuses_another_width(tmp_path: Path) -> None:
    from hwnas.evaluators.supernet import load_supernet
    from hwnas.job.run import write_recipe
    from hwnas.job.recipe import SearchRecipe

    space = get_space("mbv2", "small", width_mult=0.75, resolution=16)
    torch.save({"net": space.supernet().state_dict()}, tmp_path / "checkpoint.pt")
    write_recipe(SearchRecipe(output=str(tmp_path), lut=("t.json",), budget_ms=(1.0,)), space, [], tmp_path)
    assert load_supernet(tmp_path, space) is not None
    with pytest.raises(HwnasError, match="width_mult"):
        load_supernet(tmp_path, get_space("mbv2", "small", resolution=16))
