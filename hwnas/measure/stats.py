"""Summary statistics of repeated timings (milliseconds)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class TimingStats:
    """Percentiles use linear interpolation between samples (numpy's default);
    ``cv`` is the sample standard deviation (ddof 1) over the mean."""

    n: int
    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    std_ms: float
    cv: float
    min_ms: float
    first_run_ms: float | None = None

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float], first_run_ms: float | None = None) -> "TimingStats":
        x = np.asarray(samples_ms, dtype=np.float64)
        if x.size == 0:
            raise ValueError("no timing samples")
        if not np.all(np.isfinite(x)) or np.any(x < 0):
            raise ValueError("timing samples must be finite and non-negative")
        mean = float(x.mean())
        std = float(x.std(ddof=1)) if x.size > 1 else 0.0
        p10, med, p90 = (float(v) for v in np.percentile(x, [10, 50, 90]))
        return cls(n=int(x.size), median_ms=med, p10_ms=p10, p90_ms=p90, mean_ms=mean, std_ms=std,
                   cv=std / mean if mean > 0 else 0.0, min_ms=float(x.min()), first_run_ms=first_run_ms)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TimingStats":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
