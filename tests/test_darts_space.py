"""The DARTS / NASNet cell space: genotypes in DARTS's notation, the published parameter counts,
the built module against the counts and the keys, export."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.errors import ArchError
from hwnas.layers import LayerSpec
from hwnas.ops import count_layer
from hwnas.spaces import get_space
from hwnas.spaces.darts_genotypes import GENOTYPES

# What the published DARTS code (quark0/darts, cnn/model.py NetworkCIFAR(36, 10, 20, auxiliary=True))
# counts: utils.count_parameters_in_MB leaves the auxiliary head out ("param size = 3.349342MB"
# for DARTS_V2); with the head, all of model.parameters().
PUBLISHED = {"DARTS_V1": (3_169_414, 3_645_840), "DARTS_V2": (3_349_342, 3_825_768),
             "NASNet-A": (3_830_950, 4_288_944), "AmoebaNet-A": (3_145_078, 3_603_072)}


def _params(module: torch.nn.Module, aux: bool) -> int:
    return sum(p.numel() for n, p in module.named_parameters() if aux or "auxiliary" not in n)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_genotypes_have_the_published_codes_parameter_counts(name: str) -> None:
    space = get_space("darts", "nasnet" if name in ("NASNet-A", "AmoebaNet-A") else "cifar")
    arch = space.resolve(name)
    without, with_aux = PUBLISHED[name]
    assert arch.counts().params == without
    module = arch.build()
    assert _params(module, aux=False) == without and _params(module, aux=True) == with_aux


def test_every_named_genotype_round_trips_in_darts_notation_and_builds() -> None:
    found = set()
    for preset in ("cifar", "nasnet"):
        space = get_space("darts", preset, channels=8, cells=5)
        for name, arch in space.references().items():
            found.add(name)
            assert str(arch) == GENOTYPES[name]  # DARTS's own text, character for character
            assert space.parse(str(arch)) == arch
            out = arch.build().eval()(torch.randn(2, 3, 32, 32))
            assert out.shape == (2, 10)
    assert found == {"DARTS_V1", "DARTS_V2", "NASNet-A", "AmoebaNet-A", "ENAS"}


def test_parse_reads_literals_only_and_says_what_is_wrong() -> None:
    space = get_space("darts", "small")
    v2 = space.resolve("DARTS_V2")
    assert space.parse(str(v2).replace("[2, 3, 4, 5]", "range(2, 6)")) == v2  # as DARTS prints a derived cell
    for bad, fragment in [
        ("Genotype(normal=__import__('os').system('true'))", "malformed"),
        ("resnet18", "malformed"),
        (str(v2).replace("sep_conv_3x3", "conv_9x9", 1), "unknown operation 'conv_9x9'"),
        (str(v2).replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)"), "reads state 5"),
        (str(v2).replace("normal_concat=[2, 3, 4, 5]", "normal_concat=[4, 5]"), r"normal_concat \[4, 5\]"),
    ]:
        with pytest.raises(ArchError, match=fragment):
            space.parse(bad)
    with pytest.raises(ArchError, match="known: cifar, small, nasnet"):
        get_space("darts", "tiny")


def test_random_cells_build_to_their_counts_and_keys() -> None:
    space = get_space("darts", "small")
    table = {spec.key for spec in space.all_layers()}
    for arch in space.sample(6, seed=0):
        assert set(arch.keys()) <= table  # a latency table of all_layers covers every network
        assert space.from_indices(arch.indices()) == arch and space.parse(str(arch)) == arch
        module = arch.build()
        assert _params(module, aux=False) == arch.counts().params
        assert module.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    child = space.mutate(space.resolve("DARTS_V2"), np.random.default_rng(0))
    assert sum(a != b for a, b in zip(child.choices, space.resolve("DARTS_V2").choices)) == 1


def test_operation_counts_on_tiny_shapes() -> None:
    # sep_conv 3x3, stride 1, 4 channels on 5x5: two rounds of depthwise (4*9) + pointwise (4*4) + BN (2*4)
    sep = LayerSpec("sep_conv", (5, 5, 4), (5, 5, 4), kernel=3, stride=1)
    assert count_layer(sep).params == 2 * (36 + 16 + 8)
    assert count_layer(sep).macs == 2 * 25 * (36 + 16)
    # factorized reduction 6x6x4 -> 3x3x8: two 1x1 convolutions 4 -> 4 at 3x3, BN over 8
    fr = LayerSpec("factorized_reduce", (6, 6, 4), (3, 3, 8))
    assert count_layer(fr).params == 2 * 16 + 16 and count_layer(fr).macs == 2 * 9 * 16
    # dilated 5x5 (effective 9x9), stride 2, 2 channels, 8x8 -> 4x4
    dil = LayerSpec("dil_conv", (8, 8, 2), (4, 4, 2), kernel=5, stride=2)
    assert count_layer(dil).params == 2 * 25 + 4 + 4 and count_layer(dil).macs == 16 * (50 + 4)


def test_a_cell_network_exports_to_onnx_with_parity(tmp_path) -> None:
    from hwnas.export.onnx import export_onnx, onnx_parity

    space = get_space("darts", "small")
    model = space.resolve("DARTS_V2").build().eval()
    path = export_onnx(model, space.input_shape(), tmp_path / "darts.onnx")
    assert onnx_parity(path, model, space.input_shape()).ok


def test_layers_are_additive_over_decisions() -> None:
    """Each decision (op~state) fixes its layers: fixed + option layers are the network's layers,
    which LUT-sum predictors and the expected-latency loss rely on."""
    space = get_space("darts", "small")
    for arch in space.sample(5, seed=1):
        keys = [s.key for s in space.fixed_layers()]
        keys += [s.key for i, c in enumerate(arch.choices) for s in space.option_layers(i, c)]
        assert sorted(keys) == sorted(arch.keys())
    with pytest.raises(NotImplementedError, match="not additive"):
        get_space("darts", "nasnet").fixed_layers()


def test_cli_table_and_a_budgeted_search_on_the_darts_space(tmp_path) -> None:
    from hwnas.testing.spaces import table_and_budgeted_search

    space = ["--space", "darts", "--preset", "small", "--resolution", "8"]
    _, result = table_and_budgeted_search(space, tmp_path)
    assert get_space("darts", "small", resolution=8).parse(result["arch"])  # the answer in DARTS's notation


def test_the_darts_supernet_relaxes_both_cells_and_derives_darts_top_two() -> None:
    space = get_space("darts", "small", resolution=8)
    net = space.supernet()
    x = torch.randn(2, 3, 8, 8)
    assert net(x).shape == (2, 10)
    ops = space.ops
    # node 0 of the normal cell: beta prefers state 1 then 0; on state 0 'none' is the heaviest op
    # (DARTS's derivation passes over it), on state 1 sep_conv_3x3
    with torch.no_grad():
        for p in net.arch_parameters():
            p.zero_()
        net.betas[0].copy_(torch.tensor([1.0, 2.0]))
        net.alphas[0][ops.index("none")] = 5.0
        net.alphas[0][ops.index("avg_pool_3x3")] = 1.0
        net.alphas[1][ops.index("sep_conv_3x3")] = 3.0
    arch = space.from_indices(net.derive_indices())
    assert arch.normal[:2] == (("sep_conv_3x3", 1), ("avg_pool_3x3", 0))
    for node in range(space.nodes):  # two distinct states per node, never 'none'
        for cell in (arch.normal, arch.reduce):
            pair = cell[2 * node:2 * node + 2]
            assert pair[0][1] != pair[1][1] and "none" not in (pair[0][0], pair[1][0])
    # what the expected latency reads: per decision softmax(beta)_s * softmax(alpha_s)_op, summing to 1
    logits = net.decision_logits()
    assert len(logits) == len(space.decisions())
    assert [len(lg) for lg in logits] == [len(d.choices) for d in space.decisions()]
    p = torch.softmax(logits[0], -1)
    beta, a0 = torch.softmax(net.betas[0], -1), torch.softmax(net.alphas[0], -1)
    torch.testing.assert_close(p[:len(ops)], beta[0] * a0)
    torch.testing.assert_close(float(p.detach().sum()), 1.0)
    # a fixed sub-network runs only its chosen edges and operations
    v2 = space.resolve("DARTS_V2")
    net.fix(list(v2.indices()))
    net.eval()
    with torch.no_grad():
        before = net(x)
        net.cells[0].edges["0_0"].candidates[ops.index("dil_conv_5x5")][1].weight.add_(1.0)  # not in DARTS_V2
        torch.testing.assert_close(net(x), before)
        net.cells[0].edges["0_0"].candidates[ops.index("sep_conv_3x3")][1].weight.add_(1.0)  # DARTS_V2's first edge
        assert not torch.allclose(net(x), before)
    net.fix(None)
    with pytest.raises(NotImplementedError, match="not additive"):
        get_space("darts", "nasnet").supernet()


@pytest.mark.parametrize("mode", ["darts", "gdas", "proxyless"])
def test_each_mode_searches_the_darts_supernet_toward_the_budget(mode: str, tmp_path) -> None:
    """One epoch on 128 images: the expected latency (through decision_logits) falls toward a tight
    budget, and the answer is DARTS's derivation (two distinct inputs per node, no 'none')."""
    import dataclasses

    from torch.utils.data import Subset

    from hwnas.data.datasets import load
    from hwnas.predictors import FlopsPredictor
    from hwnas.supernet.search import DifferentiableSearch, SearchConfig
    from hwnas.target import Target

    space = get_space("darts", "small", resolution=8)
    archs = space.sample(40, seed=0)
    pred = FlopsPredictor(space).fit(archs, [a.counts().macs / 1e6 for a in archs])
    data = load("digits", resolution=8)
    data = dataclasses.replace(data, train=Subset(data.train, range(128)), val=Subset(data.val, range(128)))
    cfg = SearchConfig(strategy=mode, epochs=1, warmup_epochs=0, batch_size=64, arch_lr=0.05, loss="add#linear",
                       lam=5.0, torch_device="cpu")
    budget = pred.option_latency().smallest() * 1.05
    s = DifferentiableSearch(space, [Target("flops", pred, budget)], data, cfg, tmp_path, progress=False)
    before = float(s.expected_ms()[0])
    s.run()
    assert float(s.expected_ms()[0]) < before
    arch = s.derive()
    for cell in (arch.normal, arch.reduce):
        for k in range(space.nodes):
            (op_a, a), (op_b, b) = cell[2 * k:2 * k + 2]
            assert a != b and "none" not in (op_a, op_b)


