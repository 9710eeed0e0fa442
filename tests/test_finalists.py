"""The hard-budget screen margin, measured finalists, and evolution's way out of a used-up
neighbourhood, on known values."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.spaces import get_space
from hwnas.spaces.base import Arch
from hwnas.strategies import Problem, Trial, get_reward, get_strategy
from hwnas.target import Target
from hwnas.strategies.finalists import measure_finalists
from hwnas.strategies.loop import SearchLog

SPACE = get_space("nb201")
OPS = SPACE.decisions()[0].choices


def arch(k: int) -> Arch:
    """Architecture number k (0..624 here): distinct for distinct k."""
    return SPACE.from_indices([0, 0, (k // 125) % 5, (k // 25) % 5, (k // 5) % 5, k % 5])


class Known:
    """Accuracy k / 1000 and predicted latency k ms for architecture number k."""

    def number(self, a: Arch) -> int:
        i = a.indices()
        return i[2] * 125 + i[3] * 25 + i[4] * 5 + i[5]

    def evaluate(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array([self.number(a) / 1000 for a in archs])

    def predict(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.latency(archs)

    def latency(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.array([float(self.number(a)) for a in archs])


def test_the_screen_margin_evaluates_candidates_predicted_slightly_over_budget() -> None:
    k = Known()
    prob = Problem([Target("d", k, 100.0, screen_margin=0.1)], k, get_reward("hard"))
    t = {int(k.number(x.arch)): x for x in prob.evaluate([arch(90), arch(100), arch(105), arch(110), arch(111)])}
    assert [n for n in sorted(t) if t[n].accuracy is not None] == [90, 100, 105, 110]  # up to 1.1 x budget
    assert t[111].reward is None and t[111].accuracy is None  # rejected before evaluation
    assert [n for n in sorted(t) if t[n].feasible] == [90, 100]  # feasible by prediction: <= budget
    assert prob.describe()["screen_margin"] == {"d": 0.1}
    with pytest.raises(HwnasError, match="margin must be >= 0"):
        Target("d", k, 100.0, screen_margin=-0.1)
    with pytest.raises(HwnasError, match="give the budget"):
        Target("d", k, None, screen_margin=0.1)


def test_finalists_are_measured_best_first_until_one_meets_the_budget() -> None:
    k = Known()
    prob = Problem([Target("d", k, 100.0, screen_margin=0.2)], k, get_reward("hard"))
    log = SearchLog(trials=prob.evaluate([arch(n) for n in (50, 95, 99, 104, 118, 130)]))
    measured_true = {50: 49.0, 95: 104.0, 99: 101.0, 104: 98.0, 118: 125.0}  # the "device"
    calls: list[int] = []

    def measure(a: Arch) -> dict[str, float]:
        calls.append(k.number(a))
        return {"d": measured_true[k.number(a)]}

    chosen, taken = measure_finalists(log, prob.targets, measure, 10)
    # best reward first: 118 (125 ms, over), 104 (98 ms, meets): stop there
    assert calls == [118, 104] and k.number(chosen.arch) == 104
    assert [f.meets for f in taken] == [False, True] and taken[1].measured_ms == {"d": 98.0}
    assert taken[1].to_json()["predicted_ms"] == {"d": 104.0}
    # with one measurement allowed, nothing measured meets the budget: no answer, said plainly
    chosen, taken = measure_finalists(log, prob.targets, measure, 1)
    assert chosen is None and len(taken) == 1
    with pytest.raises(HwnasError, match="at least one"):
        measure_finalists(log, prob.targets, measure, 0)
    with pytest.raises(HwnasError, match="lacks device"):
        measure_finalists(log, prob.targets, lambda a: {"other": 1.0}, 3)


def test_a_pool_measures_finalists_in_waves_and_answers_as_one_device_would() -> None:
    k = Known()
    prob = Problem([Target("d", k, 100.0, screen_margin=0.2)], k, get_reward("hard"))
    log = SearchLog(trials=prob.evaluate([arch(n) for n in (50, 95, 99, 104, 118, 130)]))
    measured_true = {50: 49.0, 95: 104.0, 99: 101.0, 104: 98.0, 118: 125.0}
    calls: list[int] = []

    def measure(a: Arch) -> dict[str, float]:
        calls.append(k.number(a))
        return {"d": measured_true[k.number(a)]}

    # best reward first: 118 (over), 104 (meets), 99 (over), 95 (over), 50 (meets)
    for width, measured in [(1, [118, 104]), (2, [118, 104]), (3, [118, 104, 99]), (8, [118, 104, 99, 95, 50])]:
        calls.clear()
        chosen, taken = measure_finalists(log, prob.targets, measure, 10, width=width)
        assert k.number(chosen.arch) == 104  # the answer does not depend on the pool's size
        assert sorted(calls) == sorted(measured) and [k.number(f.trial.arch) for f in taken] == measured
        assert [f.meets for f in taken] == [measured_true[n] <= 100.0 for n in measured]
    # waves stop at k: with k = 3 and width 2, the second wave holds one candidate
    measured_true[104] = 103.0
    chosen, taken = measure_finalists(log, prob.targets, measure, 3, width=2)
    assert chosen is None and [k.number(f.trial.arch) for f in taken] == [118, 104, 99]
    with pytest.raises(HwnasError, match="width >= 1"):
        measure_finalists(log, prob.targets, measure, 3, width=0)


def test_evolution_leaves_a_used_up_neighbourhood_for_a_fresh_architecture() -> None:
    evo = get_strategy("evolution", SPACE, seed=0, population=2, tournament=2)
    parents = [SPACE.from_indices([0] * 6), SPACE.from_indices([1] * 6)]
    evo.tell([Trial(p, 0.5, 0.5, {"d": 1.0}, True) for p in parents])
    for p in parents:
        evo.seen.add(p.indices())
        for i in range(6):
            for o in range(len(OPS)):
                evo.seen.add(tuple(o if j == i else p.indices()[j] for j in range(6)))
    before = set(evo.seen)
    child = evo.ask(1)[0]
    assert child.indices() not in before


class KnownWithError(Known):
    """Known, with a calibrated error of 5 ms: a candidate predicted 8 ms over a 100 ms budget
    has a 5.5 % chance of meeting it, one 4 ms over 21 %."""

    std_calibrated = True

    def predict_std(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.full(len(archs), 5.0)


def test_finalists_skip_candidates_unlikely_to_meet_the_budget() -> None:
    k = KnownWithError()
    target = Target("d", k, 100.0, screen_margin=0.2)
    log = SearchLog(trials=Problem([target], k, get_reward("hard")).evaluate([arch(n) for n in (50, 99, 104, 108)]))
    measured_true = {50: 49.0, 99: 97.0, 104: 99.0, 108: 101.0}
    calls: list[int] = []

    def measure(a: Arch) -> dict[str, float]:
        calls.append(k.number(a))
        return {"d": measured_true[k.number(a)]}

    chosen, taken = measure_finalists(log, [target], measure, 10, min_chance=0.2)
    assert calls == [104] and k.number(chosen.arch) == 104  # 108 (5.5 %) is not measured
    assert taken[0].chance == pytest.approx(0.2119, abs=1e-4) and taken[0].to_json()["chance"] == taken[0].chance
    calls.clear()
    chosen, _ = measure_finalists(log, [target], measure, 10)  # no threshold: best first, as before
    assert calls == [108, 104]
    assert np.allclose(target.chance([arch(100), arch(90)]), [0.5, 0.97725], atol=1e-5)
    assert Target("d", Known(), 100.0).chance([arch(100)]) is None  # no calibrated error: nothing is skipped
    with pytest.raises(HwnasError, match=r"in \[0, 1\)"):
        measure_finalists(log, [target], measure, 10, min_chance=1.0)


def test_screen_margin_auto_is_the_predictors_error_at_the_budget() -> None:
    from hwnas.predictors import LearnedPredictor
    from hwnas.predictors.base import screen_margin

    idx = np.array([SPACE.sample(1, seed=s)[0].indices() for s in range(60)])
    y = 1.0 + idx.sum(axis=1) * 0.5 + np.random.default_rng(0).uniform(0, 0.2, len(idx))
    pred = LearnedPredictor(SPACE).fit(idx, y)
    # as far over the budget as leaves a 20 % chance of meeting it: 0.8416 std of the
    # calibrated error at the budget, as a fraction of it
    std = float(pred.error_std(np.array([4.0]))[0])
    assert screen_margin("auto", pred, 4.0) == pytest.approx(0.8416 * std / 4.0, rel=1e-4)
    # without a budget (or an error model): the hold-out error
    assert screen_margin("auto", pred) == pytest.approx(pred.meta["validation"]["mape_pct"] / 100)
    assert screen_margin("0.05", pred) == 0.05 and screen_margin(0.2, None) == 0.2
    with pytest.raises(HwnasError, match="no hold-out error"):
        screen_margin("auto", LearnedPredictor(SPACE).fit(idx[:10], y[:10]))
    with pytest.raises(HwnasError, match="or 'auto'"):
        screen_margin("wide", pred)


def test_exchanges_move_an_option_keeping_the_operations() -> None:
    a = SPACE.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    # put skip_connect on edge 0: it comes from edge 2 or edge 3, which take nor_conv_3x3 instead
    got = sorted(str(x) for x in SPACE.exchanges(a, 0, "skip_connect"))
    assert got == ["|skip_connect~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
                   "|skip_connect~0|+|none~0|skip_connect~1|+|nor_conv_3x3~0|none~1|nor_conv_1x1~2|"]
    assert SPACE.exchanges(a, 0, "avg_pool_3x3") == []  # no edge holds it
    assert SPACE.exchanges(a, 0, "nor_conv_3x3") == []  # already there
    mbv2 = get_space("mbv2", "small")
    b = mbv2.from_choices([d.choices[-1] for d in mbv2.decisions()])  # every skippable block skipped
    assert "zero" not in mbv2.decisions()[0].choices and b.choices[1] == "zero"
    assert mbv2.exchanges(b, 0, "zero") == []  # a stage's first block cannot be skipped


def test_evolution_repairs_a_rejected_child_by_an_exchange() -> None:
    evo = get_strategy("evolution", SPACE, seed=0, population=2, tournament=2)
    parent = SPACE.parse("|none~0|+|none~0|skip_connect~1|+|nor_conv_3x3~0|none~1|none~2|")
    child = SPACE.parse("|skip_connect~0|+|none~0|skip_connect~1|+|nor_conv_3x3~0|none~1|none~2|")
    evo.parents[child.indices()] = parent  # as if asked for as parent's mutation
    evo.seen.add(child.indices())
    evo.tell([Trial(child, None, None, {"d": 99.0}, False)])  # a hard budget rejected it
    # the next proposal puts skip_connect on edge 0 by moving it there from edge 2
    assert str(evo.ask(1)[0]) == "|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    off = get_strategy("evolution", SPACE, seed=0, population=2, tournament=2, repair=False)
    off.parents[child.indices()] = parent
    off.tell([Trial(child, None, None, {"d": 99.0}, False)])
    assert not off.repairs
