"""Latency dataset CSVs: an ``arch`` column and latency columns in milliseconds named by
device (``../shared/data/nb201/latency_ms.csv``, measured sets). ``FILE:COLUMN`` (or
``FILE:COL1,COL2``) picks columns; a measured set's ``FILE.meta.json`` supplies the
device fingerprint."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.errors import HwnasError
from hwnas.files import read_json, require

NOT_LATENCY = {"arch", "p90_ms", "cv", "raw_median_ms", "noisy", "p10_ms", "passes_ms", "passes_raw_ms"}


@dataclass
class LatencyData:
    path: str
    archs: list[str]
    columns: dict[str, np.ndarray]
    meta: dict[str, Any] | None = field(default=None)

    def device_of(self, column: str) -> dict[str, Any]:
        """The fingerprint from FILE.meta.json when there is one, else the column's name."""
        if self.meta and "device" in self.meta.get("header", {}):
            return self.meta["header"]["device"]
        return {"name": column}

    def column(self, name: str) -> np.ndarray:
        return self.columns[name]

    def archs_in(self, space: Any) -> list[Any]:
        """The rows' architectures in ``space``; a row that is not one is named with its file."""
        out = []
        for row, text in enumerate(self.archs, start=2):  # row 1 is the header
            try:
                out.append(space.parse(text))
            except HwnasError as e:
                raise HwnasError(f"latency data {self.path} line {row}: {text!r} is not an architecture of "
                                 f"{space.name}/{space.preset} ({e})") from None
        return out


def split_spec(spec: str) -> tuple[str, list[str]]:
    path, _, cols = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    return path, [c for c in cols.split(",") if c]


def read_latency_csv(spec: str) -> tuple[LatencyData, list[str]]:
    """The data and the columns the spec picked (all latency columns when none named)."""
    path, wanted = split_spec(spec)
    p = Path(path)
    if not p.is_file():
        raise HwnasError(f"latency data {p} does not exist")
    with open(p, newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "arch" not in reader.fieldnames:
            raise HwnasError(f"{p} has no 'arch' column; expected arch plus latency columns in ms")
        rows = list(reader)
    available = [c for c in reader.fieldnames if c not in NOT_LATENCY]
    for c in wanted:
        if c not in reader.fieldnames:
            raise HwnasError(f"{p} has no column {c!r}; latency columns: {', '.join(available)}")
    picked = wanted or available
    if not picked:
        raise HwnasError(f"{p} has no latency column")
    columns = {}
    for c in picked:
        values = []
        for line, r in enumerate(rows, start=2):  # line 1 is the header
            try:
                values.append(float(r[c]))
            except (TypeError, ValueError):
                raise HwnasError(f"latency data {p} line {line}: column {c!r} holds {r[c]!r}, not a number of "
                                 "milliseconds") from None
        columns[c] = np.array(values)
    meta_path = p.with_name(p.name + ".meta.json")
    meta = None
    if meta_path.is_file():
        meta = read_json(meta_path, "measured set metadata", "delete it or measure the set again")
        require(meta, meta_path, "measured set metadata", {"header": dict})
    return LatencyData(str(p), [r["arch"] for r in rows], columns, meta), picked


def one_column(spec: str) -> tuple[LatencyData, str]:
    data, cols = read_latency_csv(spec)
    if len(cols) > 1:
        if "latency_ms" in cols:
            return data, "latency_ms"
        raise HwnasError(f"{data.path} has several latency columns ({', '.join(cols)}); pick one with FILE:COLUMN")
    return data, cols[0]
