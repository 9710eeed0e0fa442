"""One reference calibration per device: kept in the cache and shared by separate processes,
taken from shipped files that agree, and files rebased to it exactly."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwnas.devices import calibration
from hwnas.devices.calibration import device_calibration, keep, kept_calibration, shipped_calibration
from hwnas.errors import HwnasError
from hwnas.lut.rebase import rebase_file

HWNAS = str(Path(sys.executable).parent / "hwnas")
FAST = "cpu-ort:threads=1,runs=10,rounds=2,warmup=2,retries=0"
FP = {"cpu_model": "Test CPU", "logical_cores": 2, "machine": "x86_64", "runtime": "onnxruntime", "threads": 1,
      "accelerator": None, "os": "Linux", "runtime_version": "1.0"}


def hwnas(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([HWNAS, *args], capture_output=True, text=True, env={**os.environ, **env}, timeout=600)


def test_two_processes_measure_through_one_calibration(tmp_path: Path) -> None:
    env = {"HWNAS_CACHE_DIR": str(tmp_path / "cache")}
    for name in ("a", "b"):
        r = hwnas("measure", "--space", "nb201", "--resolution", "8", "--device", FAST, "-n", "4", "--seed", "1",
                  "-o", str(tmp_path / f"{name}.csv"), "--quiet", env=env)
        assert r.returncode == 0, r.stderr
    refs = [json.loads((tmp_path / f"{n}.csv.meta.json").read_text())["header"]["reference"]["calibrated_ms"]
            for n in "ab"]
    assert refs[0] == refs[1] > 0  # the second process reused the device's kept calibration
    kept = list((tmp_path / "cache" / "calibrations").glob("*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text())["calibrated_ms"] == refs[0]
    r = hwnas("device", "info", FAST, "--calibrate", "--json", env=env)
    info = json.loads(r.stdout)
    assert info["calibration"]["calibrated_ms"] == refs[0] and info["reference_ms"] > 0
    assert info["calibration"]["drift_pct"] == pytest.approx(100 * (info["reference_ms"] / refs[0] - 1))
    r = hwnas("device", "info", FAST, "--calibrate", "--recalibrate", "--json", env=env)
    again = json.loads(r.stdout)
    assert again["calibration"]["calibrated_ms"] == again["reference_ms"] and "recalibrate" in again["calibration"]["source"]


def test_a_kept_calibration_comes_first_then_agreeing_shipped_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HWNAS_CACHE_DIR", str(tmp_path / "cache"))
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setattr(calibration, "SHIPPED", shipped)

    def ship(name: str, ms: float, device: dict = FP) -> None:
        (shipped / name).write_text(json.dumps({"header": {"device": device, "reference": {"calibrated_ms": ms}}}))

    ship("a.lut.json", 0.25)
    ship("b.measured.csv.meta.json", 0.25)
    ship("other.lut.json", 0.9, {**FP, "cpu_model": "Another CPU"})
    assert shipped_calibration(FP) == {"calibrated_ms": 0.25, "source": "shipped a.lut.json"}
    ship("c.lut.json", 0.31)  # files that disagree name no calibration
    assert shipped_calibration(FP) is None
    (shipped / "c.lut.json").unlink()

    class Device:
        def fingerprint(self) -> dict:
            return dict(FP, os="other", runtime_version="2.0")  # not identity fields: the same device

        def calibrate_reference(self) -> float:
            raise AssertionError("a device with a calibration is not calibrated again")

    assert kept_calibration(FP) is None
    assert device_calibration(Device())["calibrated_ms"] == 0.25  # from the shipped files, then kept
    assert kept_calibration(FP)["source"] == "shipped a.lut.json"
    keep(FP, 0.27, "measured")
    assert device_calibration(Device())["calibrated_ms"] == 0.27


def test_rebase_moves_compensated_figures_exactly(tmp_path: Path) -> None:
    table = tmp_path / "t.lut.json"
    table.write_text(json.dumps({"schema": "hwnas.latency_table", "schema_version": 1,
                                 "header": {"reference": {"calibrated_ms": 0.2}, "protocol": {"compensate": True}},
                                 "entries": {"k": {"median_ms": 1.0, "p10_ms": 0.9, "p90_ms": 1.2, "cv": 0.05,
                                                   "raw_median_ms": 1.1}}}))
    assert rebase_file(table, 0.25) == pytest.approx(1.25)
    data = json.loads(table.read_text())
    assert data["entries"]["k"] == {"median_ms": 1.25, "p10_ms": pytest.approx(1.125), "p90_ms": 1.5, "cv": 0.05,
                                    "raw_median_ms": 1.1}
    assert data["header"]["reference"] == {"calibrated_ms": 0.25, "rebased_from_ms": 0.2}
    rebase_file(table, 0.1)
    assert json.loads(table.read_text())["header"]["reference"]["rebased_from_ms"] == 0.2  # the first one stays
    sample = tmp_path / "s.csv"
    with sample.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "latency_ms", "p90_ms", "cv", "raw_median_ms", "noisy"])
        w.writerow(["a", "2", "2.5", "0.1", "2.2", "0"])
    (tmp_path / "s.csv.meta.json").write_text(json.dumps({"header": {"reference": {"calibrated_ms": 0.5},
                                                                     "protocol": {"compensate": True}}}))
    assert rebase_file(sample, 0.25) == pytest.approx(0.5)
    row = next(csv.DictReader(sample.open()))
    assert (row["latency_ms"], row["p90_ms"], row["raw_median_ms"]) == ("1", "1.25", "2.2")
    assert (row["passes_ms"], row["passes_raw_ms"]) == ("1", "2.2")  # an older one-pass file gains its pass columns
    with sample.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "latency_ms", "p90_ms", "cv", "raw_median_ms", "noisy", "passes_ms", "passes_raw_ms"])
        w.writerow(["a", "2", "2.5", "0.1", "2.2", "0", "1;2;4", "1.1;2.2;4.4"])
    rebase_file(sample, 0.5)
    row = next(csv.DictReader(sample.open()))
    assert (row["latency_ms"], row["passes_ms"], row["passes_raw_ms"]) == ("4", "2;4;8", "1.1;2.2;4.4")
    with pytest.raises(HwnasError, match="rebase takes"):
        rebase_file(tmp_path / "nothing.txt", 0.2)


def test_lutsum_is_corrected_only_where_the_correction_predicts_better() -> None:
    """Networks at twice their layers' sum plus 0.1 ms: corrected; at the sum with 3 % noise:
    the plain sum stays (an affine fit on 20 noisy networks would only add error)."""
    import numpy as np

    from hwnas.job.targets import choose_lutsum
    from hwnas.predictors import LutSumPredictor
    from hwnas.testing.predictors import SPACE, synthetic_table

    table = synthetic_table()
    archs = SPACE.sample(20, seed=3)
    idx = SPACE.index_matrix(archs)
    lut = LutSumPredictor(SPACE, table).plain().predict(idx)  # the sum of the live layers
    model = choose_lutsum(SPACE, table, idx, 2 * lut + 0.1)
    c = model.meta["correction"]
    assert c["chosen"] == "corrected" and c["corrected_loo_mape_pct"] < 0.01 < c["plain_mape_pct"]
    np.testing.assert_allclose(model.predict(idx), 2 * lut + 0.1, rtol=1e-6)
    noisy = lut * np.random.default_rng(0).normal(1.0, 0.03, len(lut))
    assert choose_lutsum(SPACE, table, idx, noisy).meta["correction"]["chosen"] == "plain"
