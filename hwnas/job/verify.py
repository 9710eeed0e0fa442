"""Verify a run on the device: measure the exported file there, set it against the
prediction and the budget, and (``--refine``) close the loop.

The exported file (ONNX for onnxruntime targets, TFLite for LiteRT ones) is measured with
the measurement protocol, drift-compensated through the reference calibration the
predictor's training data was measured with, so measured and predicted figures are on
one scale, and spread over the machine's contention states (``VERIFY_SPREAD`` attempts,
reported from the quietest third: :mod:`hwnas.measure.protocol`), so that whether a
network meets its budget does not depend on what else the machine ran at that moment.
Each verification is appended to ``RUN_DIR/measurements.csv``: the device's
measurements of networks the search found, which refinement fits its correction on.
"""

from __future__ import annotations

import csv
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import HwnasError
from hwnas.files import read_fields
from hwnas.measure.protocol import MeasureProtocol
from hwnas.target import Target

VERIFY_SPREAD = 9
"""Attempts a verification takes. On this 2-vCPU VM the figure of one attempt of a DARTS
network moved over 8-14 % (p10 to p90) with the machine's state, that of 9 over 1.9-3.0 %
(``python -m tools.bench_spread``, three networks)."""


def verification_protocol(device: Any) -> MeasureProtocol:
    """The device's protocol, spread over ``VERIFY_SPREAD`` attempts unless its spec says how many."""
    protocol: MeasureProtocol = device.protocol
    return protocol if protocol.spread is not None else replace(protocol, spread=VERIFY_SPREAD)


def exported_file(run_dir: Path, device: Any) -> str:
    fmt = device.export_format
    if fmt is None:
        raise HwnasError(f"{device.spec} runs {device.runtime}, which takes no exported file; verify on an "
                         "onnxruntime or LiteRT device")
    path = run_dir / f"model.{fmt}"
    if not path.is_file():
        from hwnas.export.run import export_run

        export_run(run_dir, (fmt,))
    return str(path)


def exported_input_shape(run_dir: Path) -> tuple[int, ...]:
    """The (C, H, W) input of the network ``hwnas export`` wrote into ``run_dir``."""
    path = run_dir / "export.json"
    exported = read_fields(path, "export record", f"export again with 'hwnas export {run_dir}'", {"input_shape": list})
    shape = exported["input_shape"]
    if len(shape) != 4 or not all(isinstance(n, int) and n > 0 for n in shape):
        raise HwnasError(f"export record {path}: field 'input_shape' should be 4 positive integers, not {shape!r}")
    return tuple(shape[1:])


def verify_target(run_dir: Path, arch_text: str, target: Target, log_dir: Path | None = None
                  ) -> dict[str, Any]:
    """Measure ``run_dir``'s exported file on the target; log it to ``log_dir``/measurements.csv."""
    device = target.device
    path = exported_file(run_dir, device)
    predicted = target.predict_one(arch_text)
    shape = exported_input_shape(run_dir)
    m = device.measure(path, shape, verification_protocol(device),  # type: ignore[arg-type]
                       reference_ms=target.reference_ms)
    parity = device_parity(run_dir, device, path, shape)
    out = {"device": target.name, "spec": str(target.spec), "file": path, "arch": arch_text, "device_parity": parity,
           "predicted_ms": predicted, "measured_ms": m.latency_ms, "raw_median_ms": m.stats.median_ms,
           "cv": m.stats.cv, "noisy": m.noisy, "spread_cv": m.spread_cv, "state_range": m.state_range,
           "budget_ms": target.budget_ms,
           "meets_budget": target.meets(m.latency_ms),
           "error_pct": 100 * (predicted / m.latency_ms - 1), "provenance": m.provenance, "measured_on": device.spec}
    _append((log_dir or run_dir) / "measurements.csv", out)
    return out


