"""Build a latency table: measure every layer a space can produce, in isolation.

The table is written atomically after every entry. Re-running the same command after an
interruption (Ctrl-C, a crash, a killed process) loads what is there, keeps it, and
measures only the missing keys, with the reference latency and protocol stored in the
header so old and new entries stay comparable.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from tqdm import tqdm

from hwnas import __version__
from hwnas.devices.base import REFERENCE, Device
from hwnas.lut.table import LatencyTable
from hwnas.measure.protocol import MeasureProtocol
from hwnas.spaces.base import SearchSpace


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class BuildReport:
    path: str
    total: int
    measured: int
    kept: int
    noisy: int
    seconds: float
    #: with a pool of devices: layers each measured, and those that dropped out (why)
    per_device: dict[str, int] | None = None
    dropped: dict[str, str] | None = None


def new_header(space: SearchSpace, device: Device, protocol: MeasureProtocol,
               reference_ms: float | None = None) -> dict[str, Any]:
    """A table's header, reported through ``reference_ms`` when given, else through the
    device's one calibration (:func:`hwnas.devices.calibration.device_calibration`: kept,
    shipped, or measured now and kept)."""
    from hwnas.devices.calibration import device_calibration

    if not protocol.compensate:
        reference_ms = None
    elif reference_ms is None:
        reference_ms = float(device_calibration(device)["calibrated_ms"])
    return header_for(space, device.fingerprint(), device.spec, protocol, reference_ms)


def header_for(space: SearchSpace, fingerprint: dict[str, Any], device_spec: str, protocol: MeasureProtocol,
               reference_ms: float | None) -> dict[str, Any]:
    """A table's header from what identifies the device (a table whose entries are
    predicted is made without the device at hand)."""
    return {"space": space.name, "preset": space.preset, "skeleton": space.skeleton(),
            "device": fingerprint, "device_spec": device_spec, "batch": 1, "dtype": "float32",
            "protocol": protocol.to_dict(),
            "reference": {"model": "/".join(REFERENCE), "calibrated_ms": reference_ms},
            "created": now(), "updated": now(), "hwnas_version": __version__}


def open_or_create(path: Path, space: SearchSpace, device: Device, protocol: MeasureProtocol,
                   reference_ms: float | None = None) -> LatencyTable:
    """Resume: the file, whose reference calibration and protocol the rest is measured with;
    else a new one (the reference network calibrated first, unless ``reference_ms`` is given)."""
    if path.exists():
        return LatencyTable.load(path, space=space, device=device)
    table = LatencyTable(new_header(space, device, protocol, reference_ms), {}, str(path))
    table.save()
    return table


def build_table(space: SearchSpace, device: Device | Sequence[Device], path: str | Path, *,
                protocol: MeasureProtocol | None = None, progress: bool = True,
                limit: int | None = None) -> BuildReport:
    """Measure the layers ``path`` lacks or holds only predictions of (at most ``limit`` of
    them this call), on one device or shared by a pool of identical ones
    (:mod:`hwnas.devices.pool`)."""
    import torch

    from hwnas.devices.pool import devices_of, share
    from hwnas.ops import build_layer

    start = time.perf_counter()
    path = Path(path)
    devices = devices_of(device)
    first = devices[0]
    table = open_or_create(path, space, first, protocol or first.protocol)
    specs = space.all_layers()
    # entries a kernel predictor filled in are measured now (hwnas.predictors.kernel_fill)
    todo = [s for s in specs if s.key not in table or table.entries[s.key].get("predicted_by")][:limit]
    noisy = [0]
    where = first.spec if len(devices) == 1 else f"{len(devices)} devices like {first.spec}"
    bar = tqdm(total=len(todo), desc=f"lut {space.name}/{space.preset} on {where}", unit="layer",
               disable=not progress)
    measure_protocol = MeasureProtocol(**table.header["protocol"])
    reference_ms = table.header["reference"]["calibrated_ms"]

    def work(dev: Device, spec: Any) -> Any:
        torch.manual_seed(0)
        h, w, c = spec.input
        return dev.measure(build_layer(spec), (c, h, w), measure_protocol, reference_ms=reference_ms)

    def done(dev: Device, spec: Any, m: Any) -> None:
        entry = {**m.to_entry(), "measured_at": now()}
        if len(devices) > 1:
            entry["measured_on"] = dev.spec
        table.entries[spec.key] = entry
        table.header["updated"] = now()
        table.save()
        noisy[0] += int(m.noisy)
        bar.update(1)
        bar.set_postfix_str(f"{spec.op} {m.latency_ms:.3f} ms")

    try:
        shared = share(devices, todo, work, done, "layers", str(path))
    finally:
        bar.close()
    return BuildReport(str(path), len(specs), len(todo), len(specs) - len(todo), noisy[0],
                       time.perf_counter() - start, shared["per_device"] if len(devices) > 1 else None,
                       shared["dropped"] or None)
