"""A search target: a device, its latency model (table and predictor) and its budget.

``resolve_target`` finds what a device needs: the table given, else a shipped table in
``latency_tables/`` measured on a device with the same fingerprint, else it builds one
in the run directory (with a progress bar; an interrupted build resumes). The predictor
is the one given, else the shipped learned predictor beside that table; on a device no
shipped table matches, LUT-sum on its table corrected (a·LUT-sum + b) on a few networks
measured there first (``correction_networks``, kept beside the table: the sum of layers
timed in isolation is far from a whole network's latency, 35 % off on onnxruntime here,
and a correction on 20 networks brings it to ~2 %), else plain LUT-sum. A table built for a device is also kept in the hwnas cache and found again by
fingerprint and measurement protocol, so every run on that device shares one table and
one calibration. A table or predictor given explicitly for another device is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.devices.spec import DeviceSpec, parse_device_spec
from hwnas.errors import HwnasError
from hwnas.files import read_json, write_json
from hwnas.job.recipe import SearchRecipe
from hwnas.paths import REPO_ROOT, cache_dir
from hwnas.spaces.base import SearchSpace
from hwnas.target import Target

SHIPPED = REPO_ROOT / "latency_tables"


def predictor_quality(target: Target) -> str:
    """What the target's latency model is and how far off it is expected to be, in words for the report."""
    return _model_quality(target) + _predicted_entries(target)


def _predicted_entries(target: Target) -> str:
    """A note when some of the table's layers were predicted by a kernel predictor, not measured."""
    from hwnas.lut.table import LatencyTable
    from hwnas.predictors.kernel_fill import predicted_keys

    if not target.table_path:
        return ""
    table = LatencyTable.load(target.table_path)
    keys = predicted_keys(table)
    if not keys:
        return ""
    files = sorted({str(table.entries[k]["predicted_by"].get("file")) for k in keys})
    return (f"; {len(keys)} of the table's {len(table)} layers are predicted by the kernel predictor "
            f"{', '.join(files)}, not measured ('hwnas lut build' on the device measures them)")


def _model_quality(target: Target) -> str:
    model = target.model
    meta = getattr(model, "meta", {}) or {}
    v, c = meta.get("validation"), meta.get("correction")
    kind = getattr(model, "kind", type(model).__name__)
    if c:
        error = c["corrected_loo_mape_pct"] if c["chosen"] == "corrected" else c["plain_mape_pct"]
        return (f"LUT-sum {'corrected on' if c['chosen'] == 'corrected' else 'checked against'} {c['n']} networks "
                f"measured on this device; its error on them was {error:.1f} % (MAPE"
                + (", leave-one-out)" if c["chosen"] == "corrected" else ")"))
    if v:
        return (f"{kind} predictor; on {v['n']} held-out measured networks its error was {v['mape_pct']:.1f} % "
                f"(MAPE), {v['pct_within_10pct']:.0f} % of them within ±10 %")
    if kind == "lutsum":
        return _lutsum_expectation(target)
    return f"{kind} predictor without a hold-out measurement of its error"


def _lutsum_expectation(target: Target) -> str:
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
    space, runtime = target.model.space, table.header["device"].get("runtime")
    for lut in sorted(SHIPPED.glob(f"{space.name}-{space.preset}.*.lut.json")):
        shipped = LatencyTable.load(lut)
        measured = lut.with_name(lut.name.replace(".lut.json", ".measured.csv"))
        if shipped.header["device"].get("runtime") != runtime or not measured.is_file() or not same_skeleton(
                shipped, space):
            continue
        data, col = one_column(str(measured))
        m = metrics(LutSumPredictor(space, shipped).plain().predict(data.archs_in(space)), data.column(col))
        return (f"{head}; on the machine of the shipped tables ({shipped.header['device'].get('cpu_model')}, "
                f"{runtime}) it was {m['mape_pct']:.0f} % off (MAPE) over {m['n']} measured networks, with "
                f"{m['pct_within_10pct']:.0f} % within ±10 %: expect the first measurement to miss the prediction "
                f"by that much, and let --refine correct it")
    return head


def same_skeleton(table: Any, space: SearchSpace) -> bool:
    """Whether ``table`` was built for ``space`` as it is (not another resolution, width or class count)."""
    try:
        table.check_space(space)
    except HwnasError:
        return False
    return True


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
    from hwnas.job.spot_check import data_file

    data = data_file(predictor, None)
    path = data.with_name(data.name + ".meta.json") if data is not None else None
    if path is None or not path.is_file():
        return None
    meta = read_json(path, "measured set metadata", "")
    return meta.get("header", {}).get("reference", {}).get("calibrated_ms")


