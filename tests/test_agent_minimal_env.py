"""The agent in a fresh virtual environment holding only numpy < 2, tflite-runtime 2.14 and
pyserial (what a Raspberry Pi or a phone's Python has): a TFLite latency table builds
through it, half over a pseudo-terminal serial line, the rest over TCP (the build
resumes across transports: the device is the same)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hwnas.agent.bundle import bundle
from hwnas.agent.testing import PtyBridge, free_port, start_agent, wait_log, wait_port
from hwnas.devices import get_device
from hwnas.lut.build import build_table
from hwnas.lut.table import LatencyTable
from hwnas.spaces import get_space

PACKAGES = ["numpy<2", "tflite-runtime==2.14.0", "pyserial"]


@pytest.fixture(scope="module")
def minimal_python(tmp_path_factory) -> str:
    if sys.platform != "linux" or sys.version_info >= (3, 12):
        pytest.skip("tflite-runtime 2.14 has wheels for Linux and Python <= 3.11 only")
    venv = tmp_path_factory.mktemp("agent-env") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = str(venv / "bin" / "python")
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *PACKAGES],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"pip install {PACKAGES} failed:\n{r.stdout}\n{r.stderr}"
    return py


def test_agent_runs_with_numpy_tflite_runtime_and_pyserial_only(minimal_python: str, tmp_path: Path) -> None:
    listed = subprocess.run([minimal_python, "-m", "pip", "list", "--format=freeze"], capture_output=True,
                            text=True, check=True).stdout.lower()
    names = {line.split("==")[0] for line in listed.split()}
    assert {"numpy", "tflite-runtime", "pyserial"} <= names
    assert not names & {"torch", "onnx", "onnxruntime", "scikit-learn", "hwnas", "ai-edge-litert"}
    agent = bundle(tmp_path / "hwnas-agent.pyz")
    bridge = PtyBridge()
    log = tmp_path / "agent.log"
    proc = start_agent(["--serial", bridge.agent_port, "--baud", "921600"], python=minimal_python,
                       entry=[str(agent)], log=log)
    try:
        wait_log(log, "serving")
        dev = get_device(f"remote:serial://{bridge.host_port}?baud=921600&runtime=tflite&runs=10&rounds=2"
                         "&warmup=2&timeout=30")
        fp = dev.fingerprint()
        assert (fp["runtime"], fp["runtime_version"], fp["transport"]) == ("tflite-runtime", "2.14.0", "serial")
        space = get_space("nb201", resolution=8)
        path = tmp_path / "pi.lut.json"
        report = build_table(space, dev, path, progress=False, limit=10)
        assert report.measured == 10
        dev.client.request("shutdown")
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        bridge.close()
    port = free_port()
    proc = start_agent(["--tcp", f"127.0.0.1:{port}"], python=minimal_python, entry=[str(agent)], log=log)
    try:
        wait_port(port)
        dev = get_device(f"remote:tcp://127.0.0.1:{port}?runtime=tflite&runs=10&rounds=2&warmup=2&timeout=30")
        assert dev.fingerprint()["transport"] == "tcp"
        report = build_table(space, dev, path, progress=False)  # resumes: only the missing layers
        assert (report.measured, report.kept) == (len(space.all_layers()) - 10, 10)
        table = LatencyTable.load(path, space=space)
        assert len(table.entries) == len(space.all_layers())
        assert all(e["median_ms"] > 0 for e in table.entries.values())
        assert table.header["device"]["runtime"] == "tflite-runtime"
    finally:
        proc.kill()
        proc.wait()