def measure_arch(space: Any, arch: Any, target: Target, log_dir: Path | None = None, device: Any = None) -> float:
    """Measure one architecture (built, not trained: latency does not depend on the weights) on
    the target's device (or ``device``, one of its pool) with the protocol, on the predictor
    data's scale; logged like a verification."""
    device = target.device if device is None else device
    m = device.measure(space.build(arch).eval(), space.input_shape(), verification_protocol(device),
                       reference_ms=target.reference_ms)
    if log_dir is not None:
        _append(log_dir / "measurements.csv", {"device": target.name, "arch": str(arch), "measured_ms": m.latency_ms,
                                               "predicted_ms": target.predict_one(arch),
                                               "budget_ms": target.budget_ms, "measured_on": device.spec})
    return float(m.latency_ms)


def device_parity(run_dir: Path, device: Any, path: str, shape: tuple[int, ...]) -> dict[str, Any] | None:
    """Run the exported file on the device (through the agent for a remote one) and compare with
    the run's torch network (:func:`hwnas.export.parity.check_parity`); None when the runtime
    cannot run inputs."""
    from hwnas.export.parity import check_parity
    from hwnas.export.run import load_run, run_model

    space, arch, _, _ = load_run(run_dir)
    model, _ = run_model(run_dir, space, arch)
    runner = device.load(path, shape)
    try:
        if not hasattr(runner, "run"):
            return None
        p = check_parity(lambda x: runner.run([x])[0], model, shape)
    finally:
        close = getattr(runner, "close", None)
        if close:
            close()
    if not p.ok:
        raise HwnasError(f"{path} on {device.spec}: outputs differ from torch by {p.max_abs_diff:.3g} (tolerance "
                         f"{p.tolerance:.3g}); the device's runtime computes another network than the one exported")
    return {"max_abs_diff": p.max_abs_diff, "tolerance": p.tolerance, "ok": True}


_APPENDING = threading.Lock()  # a pool's devices log their measurements from several threads


def _append(path: Path, row: dict[str, Any]) -> None:
    with _APPENDING, path.open("a", newline="") as f:
        new = f.tell() == 0
        w = csv.writer(f)
        if new:
            w.writerow(["device", "arch", "predicted_ms", "measured_ms", "budget_ms", "measured_on"])
        w.writerow([row["device"], row["arch"], f"{row['predicted_ms']:.6f}", f"{row['measured_ms']:.6f}",
                    "" if row["budget_ms"] is None else f"{row['budget_ms']:.6f}", row.get("measured_on", "")])


def measured_rows(run_dir: Path, device: str) -> list[tuple[str, float, float]]:
    path = run_dir / "measurements.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [(r["arch"], float(r["predicted_ms"]), float(r["measured_ms"])) for r in csv.DictReader(f)
                if r["device"] == device]


class CorrectedPredictor:
    """The device's predictor times a correction refitted on its measurements of found networks.

    The correction is the geometric mean of measured / predicted over those networks (the
    predictor's error near the networks the search returns is mostly a common scale: a
    different reference calibration, the exported graph's fusions); it refits on every
    new measurement. A ``scale`` given is used instead (a spot check's median). ``option_latency``
    scales the same way, so the differentiable loss uses the corrected figures too.
    """

    def __init__(self, base: Any, rows: list[tuple[str, float, float]], scale: float | None = None) -> None:
        self.base, self.space = base, base.space
        if scale is None:
            scale = float(np.exp(np.mean([np.log(m / p) for _, p, m in rows]))) if rows else 1.0
        self.scale = scale
        self.meta = base.meta

    def predict(self, archs: Any) -> np.ndarray:
        return self.base.predict(archs) * self.scale

    def predict_std(self, archs: Any) -> np.ndarray:
        return np.asarray(self.base.predict_std(archs)) * self.scale

    @property
    def std_calibrated(self) -> bool:
        return bool(getattr(self.base, "std_calibrated", False))

    @property
    def kind(self) -> str:
        return str(getattr(self.base, "kind", type(self.base).__name__))

    def option_latency(self) -> Any:
        return self.base.option_latency().scaled(self.scale)
