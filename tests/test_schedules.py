"""Multi-fidelity schedules (successive halving, Hyperband, ASHA) over any strategy, the
lower fidelities of training, and BOHB through Optuna's Hyperband pruner."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
from hwnas.errors import HwnasError
from hwnas.evaluators.training import TrainingAccuracy
from hwnas.spaces import get_space
from hwnas.strategies import get_strategy, run
from hwnas.strategies.asynchronous import FuturesPool
from hwnas.strategies.schedules import SCHEDULES, bracket_sizes, get_schedule, rung_fractions, survivors
from hwnas.strategies.base import Trial
from hwnas.testing.data import tiny_digits
from hwnas.testing.strategies import SPACE, Synthetic, SyntheticFidelity, problem, trace

SCHEDULE_NAMES = SCHEDULES.names()  # every registered schedule passes the shared tests below


def test_rungs_and_brackets_are_hyperbands_on_known_values() -> None:
    assert rung_fractions(3, 1 / 9) == pytest.approx([1 / 9, 1 / 3, 1.0])
    assert rung_fractions(2, 0.3) == pytest.approx([0.5, 1.0])  # the lowest power of 1/eta not below it
    # Li et al. 2018, Table 1 (R = 81, eta = 3): n = 81, 34, 15, 8, 5 starting at r = 1, 3, 9, 27, 81
    assert bracket_sizes(3, 1 / 81) == [(81, 0), (34, 1), (15, 2), (8, 3), (5, 4)]
    a, b, c, d = SPACE.sample(4, seed=0)
    trials = [Trial(a, 0.5), Trial(b, 0.9), Trial(c, None), Trial(d, 0.7, cached=True)]
    assert [t.arch for t in survivors(trials, 2)] == [b]  # scored, not cached: floor(2 / 2) = 1
    assert [t.arch for t in survivors(trials[:1], 3)] == [a]  # at least one goes on
    assert set(SCHEDULE_NAMES) >= {"sh", "hyperband", "asha"}
    for bad, fragment in (((1, 0.5), "eta"), ((3, 0.5), "lowest fidelity"), ((3, 0.0), "lowest fidelity")):
        with pytest.raises(HwnasError, match=fragment):
            get_schedule("sh", *bad)


def _search(name: str, queries: int = 30, seed: int = 0, budget: float = 13.0, **kw):
    obj = SyntheticFidelity(seed)
    strategy, log = run(get_strategy("random", SPACE, seed=seed), problem(obj, "hard", budget), queries,
                        schedule=get_schedule(name, 3, 1 / 9), **kw)
    return obj, log


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_a_schedule_answers_at_full_fidelity_and_adds_up_each_candidates_rungs(name: str) -> None:
    obj, log = _search(name)
    new = [t for t in log.trials if not t.cached and t.accuracy is not None]
    assert log.queries == 30 == len(new)  # a query is a new candidate; promotions are not queries
    at = collections.defaultdict(list)
    for idx, fraction in obj.at:
        at[round(fraction, 6)].append(idx)
    assert set(at) <= {round(1 / 9, 6), round(1 / 3, 6)} and len(at[round(1 / 9, 6)]) > len(at[round(1 / 3, 6)])
    full = [t for t in new if t.fidelity == 1]
    assert full and all(len(t.cost["rungs"]) >= 2 or name == "hyperband" for t in full)
    for t in new:  # each rung's history, and the work of all rungs added up
        fractions = [f for f, _ in t.cost["rungs"]]
        assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(t.fidelity)
        assert t.cost["work"] == pytest.approx(sum(fractions))
    best = log.best()
    assert best.fidelity == 1 and best.accuracy == max(t.accuracy for t in full if t.feasible)
    assert log.curve()[-1] == best.accuracy
    assert all(obj.predict([t.arch])[0] <= 13.0 for t in new)  # the hard budget screens every rung


@pytest.mark.parametrize("name,queries", [("sh", 9), ("asha", 27)])
def test_the_top_third_of_each_rung_goes_up(name: str, queries: int) -> None:
    """sh (one bracket of 9 -> 3 -> 1): exactly the top third of each rung. asha: at least the
    final top third (it promoted as candidates came, so some that were top then went up too)."""
    _, log = _search(name, queries=queries, budget=100.0)
    new = [t for t in log.trials if not t.cached and t.accuracy is not None]
    for k in (0, 1):
        rung = sorted((t for t in new if len(t.cost["rungs"]) > k), key=lambda t: -t.cost["rungs"][k][1])
        top = {str(t.arch) for t in rung[:len(rung) // 3]}
        went_up = {str(t.arch) for t in rung if len(t.cost["rungs"]) > k + 1}
        assert (went_up == top) if name == "sh" else (went_up >= top and len(went_up) < len(rung))


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_a_search_paused_mid_bracket_resumes_to_the_uninterrupted_result(name: str, tmp_path: Path) -> None:
    _, whole = _search(name, queries=20)
    state = tmp_path / "state.json"
    _, part = _search(name, queries=20, state_file=state, stop_after=4)
    assert part.queries == 4 and json.loads(state.read_text())["schedule"] is not None
    _, resumed = _search(name, queries=20, state_file=state)
    assert trace(resumed) == trace(whole)
    assert [{**t.cost, "seconds": 0} for t in resumed.trials] == [{**t.cost, "seconds": 0} for t in whole.trials]
    with pytest.raises(HwnasError, match="another evaluation schedule"):
        run(get_strategy("random", SPACE), problem(SyntheticFidelity(0), "hard", 13.0), 20, state_file=state,
            schedule=get_schedule(name, 2, 1 / 4))


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_on_workers_a_schedule_sends_each_rung_as_a_batch_and_finds_the_same(name: str) -> None:
    _, alone = _search(name, queries=20)
    obj = SyntheticFidelity(0)
    pool = FuturesPool(obj, 3)
    _, log = run(get_strategy("random", SPACE, seed=0), problem(obj, "hard", 13.0, pool=pool), 20,
                 schedule=get_schedule(name, 3, 1 / 9))
    assert trace(log) == trace(alone)
    assert sorted(obj.at) == sorted((k, f) for k, f in _search(name, queries=20)[0].at)
    assert pool.status()["finished"] == len(obj.calls)  # every rung's evaluations went through the workers


def test_a_schedule_needs_an_evaluator_with_lower_fidelities() -> None:
    with pytest.raises(HwnasError, match="no lower fidelity"):
        run(get_strategy("random", SPACE), problem(Synthetic(0), "hard", 13.0), 10, schedule=get_schedule("sh"))


@pytest.fixture(scope="module")
def tiny() -> tuple:
    return get_space("nb201", resolution=16, channels=8, cells_per_stage=1), tiny_digits()


def test_training_at_a_fraction_of_the_epochs_the_data_or_the_resolution(tiny) -> None:
    space, data = tiny
    arch = space.sample(1, seed=1)[0]
    ev = TrainingAccuracy(data, epochs=4, calib_batches=1)
    acc, cost = ev.evaluate_at([arch], 0.5)
    assert cost[0]["epochs"] == 2 and cost[0]["work"] == 0.5 and cost[0]["fidelity"] == 0.5 and 0 <= acc[0] <= 1
    assert ev.best is None  # a lower fidelity is not a run trained to the end
    ev = TrainingAccuracy(data, epochs=1, calib_batches=1, fidelity="data")
    epochs, sub, work = ev.reduced(0.25)
    assert epochs == 1 and len(sub.train) == 48 and work == 0.25 and len(sub.val) == len(data.val)
    assert ev.evaluate_at([arch], 0.25)[1][0]["work"] == 0.25
    ev = TrainingAccuracy(data, epochs=1, calib_batches=1, fidelity="resolution")
    _, small, work = ev.reduced(0.25)
    assert small.resolution == 8 and tuple(small.train[0][0].shape) == (3, 8, 8) and work == 0.25
    assert 0 <= ev.evaluate_at([arch], 0.25)[0][0] <= 1
    with pytest.raises(HwnasError, match="unknown fidelity"):
        TrainingAccuracy(data, fidelity="depth")


def test_bohb_prunes_training_runs_through_optunas_hyperband_pruner(tiny) -> None:
    pytest.importorskip("optuna")
    from hwnas.strategies import Problem, get_reward
    from hwnas.target import Target

    space, data = tiny
    lat = Synthetic(0, space)
    ev = TrainingAccuracy(data, epochs=4, calib_batches=1)
    strategy = get_strategy("bohb", space, seed=0, startup=2, eta=2, min_resource=1)
    _, log = run(strategy, Problem([Target("synthetic", lat, None)], ev, get_reward("pareto")), 8)
    runs = [t for t in log.trials if not t.cached]
    pruned = [t for t in runs if t.cost.get("pruned")]
    assert pruned and all(t.cost["epochs"] < 4 and t.fidelity < 1 for t in pruned)
    assert all(t.accuracy == t.cost["curve"][-1] and len(t.cost["curve"]) == t.cost["epochs"] for t in pruned)
    assert log.best().fidelity == 1 and not log.best().cost.get("pruned")
    again = type(strategy).from_state(space, json.loads(json.dumps(strategy.state())))
    assert again.history == strategy.history and again.failed == strategy.failed
