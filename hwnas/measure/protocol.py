"""The measurement protocol: warm-up, interleaved timed runs, drift compensation.

What trusted benchmarks do (TFLite ``benchmark_model``, ``torch.utils.benchmark``):
one cold run recorded as ``first_run_ms``; warm-up until both a count and a minimum
time are reached; many timed runs summarised by median, p10/p90, mean and CV.

Drift compensation: a shared VM (or a warming phone) drifts by 8-20 % between rounds.
A fixed reference network is timed in small batches interleaved with the model under
test; each round gives a ratio model/reference (medians), and the model's latency is
reported as median(ratio) x the reference's calibrated latency. Raw and compensated
figures are both kept.

Contention states (``spread``): a busy neighbour (the other hyperthread of the core, another
VM) does not slow every network alike, so the ratio itself moves with the machine's state.
On this 2-vCPU VM a DARTS network measured 0.271 ms over the quietest third of 240
attempts and 0.300 ms over the loudest (the reference's raw time 0.38 against 0.5 ms);
states last about half a second, so one attempt (~50 ms) sees one state and the figure
depends on when it was taken (14 % from the 10th to the 90th percentile). With ``spread``
= N the protocol takes N attempts, warming both networks again between them (which spaces
them by the warm-up time, about a state's length), and reports the median over the
quietest third, ranked by the reference's raw time (by the
model's own when nothing is interleaved): the figure of the machine as nobody else uses it.

Needs only numpy and the standard library (the on-device agent uses it).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Protocol as TypingProtocol

import numpy as np

from hwnas.measure.stats import TimingStats


class Runner(TypingProtocol):
    def time_once(self) -> float:
        """Run one inference on a fixed input; return its duration in milliseconds."""


@dataclass(frozen=True)
class MeasureProtocol:
    """How a latency is measured; recorded with every figure (its provenance)."""

    #: warm-up: at least this many runs and this long, at most ``max_warmup_s``
    warmup_runs: int = 10
    warmup_s: float = 0.2
    #: timed runs per round, and rounds (the reference network is timed between rounds)
    runs: int = 50
    rounds: int = 10
    #: a result noisier than this (coefficient of variation) is measured again, up to ``retries`` times
    max_cv: float = 0.10
    retries: int = 2
    #: report through the interleaved reference network (drift compensation)
    compensate: bool = True
    max_warmup_s: float = 10.0
    #: attempts spread over the machine's contention states, reported from the quietest third
    #: (module docstring); 1 takes one attempt (re-measured only when noisy); None: not said,
    #: which is 1 here and lets a verification choose its own
    spread: int | None = None

    def __post_init__(self) -> None:
        if self.runs < 1 or self.rounds < 1 or self.warmup_runs < 0 or self.retries < 0 or self.attempts < 1:
            raise ValueError("runs, rounds and spread must be >= 1, warmup_runs and retries >= 0")

    def to_dict(self) -> dict[str, Any]:
        """The protocol as recorded; ``spread`` only when above 1, so that the headers written
        before it existed still name the same protocol."""
        d = asdict(self)
        if self.attempts == 1:
            del d["spread"]
        return d

    @property
    def attempts(self) -> int:
        """How many attempts a measurement spreads over."""
        return 1 if self.spread is None else self.spread


@dataclass
class Measurement:
    """One model's latency. ``latency_ms`` is the compensated figure when a reference
    was interleaved, the raw median otherwise; ``stats`` are always the raw timings."""

    latency_ms: float
    stats: TimingStats
    compensated: bool
    #: median model/reference time ratio over the rounds, and its spread
    ratio: float | None = None
    ratio_cv: float | None = None
    #: the reference's calibration the figure is reported through, and its raw median this time
    reference_ms: float | None = None
    reference_raw_ms: float | None = None
    noisy: bool = False
    attempts: int = 1
    #: with ``spread``: the CV of the quietest third's figures, and the slowest attempt's
    #: state over the quietest's (reference raw time, or the model's when uncompensated)
    spread_cv: float | None = None
    state_range: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def noise(self) -> float:
        """The spread the noise check uses: CV of the per-round ratios when compensated
        (drift between rounds cancels), CV of the raw samples otherwise."""
        return self.ratio_cv if self.compensated and self.ratio_cv is not None else self.stats.cv

    def to_entry(self) -> dict[str, Any]:
        """The record stored in tables and measured sets. ``median_ms``, ``p10_ms`` and
        ``p90_ms`` are compensated (the raw distribution scaled by compensated / raw
        median); the ``raw_*`` fields are what the clock said."""
        s = self.stats
        scale = self.latency_ms / s.median_ms if s.median_ms > 0 else 1.0
        return {"median_ms": self.latency_ms, "p10_ms": s.p10_ms * scale, "p90_ms": s.p90_ms * scale,
                "cv": s.cv, "n": s.n, "raw_median_ms": s.median_ms, "raw_p10_ms": s.p10_ms,
                "raw_p90_ms": s.p90_ms, "mean_ms": s.mean_ms, "first_run_ms": s.first_run_ms,
                "compensated": self.compensated, "ratio": self.ratio, "ratio_cv": self.ratio_cv,
                "reference_raw_ms": self.reference_raw_ms, "noisy": self.noisy, "attempts": self.attempts}

    def to_dict(self) -> dict[str, Any]:
        d = {"latency_ms": self.latency_ms, **self.stats.to_dict(), "raw_median_ms": self.stats.median_ms,
             "compensated": self.compensated, "ratio": self.ratio, "ratio_cv": self.ratio_cv,
             "reference_ms": self.reference_ms, "reference_raw_ms": self.reference_raw_ms,
             "noisy": self.noisy, "attempts": self.attempts}
        if self.spread_cv is not None:
            d |= {"spread_cv": self.spread_cv, "state_range": self.state_range}
        if self.provenance:
            d["provenance"] = self.provenance
        return d


def warm_up(runner: Runner, protocol: MeasureProtocol) -> None:
    start, count = time.perf_counter(), 0
    while True:
        elapsed = time.perf_counter() - start
        if (count >= protocol.warmup_runs and elapsed >= protocol.warmup_s) or elapsed >= protocol.max_warmup_s:
            return
        runner.time_once()
        count += 1


def _cv(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / x.mean()) if x.size > 1 and x.mean() > 0 else 0.0


def _one_attempt(model: Runner, protocol: MeasureProtocol, reference: Runner | None,
                 reference_ms: float | None, first_run_ms: float | None) -> Measurement:
    per_round = math.ceil(protocol.runs / protocol.rounds)
    samples: list[float] = []
    ratios: list[float] = []
    ref_samples: list[float] = []
    for _ in range(protocol.rounds):
        if reference is not None:
            ref = [reference.time_once() for _ in range(per_round)]
            ref_samples += ref
        got = [model.time_once() for _ in range(per_round)]
        samples += got
        if reference is not None:
            ratios.append(float(np.median(got) / max(np.median(ref), 1e-9)))
    stats = TimingStats.from_samples(samples, first_run_ms)
    if reference is None or reference_ms is None:
        return Measurement(stats.median_ms, stats, compensated=False)
    r = np.asarray(ratios)
    ratio = float(np.median(r))
    return Measurement(ratio * reference_ms, stats, compensated=True, ratio=ratio, ratio_cv=_cv(r),
                       reference_ms=reference_ms, reference_raw_ms=float(np.median(ref_samples)))


def measure(model: Runner, protocol: MeasureProtocol = MeasureProtocol(), *, reference: Runner | None = None,
            reference_ms: float | None = None, provenance: dict[str, Any] | None = None,
            on_retry: Callable[[Measurement], None] | None = None) -> Measurement:
    """Time ``model`` by the protocol; re-measure a noisy result (up to ``retries`` more
    times), keep the least noisy attempt and flag it if it stays noisy."""
    use_ref = protocol.compensate and reference is not None and reference_ms is not None
    first = model.time_once()
    warm_up(model, protocol)
    if use_ref:
        warm_up(reference, protocol)  # type: ignore[arg-type]
    if protocol.attempts > 1:
        return _spread(model, protocol, reference if use_ref else None, reference_ms, first, provenance)
    best: Measurement | None = None
    for attempt in range(1, protocol.retries + 2):
        m = _one_attempt(model, protocol, reference if use_ref else None, reference_ms, first)
        m.attempts = attempt
        if best is None or m.noise < best.noise:
            best = m
        if m.noise <= protocol.max_cv:
            break
        if on_retry is not None:
            on_retry(m)
    assert best is not None
    best.attempts = attempt
    best.noisy = best.noise > protocol.max_cv
    best.provenance = dict(provenance or {})
    return best


def _state(m: Measurement) -> float:
    """How busy the machine was during an attempt: the reference's raw median (the model's
    own when nothing was interleaved)."""
    return m.reference_raw_ms if m.reference_raw_ms is not None else m.stats.median_ms


def _spread(model: Runner, protocol: MeasureProtocol, reference: Runner | None, reference_ms: float | None,
            first_run_ms: float, provenance: dict[str, Any] | None) -> Measurement:
    attempts: list[Measurement] = []
    for i in range(protocol.attempts):
        if i:
            warm_up(model, protocol)
            if reference is not None:
                warm_up(reference, protocol)
        attempts.append(_one_attempt(model, protocol, reference, reference_ms, first_run_ms))
    chosen = quietest(attempts)
    chosen.noisy = max(chosen.noise, chosen.spread_cv or 0.0) > protocol.max_cv
    chosen.provenance = dict(provenance or {})
    return chosen


def quietest(attempts: list[Measurement]) -> Measurement:
    """The figure of attempts spread over the machine's states: of the quietest third (by
    :func:`_state`), the one with the lower median figure, so that what is reported is a
    figure one attempt really gave; with the quiet third's CV and the states' range."""
    ranked = sorted(attempts, key=_state)
    quiet = sorted(ranked[:math.ceil(len(ranked) / 3)], key=lambda m: m.latency_ms)
    return replace(quiet[(len(quiet) - 1) // 2], attempts=len(attempts),
                   spread_cv=_cv(np.asarray([m.latency_ms for m in quiet])),
                   state_range=_state(ranked[-1]) / max(_state(ranked[0]), 1e-9))


def calibrate(reference: Runner, protocol: MeasureProtocol = MeasureProtocol(), rounds: int = 5) -> float:
    """The reference network's own latency: median over ``rounds`` x ``runs`` runs."""
    warm_up(reference, protocol)
    return float(np.median([reference.time_once() for _ in range(rounds * protocol.runs)]))
