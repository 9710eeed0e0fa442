"""Statistics on known samples, and the protocol's arithmetic on scripted timings."""

from __future__ import annotations

import math

import pytest

from hwnas.measure.protocol import MeasureProtocol, measure
from hwnas.measure.stats import TimingStats


def test_stats_on_known_samples() -> None:
    s = TimingStats.from_samples([float(v) for v in range(1, 11)], first_run_ms=42.0)
    assert s.n == 10
    assert s.median_ms == 5.5 and s.mean_ms == 5.5 and s.min_ms == 1.0
    assert s.p10_ms == pytest.approx(1.9) and s.p90_ms == pytest.approx(9.1)
    assert s.std_ms == pytest.approx(math.sqrt(55 / 6))  # sample variance of 1..10 is 55/6
    assert s.cv == pytest.approx(math.sqrt(55 / 6) / 5.5)
    assert s.first_run_ms == 42.0
    assert TimingStats.from_dict(s.to_dict()) == s


def test_stats_single_and_invalid() -> None:
    assert TimingStats.from_samples([2.0]).cv == 0.0
    with pytest.raises(ValueError, match="no timing samples"):
        TimingStats.from_samples([])
    with pytest.raises(ValueError, match="finite"):
        TimingStats.from_samples([1.0, float("nan")])


class Scripted:
    """A runner whose durations follow a script: a machine whose speed drifts."""

    def __init__(self, base_ms: float, clock: list[float]) -> None:
        self.base_ms = base_ms
        self.clock = clock  # shared drift factor, changed between calls by the test's schedule

    def time_once(self) -> float:
        self.clock[1] += 1
        drift = 1.0 + 0.2 * ((self.clock[1] // 10) % 2)  # alternates between 1.0 and 1.2 every 10 calls
        return self.base_ms * drift


def test_compensation_cancels_drift() -> None:
    clock = [0.0, 0]
    model, ref = Scripted(2.0, clock), Scripted(0.5, clock)
    proto = MeasureProtocol(warmup_runs=0, warmup_s=0, runs=50, rounds=10)
    m = measure(model, proto, reference=ref, reference_ms=0.4)
    assert m.compensated and m.ratio == pytest.approx(4.0)
    assert m.latency_ms == pytest.approx(1.6)  # 4 x the calibrated 0.4 ms, whatever the drift
    assert m.stats.median_ms > 2.0  # the raw figure saw the drift
    assert not m.noisy and m.attempts == 1
    assert m.to_entry()["median_ms"] == pytest.approx(1.6)


def test_without_reference_reports_raw() -> None:
    clock = [0.0, 0]
    m = measure(Scripted(1.0, clock), MeasureProtocol(warmup_runs=2, warmup_s=0, runs=20, rounds=4))
    assert not m.compensated and m.latency_ms == m.stats.median_ms and m.stats.n == 20


class Noisy:
    def __init__(self) -> None:
        self.i = 0

    def time_once(self) -> float:
        self.i += 1
        return 1.0 if self.i % 2 else 3.0


def test_noisy_result_is_remeasured_then_flagged() -> None:
    retries = []
    proto = MeasureProtocol(warmup_runs=0, warmup_s=0, runs=10, rounds=2, max_cv=0.05, retries=2)
    m = measure(Noisy(), proto, on_retry=retries.append)
    assert m.noisy and m.attempts == 3 and len(retries) == 3


def test_warmup_runs_by_count_and_time() -> None:
    clock = [0.0, 0]
    r = Scripted(1.0, clock)
    measure(r, MeasureProtocol(warmup_runs=7, warmup_s=0, runs=1, rounds=1, compensate=False))
    assert clock[1] == 1 + 7 + 1  # first run, warm-up, one timed run


def test_protocol_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        MeasureProtocol(runs=0)


class Contended:
    """A model and the reference on a machine whose neighbour comes and goes between
    attempts, slowing the model (2.0 -> 2.6 ms) more than the reference (0.5 -> 0.6 ms)."""

    QUIET, LOUD = {"model": 2.0, "reference": 0.5}, {"model": 2.6, "reference": 0.6}

    def __init__(self, machine: dict, role: str) -> None:
        self.machine, self.role = machine, role

    def time_once(self) -> float:
        m = self.machine
        attempt = max(m["calls"], 0) // m["per_attempt"]
        m["calls"] += 1
        return m["states"][min(attempt, len(m["states"]) - 1)][self.role]


def _contended(states: list[dict]) -> tuple[Contended, Contended]:
    machine = {"calls": -1, "per_attempt": 20, "states": states}  # -1: the cold first run
    return Contended(machine, "model"), Contended(machine, "reference")


def test_spread_reports_the_quietest_third_of_the_attempts() -> None:
    q, loud = Contended.QUIET, Contended.LOUD
    states = [loud, q, loud, loud, q, loud, q, loud, loud]
    proto = MeasureProtocol(warmup_runs=0, warmup_s=0, runs=10, rounds=2, spread=9)
    model, ref = _contended(states)
    m = measure(model, proto, reference=ref, reference_ms=0.4)
    assert m.latency_ms == pytest.approx(4.0 * 0.4)  # the quiet ratio, 2.0 / 0.5
    assert m.attempts == 9 and m.spread_cv == pytest.approx(0.0) and not m.noisy
    assert m.state_range == pytest.approx(0.6 / 0.5)
    assert m.to_dict()["spread_cv"] == pytest.approx(0.0)

    model, ref = _contended(states)  # one attempt takes the state it finds: here the loud one
    one = measure(model, MeasureProtocol(warmup_runs=0, warmup_s=0, runs=10, rounds=2), reference=ref,
                  reference_ms=0.4)
    assert one.latency_ms == pytest.approx(2.6 / 0.6 * 0.4) and one.spread_cv is None


def test_spread_without_a_reference_keeps_the_fastest_third() -> None:
    q, loud = Contended.QUIET, Contended.LOUD
    machine_model, _ = _contended([loud, loud, q, loud, loud, loud])
    machine_model.machine["per_attempt"] = 10
    m = measure(machine_model, MeasureProtocol(warmup_runs=0, warmup_s=0, runs=10, rounds=2, spread=6,
                                               compensate=False))
    # the quietest third of 6 is 2 attempts (2.0 and 2.6 ms); the lower median is the quiet one
    assert not m.compensated and m.latency_ms == pytest.approx(2.0) and m.attempts == 6
    assert m.spread_cv == pytest.approx((2.6 - 2.0) / math.sqrt(2) / 2.3)


def test_protocol_records_spread_only_when_used() -> None:
    assert "spread" not in MeasureProtocol().to_dict()  # headers written before it still match
    assert MeasureProtocol(spread=1).to_dict() == MeasureProtocol().to_dict()  # one attempt either way
    assert MeasureProtocol(spread=9).to_dict()["spread"] == 9
    assert MeasureProtocol(**MeasureProtocol(spread=9).to_dict()) == MeasureProtocol(spread=9)
    with pytest.raises(ValueError, match="spread"):
        MeasureProtocol(spread=0)
