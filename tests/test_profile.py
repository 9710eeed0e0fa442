"""``hwnas profile``: whole-model and per-operator latency of any model file, locally and
through an agent in its own process; the profile's arithmetic on known events; bad models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from hwnas.agent.testing import free_port, start_agent, wait_port
from hwnas.devices import get_device
from hwnas.devices.profile import load_model, parse_input_shape, profile_model
from hwnas.errors import HwnasError
from hwnas.export.onnx import export_onnx
from hwnas.kernels.graph import kernels_from_profile
from hwnas.measure.op_profile import summarise_ort_events
from hwnas.spaces import get_space

HWNAS = str(Path(sys.executable).parent / "hwnas")
FAST = "runs=10,rounds=2,warmup=2,retries=0"
SPACE = get_space("mbv2", "small")


@pytest.fixture(scope="module")
def mbv2_onnx(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return export_onnx(SPACE.resolve("mobilenetv2").build().eval(), SPACE.input_shape(),
                       tmp_path_factory.mktemp("profile") / "mbv2.onnx")


def hwnas(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([HWNAS, *args], capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL,
                          timeout=600)


def test_ort_events_are_averaged_over_the_timed_runs_only() -> None:
    """Two warm-up runs and two timed runs of a two-node graph, in microseconds."""
    def run(ts: int, conv: int, relu: int) -> list[dict]:
        return [{"cat": "Session", "name": "model_run", "ts": ts, "dur": conv + relu + 10},
                {"cat": "Node", "name": "conv_kernel_time", "ts": ts + 2, "dur": conv,
                 "args": {"op_name": "FusedConv", "input_type_shape": [{"float": [1, 3, 8, 8]}]}},
                {"cat": "Node", "name": "relu_kernel_time", "ts": ts + 4 + conv, "dur": relu, "args": {"op_name": "Relu"}}]
    events = run(0, 900, 90) + run(2000, 800, 80) + run(4000, 100, 20) + run(6000, 300, 40)
    out = summarise_ort_events(events, runs=2)
    assert [o["name"] for o in out["ops"]] == ["conv", "relu"]
    assert out["ops"][0]["op"] == "FusedConv" and out["ops"][0]["ms"] == pytest.approx(0.2)  # (100 + 300) / 2 us
    assert out["ops"][0]["input_shapes"] == [[1, 3, 8, 8]] and out["ops"][0]["calls"] == 1
    assert out["ops"][1]["ms"] == pytest.approx(0.03)
    assert out["run_ms"] == pytest.approx((130 + 350) / 2 / 1000) and out["ops_ms"] == pytest.approx(0.23)
    assert out["ops"][0]["order"] == 2 and out["ops"][1]["order"] == 104  # µs into its run, the earlier run's


def test_kernels_come_in_the_order_they_run() -> None:
    """The slower node first in the profile, the earlier one first as kernels."""
    def run(ts: int) -> list[dict]:
        return [{"cat": "Session", "name": "model_run", "ts": ts, "dur": 500},
                {"cat": "Node", "name": "relu_kernel_time", "ts": ts + 3, "dur": 10, "args": {"op_name": "Relu"}},
                {"cat": "Node", "name": "conv_kernel_time", "ts": ts + 20, "dur": 400,
                 "args": {"op_name": "FusedConv", "input_type_shape": [{"float": [1, 3, 8, 8]}]}}]
    out = summarise_ort_events(run(0) + run(1000), runs=2)
    assert [o["name"] for o in out["ops"]] == ["conv", "relu"]
    assert [k.name for k in kernels_from_profile(out)] == ["relu", "conv"]


def test_profile_an_onnx_file_on_this_cpu(mbv2_onnx: Path, tmp_path: Path) -> None:
    r = hwnas("profile", str(mbv2_onnx), "--device", f"cpu-ort:threads=1,{FAST}", "--runs", "20", "--json",
              "--plot", str(tmp_path / "ops.png"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["input_shape"] == [1, 3, 32, 32] and out["raw_median_ms"] > 0 and out["latency_ms"] > 0
    assert out["provenance"]["device"]["runtime"] == "onnxruntime" and out["provenance"]["protocol"]["rounds"] == 2
    prof = out["profile"]
    assert prof["available"] and prof["runs"] == 20
    ms = [o["ms"] for o in prof["ops"]]
    assert ms == sorted(ms, reverse=True) and min(ms) >= 0
    # the graph as onnxruntime fused it: convolutions with their batch norm and activation
    convs = [g for g in prof["by_op"] if g["op"] in ("Conv", "FusedConv")]
    assert convs and sum(g["nodes"] for g in convs) < sum(isinstance(m, torch.nn.Conv2d) for m in
                                                         SPACE.resolve("mobilenetv2").build().modules()) + 1
    assert not any(g["op"] in ("BatchNormalization", "Relu", "Clip") for g in prof["by_op"])
    acc = prof["accounting"]
    assert acc["ops_ms"] == pytest.approx(sum(ms)) and acc["executor_ms"] == pytest.approx(acc["runtime_run_ms"] - sum(ms))
    assert (tmp_path / "ops.png").stat().st_size > 1000
    text = hwnas("profile", str(mbv2_onnx), "--device", f"cpu-ort:threads=1,{FAST}", "--top", "3")
    assert text.returncode == 0 and "more)" in text.stdout and "operators sum to" in text.stdout


def test_tflite_says_what_it_cannot_time(tmp_path: Path) -> None:
    from hwnas.export.tflite import export_tflite

    torch.manual_seed(0)
    path = export_tflite(SPACE.resolve("mobilenetv2").build().eval(), SPACE.input_shape(), tmp_path / "m.tflite")
    src = load_model(str(path))
    assert src.fmt == "tflite" and src.input_shape == (3, 32, 32)
    out = profile_model(src, get_device(f"cpu-tflite:threads=1,{FAST}"))
    assert out["raw_median_ms"] > 0 and not out["profile"]["available"]
    assert "no op profiler" in out["profile"]["reason"] and out["profile"]["ops"]
    assert any(o["op"] == "DELEGATE" for o in out["profile"]["ops"])  # XNNPACK took the graph


def test_profile_through_an_agent_in_its_own_process(mbv2_onnx: Path, tmp_path: Path) -> None:
    port = free_port()
    agent = start_agent(["--tcp", f"127.0.0.1:{port}", "--runtime", "onnx"], log=tmp_path / "agent.log")
    try:
        wait_port(port)
        r = hwnas("profile", str(mbv2_onnx), "--device",
                  f"remote:tcp://127.0.0.1:{port}?runs=10&rounds=2&warmup=2", "--runs", "10", "--json")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["provenance"]["device"]["transport"] == "tcp" and out["profile"]["available"]
        assert out["profile"]["ops"] and out["profile"]["runtime"] == "onnxruntime"
        assert "operators" in (tmp_path / "agent.log").read_text()  # the agent profiled it
    finally:
        agent.kill()
        agent.wait()


def test_a_module_on_cpu_torch_gets_torchs_own_profile() -> None:
    from hwnas.devices.profile import ModelSource

    torch.manual_seed(0)
    src = ModelSource("mbv2", SPACE.resolve("mobilenetv2").build().eval(), "module", SPACE.input_shape())
    out = profile_model(src, get_device(f"cpu-torch:threads=1,{FAST}"), runs=5)
    names = [o["name"] for o in out["profile"]["ops"]]
    assert out["profile"]["available"] and any("conv" in n for n in names)


def _dynamic_onnx(path: Path) -> Path:
    torch.manual_seed(0)
    model = SPACE.resolve("mobilenetv2").build().eval()
    torch.onnx.export(model, torch.randn(1, 3, 32, 32), str(path), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch", 2: "height", 3: "width"}}, opset_version=17, dynamo=False)
    return path


def test_dynamic_shapes_need_an_input_shape(tmp_path: Path) -> None:
    path = _dynamic_onnx(tmp_path / "dyn.onnx")
    r = hwnas("profile", str(path), "--device", f"cpu-ort:threads=1,{FAST}", "--no-ops")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "dynamic dimensions (batchx3xheightxwidth)" in r.stderr and "--input-shape" in r.stderr
    src = load_model(str(path), parse_input_shape("1x3x48x48"))
    assert src.input_shape == (3, 48, 48)
    fixed = onnx.load_from_string(src.model).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in fixed] == [1, 3, 48, 48]
    out = profile_model(src, get_device(f"cpu-ort:threads=1,{FAST}"), runs=5)
    assert out["input_shape"] == [1, 3, 48, 48] and out["profile"]["ops"]
    with pytest.raises(HwnasError, match="does not fit"):
        load_model(str(path), parse_input_shape("1x4x48x48"))
    with pytest.raises(HwnasError, match="1xCxHxW or CxHxW"):
        parse_input_shape("2x3x48x48")


def test_bad_models_get_one_clear_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf at all" * 10)
    custom = tmp_path / "custom.onnx"
    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                       helper.make_opsetid("com.example", 1)]), custom)
    notes = tmp_path / "notes.tflite"
    notes.write_text("not a flatbuffer")
    cases = {str(junk): "is not a valid ONNX model", str(custom): "Frobnicate",
             str(notes): "is not a valid TFLite model", str(tmp_path / "missing.onnx"): "does not exist",
             str(tmp_path / "model.pt"): "not an .onnx or .tflite file"}
    for model, said in cases.items():
        r = hwnas("profile", model, "--device", f"cpu-ort:threads=1,{FAST}", "--no-ops")
        assert r.returncode == 2 and said in r.stderr and r.stderr.count("\n") == 1, (model, r.stderr)
        assert "Traceback" not in r.stderr


def test_a_torchvision_name_builds_the_model_or_says_what_is_missing() -> None:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(HwnasError, match="torchvision model names need torchvision"):
            load_model("resnet18")
        return
    src = load_model("resnet18")
    assert src.fmt == "module" and src.input_shape == (3, 224, 224)
    assert sum(p.numel() for p in src.model.parameters()) == 11_689_512
    with pytest.raises(HwnasError, match="did you mean"):
        load_model("resnet19")
