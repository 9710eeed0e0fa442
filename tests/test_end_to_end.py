"""The main job end to end: search, export (both spaces, both formats), verify on a local
device, several devices at once, the report, and the refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from hwnas.measure.runtimes import TfliteRunner
from hwnas.spaces.option_table import OptionTable
from hwnas.supernet.derive import derive_by_enumeration, derive_under_budget

HWNAS = str(Path(sys.executable).parent / "hwnas")
ROOT = Path(__file__).resolve().parent.parent
FAST_ORT = "cpu-ort:threads=1,runs=10,rounds=2,warmup=2,retries=0"
FAST_TFLITE = "cpu-tflite:threads=1,runs=10,rounds=2,warmup=2,retries=0"
SMALL_LUT = str(ROOT / "latency_tables" / "mbv2-small.cpu-ort.lut.json")


def hwnas(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([HWNAS, *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


def test_budget_derivation_on_known_values() -> None:
    table = OptionTable(1.0, [np.array([0.0, 1.0, 2.0]), np.array([-0.5, 0.5])])  # deltas may be negative
    probs = [[0.6, 0.3, 0.1], [0.7, 0.3]]
    # latencies 1 + {0, 1, 2} + {-0.5, 0.5}: (0,0) 0.5, (0,1) 1.5, (1,0) 1.5, (1,1) 2.5, (2,0) 2.5, (2,1) 3.5
    # budget 2.6, fill 0.9: the band [2.34, 2.6] holds (1,1) p=0.09 and (2,0) p=0.07; argmax (0,0) is far below
    assert derive_under_budget(probs, table, 2.6, fill=0.9) == [1, 1]
    assert derive_under_budget(probs, table, 1.2, fill=0.9) == [0, 0]  # the band is empty: best under 1.2
    assert derive_under_budget(probs, table, 0.4) is None
    for budget, fill in ((2.6, 0.9), (1.2, 0.9), (3.6, 0.5), (0.4, 0.9)):
        assert derive_by_enumeration(probs, table, budget, fill) == derive_under_budget(probs, table, budget, fill)
    # refusing (1,1) leaves (2,0) in the band; refusing both band members falls back to the best under the budget
    assert derive_by_enumeration(probs, table, 2.6, 0.9, accept=lambda i: i != [1, 1]) == [2, 0]
    assert derive_by_enumeration(probs, table, 2.6, 0.9, accept=lambda i: i not in ([1, 1], [2, 0])) == [0, 0]


@pytest.fixture(scope="module")
def nb201_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("e2e") / "nb201"
    data = str(Path(__import__("hwnas.paths", fromlist=["x"]).shared_data_dir()) / "nb201" / "latency_ms.csv")
    pred = run.parent / "pixel2.json"
    assert hwnas("predictor", "fit", "--space", "nb201", "--data", f"{data}:pixel2", "--rows", "200",
                 "-o", str(pred)).returncode == 0
    r = hwnas("search", "--strategy", "evolution", "--space", "nb201", "--predictor", str(pred),
              "--budget-quantile", "0.3", "--queries", "20", "-o", str(run), "--quiet")
    assert r.returncode == 0, r.stderr
    return run


def check_files(run: Path) -> dict:
    info = json.loads((run / "export.json").read_text())
    arch = json.loads((run / "arch.json").read_text())
    assert arch["arch"] == info["arch"] and arch["keys"]
    x = np.random.default_rng(0).standard_normal(info["input_shape"]).astype(np.float32)
    sess = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    a = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    b = TfliteRunner(str(run / "model.tflite")).run([x])[0]
    assert a.shape == b.shape and np.allclose(a, b, atol=1e-3 + 1e-3 * np.abs(a).max())
    assert info["onnx_parity"]["ok"] and info["tflite_parity"]["ok"]
    assert (run / "model.safetensors").stat().st_size > 0
    return info


def test_export_round_trip_nb201(nb201_run: Path) -> None:
    r = hwnas("export", str(nb201_run), "--format", "all", "--json")
    assert r.returncode == 0, r.stderr
    info = check_files(nb201_run)
    assert info["space"] == "nb201" and info["trained"] is False  # the table search trained nothing


def test_export_round_trip_mbv2_trained(tmp_path: Path) -> None:
    run = tmp_path / "mbv2"
    r = hwnas("search", "--strategy", "random", "--space", "mbv2", "--preset", "small", "--predictor",
              str(ROOT / "latency_tables" / "mbv2-small.cpu-ort.learned.json"), "--budget-quantile", "0.5",
              "--accuracy", "train:1", "--queries", "2", "--batch-size", "128", "--retrain-epochs", "1",
              "-o", str(run), "--quiet")
    assert r.returncode == 0, r.stderr
    r = hwnas("export", str(run), "--format", "all")
    assert r.returncode == 0 and "trained weights" in r.stdout, r.stdout + r.stderr
    assert check_files(run)["trained"] is True


def test_verify_on_a_local_device_builds_a_table_first(tmp_path: Path) -> None:
    run, cache = tmp_path / "verify", {"HWNAS_CACHE_DIR": str(tmp_path / "cache")}  # nothing kept from before
    r = hwnas("search", "--strategy", "evolution", "--space", "nb201", "--device", FAST_ORT,
              "--budget-quantile", "0.5", "--queries", "15", "-o", str(run), "--quiet", "--json", env=cache)
    assert r.returncode in (0, 3), r.stderr  # 3: measured over budget (the report says so)
    out = json.loads(r.stdout)
    v = out["verify"][0]
    assert v["measured_ms"] > 0 and v["predicted_ms"] > 0 and v["file"].endswith("model.onnx")
    assert v["meets_budget"] == (v["measured_ms"] <= v["budget_ms"]) and (r.returncode == 0) == v["meets_budget"]
    assert v["provenance"]["device"]["runtime"] == "onnxruntime" and v["device_parity"]["ok"]
    assert list(run.glob("nb201-cifar.*.lut.json"))  # no shipped nb201 table: one was built first
    report = (run / "report.md").read_text()
    assert "measured ms" in report and out["arch"] in report
    assert (run / "predicted_vs_measured.png").stat().st_size > 0 and (run / "front.png").exists()
    facts = json.loads((run / "report.json").read_text())
    assert facts["rounds"][0]["verify"][0]["measured_ms"] == v["measured_ms"]
    kept = list((tmp_path / "cache" / "tables").glob("nb201-cifar.*.lut.json"))
    assert len(kept) == 1  # kept for the next run on this device
    # LUT-sum corrected on 20 networks measured there, with the table's calibration, kept beside it
    measured = kept[0].with_name(kept[0].name.replace(".lut.json", ".measured.csv"))
    assert len(measured.read_text().splitlines()) == 21
    table_ref = json.loads(kept[0].read_text())["header"]["reference"]["calibrated_ms"]
    set_ref = json.loads(measured.with_name(measured.name + ".meta.json").read_text())["header"]["reference"]
    assert set_ref["calibrated_ms"] == table_ref  # one calibration per device
    first = json.loads((run / "report.json").read_text())["targets"][0]
    assert any(("LUT-sum corrected on 20 networks" in n or n.startswith("plain LUT-sum: on 20 networks")) and
               "leave-one-out" in n for n in first["notes"])
    before = measured.stat().st_mtime_ns
    again = tmp_path / "again"
    r = hwnas("search", "--strategy", "random", "--space", "nb201", "--device", FAST_ORT, "--budget-quantile", "0.5",
              "--queries", "3", "-o", str(again), "--quiet", "--json", env=cache)
    assert r.returncode in (0, 3), r.stderr
    target = json.loads((again / "report.json").read_text())["targets"][0]
    assert target["table"] == str(kept[0]) and not list(again.glob("*.lut.json"))  # found again, not rebuilt
    assert any("built for it earlier" in n for n in target["notes"])
    assert any("LUT-sum" in n and "20 networks" in n for n in target["notes"]) and measured.stat().st_mtime_ns == before
    from hwnas.devices import get_device
    from hwnas.spaces import get_space
    from hwnas.job.targets import find_table

    space, device = get_space("nb201"), get_device(FAST_ORT)
    assert find_table(kept[0].parent, space, device.fingerprint(), device.protocol.to_dict()) == kept[0]
    other = get_device("cpu-ort:threads=1,runs=7,rounds=2")  # another protocol: not the same table
    assert find_table(kept[0].parent, space, other.fingerprint(), other.protocol.to_dict()) is None


def test_two_devices_at_once(tmp_path: Path) -> None:
    run = tmp_path / "two"
    r = hwnas("search", "--strategy", "random", "--space", "mbv2", "--preset", "small",
              "--device", FAST_ORT, "--device", FAST_TFLITE,
              "--budget-quantile", "0.6", "--accuracy", "train:1", "--queries", "2", "--batch-size", "128",
              "-o", str(run), "--quiet", "--json")
    assert r.returncode in (0, 3), r.stderr
    out = json.loads(r.stdout)
    assert [d["device"] for d in out["devices"]] == [FAST_ORT, FAST_TFLITE]
    assert all(d["predicted_ms"] <= d["budget_ms"] for d in out["devices"])  # every budget in the reward
    files = {Path(v["file"]).name for v in out["verify"]}
    assert files == {"model.onnx", "model.tflite"}  # each device measured the file it runs
    # whichever table each device got (shipped when this CPU matches one, else built here), the
    # report names it and says how far off its predictor is expected to be
    report, job = (run / "report.md").read_text(), json.loads((run / "report.json").read_text())
    assert len(job["targets"]) == 2
    for t in job["targets"]:
        assert Path(t["table"]).is_file() and Path(t["table"]).name in report
        assert t["predictor_quality"] and t["predictor_quality"] in report


def test_measured_finalists_choose_the_answer(tmp_path: Path) -> None:
    run = tmp_path / "fin"
    r = hwnas("search", "--strategy", "evolution", "--space", "mbv2", "--preset", "small", "--device", FAST_ORT,
              "--budget-quantile", "0.3", "--accuracy", "train:1", "--queries", "4", "--population", "2",
              "--batch-size", "128", "--screen-margin", "0.1", "--finalists", "3", "-o", str(run), "--quiet", "--json")
    assert r.returncode in (0, 3), r.stderr
    out = json.loads(r.stdout)
    finalists = out["finalists"]
    assert 1 <= len(finalists) <= 3 and finalists[-1]["meets_budget"]
    assert not any(f["meets_budget"] for f in finalists[:-1])  # measuring stops at the first that meets it
    chosen = out["devices"][0]
    assert finalists[-1]["arch"] == out["arch"] and chosen["finalist_measured_ms"] <= chosen["budget_ms"]
    logged = (run / "measurements.csv").read_text().splitlines()
    assert sum(f["arch"] in line for f in finalists for line in logged) >= len(finalists) + 1  # + the verification
    r = hwnas("search", "--strategy", "evolution", "--space", "mbv2", "--preset", "small", "--lut", SMALL_LUT,
              "--budget-quantile", "0.3", "--queries", "2", "--finalists", "3", "-o", str(tmp_path / "nodev"), "--quiet")
    assert r.returncode == 2 and "name it with --device" in r.stderr


def test_refusals(tmp_path: Path) -> None:
    r = hwnas("search", "--strategy", "random", "--space", "mbv2", "--preset", "small", "--device", "cpu-ort:threads=1",
              "--budget-ms", "0.001", "-o", str(tmp_path / "a"), "--quiet")
    assert r.returncode == 2 and "smallest predicted latency in the space is" in r.stderr
    r = hwnas("search", "--strategy", "random", "--device", "npu-magic", "--budget-ms", "1", "-o", str(tmp_path / "b"))
    assert r.returncode == 2 and "unknown device backend 'npu-magic'" in r.stderr
    other = json.loads((ROOT / "latency_tables" / "mbv2-small.cpu-ort.lut.json").read_text())
    other["header"]["device"]["cpu_model"] = "Qualcomm Kryo 585"
    (tmp_path / "phone.lut.json").write_text(json.dumps(other))
    r = hwnas("search", "--strategy", "random", "--space", "mbv2", "--preset", "small", "--device", "cpu-ort:threads=1",
              "--lut", str(tmp_path / "phone.lut.json"), "--budget-ms", "1", "-o", str(tmp_path / "c"))
    assert r.returncode == 2 and "Qualcomm Kryo 585" in r.stderr


def test_verify_command_through_an_agent(nb201_run: Path, tmp_path: Path) -> None:
    """A run searched with a predictor only, verified afterwards on a device behind an agent."""
    from hwnas.agent.testing import free_port, start_agent, wait_port

    port = free_port()
    proc = start_agent(["--tcp", f"127.0.0.1:{port}"], log=tmp_path / "agent.log")
    try:
        wait_port(port)
        r = hwnas("verify", str(nb201_run), "--device", f"remote:tcp://127.0.0.1:{port}?runtime=onnx&runs=10&rounds=2",
                  "--budget-ms", "100", "--json", "--quiet")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["meets_budget"] and out["provenance"]["device"]["transport"] == "tcp"
        assert out["device_parity"]["ok"]  # the agent ran the file: same outputs as torch
        assert "remote:tcp" in (nb201_run / "measurements.csv").read_text()
    finally:
        proc.kill()
        proc.wait()
