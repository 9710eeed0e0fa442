"""Dead operations: which operations of an architecture a runtime that removes dead code
executes, the features built on them, and a learned predictor that chooses between the
graph as written and the live one by cross-validation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwnas.predictors import LearnedPredictor
from hwnas.predictors.features import GRAPHS, LEVELS, Features
from hwnas.spaces import get_space

NB201 = get_space("nb201")


@pytest.mark.parametrize("cell, live, connected", [
    # node 1 and 2 feed nothing that reaches node 3: only the pool on 0->3 runs
    ("|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|none~2|",
     "|none~0|+|none~0|none~1|+|avg_pool_3x3~0|none~1|none~2|", True),
    # node 1 is never computed from the input, so its edge into node 2 is dead
    ("|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|",
     "|none~0|+|nor_conv_3x3~0|none~1|+|none~0|none~1|skip_connect~2|", True),
    # the output has no path from the input: nothing is live
    ("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|",
     "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", False),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
     "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", True),
])
def test_nb201_live_operations(cell: str, live: str, connected: bool) -> None:
    arch = NB201.parse(cell)
    assert str(NB201.live(arch)) == live and NB201.connected(arch) is connected
    idx = NB201.index_matrix([arch])
    assert NB201.live_indices(idx).tolist() == NB201.index_matrix([NB201.parse(live)]).tolist()
    assert NB201.connected_indices(idx).tolist() == [connected]


def test_the_vectorised_live_table_matches_the_definition_on_every_cell() -> None:
    every = np.array(list(itertools.product(range(5), repeat=6)))
    live = NB201.live_indices(every)
    archs = [NB201.from_indices(row) for row in every[::97]]
    assert live[::97].tolist() == NB201.index_matrix([NB201.live(a) for a in archs]).tolist()
    assert (~NB201.connected_indices(every)).sum() == 15625 - 15284  # the disconnected cells
    assert (live == every).all(axis=1).sum() == 9445  # cells with no dead operation
    assert np.array_equal(NB201.live_indices(live), live)  # live of live is live


def test_chains_have_no_dead_operations() -> None:
    space = get_space("mbv2", "small")
    idx = space.index_matrix(space.sample(5, seed=0))
    assert not space.has_dead_ops and np.array_equal(space.live_indices(idx), idx)
    assert space.connected_indices(idx).all()


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("graph", GRAPHS)
def test_feature_names_describe_every_column(level: str, graph: str) -> None:
    f = Features(NB201, None, level, graph)
    cells = ["|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|",  # disconnected
             "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"]
    X = f.transform(NB201.index_matrix([NB201.parse(c) for c in cells]))
    names = f.names()
    assert X.shape == (2, len(names))
    if graph == "live":
        assert X[:, names.index("computes_nothing")].tolist() == [1.0, 0.0]
    if level == "ops":
        assert X[0, :30].sum() == 6  # one option per edge
        live_none = [names.index(f"edge{frm}->{to}=none") for to, frm in ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1),
                                                                         (3, 2))]
        assert X[0, live_none].sum() == (6 if graph == "live" else 4)


def synthetic_latency(idx: np.ndarray, folds_dead_code: bool) -> np.ndarray:
    """A runtime's latency: a cost per operation kind; one that removes dead code runs only
    the live operations, and a network that computes nothing from its input in microseconds."""
    cost = np.array([0.0, 0.2, 1.0, 3.0, 0.6])
    run = NB201.live_indices(idx) if folds_dead_code else idx
    y = 2.0 + cost[run].sum(axis=1)
    if folds_dead_code:
        y[~NB201.connected_indices(idx)] = 0.004
    return y * np.exp(np.random.default_rng(0).normal(0, 0.02, len(y)))


@pytest.mark.parametrize("folds, graph", [(True, "live"), (False, "written")])
def test_the_fit_chooses_the_graph_the_runtime_executes(folds: bool, graph: str) -> None:
    rng = np.random.default_rng(1)
    every = np.array(list(itertools.product(range(5), repeat=6)))
    train, test = every[rng.choice(len(every), 300, replace=False)], every[rng.choice(len(every), 2000)]
    pred = LearnedPredictor(NB201).fit(train, synthetic_latency(train, folds))
    assert pred.graph == graph
    sel = pred.meta["selection"]
    assert sel["chosen"].endswith("/" + graph) and sel["runner_up"] != sel["chosen"]
    assert set(sel["candidates"]) >= {"ops/linear/written", "pairs/log/live"}
    y = synthetic_latency(test, folds)
    rel = np.abs(pred.predict(test) - y) / y
    assert np.mean(rel <= 0.10) > 0.9  # the chosen graph fits the runtime (noise is 2 %)


def test_exported_cells_hold_only_their_live_operations(tmp_path) -> None:
    """The ONNX file of a cell with dead nodes is its live form's; a cell that computes nothing
    from its input exports as a constant (no input at all), which onnxruntime runs."""
    import onnx

    from hwnas.devices import get_device
    from hwnas.export.onnx import export_onnx

    def exported(cell: str) -> onnx.ModelProto:
        path = tmp_path / f"{abs(hash(cell))}.onnx"
        export_onnx(NB201.parse(cell).build().eval(), NB201.input_shape(), path)
        return onnx.load(str(path))

    dead = exported("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|none~2|")
    live = exported("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    assert [n.op_type for n in dead.graph.node] == [n.op_type for n in live.graph.node]
    constant = exported("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|")
    assert len(constant.graph.input) == 0 and not any(n.op_type == "Conv" for n in constant.graph.node)
    m = get_device("cpu-ort:threads=1,runs=5,rounds=2,warmup=1").measure(constant.SerializeToString(),
                                                                          NB201.input_shape())
    assert m.latency_ms > 0 and m.stats.n > 0


def test_lutsum_counts_what_runs() -> None:
    from hwnas.predictors import FlopsPredictor

    pred = FlopsPredictor(NB201)
    cells = [NB201.parse(c) for c in (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|none~2|",  # dead nodes
        "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",  # its live form
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|")]  # computes nothing
    pred.per_option = pred.quantity()
    total = pred.total(NB201.index_matrix(cells))
    assert total[0] == total[1] > 0 and total[2] == 0.0
