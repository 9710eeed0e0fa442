from __future__ import annotations

import numpy as np
import pytest

from hwnas.errors import ArchError
from hwnas.spaces import get_space
from hwnas.spaces.mbv2 import MBV2Space
from hwnas.spaces.nb201 import NB201Space

ALL = [("mbv2", "proxyless"), ("mbv2", "mobilenetv2"), ("mbv2", "small"), ("nb201", "cifar"), ("darts", "small"),
       ("randwire", "small"), ("randwire", "imagenet"), ("hierarchical", "small"), ("hierarchical", "cifar")]


@pytest.mark.parametrize("name,preset", ALL)
def test_round_trip_random_archs(name: str, preset: str) -> None:
    space = get_space(name, preset)
    for arch in space.sample(200, seed=1):
        text = str(arch)
        assert space.parse(text) == arch
        assert space.format(space.parse(text)) == text
        assert space.from_indices(arch.indices()) == arch


def test_every_nb201_cell_round_trips(nb201_archs: list[str]) -> None:
    space = get_space("nb201")
    assert len(nb201_archs) == 15625
    for text in nb201_archs:
        assert str(space.parse(text)) == text


def test_nb201_enumeration_is_complete_and_unique(nb201_archs: list[str]) -> None:
    space = get_space("nb201")
    all_cells = [str(a) for a in space.enumerate()]
    assert len(all_cells) == len(set(all_cells)) == space.size() == 15625
    assert set(all_cells) == set(nb201_archs)


@pytest.mark.parametrize("name,preset", ALL)
def test_sampling_is_seeded(name: str, preset: str) -> None:
    space = get_space(name, preset)
    assert space.sample(20, seed=7) == space.sample(20, seed=7)
    assert space.sample(20, seed=7) != space.sample(20, seed=8)


@pytest.mark.parametrize("name,preset", ALL)
def test_neighbours_differ_in_exactly_one_decision(name: str, preset: str) -> None:
    space = get_space(name, preset)
    arch = space.sample(1, seed=3)[0]
    neighbours = space.neighbours(arch)
    expected = sum(len(d.choices) - 1 for d in space.decisions())
    assert len(neighbours) == len(set(neighbours)) == expected
    for n in neighbours:
        assert sum(a != b for a, b in zip(n.choices, arch.choices)) == 1
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert space.mutate(arch, rng) in set(neighbours)


@pytest.mark.parametrize("name,preset", ALL)
def test_encoding_is_fixed_length_one_hot(name: str, preset: str) -> None:
    space = get_space(name, preset)
    archs = space.sample(5, seed=0)
    enc = space.encode(archs)
    assert enc.shape == (5, space.encoding_size())
    assert enc.dtype == np.float32
    np.testing.assert_array_equal(enc.sum(axis=1), len(space.decisions()))
    assert space.encode([]).shape == (0, space.encoding_size())


def test_mbv2_zero_is_offered_only_after_the_first_block() -> None:
    space = get_space("mbv2", "proxyless")
    decisions = space.decisions()
    assert len(decisions) == 21
    firsts = [d for d in decisions if d.name.endswith(".block1")]
    assert len(firsts) == 6 and all("zero" not in d.choices for d in firsts)
    assert all("zero" in d.choices for d in decisions if not d.name.endswith(".block1"))
    assert space.size() == 6 ** 6 * 7 ** 15


def test_mbv2_zero_blocks_are_skipped_layers() -> None:
    space = get_space("mbv2", "small")
    smallest = space.resolve("smallest")
    largest = space.resolve("largest")
    assert len(smallest.layers()) == 2 + len(space.stages) + 2
    assert len(largest.layers()) == 2 + sum(s.repeats for s in space.stages) + 2
    assert smallest.counts().macs < space.resolve("mobilenetv2").counts().macs < largest.counts().macs


def test_all_layers_cover_every_architecture() -> None:
    for name, preset in ALL:
        space = get_space(name, preset)
        known = {spec.key for spec in space.all_layers()}
        for arch in space.sample(50, seed=2) + list(space.references().values()):
            assert set(arch.keys()) <= known


@pytest.mark.parametrize("text,fragment", [
    ("", "malformed"),
    ("k3e6--k3e6", "malformed"),
    ("K3E6", "malformed"),
    ("k3e6_k3e6", "expected 4 stages"),
    ("k3e6-k3e6_k3e6-k3e6-k3e6_k3e6-k3e6-k3e6_k3e6", "stage 4 (channels 96, stride 1) has 2 blocks, got 1"),
    ("k3e6-k3e6_k9e6-k3e6-k3e6_k3e6-k3e6-k3e6_k3e6-k3e6", "unknown block 'k9e6' at stage 2 block 1"),
    ("k3e6-k3e6_k3e6-k3e6-k3e6_zero-k3e6-k3e6_k3e6-k3e6", "'zero' at stage 3 block 1"),
])
def test_mbv2_errors_say_what_and_where(text: str, fragment: str) -> None:
    with pytest.raises(ArchError, match=None) as e:
        get_space("mbv2", "small").parse(text)
    assert fragment in str(e.value)


