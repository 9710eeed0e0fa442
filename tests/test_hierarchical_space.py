"""Liu et al.'s hierarchical space: the three levels as one architecture object, live edges,
merges, the paper's mutation, exact counts and keys, export, predictors that sum over the
network's layers, and a budgeted search through the CLI."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.errors import ArchError
from hwnas.layers import LayerSpec
from hwnas.ops import build_layer, count_layer
from hwnas.spaces import get_space
from hwnas.spaces.hierarchical import edges, live_edges

NONE6 = ".".join(["none"] * 6)
NONE10 = ".".join(["none"] * 10)


def arch_text(motifs: dict[int, str], cell: str) -> str:
    return "|".join(f"m{i}={motifs.get(i, NONE6)}" for i in range(1, 7)) + f"|cell={cell}"


def test_edges_are_ordered_by_target_then_source_and_liveness_needs_a_whole_path() -> None:
    assert edges(4) == ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
    assert len(edges(5)) == 10
    # 0 -> 1 and 1 -> 2 lead nowhere (2 never reaches 3); only 0 -> 3 is live
    assert live_edges(["id", "none", "sep3x3", "conv1x1", "none", "none"], 4) == (False, False, False, True, False, False)
    # 1 -> 3 is unreachable from the input
    assert live_edges(["none", "none", "none", "id", "max3x3", "none"], 4) == (False,) * 3 + (True, False, False)
    assert live_edges(["none"] * 6, 4) == (False,) * 6


def test_strings_round_trip_and_bad_ones_say_what_is_wrong() -> None:
    space = get_space("hierarchical", "small")
    for arch in space.sample(20, seed=0) + list(space.references().values()):
        assert space.parse(str(arch)) == arch and space.from_indices(arch.indices()) == arch
    assert len(space.decisions()) == 6 * 6 + 10 and space.size() == 7 ** 46
    for bad, fragment in [("m1=id", "m1=..|..|m6=..|cell=.."),
                          (arch_text({1: "id.none.none.none.none.conv3x3"}, NONE10), "unknown primitive 'conv3x3'"),
                          (arch_text({}, "m7." + ".".join(["none"] * 9)), "a motif m1..m6, not 'm7'"),
                          (arch_text({}, "m1.none"), "expected 46 decisions, got 38")]:
        with pytest.raises(ArchError, match=fragment.replace(".", r"\.").replace("|", r"\|")):
            space.parse(bad)


def test_only_live_operations_are_layers_and_merges_concatenate_their_inputs() -> None:
    space = get_space("hierarchical", "small")
    s1, s2, s3 = space.cell_shapes()
    # m1: two parallel paths into node 4 (sep3x3 on 1->4 and id on 1->2->4 via conv1x1 on 2->4);
    # a dead max pool on 1->3 (node 3 never reaches 4); the cell uses m1 on 1->5 only, and m2
    # (which has no path) on 1->2 is not built
    m1 = "conv1x1.max3x3.none.sep3x3.dw3x3.none"  # e12 e13 e23 e14 e24 e34
    arch = space.parse(arch_text({1: m1, 2: "id.none.none.none.none.none"},
                                 "m2.none.none.none.none.none.m1.none.none.none"))
    assert arch.live_motifs[0] == (True, False, False, True, True, False)
    assert arch.live_cell == (False,) * 6 + (True, False, False, False)
    per_cell = lambda s: [LayerSpec("hier_conv1x1", s, s, kernel=1, stride=1),  # noqa: E731
                          LayerSpec("hier_sep3x3", s, s, kernel=3, stride=1),
                          LayerSpec("hier_dw3x3", s, s, kernel=3, stride=1),
                          LayerSpec("hier_merge", (s[0], s[1], 2 * s[2]), s, kernel=1, stride=1)]
    stem, down1, down2, last, logits = space.fixed_layers()
    assert arch.layers() == [stem, *per_cell(s1), down1, *per_cell(s2), down2, *per_cell(s3), last, logits]
    live = space.live(arch)
    assert str(live) == arch_text({1: "conv1x1.none.none.sep3x3.dw3x3.none"}, "none.none.none.none.none.none.m1.none.none.none")
    assert live.layers() == arch.layers()


def test_the_trivial_genotype_is_the_skeleton_and_computes_it() -> None:
    """The paper's starting point (every motif a chain of identities) builds to the skeleton's
    layers and computes exactly what they compute in a row."""
    space = get_space("hierarchical", "small")
    trivial = space.resolve("trivial")
    assert trivial.layers() == space.fixed_layers()
    model = trivial.build().eval()
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        chain = model.features[0](x)
        for i in (2, 4, 6):
            chain = model.features[i](chain)
        torch.testing.assert_close(model(x), model.classifier(chain), rtol=0, atol=0)


def test_a_merge_is_depthwise_concatenation_then_a_1x1_convolution() -> None:
    spec = LayerSpec("hier_merge", (5, 5, 6), (5, 5, 3), kernel=1, stride=1)
    assert count_layer(spec).params == 6 * 3 + 2 * 3 and count_layer(spec).macs == 25 * 18
    merge = build_layer(spec).eval()
    xs = [torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)]
    torch.testing.assert_close(merge(xs), merge(torch.cat(xs, 1)))
    sep = LayerSpec("hier_sep3x3", (8, 8, 4), (4, 4, 8), kernel=3, stride=2)
    assert count_layer(sep).params == 36 + 32 + 16 and count_layer(sep).macs == 16 * (36 + 32)


def test_a_cell_without_a_live_path_outputs_nothing_from_its_input() -> None:
    space = get_space("hierarchical", "small")
    dead = space.parse(arch_text({1: "id.none.none.none.none.none"}, "m1." + ".".join(["none"] * 9)))
    assert not space.connected(dead) and not any(dead.live_cell)
    assert dead.layers() == space.fixed_layers()
    assert set(space.live(dead).choices) == {"none"}
    model = dead.build().eval()
    with torch.no_grad():
        torch.testing.assert_close(model(torch.randn(1, 3, 16, 16)), model(torch.randn(1, 3, 16, 16)))


def test_the_papers_mutation_changes_one_edge_at_a_level_chosen_evenly() -> None:
    space = get_space("hierarchical", "small")
    rng = np.random.default_rng(0)
    arch = space.sample(1, seed=4)[0]
    cell_edges = 0
    for _ in range(400):
        child = space.mutate(arch, rng)
        changed = [i for i, (a, b) in enumerate(zip(arch.choices, child.choices)) if a != b]
        assert len(changed) == 1
        cell_edges += changed[0] >= 36
    assert 160 < cell_edges < 240  # level 3 about half the time (10 of its 46 decisions)


def test_networks_build_to_their_counts_and_keys() -> None:
    space = get_space("hierarchical", "small")
    table = {spec.key for spec in space.all_layers()}
    # five fixed layers and, per cell, five primitives and merges of 2, 3, 4 inputs; the last
    # separable conv is the third cell's sep3x3
    assert len(table) == 5 + 3 * (5 + 3) - 1
    for arch in space.sample(4, seed=1) + [space.resolve("sep_chain")]:
        assert set(arch.keys()) <= table
        module = arch.build()
        assert sum(p.numel() for p in module.parameters()) == arch.counts().params
        assert module.eval()(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_a_network_exports_to_onnx_with_parity(tmp_path: Path) -> None:
    from hwnas.export.onnx import export_onnx, onnx_parity

    space = get_space("hierarchical", "small")
    model = space.sample(1, seed=2)[0].build().eval()
    path = export_onnx(model, space.input_shape(), tmp_path / "hierarchical.onnx")
    assert onnx_parity(path, model, space.input_shape()).ok


def test_predictors_sum_the_table_over_each_networks_own_layers() -> None:
    """Not additive over decisions: LUT-sum is the table summed over the layers each network
    has (a motif counted once per use), and the learned predictor fits on those features."""
    from hwnas.lut.table import LatencyTable
    from hwnas.paths import REPO_ROOT
    from hwnas.predictors import LearnedPredictor, LutSumPredictor

    space = get_space("hierarchical", "small")
    table = LatencyTable.load(REPO_ROOT / "latency_tables" / "hierarchical-small.cpu-ort.lut.json", space=space)
    archs = space.sample(30, seed=3)
    lutsum = LutSumPredictor(space, table).plain()
    expected = [sum(table.latency_ms(k) for k in a.keys()) for a in archs]
    np.testing.assert_allclose(lutsum.predict(archs), expected, rtol=1e-12)
    with pytest.raises(Exception, match="not additive"):
        lutsum.option_latency()
    y = np.array(expected) * 1.3 + 0.01
    learned = LearnedPredictor(space, table, level="counts").fit(archs, y)
    assert "lutsum_ms" in learned.feature_names() and "count[hier_merge]" in learned.feature_names()
    np.testing.assert_allclose(learned.predict(archs), y, rtol=0.02)
    again = LearnedPredictor(space)
    again.set_state(learned.state())
    again.fitted = True
    np.testing.assert_allclose(again.predict(archs), learned.predict(archs), rtol=1e-12)


def test_cli_table_and_a_budgeted_search_on_the_hierarchical_space(tmp_path: Path) -> None:
    from hwnas.testing.spaces import table_and_budgeted_search

    _, result = table_and_budgeted_search(["--space", "hierarchical", "--preset", "small"], tmp_path)
    assert get_space("hierarchical", "small").parse(result["arch"])
