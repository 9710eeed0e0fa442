"""Measured sets: whole networks sampled from a space, measured on a device.

A CSV with columns ``arch, latency_ms, p90_ms, cv, raw_median_ms, noisy, passes_ms,
passes_raw_ms`` (the predictors' training data) and, beside it, ``FILE.meta.json`` with the
provenance in the latency-table header format. Written atomically after every network;
re-running the same command resumes: rows already measured are kept and not measured again.

Passes: a virtual machine's speed drifts over minutes, which the protocol's back-to-back
rounds (and the interleaved reference) only partly cancel, so two measurements of one
network minutes apart disagree by more than its rounds do. ``passes=N`` measures the whole
set N times, one pass after the other, and a row reports the median of its passes
(``passes_ms`` and ``passes_raw_ms`` hold each pass's compensated and raw median, ``;``
between them): drift that differs between passes averages out. ``p90_ms`` and ``cv`` are the
largest over the passes; ``noisy`` says that a pass was flagged noisy or that the passes'
medians spread (std / mean) by more than the protocol's ``max_cv``. Adding passes to a set
measured with fewer (an older one-pass file too) measures only the missing passes.
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

COLUMNS = ("arch", "latency_ms", "p90_ms", "cv", "raw_median_ms", "noisy", "passes_ms", "passes_raw_ms")


@dataclass(frozen=True)
class SetReport:
    path: str
    total: int
    measured: int
    kept: int
    seconds: float
    remeasured: int = 0
    #: measurements of a network again, in passes after the first
    repeated: int = 0


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
        return [{**r, "passes_ms": r.get("passes_ms") or r["latency_ms"],
                 "passes_raw_ms": r.get("passes_raw_ms") or r.get("raw_median_ms", "")} for r in reader]


def _measure(arch: Arch, device: Device, space: SearchSpace, header: dict[str, Any]) -> dict[str, Any]:
    m = device.measure(arch.build(), space.input_shape(), MeasureProtocol(**header["protocol"]),
                       reference_ms=header["reference"]["calibrated_ms"])
    return m.to_entry()


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(";") if v]


def passes_of(row: dict[str, str]) -> list[float]:
    """The row's per-pass compensated medians (a row of an older one-pass file: its median)."""
    return _floats(row.get("passes_ms") or row["latency_ms"])


def first_row(arch: Arch, e: dict[str, Any]) -> dict[str, str]:
    return {"arch": str(arch), "latency_ms": f"{e['median_ms']:.6g}", "p90_ms": f"{e['p90_ms']:.6g}",
            "cv": f"{e['cv']:.4g}", "raw_median_ms": f"{e['raw_median_ms']:.6g}", "noisy": str(int(e["noisy"])),
            "passes_ms": f"{e['median_ms']:.6g}", "passes_raw_ms": f"{e['raw_median_ms']:.6g}"}


def add_pass(row: dict[str, str], e: dict[str, Any], max_cv: float) -> dict[str, str]:
    """``row`` with one more pass, measured as ``e`` (see the module's docstring)."""
    comp = passes_of(row) + [float(e["median_ms"])]
    raw = _floats(row.get("passes_raw_ms") or row["raw_median_ms"]) + [float(e["raw_median_ms"])]
    spread = float(np.std(comp) / np.mean(comp))
    noisy = row.get("noisy") == "1" or bool(e["noisy"]) or spread > max_cv
    return {"arch": row["arch"], "latency_ms": f"{float(np.median(comp)):.6g}",
            "p90_ms": f"{max(float(row['p90_ms']), float(e['p90_ms'])):.6g}",
            "cv": f"{max(float(row['cv']), float(e['cv'])):.4g}",
            "raw_median_ms": f"{float(np.median(raw)):.6g}", "noisy": str(int(noisy)),
            "passes_ms": ";".join(f"{v:.6g}" for v in comp), "passes_raw_ms": ";".join(f"{v:.6g}" for v in raw)}


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue())


def measure_set(space: SearchSpace, device: Device | Sequence[Device], path: str | Path, n: int, seed: int = 0, *,
                protocol: MeasureProtocol | None = None, progress: bool = True,
                remeasure_noisy: bool = False, reference_ms: float | None = None, passes: int | None = None) -> SetReport:
    """Measure ``n`` seeded distinct networks into ``path`` (resuming) on one device or shared by
    a pool of identical ones (:mod:`hwnas.devices.pool`), every row of the file ``passes``
    times in all (see the module's docstring; default: as many as the file was measured with,
    else 1); ``reference_ms``: the device's reference
    calibration to share (a table's), else calibrated when the set starts."""
    from hwnas.devices.pool import devices_of, share

    if passes is not None and passes < 1:
        raise HwnasError(f"passes is how many times each network is measured (1 or more), not {passes}")
    start = time.perf_counter()
    path = Path(path)
    devices = devices_of(device)
    meta = meta_path(path)
    header_table = open_or_create(meta, space, devices[0], protocol or devices[0].protocol, reference_ms)
    header_table.header.update({"kind": "measured_set", "seed": seed, "columns": list(COLUMNS)})
    passes = passes or int(header_table.header.get("passes", 1))
    header_table.header["passes"] = max(passes, int(header_table.header.get("passes", 1)))
    if len(devices) > 1:
        header_table.header["pool"] = sorted(set(header_table.header.get("pool", [])) | {d.spec for d in devices})
    header_table.save()
    max_cv = MeasureProtocol(**header_table.header["protocol"]).max_cv
    rows = read_rows(path)
    done = {r["arch"] for r in rows}
    todo = [a for a in unique_sample(space, n, seed) if str(a) not in done]
    redo = [i for i, r in enumerate(rows) if r.get("noisy") == "1"] if remeasure_noisy else []
    first: list[tuple[int | None, Arch]] = [(i, space.parse(rows[i]["arch"])) for i in redo] + [(None, a) for a in todo]
    fresh = set(redo)
    later = sum(max(0, passes - (1 if i in fresh else len(passes_of(r)))) for i, r in enumerate(rows))
    later += len(todo) * (passes - 1)
    where = devices[0].spec if len(devices) == 1 else f"{len(devices)} devices like {devices[0].spec}"
    bar = tqdm(total=len(first) + later, desc=f"measure {space.name}/{space.preset} on {where}", unit="net",
               disable=not progress)

    def finished(_dev: Device, job: tuple[int | None, Arch, bool], e: dict[str, Any]) -> None:
        i, arch, again = job
        if again:
            rows[i] = add_pass(rows[i], e, max_cv)  # type: ignore[index]
        elif i is None:
            rows.append(first_row(arch, e))
        else:
            rows[i] = first_row(arch, e)
        write_rows(path, rows)
        header_table.header["updated"] = now()
        header_table.header["rows"] = len(rows)
        header_table.save()
        bar.update(1)
        bar.set_postfix_str(f"{e['median_ms']:.3f} ms")

    def run(jobs: list[tuple[int | None, Arch, bool]]) -> None:
        share(devices, jobs, lambda dev, job: _measure(job[1], dev, space, header_table.header), finished,
              "networks", str(path))

    repeated = 0
    try:
        run([(i, a, False) for i, a in first])
        for k in range(2, passes + 1):  # one pass over the set after the other, each a while after the last
            jobs = [(i, space.parse(r["arch"]), True) for i, r in enumerate(rows) if len(passes_of(r)) == k - 1]
            run(jobs)
            repeated += len(jobs)
    finally:
        bar.close()
    return SetReport(str(path), n, len(todo), n - len(todo), time.perf_counter() - start, len(redo), repeated)
