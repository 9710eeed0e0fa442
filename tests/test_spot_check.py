"""The spot check of a shipped predictor: networks of its measured set measured on this
machine now, against the figures in the file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from hwnas.devices import get_device
from hwnas.devices.calibration import device_calibration
from hwnas.job import spot_check as spot
from hwnas.job.verify import CorrectedPredictor
from hwnas.lut.netset import COLUMNS, measure_set, meta_path
from hwnas.lut.table import LatencyTable
from hwnas.predictors import LutSumPredictor
from hwnas.spaces import get_space

FAST = "cpu-ort:threads=1,runs=10,rounds=2,warmup=2,retries=0"


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, object, Path, float]:
    """A set of 6 small networks measured here, as a shipped set would have been on its machine."""
    space = get_space("mbv2", "small", resolution=16)
    device = get_device(FAST)
    reference_ms = float(device_calibration(device)["calibrated_ms"])
    path = tmp_path_factory.mktemp("spot") / "set.csv"
    measure_set(space, device, path, 6, seed=2, progress=False, reference_ms=reference_ms)
    return space, device, path, reference_ms


def _scaled_copy(path: Path, factor: float, to: Path) -> Path:
    """The same set as if measured on a machine ``factor`` times as slow."""
    rows = list(csv.DictReader(open(path)))
    for r in rows:
        r["latency_ms"] = f"{float(r['latency_ms']) * factor:.6g}"
    with open(to, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    meta_path(to).write_text(meta_path(path).read_text())
    return to


def test_a_set_measured_on_a_slower_machine_is_scaled_down(measured: tuple, tmp_path: Path) -> None:
    space, device, path, reference_ms = measured
    slower = _scaled_copy(path, 4.0, tmp_path / "slower.csv")
    header = json.loads(meta_path(path).read_text())["header"]
    check = spot.spot_check(space, device, slower, header["protocol"], reference_ms, n=4, progress=False)
    assert check["n"] == 4 and len(check["rows"]) == 4 and check["kept"] is None
    # the same networks on the same machine, so now / then is 1/4 but for measurement noise, which
    # on a loaded 2-core machine (parallel tests) moves these tiny networks by a third or more
    assert 0.25 / 2 < check["factor"] < 0.25 * 2 and spot.applies(check)
    assert check["factor"] == pytest.approx(float(np.median([now / was for _, was, now in check["rows"]])))
    thens = sorted(was for _, was, _ in check["rows"])
    all_then = sorted(float(r["latency_ms"]) for r in csv.DictReader(open(slower)))
    assert thens[0] == pytest.approx(all_then[0]) and thens[-1] == pytest.approx(all_then[-1])  # spaced over the range
    assert "scaled by it" in spot.note(check)

    again = spot.spot_check(space, device, slower, header["protocol"], reference_ms, n=4, progress=False)
    assert again["kept"] and again["factor"] == check["factor"]  # kept: the next run measures nothing


def test_the_scaled_predictor_scales_predictions_and_option_tables(measured: tuple, tmp_path: Path) -> None:
    from hwnas.lut.build import build_table

    space, device, _, _ = measured
    table_path = tmp_path / "t.lut.json"
    build_table(space, device, table_path, progress=False)
    base = LutSumPredictor(space, LatencyTable.load(table_path, space=space)).plain()
    scaled = CorrectedPredictor(base, [("a", 1.0, 3.0)], scale=0.5)
    archs = space.sample(5, seed=1)
    assert np.allclose(scaled.predict(archs), 0.5 * base.predict(archs))
    assert np.allclose(scaled.option_latency().fixed, 0.5 * base.option_latency().fixed)
    assert scaled.kind == getattr(base, "kind", type(base).__name__)
    assert CorrectedPredictor(base, [("a", 1.0, 3.0)]).scale == pytest.approx(3.0)  # no scale: from the rows


def test_a_set_of_this_machine_comes_out_near_one_and_the_data_is_found(measured: tuple, tmp_path: Path) -> None:
    space, device, path, reference_ms = measured
    header = json.loads(meta_path(path).read_text())["header"]
    check = spot.spot_check(space, device, path, header["protocol"], reference_ms, n=3, progress=False)
    assert 0.5 < check["factor"] < 2.0  # itself, give or take this machine's noise: nothing like 1/4
    assert spot.note(check).startswith("spot check: 3 networks of set.csv")

    class Fitted:
        meta = {"data": f"{path}:latency_ms"}

    assert spot.data_file(Fitted(), None) == path
    Fitted.meta = {"data": "nowhere.csv:latency_ms"}
    table = tmp_path / "x.lut.json"
    assert spot.data_file(Fitted(), table) is None
    (tmp_path / "x.measured.csv").write_text(path.read_text())
    assert spot.data_file(Fitted(), table) == tmp_path / "x.measured.csv"  # the set beside the table


def test_a_search_target_on_a_shipped_table_is_spot_checked(measured: tuple, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``resolve_target`` on a folder of shipped files (a table, its predictor and its measured
    set, as if measured on a machine four times as slow): the predictor comes back scaled, and
    the target's notes say so; ``spot_check=0`` trusts the files."""
    from hwnas.devices import parse_device_spec
    from hwnas.job import targets
    from hwnas.lut.build import build_table

    space, device, path, _ = measured
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    table_path = shipped / "mbv2-small.cpu-ort.lut.json"
    build_table(space, device, table_path, progress=False)
    slower = _scaled_copy(path, 4.0, shipped / "mbv2-small.cpu-ort.measured.csv")
    rows = list(csv.DictReader(open(slower)))
    fitted = LutSumPredictor(space, LatencyTable.load(table_path, space=space))
    fitted.fit([r["arch"] for r in rows], [float(r["latency_ms"]) for r in rows], device=device.fingerprint())
    fitted.save(shipped / "mbv2-small.cpu-ort.learned.json")
    monkeypatch.setattr(targets, "SHIPPED", shipped)

    checked = targets.resolve_target(space, parse_device_spec(FAST), tmp_path / "run", progress=False, spot_check=3)
    assert isinstance(checked.model, CorrectedPredictor) and 0.25 / 2 < checked.model.scale < 0.25 * 2
    assert any(n.startswith("spot check: 3 networks of mbv2-small.cpu-ort.measured.csv") for n in checked.notes)
    archs = space.sample(4, seed=9)
    assert np.allclose(checked.predict(archs), checked.model.scale * fitted.predict(archs))

    trusted = targets.resolve_target(space, parse_device_spec(FAST), tmp_path / "run", progress=False, spot_check=0)
    assert not isinstance(trusted.model, CorrectedPredictor) and not any("spot" in n for n in trusted.notes)
    assert np.allclose(trusted.predict(archs), fitted.predict(archs))