def resolve_target(space: SearchSpace, spec: DeviceSpec, run_dir: Path, *, lut: str | None = None,
                   predictor: str | None = None, progress: bool = True,
                   correction_networks: int = SearchRecipe.correction_networks,
                   spot_check: int = SearchRecipe.spot_check) -> Target:
    """The device's target (no budget yet): its table and latency model, found or built; a
    shipped predictor is checked on ``spot_check`` networks measured here first
    (:mod:`hwnas.job.spot_check`)."""
    from hwnas.devices.pool import Lender
    from hwnas.job import spot_check as spot
    from hwnas.job.verify import CorrectedPredictor
    from hwnas.lut.build import build_table
    from hwnas.lut.table import LatencyTable
    from hwnas.predictors import LutSumPredictor, load_predictor

    notes: list[str] = []
    own_table: Path | None = None  # a table built for this device (no shipped one matches), or kept from before
    devices = spec.open_all()  # a pool file's agents share a table build and the correction set
    device, pool = devices[0], devices if len(devices) > 1 else devices[0]
    fp = device.fingerprint()
    found = None if lut is not None else find_shipped_table(space, fp)
    if lut is not None:
        table = LatencyTable.load(lut, space=space, device=device)  # refuses another device, naming the difference
        table_path: Path = Path(lut)
    else:
        kept = kept_tables()
        if found is not None:
            table_path = found
            notes.append(f"using the shipped table {found.name} (fingerprint matches)")
        elif kept is not None and (again := find_table(kept, space, fp, device.protocol.to_dict())) is not None:
            table_path = own_table = again
            notes.append(f"no shipped table matches this device; using the table built for it earlier, kept in {again}")
        else:
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec.name)
            table_path = run_dir / f"{space.name}-{space.preset}.{safe}.lut.json"
            build_table(space, pool, table_path, progress=progress)
            copy = keep_table(table_path, fp)
            own_table = copy or table_path
            notes.append(f"no shipped table matches this device; built {table_path}"
                         + (f" (kept in {copy} for the next run)" if copy else ""))
        table = LatencyTable.load(table_path, space=space, device=device)
    reference_ms = table.header["reference"]["calibrated_ms"]
    shipped = predictor is None and lut is None and found is not None
    if predictor is None and lut is None:
        sibling = table_path.with_name(table_path.name.replace(".lut.json", ".learned.json"))
        if sibling.is_file():
            predictor = str(sibling)
    if predictor is not None:
        model: Any = load_predictor(predictor, space=space)
        model.check_device(fp)
        reference_ms = _data_reference_ms(model) or reference_ms
        data = spot.data_file(model, table_path) if shipped and spot_check > 0 else None
        if data is not None:
            check = spot.spot_check(space, device, data, table.header["protocol"], reference_ms, spot_check, progress)
            notes.append(spot.note(check))
            if spot.applies(check):
                model = CorrectedPredictor(model, check["rows"], scale=check["factor"])
    elif own_table is not None and correction_networks > 0:
        model = corrected_lutsum(space, pool, table, own_table, correction_networks, progress)
        c = model.meta["correction"]
        measured = own_table.name.replace(".lut.json", ".measured.csv")
        if c["chosen"] == "corrected":
            notes.append(f"LUT-sum corrected on {c['n']} networks measured on this device ({measured}): "
                         f"leave-one-out error {c['corrected_loo_mape_pct']:.1f} % (MAPE), plain LUT-sum "
                         f"{c['plain_mape_pct']:.1f} %")
        else:
            notes.append(f"plain LUT-sum: on {c['n']} networks measured on this device ({measured}) it was "
                         f"{c['plain_mape_pct']:.1f} % off (MAPE), a correction {c['corrected_loo_mape_pct']:.1f} % "
                         "(leave-one-out)")
    else:
        model = LutSumPredictor(space, table).plain()
    if len(devices) > 1:
        notes.append(f"a pool of {len(devices)} devices of one kind ({spec.text})")
    return Target(spec.name, model, spec=spec, table_path=str(table_path), predictor_path=predictor,
                  reference_ms=reference_ms, notes=notes, _device=device, _lender=Lender(devices))