NORMAL_WITHOUT_PREVIOUS = [("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 0), ("max_pool_3x3", 2),
                           ("skip_connect", 2), ("dil_conv_3x3", 3), ("avg_pool_3x3", 4), ("sep_conv_3x3", 0)]


def _genotype(space, normal, reduce):  # type: ignore[no-untyped-def]
    return space.from_choices([f"{op}~{src}" for op, src in [*normal, *reduce]])


def test_cells_no_later_cell_reads_are_dead_and_left_out_of_the_exported_graph(tmp_path) -> None:
    """small: cells 0, 2, 4 normal, 1 and 3 reductions. A normal cell that never reads the
    cell before it leaves both reductions unread: their weight is 0, and the exported ONNX
    graph is the same whatever the reduction cell holds. One edge reading the previous cell
    brings them back, and so does a ``none`` edge on it: DARTS's multiplication by zero is
    computed, so it reads the cell."""
    import onnx

    from hwnas.export.onnx import export_onnx

    space = get_space("darts", "small")
    heavy = [("sep_conv_5x5", 0), ("sep_conv_5x5", 1)] * 4
    light = [("skip_connect", 0), ("max_pool_3x3", 1)] * 4
    reads_previous = [("sep_conv_3x3", 1), *NORMAL_WITHOUT_PREVIOUS[1:]]
    zero_on_previous = [("none", 1), *NORMAL_WITHOUT_PREVIOUS[1:]]
    archs = [_genotype(space, n, r) for n in (NORMAL_WITHOUT_PREVIOUS, reads_previous, zero_on_previous)
             for r in (heavy, light)]
    live = space.live_cells(space.index_matrix(archs))
    assert live.tolist() == [[True, False, True, False, True]] * 2 + [[True] * 5] * 4
    weights = space.live_weights(space.index_matrix(archs))
    assert weights[0].tolist() == [1.0] * 8 + [0.0] * 8 and weights[2].tolist() == [1.0] * 16
    assert weights[4].tolist() == [1.0] * 16

    def nodes(arch) -> int:  # type: ignore[no-untyped-def]
        path = export_onnx(arch.build().eval(), space.input_shape(), tmp_path / "net.onnx")
        return len(onnx.load(str(path)).graph.node)

    assert nodes(archs[0]) == nodes(archs[1])
    assert nodes(archs[2]) > nodes(archs[3])
    assert nodes(archs[4]) > nodes(archs[5]) > nodes(archs[1])


def test_the_learned_predictor_sees_dead_cells_in_its_live_graph() -> None:
    from hwnas.predictors.features import Features

    space = get_space("darts", "small")
    heavy = [("sep_conv_5x5", 0), ("sep_conv_5x5", 1)] * 4
    idx = space.index_matrix([_genotype(space, NORMAL_WITHOUT_PREVIOUS, heavy)])
    written, live = (Features(space, None, "counts", g) for g in ("written", "live"))
    names = written.names()
    macs = names.index("macs_m")
    assert live.transform(idx)[0, macs] < written.transform(idx)[0, macs]
    assert live.transform(idx)[0, names.index("count[reduce.sep_conv_5x5.stride2]")] == 0.0
    assert written.transform(idx)[0, names.index("count[reduce.sep_conv_5x5.stride2]")] == 8.0


def test_features_count_an_edge_by_its_cell_type_and_stride_not_by_the_state_it_reads() -> None:
    from hwnas.predictors.features import Features

    space = get_space("darts", "small")
    assert space.counted_as(0, "sep_conv_3x3~1") == space.counted_as(6, "sep_conv_3x3~4") == "normal.sep_conv_3x3"
    assert space.counted_as(8, "sep_conv_3x3~0") == space.counted_as(9, "sep_conv_3x3~1") == \
        "reduce.sep_conv_3x3.stride2"
    assert space.counted_as(14, "sep_conv_3x3~4") == "reduce.sep_conv_3x3"
    # a reduction cell's edge on an input runs at stride 2 on the larger map: its own layers
    assert space.option_layers(8, "sep_conv_3x3~0")[0].stride == 2
    assert space.option_layers(14, "sep_conv_3x3~4")[0].stride == 1
    names = Features(space, None, "counts").names()
    counted = [n for n in names if n.startswith("count[")]
    assert len(counted) == len(set(counted)) == 8 + 8 + 8  # normal ops; reduce ops at stride 1 and 2
    reduce = [("max_pool_3x3", 0), ("max_pool_3x3", 1)] + [("max_pool_3x3", 0), ("max_pool_3x3", 2)] * 3
    arch = _genotype(space, [("skip_connect", 0), ("sep_conv_3x3", 1)] * 4, reduce)
    row = Features(space, None, "counts").transform(space.index_matrix([arch]))[0]
    expect = {"normal.skip_connect": 4, "normal.sep_conv_3x3": 4, "reduce.max_pool_3x3.stride2": 5,
              "reduce.max_pool_3x3": 3}
    assert {n[6:-1]: row[i] for i, n in enumerate(names) if n.startswith("count[") and row[i]} == expect


def test_wiring_counts_are_what_onnx_runtime_computes_once(tmp_path) -> None:
    """Three edges applying a ReLU-first operation to state 0 share one ReLU, two max-poolings
    of node 2 and two ``none`` on node 3 run once each: in the graph ONNX Runtime optimises,
    the second normal cell below has 2 ReLUs and 2 weightless operations fewer per normal
    cell (3 in the small preset) than the first, which has the same operations apart."""
    import collections

    import onnx
    import onnxruntime as ort

    from hwnas.export.onnx import export_onnx

    space = get_space("darts", "small")
    reduce = [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 2), ("sep_conv_3x3", 1),
              ("max_pool_3x3", 2), ("skip_connect", 3), ("avg_pool_3x3", 4), ("dil_conv_3x3", 0)]
    apart = [("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_3x3", 1), ("max_pool_3x3", 1),
             ("sep_conv_5x5", 2), ("max_pool_3x3", 2), ("none", 3), ("none", 0)]
    together = [("sep_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_3x3", 0), ("max_pool_3x3", 2),
                ("sep_conv_5x5", 0), ("max_pool_3x3", 2), ("none", 3), ("none", 3)]
    archs = [_genotype(space, normal, reduce) for normal in (apart, together)]
    shared = space.wiring_counts(space.index_matrix(archs))
    assert {k: v.tolist() for k, v in shared.items()} == {
        "normal.shared_relu": [0, 2], "normal.shared_weightless": [0, 2],
        "reduce.shared_relu": [2, 2], "reduce.shared_weightless": [0, 0]}
    live = space.wiring_counts(space.index_matrix(archs), np.full((2, 16), 0.5))
    assert live["normal.shared_relu"].tolist() == [0.0, 1.0]

    def optimised(arch, name: str) -> collections.Counter:  # type: ignore[no-untyped-def]
        path = export_onnx(arch.build().eval(), space.input_shape(), tmp_path / f"{name}.onnx")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(tmp_path / f"{name}.opt.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return collections.Counter(n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node)

    first, second = optimised(archs[0], "apart"), optimised(archs[1], "together")
    normal_cells = 3
    assert first["Relu"] - second["Relu"] == 2 * normal_cells
    weightless = ("MaxPool", "AveragePool", "Mul")
    assert sum(first[k] - second[k] for k in weightless) == 2 * normal_cells
    assert first["Conv"] == second["Conv"]


def test_a_predictor_not_linear_in_the_options_gives_their_least_squares_table() -> None:
    """The shipped learned predictor weighs whole dead cells out and counts shared work, so no
    per-option table reproduces it: its table is the linear fit to its predictions on sampled
    networks (not the expansion around every edge ``none~0``, where both reductions are dead
    and the expansion doubles the median), and the budget quantile comes from its predictions."""
    from hwnas.job.targets import latency_spread
    from hwnas.predictors import load_predictor
    from hwnas.target import Target

    space = get_space("darts", "small")
    pred = load_predictor("latency_tables/darts-small.cpu-ort.learned.json", space=space)
    table = pred.option_latency()
    assert not table.exact
    idx = space.index_matrix(space.sample(1000, seed=7))
    predicted = pred.predict(space.sample(1000, seed=7))
    assert np.mean(np.abs(table.total(idx) / predicted - 1)) < 0.08
    assert abs(np.median(table.total(idx)) / np.median(predicted) - 1) < 0.02
    quantile, least, where = latency_spread(space, Target("learned", pred))
    assert where.startswith("among") and least < quantile(0.01)
    assert quantile(0.5) == pytest.approx(np.median(predicted), rel=0.03)

