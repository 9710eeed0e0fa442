"""Move a latency table or a measured set to another reference calibration (exactly: its
compensated figures are ratios to the reference times the calibration), so that every file
of a device shares the device's one calibration (:mod:`hwnas.devices.calibration`)."""

from __future__ import annotations

from pathlib import Path

from hwnas.devices.calibration import rebase
from hwnas.errors import HwnasError
from hwnas.files import interpreting, read_json, write_json
from hwnas.lut.netset import meta_path, read_rows, write_rows


def rebase_file(path: str | Path, calibrated_ms: float) -> float:
    """Rewrite ``path`` (a ``.lut.json`` table, or a measured set's ``.csv`` with its
    ``.meta.json``) reported through ``calibrated_ms``; returns the factor applied."""
    path = Path(path)
    if calibrated_ms <= 0:
        raise HwnasError(f"a reference calibration is a positive latency in ms, not {calibrated_ms}")
    if path.name.endswith(".lut.json"):
        data = read_json(path, "latency table", "")
        with interpreting(path, "latency table"):
            factor = rebase(data["header"], data["entries"], calibrated_ms)
        write_json(path, data)
        return factor
    meta = meta_path(path)
    if path.suffix != ".csv" or not meta.is_file():
        raise HwnasError(f"{path}: rebase takes latency tables (.lut.json) and measured sets (.csv with .meta.json)")
    data = read_json(meta, "measured set metadata", "")
    rows = read_rows(path)
    with interpreting(meta, "measured set metadata"):
        factor = rebase(data["header"], rows, calibrated_ms)
    write_rows(path, rows)
    write_json(meta, data)
    return factor
