"""The device agent: wire format, requests and refusals, TCP and a pseudo-terminal serial
line, faults (corrupted bytes, a blacked-out line, a killed agent), all with real processes."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from hwnas.agent.client import AgentClient, AgentError, AgentUnreachable
from hwnas.agent.links import TcpLink
from hwnas.agent.testing import PtyBridge, free_port, start_agent, wait_log, wait_port
from hwnas.agent.wire import CorruptFrame, encode, pack_arrays, read_frame, unpack_arrays
from hwnas.devices import get_device, parse_device_spec
from hwnas.errors import HwnasError
from hwnas.lut.build import build_table
from hwnas.lut.table import LatencyTable
from hwnas.spaces import get_space

HWNAS = str(Path(sys.executable).parent / "hwnas")
FAST = "runs=10&rounds=2&warmup=2&retries=0"
SPACE = get_space("nb201", resolution=8)  # 19 layers: a table builds in seconds


@pytest.fixture()
def tcp_agent(tmp_path):
    port = free_port()
    proc = start_agent(["--tcp", f"127.0.0.1:{port}"], log=tmp_path / "agent.log")
    wait_port(port)
    yield port, proc, tmp_path / "agent.log"
    proc.kill()
    proc.wait()


def client(port: int, **kw) -> AgentClient:
    return AgentClient(lambda: TcpLink.connect("127.0.0.1", port), f"tcp://127.0.0.1:{port}", **kw)


def tcp_pair() -> tuple[TcpLink, TcpLink]:
    with socket.create_server(("127.0.0.1", 0)) as srv:
        a = socket.create_connection(srv.getsockname())
        b, _ = srv.accept()
    return TcpLink(a), TcpLink(b)


def test_frames_round_trip_and_damage_is_detected() -> None:
    la, lb = tcp_pair()
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, -2], dtype=np.int64)]
    specs, data = pack_arrays(arrays)
    la.write(encode({"op": "run", "arrays": specs}, data))
    header, payload = read_frame(lb, 2.0)
    back = unpack_arrays(header["arrays"], payload)
    assert all(np.array_equal(x, y) and x.dtype == y.dtype for x, y in zip(arrays, back))
    frame = bytearray(encode({"op": "hello"}, b"model bytes"))
    for i in (2, 8, len(frame) - 3):  # magic, a length, the payload
        bad = bytearray(frame)
        bad[i] ^= 0xFF
        la.write(bytes(bad))
        with pytest.raises(CorruptFrame):
            read_frame(lb, 1.0)
        lb.drain(0.1)
    with pytest.raises(ValueError, match="cannot be sent"):
        pack_arrays([np.array([object()])])
    with pytest.raises(ValueError, match="dtype must be one of"):
        unpack_arrays([{"dtype": "object", "shape": [1]}], b"x" * 8)
    la.close()
    lb.close()


def test_hello_refusals_and_parity_over_tcp(tcp_agent, tmp_path) -> None:
    port, _, _ = tcp_agent
    c = client(port)
    hello, _ = c.request("hello")
    assert hello["protocol_version"] == 1 and {"onnx", "tflite"} <= set(hello["runtimes"])
    assert hello["fingerprint"]["logical_cores"] >= 1
    with pytest.raises(AgentError, match="onnxruntime rejected model broken.onnx") as e:
        c.load("onnx", b"this is not an onnx file", "broken.onnx", 1)
    assert e.value.code == "rejected"
    with pytest.raises(AgentError, match="unknown request"):
        c.request("format_disk")
    with pytest.raises(AgentUnreachable, match="failed 4 times .*SHA-256 mismatch"):  # retried, then given up
        c.request("load", b"abc", format="onnx", sha256="0" * 64, name="x")
    with pytest.raises(AgentError, match="no model 'nope' is loaded"):
        c.request("benchmark", model="nope")
    with pytest.raises(AgentError, match="unknown protocol field"):
        c.request("calibrate", model="nope", protocol={"path": "/etc/passwd"})
    # a real model: outputs through the agent equal onnxruntime's here
    dev = get_device(f"remote:tcp://127.0.0.1:{port}?runtime=onnx&{FAST}")
    arch = SPACE.resolve("resnet")
    model = arch.build().eval()
    remote = dev.load(model, SPACE.input_shape())
    x = np.random.default_rng(0).standard_normal((1, *SPACE.input_shape())).astype(np.float32)
    (out,) = remote.run([x])
    import torch

    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert out.shape == want.shape and np.allclose(out, want, atol=1e-4)
    m = dev.measure(model, SPACE.input_shape())
    assert m.latency_ms > 0 and m.provenance["device"]["transport"] == "tcp"
    assert m.provenance["device"]["runtime"] == "onnxruntime"
    c.close()


def test_size_cap_and_token(tmp_path) -> None:
    port = free_port()
    proc = start_agent(["--tcp", f"127.0.0.1:{port}", "--max-model-mb", "1", "--token", "s3cret"])
    try:
        wait_port(port)
        with pytest.raises(AgentError, match="needs its token"):
            client(port).request("hello")
        c = client(port, token="s3cret")
        with pytest.raises(AgentError, match="at most 1048576") as e:
            c.load("onnx", b"\0" * (2 << 20), "huge.onnx", 1)
        assert e.value.code == "too_large"
    finally:
        proc.kill()
        proc.wait()
    r = subprocess.run([sys.executable, "-m", "hwnas.agent", "serve", "--tcp", f"0.0.0.0:{free_port()}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "needs a shared token" in r.stderr


def test_unreachable_agent_is_a_clear_error() -> None:
    c = client(free_port(), reconnects=2, backoff_s=0.05)
    with pytest.raises(AgentUnreachable, match="unreachable after 2 reconnects"):
        c.request("hello")
    with pytest.raises(HwnasError, match="unknown option"):
        get_device("remote:tcp://127.0.0.1:1?colour=red")
    with pytest.raises(HwnasError, match="tcp:// or serial://"):
        get_device("remote:udp://127.0.0.1:1")


def test_table_build_over_tcp_survives_a_killed_agent(tmp_path) -> None:
    """Kill -9 the agent in the middle of a table build; a supervisor restarts it (as
    systemd or an adb loop would); the build reconnects and finishes, keeping every entry
    it had and measuring none twice."""
    port = free_port()
    log = tmp_path / "agent.log"
    proc = start_agent(["--tcp", f"127.0.0.1:{port}"], log=log)
    wait_port(port)
    path = tmp_path / "t.lut.json"
    seen: dict[str, str] = {}
    procs = [proc]

    def killer() -> None:
        while not path.exists() or len(json.loads(path.read_text())["entries"]) < 6:
            time.sleep(0.05)
        seen.update({k: v["measured_at"] for k, v in json.loads(path.read_text())["entries"].items()})
        procs[0].kill()
        procs[0].wait()
        time.sleep(1.0)
        procs.append(start_agent(["--tcp", f"127.0.0.1:{port}"], log=log))

    t = threading.Thread(target=killer)
    t.start()
    dev = get_device(f"remote:tcp://127.0.0.1:{port}?runtime=onnx&{FAST}&timeout=20")
    try:
        build_table(SPACE, dev, path, progress=False)
    finally:
        t.join()
        for p in procs:
            p.kill()
            p.wait()
    table = LatencyTable.load(path, space=SPACE)
    assert len(table.entries) == len(SPACE.all_layers())
    assert dev.client.stats["reconnects"] >= 1
    for key, when in seen.items():  # nothing finished before the kill was measured again
        assert table.entries[key]["measured_at"] == when
    benchmarks = [line for line in log.read_text().splitlines() if "benchmark" in line]
    assert len(benchmarks) <= len(SPACE.all_layers()) + 1  # at most the one in flight repeated


def test_table_build_over_a_serial_pty_with_corruption_and_a_blackout(tmp_path) -> None:
    bridge = PtyBridge()
    proc = start_agent(["--serial", bridge.agent_port, "--baud", "921600"], log=tmp_path / "agent.log")
    try:
        wait_log(tmp_path / "agent.log", "serving")
        dev = get_device(f"remote:serial://{bridge.host_port}?baud=921600&runtime=onnx&{FAST}&timeout=4")
        assert dev.fingerprint()["transport"] == "serial"
        bridge.corrupt("to_agent")
        dev.client.request("hello")  # the agent sees the damage, says so, the host sends again
        assert dev.client.stats["corrupt"] == 1
        bridge.corrupt("to_host")
        dev.client.request("hello")  # the host sees the damage in the answer and asks again
        assert dev.client.stats["corrupt"] == 2
        path = tmp_path / "serial.lut.json"
        bridge.corrupt("to_agent")  # lands in the first model's bytes
        build_table(SPACE, dev, path, progress=False, limit=8)
        assert dev.client.stats["corrupt"] == 3 and dev.client.stats["reconnects"] == 0
        bridge.blackout(1.5)
        dev.client.request("hello")  # lost in the blackout: times out, reopens the port, repeats
        assert dev.client.stats["reconnects"] >= 1
        build_table(SPACE, dev, path, progress=False)  # resumes: only the missing layers
        table = LatencyTable.load(path, space=SPACE)
        assert len(table.entries) == len(SPACE.all_layers())
        assert table.header["device"]["runtime"] == "onnxruntime"
        dev.client.request("shutdown")
        proc.wait(timeout=10)
    finally:
        proc.kill()
        bridge.close()


def test_cli_lut_build_through_an_agent(tcp_agent, tmp_path) -> None:
    port, _, _ = tcp_agent
    out = tmp_path / "cli.lut.json"
    r = subprocess.run([HWNAS, "lut", "build", "--space", "nb201", "--resolution", "8", "--device",
                        f"remote:tcp://127.0.0.1:{port}?runtime=onnx&{FAST}", "-o", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(out.read_text())["entries"]) == 19


def test_torch_agent_rebuilds_modules_from_recipes(tmp_path) -> None:
    """The GPU-box runtime (CUDA when the box has it; this machine's CPU here): modules go
    as recipes plus safetensors weights, and come back with the same outputs."""
    port = free_port()
    proc = start_agent(["--tcp", f"127.0.0.1:{port}", "--runtime", "torch"], log=tmp_path / "agent.log")
    try:
        wait_port(port)
        dev = get_device(f"remote:tcp://127.0.0.1:{port}?runtime=torch&{FAST}")
        assert dev.fingerprint()["runtime"] in ("torch", "torch-cuda")
        import torch

        torch.manual_seed(1)
        model = SPACE.resolve("best-cifar10").build().eval()
        x = np.random.default_rng(0).standard_normal((1, *SPACE.input_shape())).astype(np.float32)
        (out,) = dev.load(model, SPACE.input_shape()).run([x])
        with torch.no_grad():
            assert np.allclose(out, model(torch.from_numpy(x)).numpy(), atol=1e-4)  # the weights travelled
        path = tmp_path / "torch.lut.json"
        build_table(SPACE, dev, path, progress=False, limit=5)
        assert len(json.loads(path.read_text())["entries"]) == 5
        with pytest.raises(HwnasError, match="carry the recipe"):
            dev.measure(torch.nn.Conv2d(3, 3, 3), (3, 8, 8))
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def agents(tmp_path: Path, n: int) -> Iterator[tuple[list[int], list[subprocess.Popen], list[Path]]]:
    """``n`` TCP agents in their own processes (logs ``agentI.log``), up and answering; killed after."""
    ports = [free_port() for _ in range(n)]
    logs = [tmp_path / f"agent{i}.log" for i in range(n)]
    procs = [start_agent(["--tcp", f"127.0.0.1:{p}"], log=log) for p, log in zip(ports, logs)]
    try:
        for p in ports:
            wait_port(p)
        yield ports, procs, logs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_table_build_on_a_pool_of_three_agents_with_one_killed(tmp_path) -> None:
    """Three agents of one kind share a table build; one is killed for good in the middle: its
    layer in flight goes to the others, the table is complete, no layer is measured twice."""
    path = tmp_path / "pool.lut.json"
    with agents(tmp_path, 3) as (ports, procs, logs):
        devices = [get_device(f"remote:tcp://127.0.0.1:{p}?runtime=onnx&{FAST}&timeout=5") for p in ports]
        for d in devices:
            d.fingerprint()  # opens the link
            d.client.reconnects, d.client.backoff_s = 1, 0.2  # a device gone for good drops out sooner

        def killer() -> None:
            while not path.exists() or len(json.loads(path.read_text())["entries"]) < 6:
                time.sleep(0.02)
            procs[1].kill()

        t = threading.Thread(target=killer, daemon=True)
        t.start()
        report = build_table(SPACE, devices, path, progress=False)
        t.join(timeout=10)
    table = LatencyTable.load(path, space=SPACE)
    assert len(table.entries) == len(SPACE.all_layers()) == report.measured
    assert report.dropped is not None and list(report.dropped) == [devices[1].spec]
    assert sum(report.per_device.values()) == report.measured  # each layer measured once, by one device
    assert report.per_device[devices[0].spec] > 0 and report.per_device[devices[2].spec] > 0
    assert {e["measured_on"] for e in table.entries.values()} <= {d.spec for d in devices}
    benchmarks = sum(1 for log in logs for line in log.read_text().splitlines() if "benchmark" in line)
    assert benchmarks <= len(SPACE.all_layers()) + 1  # at most the one in flight on the killed agent repeated


def test_a_pool_of_devices_of_different_kinds_is_refused(tmp_path) -> None:
    devices = [get_device("cpu-ort:threads=1"), get_device("cpu-ort:threads=2")]
    with pytest.raises(HwnasError, match="not one kind.*threads: 1 on cpu-ort:threads=1, 2 on cpu-ort:threads=2"):
        build_table(SPACE, devices, tmp_path / "t.json", progress=False)
    assert not (tmp_path / "t.json").exists()


def test_cli_measured_set_on_a_pool_of_two_agents(tmp_path) -> None:
    out = tmp_path / "set.csv"
    with agents(tmp_path, 2) as (ports, _, _):
        specs = [f"remote:tcp://127.0.0.1:{p}?runtime=onnx&{FAST}" for p in ports]
        r = subprocess.run([HWNAS, "measure", "--space", "nb201", "--resolution", "8", "--device", specs[0],
                            "--device", specs[1], "-n", "6", "-o", str(out), "--quiet", "--json"],
                           capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["measured"] == 6
    rows = out.read_text().splitlines()[1:]
    assert len(rows) == len({row.split(",")[0] for row in rows}) == 6
    meta = json.loads((tmp_path / "set.csv.meta.json").read_text())["header"]
    assert meta["pool"] == sorted(f"remote:tcp://127.0.0.1:{p}?runtime=onnx&{FAST}" for p in ports)
    benchmarks = [sum(1 for line in (tmp_path / f"agent{i}.log").read_text().splitlines() if "benchmark" in line)
                  for i in range(2)]
    assert all(b > 0 for b in benchmarks)  # both agents measured


def pool_file(tmp_path: Path, ports: list[int], **extra: str) -> Path:
    p = tmp_path / "pool.toml"
    urls = ", ".join(f'"tcp://127.0.0.1:{port}"' for port in ports)
    p.write_text(f'backend = "remote"\nurls = [{urls}]\nruntime = "onnx"\nthreads = 1\nruns = 10\nrounds = 2\n'
                 f'warmup = 2\nretries = 0\n' + "".join(f"{k} = {v}\n" for k, v in extra.items()))
    return p


def test_search_on_a_pool_file_shares_the_table_build_and_the_finalist_checks(tmp_path) -> None:
    """``--device POOL.toml``: two agents build the missing table together, the finalists are
    measured two at a time (each measurement naming its agent), the exported model is
    verified on the pool's first agent."""
    run = tmp_path / "run"
    with agents(tmp_path, 2) as (ports, _, _):
        pool = pool_file(tmp_path, ports)
        r = subprocess.run([HWNAS, "search", "--strategy", "random", "--space", "nb201", "--device", str(pool),
                            "--budget-quantile", "0.9", "--queries", "8", "--finalists", "3",
                            "--correction-networks", "4", "-o", str(run), "--quiet", "--json"],
                           capture_output=True, text=True, timeout=600,
                           env={**os.environ, "HWNAS_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode in (0, 3), r.stderr  # 3: the exported model measured over budget (said in the report)
    out = json.loads(r.stdout)
    members = [f"{pool}#tcp://127.0.0.1:{p}" for p in ports]
    finalists = out["finalists"]
    assert out["arch"] == next(f["arch"] for f in finalists if f["meets_budget"])  # the best that meets
    used = out["finalist_devices"]["pool"]
    assert sum(used["per_device"].values()) == len(finalists) and not used["dropped"]
    assert len(finalists) >= 2 and all(used["per_device"][m] > 0 for m in members)  # a first wave of two
    table = LatencyTable.load(next(run.glob("nb201-cifar.pool.lut.json")))
    assert {e["measured_on"] for e in table.entries.values()} == set(members)  # both built the table
    logged = {row.split(",")[-1] for row in (run / "measurements.csv").read_text().splitlines()[1:]}
    assert logged <= set(members) and out["verify"][0]["measured_on"] == members[0]


def test_a_pool_lends_its_devices_and_work_leaves_an_agent_that_drops_out(tmp_path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from hwnas.devices.pool import Lender

    with agents(tmp_path, 2) as (ports, procs, _):
        lender = Lender(parse_device_spec(str(pool_file(tmp_path, ports, timeout="5"))).open_all())
        for d in lender.devices:
            d.client.reconnects, d.client.backoff_s = 1, 0.2
        model = SPACE.build(SPACE.sample(1, seed=0)[0]).eval()
        shape = SPACE.input_shape()

        def measure(_: int) -> float:
            return lender.run(lambda device: device.measure(model, shape).latency_ms)

        with ThreadPoolExecutor(2) as pool:
            assert all(ms > 0 for ms in pool.map(measure, range(2)))
            procs[1].kill()
            procs[1].wait()
            assert all(ms > 0 for ms in pool.map(measure, range(4)))  # every one measured, on the agent left
        assert list(lender.dropped) == [lender.devices[1].spec]
        assert sum(lender.per_device.values()) == 6 and lender.per_device[lender.devices[0].spec] >= 5
        procs[0].kill()
        procs[0].wait()
        with pytest.raises(HwnasError, match="every device of the pool dropped out"):
            measure(0)
