"""Latency tables: schema, refusals, end-to-end builds, resume after failures and kills."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwnas.devices import get_device
from hwnas.devices.local import OrtDevice
from hwnas.errors import HwnasError
from hwnas.lut.build import build_table
from hwnas.lut.table import LatencyTable, MissingKeysError
from hwnas.spaces import get_space
from hwnas.spaces.mbv2 import MBV2Space, Stage

FAST = "runs=10,rounds=2,warmup=2,retries=0"
HWNAS = str(Path(sys.executable).parent / "hwnas")


def tiny_space() -> MBV2Space:
    """Six layers: stem, first block, two searchable blocks, head, classifier."""
    return MBV2Space(preset="tiny", resolution=8, stem_channels=8, stem_stride=1, first_channels=8,
                     stages=(Stage(8, 2, 2),), head_channels=16, num_classes=4, kernels=(3,), expands=(3,))


@pytest.mark.parametrize("backend", ["cpu-ort", "cpu-tflite"])
def test_small_table_end_to_end(tmp_path: Path, backend: str) -> None:
    space = tiny_space()
    device = get_device(f"{backend}:threads=1,{FAST}")
    report = build_table(space, device, tmp_path / "t.json", progress=False)
    assert report.total == len(space.all_layers()) == 6 and report.measured == 6 and report.kept == 0
    table = LatencyTable.load(tmp_path / "t.json", space=space, device=device)
    assert table.coverage(space) == (6, 6)
    h = table.header
    assert h["device"]["runtime"] == device.runtime and h["reference"]["calibrated_ms"] > 0
    for arch in space.enumerate():
        assert table.arch_latency_ms(arch) == pytest.approx(sum(table.latency_ms(k) for k in arch.keys()))
    entry = next(iter(table.entries.values()))
    assert {"median_ms", "p10_ms", "p90_ms", "cv", "n", "raw_median_ms", "measured_at"} <= set(entry)


class FailingDevice(OrtDevice):
    """A real onnxruntime device that crashes after ``budget`` measurements."""

    budget = 3

    def measure(self, model, input_shape, protocol=None, reference_ms=None):
        if self.budget == 0:
            raise RuntimeError("injected failure")
        self.budget -= 1
        return super().measure(model, input_shape, protocol, reference_ms)


def test_failure_mid_build_loses_nothing_and_remeasures_nothing(tmp_path: Path) -> None:
    space = tiny_space()
    path = tmp_path / "t.json"
    failing = FailingDevice(spec="cpu-ort", protocol=get_device(f"cpu-ort:{FAST}").protocol)
    with pytest.raises(RuntimeError, match="injected failure"):
        build_table(space, failing, path, progress=False)
    before = LatencyTable.load(path).entries
    assert len(before) == 3
    report = build_table(space, get_device(f"cpu-ort:{FAST}"), path, progress=False)
    assert report.kept == 3 and report.measured == 3
    after = LatencyTable.load(path).entries
    assert len(after) == 6
    assert all(after[k] == v for k, v in before.items())


def test_killed_build_resumes(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    cmd = [HWNAS, "lut", "build", "--space", "mbv2", "--preset", "small", "--resolution", "8",
           "--device", f"cpu-ort:threads=1,{FAST}", "-o", str(path), "--quiet", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    n = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            n = len(json.loads(path.read_text())["entries"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            n = 0
        if n >= 5:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert n >= 5, "the build never got going"
    before = json.loads(path.read_text())["entries"]  # the file is whole: atomic writes
    assert len(before) < 52
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    after = json.loads(path.read_text())["entries"]
    assert len(after) == report["total"] == 52
    assert report["kept"] == len(before) and report["measured"] == 52 - len(before)
    assert all(after[k] == v for k, v in before.items())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lut") / "t.json"
    build_table(tiny_space(), get_device(f"cpu-ort:{FAST}"), path, progress=False)
    return path


def _rewrite(src: Path, dst: Path, change) -> Path:
    data = json.loads(src.read_text())
    change(data)
    dst.write_text(json.dumps(data))
    return dst


def test_refusals(built: Path, tmp_path: Path) -> None:
    space = tiny_space()
    with pytest.raises(HwnasError, match="schema version 99"):
        LatencyTable.load(_rewrite(built, tmp_path / "a.json", lambda d: d.update(schema_version=99)))
    with pytest.raises(HwnasError, match="not an hwnas latency table"):
        LatencyTable.load(_rewrite(built, tmp_path / "b.json", lambda d: d.update(schema="other")))
    with pytest.raises(HwnasError, match="is for space mbv2 preset tiny, not mbv2 preset small"):
        LatencyTable.load(built, space=get_space("mbv2", "small"))
    with pytest.raises(HwnasError, match="another mbv2 skeleton .*resolution"):
        LatencyTable.load(built, space=MBV2Space(**{**tiny_space().__dict__, "resolution": 16}))
    other = _rewrite(built, tmp_path / "c.json", lambda d: d["header"]["device"].update(cpu_model="Apple M9"))
    with pytest.raises(HwnasError, match="measured on another device .*cpu_model: 'Apple M9'"):
        LatencyTable.load(other, space=space, device=get_device("cpu-ort"))
    with pytest.raises(HwnasError, match="runtime: 'onnxruntime' vs 'ai-edge-litert'|runtime: 'onnxruntime' vs 'tflite-runtime'"):
        LatencyTable.load(built, device=get_device("cpu-tflite"))
    with pytest.raises(HwnasError, match="threads: 1 vs 2"):
        LatencyTable.load(built, device=get_device("cpu-ort:threads=2"))
    (tmp_path / "d.json").write_text("{")
    with pytest.raises(HwnasError, match="not valid JSON"):
        LatencyTable.load(tmp_path / "d.json")
    with pytest.raises(HwnasError, match="does not exist"):
        LatencyTable.load(tmp_path / "none.json")
    bad_entry = _rewrite(built, tmp_path / "e.json",
                         lambda d: d["entries"][next(iter(d["entries"]))].pop("median_ms"))
    with pytest.raises(HwnasError, match="lacks numeric median_ms"):
        LatencyTable.load(bad_entry)


def test_missing_key_names_the_key(built: Path) -> None:
    table = LatencyTable.load(built)
    key = next(iter(table.entries))
    del table.entries[key]
    with pytest.raises(MissingKeysError) as e:
        table.lookup([key])
    assert key in str(e.value) and e.value.keys == [key]


def test_build_refuses_to_extend_another_devices_table(built: Path, tmp_path: Path) -> None:
    other = _rewrite(built, tmp_path / "o.json", lambda d: d["header"]["device"].update(logical_cores=64))
    with pytest.raises(HwnasError, match="logical_cores: 64"):
        build_table(tiny_space(), get_device("cpu-ort"), other, progress=False)


def test_lut_cli_show_and_diff(built: Path, tmp_path: Path) -> None:
    r = subprocess.run([HWNAS, "lut", "show", str(built), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["entries"] == 6 and shown["space"] == "mbv2" and shown["reference_ms"] > 0
    doubled = _rewrite(built, tmp_path / "x2.json",
                       lambda d: [e.update(median_ms=2 * e["median_ms"]) for e in d["entries"].values()])
    r = subprocess.run([HWNAS, "lut", "diff", str(built), str(doubled), "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    diff = json.loads(r.stdout)
    assert diff["common"] == 6 and diff["median_ratio"] == pytest.approx(2.0)
    r = subprocess.run([HWNAS, "lut", "show", str(tmp_path / "none.json")], capture_output=True, text=True)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
