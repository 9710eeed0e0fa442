"""One reference calibration per device, kept and reused.

Drift compensation reports a model as median(model / reference) × the reference's
calibrated latency. Two tables or measured sets that each calibrate afresh disagree by the
drift between their calibrations (on this machine the shipped ``cpu-ort`` artefacts had
been calibrated at 0.219 to 0.357 ms, made hours apart), which no predictor can learn. So a
device's calibration is looked up before it is measured: kept in the hwnas cache under
``calibrations/`` by the device's identity (CPU model, cores, architecture, runtime,
threads, accelerator), else taken from a shipped table or measured set of the same device,
else measured once and kept. Every table, measured set and verification made on the device
then shares it; ``hwnas device info --calibrate`` shows it beside a fresh measurement.

A file measured with another calibration is rebased exactly (:func:`rebase`): its
compensated figures are ratios to the reference times the calibration, so multiplying them
by new / old moves them to the new calibration, leaving the raw figures alone.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any

from hwnas.files import read_json, write_json
from hwnas.measure.fingerprint import identity
from hwnas.paths import REPO_ROOT, cache_dir

SHIPPED = REPO_ROOT / "latency_tables"
COMPENSATED_FIELDS = ("median_ms", "p10_ms", "p90_ms")
"""Entry fields that are reported through the reference (the ``raw_*`` ones are the clock's)."""


def device_key(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity(fingerprint), sort_keys=True).encode()).hexdigest()[:16]


def _store(fingerprint: dict[str, Any]) -> Path | None:
    root = cache_dir()
    return None if root is None else root / "calibrations" / f"{device_key(fingerprint)}.json"


def kept_calibration(fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The calibration kept for this device: {"calibrated_ms", "source", "created"}, or None."""
    path = _store(fingerprint)
    if path is None or not path.is_file():
        return None
    data = read_json(path, "device calibration", "delete it to calibrate the device again")
    return data if isinstance(data.get("calibrated_ms"), (int, float)) else None


def shipped_calibration(fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The calibration of the shipped tables and measured sets of this device, when they
    agree on one (they are rebased to one calibration per device)."""
    found: dict[float, str] = {}
    for path in sorted(SHIPPED.glob("*.lut.json")) + sorted(SHIPPED.glob("*.measured.csv.meta.json")):
        try:
            header = json.loads(path.read_text())["header"]
        except (OSError, ValueError, KeyError):
            continue
        if identity(header.get("device", {})) == identity(fingerprint):
            ms = header.get("reference", {}).get("calibrated_ms")
            if ms is not None:
                found.setdefault(float(ms), path.name)
    if len(found) != 1:
        return None
    ms, name = next(iter(found.items()))
    return {"calibrated_ms": ms, "source": f"shipped {name}"}


def keep(fingerprint: dict[str, Any], calibrated_ms: float, source: str) -> dict[str, Any]:
    record = {"calibrated_ms": float(calibrated_ms), "source": source, "device": identity(fingerprint),
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    path = _store(fingerprint)
    if path is not None:
        try:
            write_json(path, record)
        except OSError:
            pass  # a read-only cache: every process calibrates for itself, as before
    return record


def device_calibration(device: Any) -> dict[str, Any]:
    """The device's one calibration: kept, else shipped (then kept), else measured now (then kept)."""
    fp = device.fingerprint()
    found = kept_calibration(fp)
    if found is not None:
        return found
    shipped = shipped_calibration(fp)
    if shipped is not None:
        return keep(fp, shipped["calibrated_ms"], shipped["source"])
    return keep(fp, device.calibrate_reference(), "measured")


def rebase(header: dict[str, Any], entries: Any, calibrated_ms: float) -> float:
    """Move a table's or measured set's compensated figures to ``calibrated_ms`` (in place);
    returns the factor applied. ``entries``: the table's entries dict, or a measured set's rows."""
    old = header.get("reference", {}).get("calibrated_ms")
    if old is None or not header.get("protocol", {}).get("compensate", True):
        return 1.0
    factor = float(calibrated_ms) / float(old)
    rows = entries.values() if isinstance(entries, dict) else entries
    for row in rows:
        for k in COMPENSATED_FIELDS + ("latency_ms",):
            value = row.get(k)
            if isinstance(value, str) and value:  # a measured set's CSV row
                row[k] = f"{float(value) * factor:.6g}"
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                row[k] = float(value) * factor
        if isinstance(row.get("passes_ms"), str):  # a measured set's per-pass medians
            row["passes_ms"] = ";".join(f"{float(v) * factor:.6g}" for v in row["passes_ms"].split(";") if v)
    header["reference"] = {**header["reference"], "calibrated_ms": float(calibrated_ms),
                           "rebased_from_ms": header["reference"].get("rebased_from_ms", old)}
    return factor
