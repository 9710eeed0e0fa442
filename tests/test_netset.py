from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from hwnas.devices import get_device
import numpy as np
import pytest

from hwnas.errors import HwnasError
from hwnas.lut.netset import COLUMNS, add_pass, measure_set, meta_path, passes_of
from hwnas.predictors.data import one_column
from hwnas.spaces import get_space

HWNAS = str(Path(sys.executable).parent / "hwnas")
FAST = "cpu-ort:threads=1,runs=10,rounds=2,warmup=2,retries=0"


def test_measured_set_resumes(tmp_path: Path) -> None:
    space = get_space("mbv2", "small", resolution=16)
    path = tmp_path / "set.csv"
    first = measure_set(space, get_device(FAST), path, 3, seed=4, progress=False)
    assert first.measured == 3
    rows = list(csv.DictReader(open(path)))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 3
    more = measure_set(space, get_device(FAST), path, 5, seed=4, progress=False)
    assert more.kept == 3 and more.measured == 2
    rows2 = list(csv.DictReader(open(path)))
    assert rows2[:3] == rows and len({r["arch"] for r in rows2}) == 5
    for r in rows2:
        assert space.parse(r["arch"]) and float(r["latency_ms"]) > 0
    meta = json.loads(meta_path(path).read_text())
    assert meta["header"]["kind"] == "measured_set" and meta["header"]["rows"] == 5
    assert meta["header"]["device"]["runtime"] == "onnxruntime"


def test_measure_cli(tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    r = subprocess.run([HWNAS, "measure", "--space", "nb201", "--resolution", "8", "--device", FAST,
                        "-n", "2", "--seed", "1", "-o", str(out), "--quiet", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["measured"] == 2
    assert len(list(csv.DictReader(open(out)))) == 2


def test_remeasure_noisy_rows(tmp_path: Path) -> None:
    space = get_space("mbv2", "small", resolution=16)
    path = tmp_path / "set.csv"
    measure_set(space, get_device(FAST), path, 3, seed=5, progress=False)
    rows = list(csv.DictReader(open(path)))
    for row in rows:  # a busy machine may flag rows itself; this test decides which row is noisy
        row["noisy"] = "0"
    rows[1]["noisy"], rows[1]["latency_ms"] = "1", "999"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    report = measure_set(space, get_device(FAST), path, 3, seed=5, progress=False, remeasure_noisy=True)
    assert report.remeasured == 1 and report.measured == 0
    again = list(csv.DictReader(open(path)))
    assert [r["arch"] for r in again] == [r["arch"] for r in rows]
    assert float(again[1]["latency_ms"]) < 999 and again[0] == rows[0]


def test_passes_measure_the_set_again_and_report_the_median(tmp_path: Path) -> None:
    space = get_space("mbv2", "small", resolution=16)
    path = tmp_path / "set.csv"
    first = measure_set(space, get_device(FAST), path, 3, seed=2, progress=False, passes=2)
    assert (first.measured, first.repeated) == (3, 3)
    rows = list(csv.DictReader(open(path)))
    assert tuple(rows[0]) == COLUMNS
    for r in rows:
        two = passes_of(r)
        assert len(two) == 2 and float(r["latency_ms"]) == pytest.approx(float(np.median(two)), rel=1e-5)
        assert len(r["passes_raw_ms"].split(";")) == 2
    assert json.loads(meta_path(path).read_text())["header"]["passes"] == 2
    again = measure_set(space, get_device(FAST), path, 3, seed=2, progress=False)  # the file says 2: nothing left
    assert (again.measured, again.repeated) == (0, 0)
    assert list(csv.DictReader(open(path))) == rows
    third = measure_set(space, get_device(FAST), path, 3, seed=2, progress=False, passes=3)
    assert third.repeated == 3
    for old, new in zip(rows, csv.DictReader(open(path))):
        assert passes_of(new)[:2] == passes_of(old) and len(passes_of(new)) == 3
    data, column = one_column(str(path))
    assert column == "latency_ms" and len(data.archs) == 3


def test_a_one_pass_file_gains_only_its_missing_pass(tmp_path: Path) -> None:
    space = get_space("mbv2", "small", resolution=16)
    path = tmp_path / "set.csv"
    measure_set(space, get_device(FAST), path, 2, seed=3, progress=False)
    rows = list(csv.DictReader(open(path)))
    with open(path, "w", newline="") as f:  # the columns files had before passes existed
        w = csv.DictWriter(f, fieldnames=COLUMNS[:6], extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    report = measure_set(space, get_device(FAST), path, 2, seed=3, progress=False, passes=2)
    assert (report.measured, report.repeated) == (0, 2)
    for old, new in zip(rows, csv.DictReader(open(path))):
        assert passes_of(new)[0] == float(old["latency_ms"]) and len(passes_of(new)) == 2


def test_add_pass_combines_exactly() -> None:
    row = {"arch": "a", "latency_ms": "2", "p90_ms": "2.5", "cv": "0.05", "raw_median_ms": "2", "noisy": "0",
           "passes_ms": "1;3", "passes_raw_ms": "1;3"}
    e = {"median_ms": 2.0, "p90_ms": 2.2, "cv": 0.08, "raw_median_ms": 4.0, "noisy": False}
    out = add_pass(row, e, max_cv=0.5)
    assert out == {"arch": "a", "latency_ms": "2", "p90_ms": "2.5", "cv": "0.08", "raw_median_ms": "3",
                   "noisy": "0", "passes_ms": "1;3;2", "passes_raw_ms": "1;3;4"}
    # the passes' medians 1, 3, 2 spread by std/mean = 0.408: noisy under a max CV of 0.4
    assert add_pass(row, e, max_cv=0.4)["noisy"] == "1"
    assert add_pass({**row, "passes_ms": "", "passes_raw_ms": ""}, e, max_cv=0.5)["passes_ms"] == "2;2"


def test_measure_cli_refuses_zero_passes(tmp_path: Path) -> None:
    r = subprocess.run([HWNAS, "measure", "--space", "nb201", "--resolution", "8", "--device", FAST,
                        "-n", "2", "--passes", "0", "-o", str(tmp_path / "s.csv"), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "passes" in r.stderr and "1 or more" in r.stderr
    with pytest.raises(HwnasError, match="1 or more"):
        measure_set(get_space("nb201", resolution=8), get_device(FAST), tmp_path / "t.csv", 1, passes=-1)