def test_mbv2_error_lists_the_allowed_options() -> None:
    with pytest.raises(ArchError) as e:
        get_space("mbv2", "small").parse("k3e6-k3e6_k9e6-k3e6-k3e6_k3e6-k3e6-k3e6_k3e6-k3e6")
    assert "k3e3" in str(e.value) and "zero" in str(e.value)


@pytest.mark.parametrize("text,fragment", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "malformed"),
    ("nonsense", "malformed"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv' on edge 0->1"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 needs 2 incoming edges, got 1"),
    ("|none~0|+|none~0|none~1|none~2|+|none~0|none~1|none~2|", "node 2 needs 2 incoming edges, got 3"),
    ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "should come from node 0"),
])
def test_nb201_errors_say_what_and_where(text: str, fragment: str) -> None:
    with pytest.raises(ArchError) as e:
        get_space("nb201").parse(text)
    assert fragment in str(e.value)


def test_from_choices_checks_length() -> None:
    with pytest.raises(ArchError, match="expected 10 blocks, got 3"):
        get_space("mbv2", "small").from_choices(["k3e6"] * 3)
    with pytest.raises(ArchError, match="6 edges"):
        get_space("nb201").from_choices(["none"] * 5)


def test_unknown_preset_is_named() -> None:
    with pytest.raises(ArchError, match="unknown mbv2 preset 'tiny'; known: proxyless, mobilenetv2, small"):
        get_space("mbv2", "tiny")
    with pytest.raises(ArchError, match="unknown nb201 preset"):
        get_space("nb201", "x")


def test_architectures_of_different_skeletons_differ() -> None:
    a = get_space("mbv2", "small").resolve("mobilenetv2")
    b = get_space("mbv2", "small", width_mult=0.5).resolve("mobilenetv2")
    assert str(a) == str(b) and a != b
    assert b.counts().params < a.counts().params


def test_references_exist() -> None:
    assert set(get_space("mbv2").references()) >= {"mobilenetv2", "largest", "smallest"}
    nb = get_space("nb201")
    assert str(nb.resolve("best-cifar10")).startswith("|nor_conv_3x3~0|")
    assert isinstance(get_space("mbv2"), MBV2Space) and isinstance(nb, NB201Space)


def test_space_describe_lists_decisions() -> None:
    d = get_space("mbv2", "proxyless").describe()
    assert d["stages"][0] == {"channels": 24, "repeats": 4, "stride": 2}
    assert d["head_channels"] == 1280 and d["resolution"] == 224
    assert len(d["decisions"]) == 21


@pytest.mark.parametrize("name,preset", ALL)
def test_fixed_and_option_layers_add_up_to_the_architecture(name: str, preset: str) -> None:
    from collections import Counter

    space = get_space(name, preset)
    if not space.additive:
        pytest.skip(f"{name} is not additive over decisions (a motif's layers appear once per use)")
    for arch in space.sample(10, seed=9):
        parts = list(space.fixed_layers())
        for i, option in enumerate(arch.choices):
            parts += space.option_layers(i, option)
        assert Counter(parts) == Counter(arch.layers())


def test_index_matrix_matches_indices() -> None:
    space = get_space("mbv2", "small")
    archs = space.sample(4, seed=0)
    idx = space.index_matrix(archs)
    assert idx.shape == (4, 10) and [tuple(r) for r in idx] == [a.indices() for a in archs]
    np.testing.assert_array_equal(space.encode_indices(idx), space.encode(archs))


@pytest.mark.parametrize("cell, connected", [
    ("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", True),  # straight to the output
    ("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_1x1~2|", True),  # 0 -> 1 -> 2 -> 3
    ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_1x1~2|", False),  # node 2 is never reached
    ("|none~0|+|none~0|none~1|+|none~0|skip_connect~1|skip_connect~2|", False),  # nothing leaves the input
])
def test_nb201_connectivity(cell: str, connected: bool) -> None:
    space = get_space("nb201")
    assert space.connected(space.parse(cell)) is connected
    assert get_space("mbv2", "small").connected(get_space("mbv2", "small").sample(1, seed=0)[0])
