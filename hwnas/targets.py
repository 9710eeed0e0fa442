"""A search target: a device, its latency model (table and predictor) and its budget.

``resolve_target`` finds what a device needs: the table given, else a shipped table in
``latency_tables/`` measured on a device with the same fingerprint, else it builds one
in the run directory (with a progress bar; an interrupted build resumes). The predictor
is the one given, else the shipped learned predictor beside that table, else LUT-sum on
the table. A table built for a device is also kept in the hwnas cache and found again by
fingerprint and measurement protocol, so every run on that device shares one table and
one calibration. A table or predictor given explicitly for another device is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError
from hwnas.files import read_json, write_json
from hwnas.paths import REPO_ROOT, cache_dir
from hwnas.spaces.base import SearchSpace

SHIPPED = REPO_ROOT / "latency_tables"


@dataclass
class DeviceTarget:
    spec: str
    name: str
    budget_ms: float | None
    predictor: Any
    table_path: str | None = None
    predictor_path: str | None = None
    reference_ms: float | None = None  # the calibration the predictor's data was measured with
    notes: list[str] = field(default_factory=list)
    _device: Any = None

    @property
    def device(self) -> Any:
        if self._device is None:
            from hwnas.devices import get_device

            self._device = get_device(self.spec)
        return self._device

    def describe(self) -> dict[str, Any]:
        return {"device": self.name, "spec": self.spec, "budget_ms": self.budget_ms, "table": self.table_path,
                "predictor": self.predictor_path or f"lutsum({self.table_path})", "reference_ms": self.reference_ms,
                "predictor_quality": self.predictor_quality, "notes": self.notes}

    @property
    def predictor_quality(self) -> str:
        """What the predictor is and how far off it is expected to be, in words for the report."""
        v = (getattr(self.predictor, "meta", {}) or {}).get("validation")
        kind = getattr(self.predictor, "kind", type(self.predictor).__name__)
        if v:
            return (f"{kind} predictor; on {v['n']} held-out measured networks its error was {v['mape_pct']:.1f} % "
                    f"(MAPE), {v['pct_within_10pct']:.0f} % of them within ±10 %")
        if kind == "lutsum":
            return f"{_lutsum_expectation(self)}"
        return f"{kind} predictor without a hold-out measurement of its error"


def _lutsum_expectation(target: "DeviceTarget") -> str:
    """LUT-sum (isolated layers added up) has no measured networks of this device to tell its
    error; the shipped measured set of the same space and runtime says what it was there."""
    from hwnas.lut.table import LatencyTable
    from hwnas.predictors.data import one_column
    from hwnas.predictors.metrics import metrics
    from hwnas.predictors.simple import LutSumPredictor

    head = ("LUT-sum of layers measured in isolation, not corrected by any whole network measured on this device, "
            "so its error here is unknown")
    table = LatencyTable.load(target.table_path) if target.table_path else None
    if table is None:
        return head
    space, runtime = target.predictor.space, table.header["device"].get("runtime")
    for lut in sorted(SHIPPED.glob(f"{space.name}-{space.preset}.*.lut.json")):
        shipped = LatencyTable.load(lut)
        measured = lut.with_name(lut.name.replace(".lut.json", ".measured.csv"))
        if shipped.header["device"].get("runtime") != runtime or not measured.is_file():
            continue
        data, col = one_column(str(measured))
        m = metrics(LutSumPredictor(space, shipped).predict(data.archs_in(space)), data.column(col))
        return (f"{head}; on the machine of the shipped tables ({shipped.header['device'].get('cpu_model')}, "
                f"{runtime}) it was {m['mape_pct']:.0f} % off (MAPE) over {m['n']} measured networks, with "
                f"{m['pct_within_10pct']:.0f} % within ±10 %: expect the first measurement to miss the prediction "
                f"by that much, and let --refine correct it")
    return head


def device_name(spec: str) -> str:
    return Path(spec).stem if spec.endswith(".toml") else spec.split("?")[0]


def find_shipped_table(space: SearchSpace, fingerprint: dict[str, Any]) -> Path | None:
    return find_table(SHIPPED, space, fingerprint)


def find_table(folder: Path, space: SearchSpace, fingerprint: dict[str, Any],
               protocol: dict[str, Any] | None = None) -> Path | None:
    """A table in ``folder`` for ``space`` measured on the device with ``fingerprint`` (and,
    when given, with the same measurement protocol)."""
    from hwnas.lut.table import LatencyTable

    for path in sorted(folder.glob(f"{space.name}-{space.preset}.*.lut.json")):
        try:
            table = LatencyTable.load(path)
            table.check_space(space)
            table.check_device(fingerprint)
        except HwnasError:
            continue
        if protocol is None or table.header["protocol"] == protocol:
            return path
    return None


def kept_tables() -> Path | None:
    """Tables built for devices that no shipped table matches, kept for the next run (one
    calibration per device, and no rebuild): ``tables/`` in the hwnas cache."""
    root = cache_dir()
    return None if root is None else root / "tables"


def keep_table(path: Path, fingerprint: dict[str, Any]) -> Path | None:
    """Copy a finished table into :func:`kept_tables`; a cache that cannot be written only costs time."""
    from hwnas.lut.table import LatencyTable

    folder = kept_tables()
    if folder is None:
        return None
    table = LatencyTable.load(path)
    ident = hashlib.sha256(json.dumps([fingerprint, table.header["protocol"]], sort_keys=True).encode()).hexdigest()
    out = folder / f"{path.name.removesuffix('.lut.json')}.{ident[:12]}.lut.json"
    try:
        write_json(out, table.to_json())
    except OSError:
        return None
    return out


def _data_reference_ms(predictor: Any) -> float | None:
    data = str(predictor.meta.get("data") or "")
    path = Path(data.rsplit(":", 1)[0] + ".meta.json") if data else None
    if path is None or not path.is_file():
        return None
    meta = read_json(path, "measured set metadata", "")
    return meta.get("header", {}).get("reference", {}).get("calibrated_ms")


def resolve_target(space: SearchSpace, spec: str, budget_ms: float | None, run_dir: Path, *, lut: str | None = None,
                   predictor: str | None = None, progress: bool = True) -> DeviceTarget:
    from hwnas.lut.build import build_table
    from hwnas.lut.table import LatencyTable
    from hwnas.predictors import LutSumPredictor, load_predictor

    name = device_name(spec)
    target = DeviceTarget(spec, name, budget_ms, None)
    device = target.device
    fp = device.fingerprint()
    if lut is not None:
        table = LatencyTable.load(lut, space=space, device=device)  # refuses another device, naming the difference
        table_path: Path = Path(lut)
    else:
        found = find_shipped_table(space, fp)
        kept = kept_tables()
        if found is not None:
            table_path = found
            target.notes.append(f"using the shipped table {found.name} (fingerprint matches)")
        elif kept is not None and (again := find_table(kept, space, fp, device.protocol.to_dict())) is not None:
            table_path = again
            target.notes.append(f"no shipped table matches this device; using the table built for it earlier, "
                                f"kept in {again}")
        else:
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
            table_path = run_dir / f"{space.name}-{space.preset}.{safe}.lut.json"
            build_table(space, device, table_path, progress=progress)
            copy = keep_table(table_path, fp)
            target.notes.append(f"no shipped table matches this device; built {table_path}"
                                + (f" (kept in {copy} for the next run)" if copy else ""))
        table = LatencyTable.load(table_path, space=space, device=device)
    target.table_path = str(table_path)
    target.reference_ms = table.header["reference"]["calibrated_ms"]
    if predictor is None and lut is None:
        sibling = table_path.with_name(table_path.name.replace(".lut.json", ".learned.json"))
        if sibling.is_file():
            predictor = str(sibling)
    if predictor is not None:
        model = load_predictor(predictor, space=space)
        model.check_device(fp)
        target.predictor, target.predictor_path = model, str(predictor)
        target.reference_ms = _data_reference_ms(model) or target.reference_ms
    else:
        target.predictor = LutSumPredictor(space, table)
    return target
