"""Network morphism: every growth step keeps the parent's function exactly."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from hwnas.errors import HwnasError
from hwnas.evaluators.inherit import CheckpointStore
from hwnas.evaluators.training import TrainingAccuracy
from hwnas.nn.morphism import is_morphism, morph, morphism_steps, shrunk_parent
from hwnas.spaces import get_space
from hwnas.testing.data import tiny_digits

TOL = 1e-5  # of the output's scale: float32 sums in another order (Net2Net's split projection)


def _trained_looking(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights and batch-norm statistics, so that nothing passes by being at its init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            elif isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.3)
    return model.eval()


def _same_function(space, parent_text: str, child_text: str) -> None:
    parent, child = space.parse(parent_text), space.parse(child_text)
    model = _trained_looking(space.build(parent), 0)
    x = torch.randn(4, *space.input_shape(), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = model(x)  # before growing: a morph that changed the parent in place cannot hide
        grown = morph(space, parent, model, child, seed=1).eval()
        got = grown(x)
    # the grown network is the child's, layer for layer, not the parent with something added
    shapes = {k: tuple(v.shape) for k, v in space.build(child).state_dict().items()}
    assert {k: tuple(v.shape) for k, v in grown.state_dict().items()} == shapes
    assert shapes != {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sum(p.numel() for p in grown.parameters()) > sum(p.numel() for p in model.parameters())
    scale = float(want.abs().max())
    assert scale > 1 and float((got - want).abs().max()) <= TOL * scale, float((got - want).abs().max())


MBV2_PARENT = "k3e3-zero_k3e3-k3e3-zero_k3e3-zero-zero_k3e3-zero"


@pytest.mark.parametrize("child,step", [
    ("k3e3-k3e3_k3e3-k3e3-zero_k3e3-zero-zero_k3e3-zero", "deepen: a skipped block becomes an identity block"),
    ("k3e6-zero_k3e3-k3e3-zero_k3e3-zero-zero_k3e3-zero", "widen: expansion 3 -> 6 (Net2Net)"),
    ("k3e3-zero_k7e3-k3e3-zero_k3e3-zero-zero_k3e3-zero", "enlarge: depthwise 3x3 -> 7x7"),
    ("k5e6-k7e6_k3e3-k5e3-k3e6_k3e3-zero-k3e3_k7e6-k5e3", "all of them, on many positions"),
])
def test_mbv2_growth_keeps_the_function(child: str, step: str) -> None:
    space = get_space("mbv2", "small", resolution=16)
    assert len(space.parse(MBV2_PARENT).choices) == len(space.parse(child).choices)
    _same_function(space, MBV2_PARENT, child)


NB201_PARENT = "|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"


@pytest.mark.parametrize("child,step", [
    ("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|", "enlarge: 1x1 -> 3x3"),
    ("|nor_conv_1x1~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
     "deepen: none -> conv into node 2, so that the dead edge 2 -> 3 comes alive"),
    ("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
     "all of them at once"),
])
def test_cell_growth_keeps_the_function(child: str, step: str) -> None:
    space = get_space("nb201", resolution=16, channels=8, cells_per_stage=1)
    _same_function(space, NB201_PARENT, child)


def test_the_cell_check_fails_when_growth_changes_the_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cell checks above can fail: the same 1x1 -> 3x3 step with the 1x1 weights put in a
    corner of the 3x3 kernel instead of its centre shifts the map, and the check sees it."""
    def shifted(space, parent, model, child, seed=0, grow=morph):
        grown = grow(space, parent, model, child, seed=seed)
        with torch.no_grad():
            for name, w in grown.named_parameters():
                if "edges" in name and w.dim() == 4 and w.shape[-1] == 3:
                    centre = w[:, :, 1, 1].clone()
                    w.zero_()
                    w[:, :, 0, 0] = centre
        return grown

    monkeypatch.setattr(sys.modules[__name__], "morph", shifted)
    space = get_space("nb201", resolution=16, channels=8, cells_per_stage=1)
    with pytest.raises(AssertionError):
        _same_function(space, NB201_PARENT, NB201_PARENT.replace("nor_conv_1x1~0", "nor_conv_3x3~0"))


