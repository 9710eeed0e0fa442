"""A black-box search on a real two-node Ray cluster on loopback: a head and a second node
started as separate processes (``ray start --head`` / ``ray start --address``), the search's
driver started as ``hwnas search --ray-address``, killed mid-run and started again with the
same command, and one of the workers killed while it trains a candidate. The search must
finish with every query counted once, spread over both nodes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from hwnas.agent.testing import free_port

pytest.importorskip("ray")

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
SMALL_LUT = str(ROOT / "latency_tables" / "mbv2-small.cpu-ort.lut.json")
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
NODE = ["--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]


def _until(what: str, ok, timeout: float = 180.0, every: float = 0.5):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ok()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"waited {timeout} s for {what}")


@pytest.fixture()
def cluster() -> Iterator[tuple[str, str]]:
    """(address, temp dir) of a head and a second node, each with one CPU."""
    port = free_port()
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    log = open(Path(temp) / "start.log", "ab")
    procs = [subprocess.Popen([str(BIN / "ray"), "start", "--head", "--block", f"--port={port}",
                               "--include-dashboard=false", f"--temp-dir={temp}", *NODE],
                              env=ENV, stdout=log, stderr=log, stdin=subprocess.DEVNULL)]
    address = f"127.0.0.1:{port}"
    try:
        _until("the head", lambda: _status(address).count(" node_") == 1, 60)
        procs.append(subprocess.Popen([str(BIN / "ray"), "start", "--block", f"--address={address}", *NODE],
                                      env=ENV, stdout=log, stderr=log, stdin=subprocess.DEVNULL))
        _until("the second node", lambda: _status(address).count(" node_") == 2, 60)
        yield address, temp
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


def _status(address: str) -> str:
    r = subprocess.run([str(BIN / "ray"), "status", f"--address={address}"], capture_output=True, text=True,
                       env=ENV, timeout=60)
    return r.stdout if r.returncode == 0 else ""


def _task_workers(temp: str) -> list[int]:
    """PIDs of this cluster's worker processes running an evaluation (their raylet's command
    line names the cluster's temp dir)."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if b"ray::evaluate_task" not in (d / "cmdline").read_bytes():
                continue
            ppid = (d / "stat").read_text().rsplit(")", 1)[1].split()[1]
            if temp.encode() in Path(f"/proc/{ppid}/cmdline").read_bytes():
                out.append(int(d.name))
        except OSError:
            continue
    return out


def _state(run: Path) -> dict:
    try:
        return json.loads((run / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def test_search_on_two_nodes_survives_a_killed_driver_and_a_killed_worker(cluster: tuple[str, str],
                                                                          tmp_path: Path) -> None:
    address, temp = cluster
    run = tmp_path / "run"
    cmd = [str(BIN / "hwnas"), "search", "--strategy", "evolution", "--space", "mbv2", "--preset", "small",
           "--lut", SMALL_LUT, "--budget-quantile", "0.5", "--accuracy", "train:1", "--batch-size", "128",
           "--queries", "4", "--population", "2", "--ray-address", address, "-o", str(run), "--quiet", "--json"]
    # 1. the driver is killed while evaluations are out: they are in the saved state
    driver = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    state = _until("a told query and evaluations out",
                   lambda: (s := _state(run)) and s["queries"] >= 1 and s["pending"] and s)
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    pending = set(state["pending"])
    # 2. the same command resumes; a worker is killed while it trains a candidate. Ray gives each
    # driver its own worker processes, and the dead driver's may still be winding down: only a
    # process started after the new driver is one of its workers.
    before = {int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit()}
    driver = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victims = _until("a worker training a candidate", lambda: [p for p in _task_workers(temp) if p not in before])
    os.kill(victims[0], signal.SIGKILL)
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 0, err[-3000:]
    assert out.lstrip().startswith("{"), out[:2000]
    result = json.loads(out)
    assert result["queries"] == 4
    final = _state(run)
    told = [t for t in final["trials"] if t["accuracy"] is not None and not t["cached"]]
    names = [t["arch"] for t in told]
    assert len(names) == 4 and len(set(names)) == 4  # every query counted once, none lost
    assert pending <= set(names) and final["pending"] == []
    workers = result["workers"]
    assert workers["nodes"] == 2 and workers["failed"] >= 1
    nodes = {t["cost"]["worker"].split(":")[0] for t in told}
    assert len(nodes) == 2, nodes  # spread across both nodes
