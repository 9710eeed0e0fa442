"""One conformance suite for every local device backend."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hwnas.devices import DEVICES, get_device, parse_device_spec
from hwnas.errors import HwnasError, RegistryError
from hwnas.export.onnx import export_onnx
from hwnas.testing.devices import DeviceConformance
from hwnas.testing.devices import tiny as conformance_tiny

FAST = "runs=10,rounds=2,warmup=2,retries=0"
BACKENDS = [b for b in DEVICES.names() if b != "cuda-torch" or torch.cuda.is_available()]


class TestEveryBackend(DeviceConformance):
    """The suite plugin authors run (hwnas.testing), over every registered backend and a local agent."""

    specs = [f"{b}:threads=1,{FAST}" for b in BACKENDS] + [f"remote:{{agent}}?runtime=onnx&{FAST.replace(',', '&')}"]


def test_the_suite_covers_every_registered_backend() -> None:
    covered = {parse_device_spec(s.replace("{agent}", "tcp://h:1")).backend for s in TestEveryBackend.specs}
    assert covered >= set(DEVICES.names()) - {"cuda-torch"} and "remote" in covered


def tiny():
    return conformance_tiny()


def test_uncompensated_measurement() -> None:
    device = get_device(f"cpu-ort:threads=1,{FAST},compensate=0")
    space, arch = tiny()
    m = device.measure(arch.build(), space.input_shape())
    assert not m.compensated and m.latency_ms == m.stats.median_ms and device.reference_ms is None


def test_ort_measures_an_exported_file(tmp_path: Path) -> None:
    space, arch = tiny()
    path = export_onnx(arch.build(), space.input_shape(), tmp_path / "m.onnx")
    m = get_device(f"cpu-ort:{FAST},compensate=0").measure(path, space.input_shape())
    assert m.latency_ms > 0


def test_tflite_measures_an_exported_file(tmp_path: Path) -> None:
    from hwnas.export.tflite import export_tflite, tflite_parity

    space, arch = tiny()
    model = arch.build()
    path = export_tflite(model, space.input_shape(), tmp_path / "m.tflite")
    assert tflite_parity(path, model, space.input_shape()).ok
    m = get_device(f"cpu-tflite:{FAST},compensate=0").measure(path, space.input_shape())
    assert m.latency_ms > 0


def test_wrong_file_kind_and_missing_file(tmp_path: Path) -> None:
    space, _ = tiny()
    bogus = tmp_path / "m.tflite"
    bogus.write_bytes(b"not a model")
    with pytest.raises(HwnasError, match="runs .onnx files"):
        get_device("cpu-ort").load(bogus, space.input_shape())
    with pytest.raises(HwnasError, match="does not exist"):
        get_device("cpu-ort").load(tmp_path / "none.onnx", space.input_shape())
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(HwnasError, match="onnxruntime rejected"):
        get_device("cpu-ort").load(bad, space.input_shape())
    with pytest.raises(HwnasError, match="TFLite interpreter rejected"):
        get_device("cpu-tflite").load(bogus, space.input_shape())


@pytest.mark.parametrize("spec,fragment", [
    ("cpu-gpu", "unknown device backend 'cpu-gpu'"),
    ("cpu-ort:threads", "should be key=value"),
    ("cpu-ort:threads=x", "invalid literal"),
    ("cpu-ort:threads=0", "threads must be >= 1"),
    ("cpu-ort:speed=9", "unknown option(s) speed"),
    ("cpu-ort:retries=-1", "retries >= 0"),
    ("cpu-ort:spread=0", "spread must be >= 1"),
    ("devices/nope.toml", "does not exist"),
])
def test_bad_device_specs(spec: str, fragment: str) -> None:
    with pytest.raises((HwnasError, RegistryError)) as e:
        get_device(spec)
    assert fragment in str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_says_so() -> None:
    with pytest.raises(HwnasError, match="no CUDA GPU is available"):
        get_device("cuda-torch")


def test_profile_file(tmp_path: Path) -> None:
    p = tmp_path / "x.toml"
    p.write_text('name = "x"\nbackend = "cpu-ort"\nthreads = 2\nretries = 0\n')
    d = get_device(str(p))
    assert d.threads == 2 and d.backend == "cpu-ort" and d.protocol.retries == 0
    p.write_text("backend = [")
    with pytest.raises(HwnasError, match="not valid TOML"):
        get_device(str(p))
    p.write_text("threads = 1\n")
    with pytest.raises(HwnasError, match="has no 'backend'"):
        get_device(str(p))


def test_pool_file_names_one_spec_per_agent_and_bad_pools_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "pool.toml"
    p.write_text('backend = "remote"\nurls = ["tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002?timeout=5"]\n'
                 'runtime = "tflite"\nthreads = 2\nruns = 10\n')
    spec = parse_device_spec(str(p))
    assert [m.url for m in spec.members] == ["tcp://127.0.0.1:7001", "tcp://127.0.0.1:7002"]
    assert [m.text for m in spec.members] == [f"{p}#tcp://127.0.0.1:7001", f"{p}#tcp://127.0.0.1:7002?timeout=5"]
    assert {m.name for m in spec.members} == {spec.name} == {"pool"}
    assert all(m.options["runtime"] == "tflite" and m.options["threads"] == 2 and m.protocol.runs == 10
               for m in spec.members)  # the file's options apply to every agent
    assert [m.options["timeout_s"] for m in spec.members] == [60.0, 5.0]  # and an address's own query on top
    assert not parse_device_spec("cpu-ort:threads=1").members
    for body, fragment in [
        ('backend = "cpu-ort"\nurls = ["tcp://127.0.0.1:7001"]\n', 'needs backend = "remote"'),
        ('backend = "remote"\nurl = "tcp://127.0.0.1:7001"\nurls = ["tcp://127.0.0.1:7002"]\n', "no 'url'"),
        ('backend = "remote"\nurls = []\n', "non-empty list"),
        ('backend = "remote"\nurls = "tcp://127.0.0.1:7001"\n', "non-empty list"),
        ('backend = "remote"\nurls = ["tcp://127.0.0.1:7001", "tcp://127.0.0.1:7001"]\n', "listed twice"),
    ]:
        p.write_text(body)
        with pytest.raises(HwnasError, match=fragment):
            parse_device_spec(str(p))


def test_shipped_profiles_load() -> None:
    root = Path(__file__).resolve().parent.parent / "devices"
    for profile in sorted(root.glob("local-*.toml")):
        if "cuda" in profile.name and not torch.cuda.is_available():
            continue
        assert get_device(str(profile)).fingerprint()["runtime"]


@pytest.mark.parametrize("spec,attempts", [("cpu-ort", 9), ("cpu-ort:spread=1", 1), ("cpu-ort:spread=5", 5)])
def test_verification_spreads_unless_the_spec_says_otherwise(spec: str, attempts: int) -> None:
    from hwnas.job.verify import VERIFY_SPREAD, verification_protocol

    device = get_device(spec)
    assert device.protocol.attempts == (1 if attempts == VERIFY_SPREAD else attempts)  # tables: one unless said
    assert verification_protocol(device).attempts == attempts
