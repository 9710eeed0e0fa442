"""Fill the layers a latency table lacks from the device's kernel predictor.

A table covers one space preset at one resolution; a new resolution, width or class count
needs layers nobody measured. When the device has a kernel predictor
(``hwnas profile build-predictor``), each missing layer is exported as the table build would
measure it (ONNX or TFLite, the predictor's runtime's format), split into the kernels that
runtime runs, and predicted, so every
search-space predictor (LUT-sum, learned, the differentiable loss) works at once. The
entries say so (``predicted_by``: the predictor file, its device, runtime and calibration,
``n`` 0), ``hwnas lut show`` counts them, and ``hwnas lut build`` measures them on the
device the next time it runs, replacing the predictions.

The predictor must be of the table's device (its identity: CPU, runtime, version,
threads). A predictor measured through the drift reference reports through its own
calibration of it; the prediction is rescaled to the table's calibration. A raw one is
used as it is, which its entries record.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from hwnas.errors import HwnasError
from hwnas.kernels.model import KernelPredictor
from hwnas.kernels.predict import module_kernels
from hwnas.lut.build import header_for, now
from hwnas.lut.table import LatencyTable
from hwnas.measure.fingerprint import identity_differences
from hwnas.measure.protocol import MeasureProtocol
from hwnas.ops import build_layer
from hwnas.spaces.base import SearchSpace
from hwnas.spaces.stored import space_from_skeleton


@dataclass
class FillReport:
    table: str
    total: int
    predicted: int
    had: int
    scale: float
    seconds: float


def predicted_keys(table: LatencyTable) -> list[str]:
    """The entries a kernel predictor wrote (measured ones have no ``predicted_by``)."""
    return [k for k, e in table.entries.items() if e.get("predicted_by")]


def calibration_scale(table: LatencyTable, predictor: KernelPredictor) -> float:
    """The factor from the predictor's milliseconds to the table's: the ratio of their
    calibrations of the reference network when both report through it, else 1."""
    mine = table.header["reference"].get("calibrated_ms")
    theirs = predictor.meta.get("calibrated_ms")
    compensated = table.header["protocol"].get("compensate", True)
    return float(mine) / float(theirs) if compensated and mine and theirs else 1.0


def fill_table(path: str | Path, predictor_path: str | Path, space: SearchSpace | None = None, *,
               progress: bool = True, limit: int | None = None) -> FillReport:
    """Predict the layers the table at ``path`` lacks (at most ``limit`` this call); saved
    after every layer, so an interrupted fill resumes. A table that does not exist yet is
    made for ``space`` with the predictor's device, calibration and protocol in its header."""
    start = time.perf_counter()
    predictor = KernelPredictor.load(predictor_path)
    meta = predictor.meta
    fingerprint = meta.get("fingerprint") or {}
    if Path(path).exists():
        table = LatencyTable.load(path, space=space)
        h = table.header
        space = space or space_from_skeleton(h["space"], h["preset"], h["skeleton"])
        diff = identity_differences(h["device"], fingerprint)
        if diff:
            raise HwnasError(f"the kernel predictor {predictor_path} was measured on another device than latency "
                             f"table {path} ({'; '.join(diff)}); build one on the table's device with 'hwnas "
                             "profile build-predictor --device SPEC'")
    elif space is None:
        raise HwnasError(f"{path} does not exist; name the space (--space, --preset) to make a table of predictions")
    else:
        calibrated = meta.get("calibrated_ms")
        header = header_for(space, fingerprint, str(meta.get("device")),
                            MeasureProtocol(compensate=calibrated is not None), calibrated)
        table = LatencyTable(header, {}, str(path))
    scale = calibration_scale(table, predictor)
    source = {"file": Path(predictor_path).name, "scale": scale,
              **{k: meta.get(k) for k in ("device", "runtime", "runtime_version", "threads", "calibrated_ms")}}
    specs = list({s.key: s for s in space.all_layers()}.values())
    todo = [s for s in specs if s.key not in table][:limit]
    threads = int(meta.get("threads") or 1)
    bar = tqdm(todo, desc=f"predict {space.name}/{space.preset} layers", unit="layer", disable=not progress)
    for spec in bar:
        h_, w_, c = spec.input
        kernels = module_kernels(build_layer(spec), (1, c, h_, w_), predictor.format, threads)
        ms = scale * predictor.predict(kernels)
        table.entries[spec.key] = entry(ms, source)
        table.header["updated"] = now()
        table.save()
        bar.set_postfix_str(f"{spec.op} {ms:.3f} ms")
    if not todo and not Path(path).exists():
        table.save()
    return FillReport(str(path), len(specs), len(todo), len(specs) - len(todo), scale, time.perf_counter() - start)


def entry(ms: float, source: dict[str, Any]) -> dict[str, Any]:
    """A table entry for a predicted layer: no spread, no runs, and where it came from."""
    ms = max(float(ms), 0.0)
    return {"median_ms": ms, "p10_ms": ms, "p90_ms": ms, "cv": 0.0, "n": 0, "raw_median_ms": None,
            "noisy": False, "predicted_by": source, "measured_at": None}