def corrected_lutsum(space: SearchSpace, device: Any, table: Any, table_path: Path, n: int, progress: bool) -> Any:
    """LUT-sum on ``table``, corrected (a·LUT-sum + b) on ``n`` networks measured on ``device``
    (or a pool of them, a list)
    with the table's protocol and reference calibration (kept beside the table, so a later run
    reuses them and an interrupted one resumes) when the correction predicts them better than
    the plain sum does, by leave-one-out (on LiteRT here the isolated layers already add up to
    within 7 %, and a correction on 20 noisy networks would only add error)."""
    from hwnas.lut.netset import measure_set
    from hwnas.measure.protocol import MeasureProtocol
    from hwnas.predictors.data import one_column

    path = table_path.with_name(table_path.name.replace(".lut.json", ".measured.csv"))
    measure_set(space, device, path, n, seed=0, protocol=MeasureProtocol(**table.header["protocol"]),
                reference_ms=table.header["reference"]["calibrated_ms"], progress=progress)
    data, column = one_column(str(path))
    model = choose_lutsum(space, table, space.index_matrix(data.archs_in(space)[:n]), data.column(column)[:n])
    model.meta.setdefault("device", (device[0] if isinstance(device, list) else device).fingerprint())
    return model


def choose_lutsum(space: SearchSpace, table: Any, idx: Any, y: Any) -> Any:
    """The plain LUT-sum, or the one corrected on (idx, y) when that predicts them better by
    leave-one-out; ``meta.correction`` says which and both errors."""
    import numpy as np

    from hwnas.predictors import LutSumPredictor

    plain = LutSumPredictor(space, table).plain()
    plain_error = float(np.mean(np.abs(plain.predict(idx) / y - 1)))
    loo = [float(LutSumPredictor(space, table).fit(np.delete(idx, i, 0), np.delete(y, i), validate=False)
                 .predict(idx[i:i + 1])[0] / y[i] - 1) for i in range(len(y))] if len(y) >= 3 else [np.inf]
    corrected_error = float(np.mean(np.abs(loo)))
    choice = {"plain_mape_pct": 100 * plain_error, "corrected_loo_mape_pct": 100 * corrected_error, "n": int(len(y))}
    model = LutSumPredictor(space, table).fit(idx, y) if corrected_error < plain_error else plain
    model.meta["correction"] = {**choice, "chosen": "corrected" if model is not plain else "plain"}
    return model


def model_only_target(space: SearchSpace, lut: str | None, predictor: str | None) -> Target:
    """A target without a device: a table (LUT-sum) or a fitted predictor stands for it."""
    from hwnas.lut.table import LatencyTable
    from hwnas.predictors import LutSumPredictor, load_predictor

    path = predictor or lut
    model = load_predictor(predictor, space=space) if predictor else LutSumPredictor(space, LatencyTable.load(lut, space=space)).plain()
    return Target(Path(str(path)).name, model, table_path=lut, predictor_path=predictor)


def latency_spread(space: SearchSpace, t: Target, n: int = 2000) -> tuple[Any, float, str]:
    """(q -> the q-quantile of predicted latency over the space, the least predicted latency,
    where that least was looked for). Exact per-option figures where the space is additive
    and the model linear in its options; else the predictions of ``n`` sampled networks and
    the space's references."""
    if space.additive:
        table = t.option_latency()
        if table.exact:
            return (lambda q: table.quantile(space, q)), table.smallest(), "in the space"
    sampled = t.predict(space.sample(n, seed=0))
    least = min(float(sampled.min()), *(t.predict_one(a) for a in space.references().values()))
    return (lambda q: float(np.quantile(sampled, q))), least, f"among {n} sampled networks and the references"


def build_targets(recipe: SearchRecipe, space: SearchSpace, run: Path, progress: bool) -> list[Target]:
    """Every target of a recipe, each with its budget (given, or the quantile of its predicted
    latencies) and screen margin; refuses a budget no architecture of the space can meet."""
    if recipe.device:
        run.mkdir(parents=True, exist_ok=True)
        found = [resolve_target(space, parse_device_spec(d), run, lut=recipe.for_device("lut", i),
                                predictor=recipe.for_device("predictor", i), progress=progress,
                                correction_networks=recipe.correction_networks, spot_check=recipe.spot_check)
                 for i, d in enumerate(recipe.device)]
    else:
        found = [model_only_target(space, recipe.for_device("lut", 0), recipe.for_device("predictor", 0))]
    out = []
    for i, t in enumerate(found):
        budget = recipe.for_device("budget_ms", i)
        quantile, smallest, where = latency_spread(space, t)
        if budget is None and recipe.budget_quantile is not None:
            budget = quantile(recipe.budget_quantile)
        margin = recipe.margin_for(t.model, budget) if budget is not None else 0.0
        t = replace(t, budget_ms=budget, screen_margin=margin)
        if not t.meets(smallest):
            raise HwnasError(f"no architecture of {space.name}/{space.preset} can meet {budget:.4f} ms on {t.name}: "
                             f"the smallest predicted latency {where} is {smallest:.4f} ms")
        out.append(t)
    return out
