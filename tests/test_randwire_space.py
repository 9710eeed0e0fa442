"""Randomly wired networks: graphs from networkx's generators as DAGs, strings and seeds that
reproduce them, the built module against the counts and the keys, export, a budgeted search."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

from hwnas.errors import ArchError
from hwnas.layers import LayerSpec
from hwnas.ops import count_layer
from hwnas.spaces import get_space
from hwnas.spaces.randwire import realise, sinks


def test_a_stage_is_the_generators_graph_made_acyclic_by_index() -> None:
    for generator, graph in [("ws-k4-p0.75", nx.watts_strogatz_graph(12, 4, 0.75, seed=3)),
                             ("er-p0.2", nx.erdos_renyi_graph(12, 0.2, seed=3)),
                             ("ba-m5", nx.barabasi_albert_graph(12, 5, seed=3))]:
        parents = realise(generator, 12, 3)
        edges = {(p, child) for child, ps in enumerate(parents) for p in ps}
        assert edges == {tuple(sorted(e)) for e in graph.edges()}  # every edge, each once, low -> high
        assert all(p < child for p, child in edges)
    # BA adds each node with M edges to earlier ones: every node after the first M+1 reads exactly M
    assert [len(ps) for ps in realise("ba-m2", 10, 0)][3:] == [2] * 7


def test_a_string_round_trips_and_a_seed_reproduces_the_graph() -> None:
    space = get_space("randwire", "small")
    for arch in space.sample(5, seed=0):
        again = space.parse(str(arch))
        assert again == arch and again.graphs == arch.graphs
        assert space.from_indices(arch.indices()) == arch
    a = space.parse("ws-k4-p0.75-s1_ws-k4-p0.75-s1_ws-k4-p0.75-s1")
    b = space.parse("ws-k4-p0.75-s2_ws-k4-p0.75-s1_ws-k4-p0.75-s1")
    assert a.graphs[1:] == b.graphs[1:] and a.graphs[0] != b.graphs[0]
    child = space.mutate(a, np.random.default_rng(0))  # resamples one stage: a new generator or seed
    assert sum(x != y for x, y in zip(child.choices, a.choices)) == 1


def test_bad_strings_say_what_is_wrong() -> None:
    space = get_space("randwire", "small")
    for bad, fragment in [("resnet18", "generator-parameters-seed"),
                          ("ws-k4-p0.75-s1_ws-k4-p0.75-s1", "3 random stages"),
                          ("ws-k4-p0.75-s1_ws-k4-p0.75-s10_ws-k4-p0.75-s1", "outside 0..9"),
                          ("ws-k3-p0.5-s1_ws-k4-p0.75-s1_ws-k4-p0.75-s1", "not one of this space's"),
                          ("ba-m7-s0_ba-m5-s0_ba-m5-s0", "not one of this space's")]:
        with pytest.raises(ArchError, match=fragment):
            space.parse(bad)
    with pytest.raises(ArchError, match="too few"):
        get_space("randwire", "small", nodes=8).parse("ba-m5-s0_ba-m5-s0_ba-m5-s0")  # 4 nodes in the first stage
    with pytest.raises(ArchError, match="known: imagenet, small"):
        get_space("randwire", "tiny")


def test_the_paper_small_regime_has_the_papers_size() -> None:
    """Xie et al. 2019, Table 2: RandWire-WS(4, 0.75), small regime, C = 78: 5.6 +- 0.1 M parameters
    (mean over their graphs; ours over 10 seeds)."""
    space = get_space("randwire")
    params = [space.parse("_".join([f"ws-k4-p0.75-s{s}"] * 3)).counts().params for s in range(10)]
    assert 5.5e6 <= np.mean(params) <= 5.7e6


def test_random_networks_build_to_their_counts_and_keys() -> None:
    space = get_space("randwire", "small", resolution=16)
    table = {spec.key for spec in space.all_layers()}
    for arch in space.sample(6, seed=1):
        assert set(arch.keys()) <= table
        module = arch.build()
        assert sum(p.numel() for p in module.parameters()) == arch.counts().params
        assert module.eval()(torch.randn(2, 3, 16, 16)).shape == (2, 10)
        keys = [s.key for s in space.fixed_layers()]
        keys += [s.key for i, c in enumerate(arch.choices) for s in space.option_layers(i, c)]
        assert sorted(keys) == sorted(arch.keys())  # additive over stages


def test_node_counts_and_the_table_layer_computes_what_the_network_does() -> None:
    # 3 inputs of 4 channels at 5x5: depthwise 3x3 on 4 + pointwise 4->4 + BN + 3 weights
    spec = LayerSpec("rw_node", (5, 5, 12), (5, 5, 4), kernel=3, stride=1)
    assert count_layer(spec).params == 36 + 16 + 8 + 3 and count_layer(spec).macs == 25 * (36 + 16)
    # a node on the stage's input: 4 -> 8 channels, 6x6 -> 3x3 at stride 2, no weights
    first = LayerSpec("rw_node", (6, 6, 4), (3, 3, 8), kernel=3, stride=2)
    assert count_layer(first).params == 36 + 32 + 16 and count_layer(first).macs == 9 * (36 + 32)
    from hwnas.ops import build_layer

    node = build_layer(spec).eval()
    with torch.no_grad():
        node.weights.copy_(torch.tensor([0.3, -1.0, 2.0]))
        xs = [torch.randn(2, 4, 5, 5) for _ in range(3)]
        torch.testing.assert_close(node(torch.cat(xs, 1)), node(xs), rtol=1e-5, atol=1e-6)
        mean = build_layer(LayerSpec("rw_mean", (5, 5, 12), (5, 5, 4)))
        torch.testing.assert_close(mean(torch.cat(xs, 1)), sum(xs) / 3)
    assert sinks(((), (0,), (0,), (1, 2))) == (3,)


def test_a_random_network_exports_to_onnx_with_parity(tmp_path: Path) -> None:
    from hwnas.export.onnx import export_onnx, onnx_parity

    space = get_space("randwire", "small", resolution=16)
    model = space.resolve("ws").build().eval()
    path = export_onnx(model, space.input_shape(), tmp_path / "randwire.onnx")
    assert onnx_parity(path, model, space.input_shape()).ok


def test_cli_table_and_a_budgeted_search_on_the_randwire_space(tmp_path: Path) -> None:
    from hwnas.testing.spaces import table_and_budgeted_search

    _, result = table_and_budgeted_search(["--space", "randwire", "--preset", "small", "--resolution", "16"], tmp_path)
    assert get_space("randwire", "small", resolution=16).parse(result["arch"])


def test_wiring_counts_are_each_stages_graph_and_the_merges_the_export_holds(tmp_path: Path) -> None:
    """Per stage: the nodes on the stage's input, the edges, the nodes merging two or more
    inputs and the outputs of its realised graph; the exported graph stacks one tensor per
    edge into a merge and per output of a stage with several."""
    import collections

    import onnx

    from hwnas.export.onnx import export_onnx

    space = get_space("randwire", "small")
    archs = space.sample(3, np.random.default_rng(1))
    counts = space.wiring_counts(space.index_matrix(archs))
    assert len(counts) == 4 * len(space.stage_nodes())
    for row, arch in enumerate(archs):
        for stage, parents in enumerate(arch.graphs):
            name = space.decisions()[stage].name
            assert counts[f"{name}.input_nodes"][row] == sum(1 for ps in parents if not ps)
            assert counts[f"{name}.edges"][row] == sum(len(ps) for ps in parents)
            assert counts[f"{name}.merges"][row] == sum(1 for ps in parents if len(ps) > 1)
            assert counts[f"{name}.outputs"][row] == len(sinks(parents))
    arch = archs[0]
    path = export_onnx(arch.build().eval(), space.input_shape(), tmp_path / "net.onnx")
    ops = collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    stacked = sum(len(ps) for g in arch.graphs for ps in g if len(ps) > 1) + \
        sum(len(sinks(g)) for g in arch.graphs if len(sinks(g)) > 1)
    assert ops["Unsqueeze"] == stacked
    assert ops["ReduceSum"] == sum(counts[f"{d.name}.merges"][0] for d in space.decisions())


def test_a_predictor_linear_in_the_options_gives_its_exact_table() -> None:
    from hwnas.predictors import load_predictor

    space = get_space("randwire", "small")
    pred = load_predictor("latency_tables/randwire-small.cpu-ort.learned.json", space=space)
    table = pred.option_latency()
    assert table.exact
    archs = space.sample(200, seed=3)
    assert np.allclose(table.total(space.index_matrix(archs)), pred.predict(archs), rtol=1e-9)
