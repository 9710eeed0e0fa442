"""Measured sets: whole networks sampled from a space, measured on a device.

A CSV with columns ``arch, latency_ms, p90_ms, cv, raw_median_ms, noisy`` (the
predictors' training data) and, beside it, ``FILE.meta.json`` with the provenance in the
latency-table header format. Written atomically after every network; re-running the same
command resumes: rows already measured are kept and not measured again.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from hwnas.devices.base import Device
from hwnas.errors import HwnasError
from hwnas.files import write_atomic
from hwnas.lut.build import now, open_or_create
from hwnas.measure.protocol import MeasureProtocol
from hwnas.spaces.base import Arch, SearchSpace

COLUMNS = ("arch", "latency_ms", "p90_ms", "cv", "raw_median_ms", "noisy")


@dataclass(frozen=True)
class SetReport:
    path: str
    total: int
    measured: int
    kept: int
    seconds: float
    remeasured: int = 0


def meta_path(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.name + ".meta.json")


def unique_sample(space: SearchSpace, n: int, seed: int) -> list[Arch]:
    """``n`` distinct architectures, the same list for the same (space, n, seed)."""
    if n > space.size():
        raise HwnasError(f"-n {n} is more than the {space.size()} architectures of {space.name}/{space.preset}")
    out: dict[Arch, None] = {}
    rng = np.random.default_rng(seed)
    while len(out) < n:
        out.setdefault(space.sample(1, rng)[0], None)
    return list(out)


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "arch" not in reader.fieldnames:
            raise HwnasError(f"{path} is not a measured-set CSV (no 'arch' column)")
        return list(reader)


def _row(arch: Arch, device: Device, space: SearchSpace, header: dict[str, Any]) -> tuple[dict[str, str], float]:
    m = device.measure(arch.build(), space.input_shape(), MeasureProtocol(**header["protocol"]),
                       reference_ms=header["reference"]["calibrated_ms"])
    e = m.to_entry()
    return ({"arch": str(arch), "latency_ms": f"{e['median_ms']:.6g}", "p90_ms": f"{e['p90_ms']:.6g}",
             "cv": f"{e['cv']:.4g}", "raw_median_ms": f"{e['raw_median_ms']:.6g}", "noisy": str(int(e["noisy"]))},
            m.latency_ms)


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue())


def measure_set(space: SearchSpace, device: Device | Sequence[Device], path: str | Path, n: int, seed: int = 0, *,
                protocol: MeasureProtocol | None = None, progress: bool = True,
                remeasure_noisy: bool = False, reference_ms: float | None = None) -> SetReport:
    """Measure ``n`` seeded distinct networks into ``path`` (resuming) on one device or shared by
    a pool of identical ones (:mod:`hwnas.devices.pool`); ``reference_ms``: the device's
    reference calibration to share (a table's), else calibrated when the set starts."""
    from hwnas.devices.pool import devices_of, share

    start = time.perf_counter()
    path = Path(path)
    devices = devices_of(device)
    meta = meta_path(path)
    header_table = open_or_create(meta, space, devices[0], protocol or devices[0].protocol, reference_ms)
    header_table.header.update({"kind": "measured_set", "seed": seed, "columns": list(COLUMNS)})
    if len(devices) > 1:
        header_table.header["pool"] = sorted(set(header_table.header.get("pool", [])) | {d.spec for d in devices})
    header_table.save()
    rows = read_rows(path)
    done = {r["arch"] for r in rows}
    todo = [a for a in unique_sample(space, n, seed) if str(a) not in done]
    redo = [i for i, r in enumerate(rows) if r.get("noisy") == "1"] if remeasure_noisy else []
    jobs = [(i, space.parse(rows[i]["arch"])) for i in redo] + [(None, a) for a in todo]
    where = devices[0].spec if len(devices) == 1 else f"{len(devices)} devices like {devices[0].spec}"
    bar = tqdm(total=len(jobs), desc=f"measure {space.name}/{space.preset} on {where}", unit="net",
               disable=not progress)

    def finished(_dev: Device, job: tuple[int | None, Arch], result: tuple[dict[str, str], float]) -> None:
        i, (row, latency) = job[0], result
        if i is None:
            rows.append(row)
        else:
            rows[i] = row
        write_rows(path, rows)
        header_table.header["updated"] = now()
        header_table.header["rows"] = len(rows)
        header_table.save()
        bar.update(1)
        bar.set_postfix_str(f"{latency:.3f} ms")

    try:
        share(devices, jobs, lambda dev, job: _row(job[1], dev, space, header_table.header), finished, "networks",
              str(path))
    finally:
        bar.close()
    return SetReport(str(path), n, len(todo), n - len(todo), time.perf_counter() - start, len(redo))
