"""The pieces of the model-based strategies on known values: the path encoding, how a network
grows from its simplest form, the MLP ensemble, and PNAS's levels."""

from __future__ import annotations

import numpy as np

from hwnas.nn.ensemble import MLPEnsemble
from hwnas.spaces import get_space
from hwnas.strategies import get_strategy
from hwnas.strategies.base import Trial
from hwnas.strategies.surrogate import candidates, history_xy, neighbour_rows

NB201 = get_space("nb201")


def test_nb201_path_encoding_on_known_cells() -> None:
    assert NB201.path_encoding_size() == 4 + 16 + 16 + 64
    # only the direct edge 0->3, a skip: the first feature of the one-edge path
    direct = NB201.parse("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    # 0->1 conv3x3 then 1->3 conv1x1 (path 0->1->3, labels 2 and 1 of 4: slot 2 + 1*4 after the 4
    # one-edge features); 2->3 and 0->2 skip (path 0->2->3, slot 0 after 4 + 16)
    cell = NB201.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|nor_conv_1x1~1|skip_connect~2|")
    enc = NB201.path_encode_indices(NB201.index_matrix([direct, cell]))
    assert enc.shape == (2, 100) and enc.dtype == np.float32
    assert np.flatnonzero(enc[0]).tolist() == [0]
    assert np.flatnonzero(enc[1]).tolist() == [4 + 2 + 1 * 4, 4 + 16]
    # a dead edge does not show: the cell with its dead operations removed encodes the same
    dead = NB201.parse("|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|nor_conv_1x1~1|none~2|")
    assert NB201.live(dead) != dead
    both = NB201.path_encode_indices(NB201.index_matrix([dead, NB201.live(dead)]))
    assert np.array_equal(both[0], both[1])


def test_a_chain_path_encoding_is_its_one_hot_encoding() -> None:
    space = get_space("mbv2", "small")
    idx = space.index_matrix(space.sample(5, seed=0))
    assert np.array_equal(space.path_encode_indices(idx), space.encode_indices(idx))


def test_simplest_network_and_growth_order() -> None:
    assert NB201.simplest() == (0,) * 6  # none everywhere
    assert NB201.growth() == ((3,), (0, 4), (1, 2, 5))  # 0->3, then node 1, then node 2
    space = get_space("mbv2", "small")
    simplest = [space.decisions()[i].choices[j] for i, j in enumerate(space.simplest())]
    assert simplest == ["k3e3", "zero", "k3e3", "zero", "zero", "k3e3", "zero", "zero", "k3e3", "zero"]
    assert space.growth() == ((0, 1), (2, 3, 4), (5, 6, 7), (8, 9))  # stage by stage
    assert sorted(i for g in space.growth() for i in g) == list(range(len(space.decisions())))


def test_history_and_candidates() -> None:
    history = [([0, 1], 0.5), ([1, 1], None), ([2, 0], 0.9)]
    idx, y = history_xy(history)
    assert idx.tolist() == [[0, 1], [2, 0]] and y.tolist() == [0.5, 0.9]  # a rejected one has no reward
    assert sorted(neighbour_rows([3, 2], [[2, 0]]).tolist()) == [[0, 0], [1, 0], [2, 0], [2, 0], [2, 1]]
    seen = {(0, 1), (1, 1), (2, 0)}
    cand = candidates(np.random.default_rng(0), [3, 2], seen, history, pool=0, top=1)
    assert cand.tolist() == [[0, 0], [1, 0], [2, 1]]  # the best one's unseen neighbours, sorted


def test_ensemble_learns_a_known_function_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)).astype(np.float32)
    y = 2.0 * x[:, 0] - x[:, 1] + 10.0
    a = MLPEnsemble(members=4, steps=400, seed=3).fit(x[:150], y[:150])
    mu, sd = a.predict(x[150:])
    assert np.sqrt(np.mean((mu - y[150:]) ** 2)) < 0.25  # the targets' spread is 2.2
    assert sd.shape == (50,) and np.all(sd >= 0) and sd.mean() > 0
    b = MLPEnsemble(members=4, steps=400, seed=3).fit(x[:150], y[:150])
    assert np.array_equal(a.predict_members(x), b.predict_members(x))


def test_pnas_grows_the_cell_level_by_level() -> None:
    pnas = get_strategy("pnas", NB201, seed=0, beam=5)
    first = pnas.ask(5)  # level 1: the 5 one-edge cells (the edge from input to output)
    assert sorted(a.choices[3] for a in first) == sorted(NB201.decisions()[3].choices)
    assert all(a.choices[:3] + a.choices[4:] == ("none",) * 5 for a in first)
    pnas.tell([Trial(a, float(i)) for i, a in enumerate(first)])
    pnas.beam = 3
    second = pnas.ask(3)  # level 2: children of the 3 best, node 1 specified, node 2 still empty
    parents = {a.choices[3] for a in first[2:]}
    assert len(second) == 3 and all(a.choices[3] in parents for a in second)
    assert all(a.choices[0] != "none" or a.choices[4] != "none" for a in second)
    assert all(a.choices[1] == a.choices[2] == a.choices[5] == "none" for a in second)


def test_model_based_strategies_search_a_chain() -> None:
    from hwnas.strategies import run
    from hwnas.testing.strategies import Synthetic, problem

    space = get_space("mbv2", "small")
    first = get_strategy("pnas", space, seed=0).ask(10)  # level 1: stage 1 specified, the rest simplest
    simplest = space.simplest()
    assert all(a.indices()[2:] == simplest[2:] for a in first) and len({a.indices() for a in first}) == 10
    for name in ("pnas", "bananas"):
        obj = Synthetic(seed=1, space=space)
        _, log = run(get_strategy(name, space, seed=0), problem(obj, "hard", 20.0), 40)
        assert log.queries == 40 and len(set(obj.calls)) == 40
        assert log.best().feasible and log.best().latency_ms["synthetic"] <= 20.0


def test_feasibility_learns_which_side_of_a_budget_a_cell_is_on() -> None:
    from hwnas.strategies.surrogate import feasibility

    rng = np.random.default_rng(0)
    rows = rng.integers(0, 5, size=(300, 6))
    cost = (rows == 3).sum(axis=1)  # conv3x3 is the expensive option; the budget allows two
    history = [(r.tolist(), None if c > 2 else 1.0) for r, c in zip(rows[:200], cost[:200])]
    chance = feasibility(NB201, history, rows[200:])
    assert np.mean((chance >= 0.5) == (cost[200:] <= 2)) > 0.9
    assert np.array_equal(feasibility(NB201, [(r, 1.0) for r, _ in history], rows[200:]), np.ones(100))
