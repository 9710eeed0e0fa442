"""Learning-curve extrapolation and the early stopping of training runs it drives."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.evaluators.curves import FAMILIES, CurveExtrapolation
from hwnas.evaluators.training import TrainingAccuracy
from hwnas.spaces import get_space
from hwnas.strategies.base import Trial
from hwnas.strategies.problem import Problem
from hwnas.strategies.rewards import get_reward
from hwnas.target import Target
from hwnas.testing.data import tiny_digits

# a curve of each family that rises from ~0.3 to ~0.85 over 30 epochs
TRUE = {"pow3": (0.88, 0.6, 0.7), "log_linear": (0.16, 0.3), "exp3": (0.86, 0.25, -0.4),
        "janoschek": (0.87, 0.2, 0.3, 0.8), "vapor_pressure": (-0.1, -1.0, 0.02), "mmf": (0.88, 0.1, 0.3, 1.2),
        "weibull": (0.86, 0.2, 0.25, 0.9), "ilog2": (1.1, 0.55), "pow4": (0.9, 0.8, 0.5, 0.8)}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_each_family_extrapolates_its_own_noiseless_curve(name: str) -> None:
    f = FAMILIES[name].f
    x = np.arange(1, 13, dtype=float)
    truth = float(f(30.0, *TRUE[name]))
    ex = CurveExtrapolation([name], noise=1e-4).fit(x, f(x, *TRUE[name]))
    assert [fit.family for fit in ex.fits] == [name]
    mean, std = ex.predict(30)
    assert mean == pytest.approx(truth, abs=0.01), (mean, truth)
    assert std < 0.02


def test_the_mixture_brackets_the_final_accuracy_of_a_noisy_curve() -> None:
    rng = np.random.default_rng(0)
    x = np.arange(1, 31, dtype=float)
    y = 0.9 - 0.5 * x ** -0.8 + rng.normal(0, 0.005, len(x))
    ex = CurveExtrapolation().fit(x[:8], y[:8])
    assert len(ex.fits) == len(FAMILIES)  # eight points: every family has more points than parameters
    mean, std = ex.predict(30)
    assert abs(mean - y[-1]) < 2 * std + 0.01
    assert ex.probability_above(30, y[-1] - 0.1) > 0.9 and ex.probability_above(30, y[-1] + 0.1) < 0.1
    chances = [ex.probability_above(30, v) for v in np.linspace(0.7, 1.0, 7)]
    assert all(a >= b for a, b in zip(chances, chances[1:]))


def test_bad_curves_are_refused() -> None:
    with pytest.raises(HwnasError, match="two or more"):
        CurveExtrapolation().fit([1], [0.5])
    with pytest.raises(HwnasError, match="unknown curve families"):
        CurveExtrapolation(["pow9"])
    with pytest.raises(HwnasError, match="more epochs"):
        CurveExtrapolation(["janoschek"]).fit([1, 2, 3], [0.2, 0.3, 0.35]).predict(10)


@pytest.fixture(scope="module")
def tiny() -> tuple:
    return get_space("mbv2", "small", resolution=16), tiny_digits(train=256, val=128)


def test_early_stopping_stops_a_run_that_cannot_win_and_records_why(tiny) -> None:
    space, data = tiny
    arch = space.sample(1, seed=2)[0]
    ev = TrainingAccuracy(data, epochs=6, batch_size=64, early_stop=0.05, calib_batches=2)
    ev.best = 1.01  # nothing beats this: the run stops once its curve says so, before the end
    acc, costs = ev.evaluate_with_cost([arch])
    assert costs[0]["stopped"] and ev.min_epochs <= costs[0]["epochs"] < 6 and costs[0]["chance"] < 0.05
    assert acc[0] == costs[0]["extrapolated_acc"] and 0.0 <= acc[0] <= 1.0 and costs[0]["seconds"] > 0
    ev.best = 0.0  # nothing is worse: the run trains to the end and becomes the best
    acc, costs = ev.evaluate_with_cost([arch])
    assert costs[0]["epochs"] == 6 and "stopped" not in costs[0] and ev.best == acc[0]
    plain = TrainingAccuracy(data, epochs=6, batch_size=64, calib_batches=2).evaluate_with_cost([arch])
    assert plain[0][0] == acc[0] and plain[1][0]["epochs"] == 6  # the same run without early stopping


def test_a_resumed_search_shows_its_past_runs_to_early_stopping(tiny) -> None:
    space, data = tiny
    a, b, c = space.sample(3, seed=0)
    ev = TrainingAccuracy(data, epochs=6, early_stop=0.1)
    ev.observe([Trial(a, 0.9, 0.9, cost={"epochs": 3, "stopped": True}), Trial(b, 0.7, 0.7, cost={"epochs": 6}),
                Trial(c, 0.8, 0.8, cached=True)])
    assert ev.best == 0.7  # a stopped run's accuracy is an extrapolation, a cached one is not a new run
    for bad, fragment in ((dict(early_stop=1.5), "probability in"), (dict(epochs=3, early_stop=0.1), "more than 3")):
        with pytest.raises(HwnasError, match=fragment):
            TrainingAccuracy(data, **bad)


def test_every_trial_carries_its_evaluation_cost() -> None:
    from hwnas.evaluators.tabular import nb201_accuracy
    from hwnas.predictors import FlopsPredictor

    space = get_space("nb201")
    archs = space.sample(5, seed=0)
    pred = FlopsPredictor(space).fit(archs, [x.counts().macs / 1e6 for x in archs])
    problem = Problem([Target("flops", pred, None)], nb201_accuracy(space), get_reward("pareto"))
    trials = problem.evaluate(archs)
    assert all(t.cost["seconds"] >= 0 and t.cost["work"] == 1 and set(t.cost) == {"seconds", "work"} for t in trials)
    again = Trial.from_json(space, trials[0].to_json())
    assert again.cost == trials[0].cost
