"""One search target: a device, the latency model that stands for it, its budget and
the screen margin; :meth:`Target.meets` is the one place a budget is checked.

Black-box problems, measured finalists, the differentiable loss and derivation, the
verification of an exported file and the report all take targets, so a device with its
budget is one object from the command line to the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from hwnas.devices.spec import DeviceSpec
from hwnas.errors import HwnasError
from hwnas.spaces.option_table import OptionTable


class LatencyModel(Protocol):
    """What stands for a device's latency: a fitted predictor (``hwnas.predictors``) or
    anything with a batched ``predict(archs) -> ms``."""

    def predict(self, archs: Any) -> np.ndarray: ...


@dataclass
class Target:
    """A device and its budget. ``spec`` is None for a prediction-only target (a table or a
    predictor given without the device); ``reference_ms`` is the reference calibration the
    latency model's data was measured with, which measurements on the device are reported
    through so predicted and measured figures share a scale."""

    name: str
    model: LatencyModel
    budget_ms: float | None = None
    screen_margin: float = 0.0
    spec: DeviceSpec | None = None
    table_path: str | None = None
    predictor_path: str | None = None
    reference_ms: float | None = None
    notes: list[str] = field(default_factory=list)
    _device: Any = field(default=None, repr=False, compare=False)
    _lender: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.screen_margin < 0.0:
            raise HwnasError(f"{self.name}: the screen margin must be >= 0 (a fraction of the budget), "
                             f"not {self.screen_margin}")
        if self.screen_margin and self.budget_ms is None:
            raise HwnasError(f"{self.name}: the screen margin is a fraction of a budget; give the budget too")

    # -- the budget -----------------------------------------------------------------
    def meets(self, latency_ms: Any, margin: float = 0.0) -> Any:
        """Whether ``latency_ms`` (a number or an array) is within the budget widened by
        ``margin`` (a fraction); always true without a budget."""
        if self.budget_ms is None:
            return np.ones(np.shape(latency_ms), dtype=bool) if np.ndim(latency_ms) else True
        within = np.asarray(latency_ms) <= self.budget_ms * (1.0 + margin)
        return within if np.ndim(latency_ms) else bool(within)

    def screens(self, latency_ms: Any) -> Any:
        """Whether the hard-budget screen lets a prediction through: within (1 + margin) × budget."""
        return self.meets(latency_ms, self.screen_margin)

    # -- the latency model ----------------------------------------------------------
    def predict(self, archs: Sequence[Any] | np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(archs), dtype=np.float64)

    def chance(self, archs: Sequence[Any]) -> np.ndarray | None:
        """The probability that each architecture meets the budget when measured, by the latency
        model's calibrated error (normal around the prediction); None without a budget or
        without a calibrated model (``std_calibrated``), when nothing is known beyond the prediction."""
        if self.budget_ms is None or not getattr(self.model, "std_calibrated", False):
            return None
        from scipy.special import ndtr

        std = np.maximum(np.asarray(self.model.predict_std(archs), dtype=np.float64), 1e-12)
        return ndtr((self.budget_ms - self.predict(archs)) / std)

    def predict_one(self, arch: Any) -> float:
        return float(self.predict([arch])[0])

    def option_latency(self) -> OptionTable:
        """The model as fixed + per-option latencies (what the differentiable loss needs)."""
        option_latency = getattr(self.model, "option_latency", None)
        if option_latency is None:
            raise HwnasError(f"{self.name}: its latency model gives no per-option latencies, which differentiable "
                             "search needs; use a fitted hwnas predictor or a latency table")
        return option_latency()

    # -- the device -----------------------------------------------------------------
    @property
    def measurable(self) -> bool:
        return self.spec is not None

    @property
    def device(self) -> Any:
        """The device, opened on first use (CPUs pinned, agent connected)."""
        if self.spec is None:
            raise HwnasError(f"{self.name} has no device to measure on (a table or predictor alone); "
                             "name it with --device")
        if self._device is None:
            self._device = self.spec.open()
        return self._device

    @property
    def lender(self) -> Any:
        """The device's pool (:class:`~hwnas.devices.pool.Lender`): every device of a pool file,
        opened on first use; a lender of the one device otherwise."""
        if self._lender is None:
            from hwnas.devices.pool import Lender

            first = self.device
            rest = [m.open() for m in self.spec.members[1:]] if self.spec is not None else []
            self._lender = Lender([first, *rest])
        return self._lender

    def describe(self) -> dict[str, Any]:
        return {"device": self.name, "spec": self.spec.text if self.spec else "", "budget_ms": self.budget_ms,
                "screen_margin": self.screen_margin, "table": self.table_path,
                "predictor": self.predictor_path or f"lutsum({self.table_path})", "reference_ms": self.reference_ms,
                "notes": self.notes}
