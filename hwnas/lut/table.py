"""Latency lookup tables: one JSON file per (device, runtime, space preset).

Schema ``hwnas.latency_table`` version 1::

    {"schema": "hwnas.latency_table", "schema_version": 1,
     "header": {"space", "preset", "skeleton": {...}, "device": {fingerprint}, "device_spec",
                "batch", "dtype", "protocol": {...}, "reference": {"model", "calibrated_ms"},
                "created", "updated", "hwnas_version"},
     "entries": {"<layer key>": {"median_ms", "p10_ms", "p90_ms", "cv", "n", "raw_median_ms",
                                 ..., "noisy", "measured_at"}}}

``median_ms`` is the drift-compensated median (see ``hwnas.measure.protocol``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from hwnas.errors import HwnasError
from hwnas.files import interpreting, read_versioned, write_json
from hwnas.spaces.stored import check_same_space
from hwnas.measure.fingerprint import identity_differences

SCHEMA = "hwnas.latency_table"
SCHEMA_VERSION = 1
REQUIRED_ENTRY = ("median_ms", "p90_ms", "cv", "n")


class MissingKeysError(HwnasError, KeyError):
    def __init__(self, path: str, keys: Sequence[str]) -> None:
        shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        super().__init__(f"latency table {path} has no entry for {len(keys)} layer(s): {shown}; "
                         f"run 'hwnas lut build' with -o {path} to measure what is missing")
        self.keys = list(keys)

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class LatencyTable:
    header: dict[str, Any]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    path: str = "<memory>"

    # -- files ----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "header": self.header, "entries": self.entries}

    def save(self, path: str | Path | None = None) -> None:
        target = Path(path or self.path)
        write_json(target, self.to_json())
        self.path = str(target)

    @classmethod
    def load(cls, path: str | Path, *, space: Any = None, device: Any = None) -> "LatencyTable":
        """Read and validate a table; refuse another schema, space, preset or device."""
        p = Path(path)
        what = "latency table"
        data = read_versioned(p, what, "build one with 'hwnas lut build'", ("schema", SCHEMA),
                              ("schema_version", SCHEMA_VERSION),
                              {"header": dict, "entries": dict, "header.space": str, "header.preset": str,
                               "header.skeleton": dict, "header.device": dict, "header.batch": int,
                               "header.dtype": str, "header.protocol": dict, "header.reference": dict})
        header, entries = data["header"], data["entries"]
        for key, e in entries.items():
            bad = [k for k in REQUIRED_ENTRY if not isinstance(e, dict) or not isinstance(e.get(k), (int, float))]
            if bad:
                raise HwnasError(f"latency table {p}: entry {key!r} lacks numeric {', '.join(bad)}")
            if e["median_ms"] < 0:
                raise HwnasError(f"latency table {p}: entry {key!r} has a negative median_ms")
        table = cls(header, entries, str(p))
        with interpreting(p, what):
            if space is not None:
                table.check_space(space)
            if device is not None:
                table.check_device(device.fingerprint())
        return table

    # -- refusals -------------------------------------------------------------------
    def check_space(self, space: Any) -> None:
        h = self.header
        check_same_space(f"latency table {self.path}", (h["space"], h["preset"], h["skeleton"]), space, "built",
                         "; build a table for this one")

    def check_device(self, fingerprint: dict[str, Any]) -> None:
        diff = identity_differences(self.header["device"], fingerprint)
        if diff:
            raise HwnasError(f"latency table {self.path} was measured on another device ({'; '.join(diff)}; "
                             f"table vs this one); build your own with 'hwnas lut build --device SPEC'")

    # -- lookups --------------------------------------------------------------------
    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def missing(self, keys: Iterable[str]) -> list[str]:
        return [k for k in dict.fromkeys(keys) if k not in self.entries]

    def latency_ms(self, key: str) -> float:
        try:
            return float(self.entries[key]["median_ms"])
        except KeyError:
            raise MissingKeysError(self.path, [key]) from None

    def lookup(self, keys: Sequence[str]) -> np.ndarray:
        missing = self.missing(keys)
        if missing:
            raise MissingKeysError(self.path, missing)
        return np.array([self.entries[k]["median_ms"] for k in keys], dtype=np.float64)

    def arch_latency_ms(self, arch: Any) -> float:
        """LUT-sum: the sum of the table entries of every layer of ``arch``."""
        return float(self.lookup(arch.keys()).sum())

    def coverage(self, space: Any) -> tuple[int, int]:
        keys = [s.key for s in space.all_layers()]
        return len(keys) - len(self.missing(keys)), len(keys)
