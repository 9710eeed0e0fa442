"""The device interface: measure a model and say where the number came from.

A device takes a built module or an exported file, prepares it for its runtime (export
to ONNX or TFLite where needed), times it with the measurement protocol, interleaved
with a fixed reference network for drift compensation, and returns a
:class:`~hwnas.measure.protocol.Measurement` with full provenance.
"""

from __future__ import annotations

import datetime as _dt
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from hwnas import __version__
from hwnas.errors import HwnasError
from hwnas.measure.fingerprint import host_fingerprint
from hwnas.measure.protocol import Measurement, MeasureProtocol, Runner, calibrate, measure
from hwnas.registry import Registry

ModelLike = Any
"""An ``nn.Module``, a path to an exported file, or the file's bytes."""

REFERENCE = ("mbv2", "small", "mobilenetv2")
"""The drift-compensation reference: MobileNetV2 blocks on the ``small`` preset (~0.2 ms
on one core here: cheap beside most models, long enough to time well)."""


def reference_model() -> Any:
    import torch

    from hwnas.spaces import get_space

    space, preset, arch = REFERENCE
    torch.manual_seed(0)
    return get_space(space, preset).resolve(arch).build().eval(), get_space(space, preset).input_shape()


class Device(ABC):
    backend: ClassVar[str] = ""
    runtime: ClassVar[str] = ""
    file_suffix: ClassVar[str] = ""

    def __init__(self, threads: int = 1, pin: list[int] | None = None,
                 protocol: MeasureProtocol | None = None, spec: str | None = None) -> None:
        if threads < 1:
            raise HwnasError(f"{self.backend}: threads must be >= 1, got {threads}")
        self.threads = threads
        self.pin = pin
        self.protocol = protocol or MeasureProtocol()
        self.spec = spec or f"{self.backend}:threads={threads}"
        self._reference: Runner | None = None
        self.reference_ms: float | None = None

    def open(self) -> None:
        """Make the device ready to measure (here: pin this process to its CPUs); called by
        :meth:`~hwnas.devices.spec.DeviceSpec.open`, not by the constructor."""
        if self.pin:
            try:
                os.sched_setaffinity(0, self.pin)
            except (AttributeError, OSError) as e:
                raise HwnasError(f"cannot pin to CPUs {self.pin}: {e}") from None

    @property
    def export_format(self) -> str | None:
        """The exported file this device runs (``onnx``, ``tflite``), or None for modules only."""
        return self.file_suffix.lstrip(".") or None

    # -- what a backend provides ----------------------------------------------------
    @abstractmethod
    def load(self, model: ModelLike, input_shape: tuple[int, int, int]) -> Runner:
        """A runner for ``model`` with one fixed input of ``input_shape`` (C, H, W)."""

    @abstractmethod
    def runtime_version(self) -> str: ...

    def accelerator(self) -> str | None:
        return None

    # -- shared ---------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        return {**host_fingerprint(), "backend": self.backend, "runtime": self.runtime,
                "runtime_version": self.runtime_version(), "threads": self.threads,
                "accelerator": self.accelerator()}

    def reference_runner(self) -> Runner:
        if self._reference is None:
            model, shape = reference_model()
            self._reference = self.load(model, shape)
        return self._reference

    def calibrate_reference(self) -> float:
        """Measure the reference network alone; later measurements are reported through it."""
        self.reference_ms = calibrate(self.reference_runner(), self.protocol)
        return self.reference_ms

    def provenance(self, input_shape: tuple[int, ...], protocol: MeasureProtocol) -> dict[str, Any]:
        return {"device": self.fingerprint(), "device_spec": self.spec, "batch": 1, "dtype": "float32",
                "input_shape": [1, *input_shape], "protocol": protocol.to_dict(),
                "reference": {"model": "/".join(REFERENCE), "calibrated_ms": self.reference_ms},
                "hwnas_version": __version__,
                "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}

    def measure(self, model: ModelLike, input_shape: tuple[int, int, int],
                protocol: MeasureProtocol | None = None, reference_ms: float | None = None) -> Measurement:
        """Time ``model`` with the protocol. With drift compensation the figure is reported
        through the reference network's calibration: ``reference_ms`` when given (the one a
        table or predictor was measured with, so the figures share its scale), else this
        device's own, calibrated on first use."""
        protocol = protocol or self.protocol
        if reference_ms is not None:
            self.reference_ms = reference_ms
        runner = self.load(model, input_shape)
        reference = None
        if protocol.compensate:
            reference = self.reference_runner()
            if self.reference_ms is None:
                self.calibrate_reference()
        try:
            m = self.time(runner, protocol, reference)
        finally:
            close = getattr(runner, "close", None)
            if close:
                close()
        m.provenance = self.provenance(input_shape, protocol)
        return m

    def profile_ops(self, model: ModelLike, input_shape: tuple[int, int, int], runs: int = 50) -> dict[str, Any]:
        """Per-operator times from this runtime's own profiler (:mod:`hwnas.measure.op_profile`)."""
        raise HwnasError(f"{self.backend} has no per-operator profiler")

    def time(self, runner: Runner, protocol: MeasureProtocol, reference: Runner | None) -> Measurement:
        """Run the protocol on a loaded model (here, in this process; an agent's device on the agent)."""
        return measure(runner, protocol, reference=reference, reference_ms=self.reference_ms)

    def close(self) -> None:
        self._reference = None


def read_model_file(model: ModelLike, suffix: str) -> str | None:
    """The path of an exported file of the right kind, or None for a module."""
    if isinstance(model, (str, Path)):
        p = Path(model)
        if not p.is_file():
            raise HwnasError(f"model file {p} does not exist")
        if p.suffix != suffix:
            raise HwnasError(f"{p}: this device runs {suffix} files, not {p.suffix or 'files without a suffix'}")
        return str(p)
    return None


DEVICES: Registry[type[Device]] = Registry("device backend")
"""Device backends by name (``cpu-ort``, ...); :mod:`hwnas.devices` registers the built-in ones."""