def test_shrinking_or_new_parameter_free_operations_are_not_morphisms() -> None:
    mbv2 = get_space("mbv2", "small", resolution=16)
    parent = mbv2.parse("k5e6-k5e6_k5e6-k5e6-k5e6_k5e6-k5e6-k5e6_k5e6-k5e6")
    for child, fragment in (("k3e6-k5e6_k5e6-k5e6-k5e6_k5e6-k5e6-k5e6_k5e6-k5e6", "k5e6 -> k3e6"),
                            ("k5e6-zero_k5e6-k5e6-k5e6_k5e6-k5e6-k5e6_k5e6-k5e6", "k5e6 -> zero")):
        assert not is_morphism(mbv2, parent, mbv2.parse(child))
        with pytest.raises(HwnasError, match=fragment):
            morph(mbv2, parent, mbv2.build(parent), mbv2.parse(child))
    cell = get_space("nb201")
    p = cell.parse(NB201_PARENT)
    c = cell.parse("|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    assert not is_morphism(cell, p, c) and is_morphism(cell, p, p)
    assert morphism_steps(cell, p, cell.parse(NB201_PARENT.replace("nor_conv_1x1", "nor_conv_3x3"))) == [
        (0, "nor_conv_1x1", "nor_conv_3x3"), (4, "nor_conv_1x1", "nor_conv_3x3")]


def test_a_shrunk_parent_is_one_growth_step_from_its_child() -> None:
    rng = np.random.default_rng(0)
    for space in (get_space("mbv2", "small", resolution=16), get_space("nb201")):
        for child in space.sample(20, seed=1):
            parent = shrunk_parent(space, child, rng)
            if parent is None:  # only a cell without convolutions cannot shrink
                assert space.name == "nb201" and not any("conv" in c for c in child.choices)
                continue
            assert len(morphism_steps(space, parent, child)) == 1
    cell = get_space("nb201")
    plain = cell.parse("|skip_connect~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    assert shrunk_parent(cell, plain, rng) is None
    one = cell.parse("|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|")
    assert str(shrunk_parent(cell, one, rng)) == str(plain).replace("skip_connect~0|+", "none~0|+", 1)


def test_the_checkpoint_store_keeps_the_newest_networks_on_disk(tmp_path) -> None:
    space = get_space("nb201", resolution=8, channels=4, cells_per_stage=1)
    archs = space.sample(3, seed=0)
    store = CheckpointStore(tmp_path / "ck", capacity=2)
    for i, a in enumerate(archs):
        store.put(a, {"w": torch.full((2,), float(i))})
    assert store.get(archs[0]) is None and float(store.get(archs[2])["w"][0]) == 2.0
    assert len(list((tmp_path / "ck").glob("*.safetensors"))) == 2  # the oldest file is gone
    again = CheckpointStore(tmp_path / "ck", capacity=2)  # a resumed search finds them
    assert len(again) == 2 and float(again.get(archs[1])["w"][0]) == 1.0


CELLS = get_space("nb201", resolution=16, channels=8, cells_per_stage=1)


def test_a_child_that_grows_from_its_parent_is_fine_tuned_from_its_weights(tmp_path) -> None:
    space, data = CELLS, tiny_digits()
    ev = TrainingAccuracy(data, epochs=4, calib_batches=1, inherit=CheckpointStore(tmp_path / "ck", 4),
                          inherit_epochs=1)
    parent = space.parse(NB201_PARENT)
    grown = space.parse(NB201_PARENT.replace("nor_conv_1x1~0", "nor_conv_3x3~0"))
    other = space.parse(NB201_PARENT.replace("nor_conv_1x1~0", "avg_pool_3x3~0"))
    acc, costs = ev.evaluate_at([parent, grown, other], 1.0, [None, {"parent": parent}, {"parent": parent}])
    assert costs[0]["epochs"] == 4 and "inherited_from" not in costs[0]
    assert costs[1]["epochs"] == 1 and costs[1]["inherited_from"] == str(parent) and costs[1]["work"] == 0.25
    assert costs[2]["epochs"] == 4 and "inherited_from" not in costs[2]  # not a morphism: from scratch
    assert all(0 <= a <= 1 for a in acc) and len(ev.inherit) == 3


def test_evolution_with_inheritance_fine_tunes_the_children_that_grow(tmp_path) -> None:
    from hwnas.strategies import Problem, get_reward, get_strategy, run
    from hwnas.target import Target
    from hwnas.testing.strategies import Synthetic

    space, data = CELLS, tiny_digits(train=128, val=64)
    ev = TrainingAccuracy(data, epochs=2, calib_batches=1, inherit=CheckpointStore(tmp_path / "ck", 2),
                          inherit_epochs=1)
    problem = Problem([Target("synthetic", Synthetic(0, space), None)], ev, get_reward("pareto"))
    _, log = run(get_strategy("evolution", space, seed=3, population=2), problem, 6)
    inherited = [t for t in log.trials if t.cost.get("inherited_from")]
    assert len(inherited) == 2 and len(list((tmp_path / "ck").glob("*.safetensors"))) == 2
    for t in inherited:
        parent = space.parse(t.cost["inherited_from"])
        assert is_morphism(space, parent, t.arch) and t.cost["epochs"] == 1
        assert any(str(u.arch) == str(parent) for u in log.trials[:log.trials.index(t)])
