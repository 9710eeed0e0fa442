"""The kernel predictor on LiteRT, whose Python interpreter has no op profiler: kernels read
from the .tflite file, kernel times learned from whole networks' times (checked against a
known ground truth), a real build on this CPU, and the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from hwnas.errors import HwnasError
from hwnas.kernels.attribution import attribute, start
from hwnas.kernels.graph import Kernel, configure
from hwnas.kernels.model import KernelPredictor

pytest.importorskip("litert_torch")


def _tflite(model: nn.Module, shape: tuple[int, int, int], path: Path) -> Path:
    from hwnas.export.tflite import export_tflite

    return export_tflite(model.eval(), shape, path)


def test_tflite_kernels_are_the_converters_fused_operators(tmp_path: Path) -> None:
    from hwnas.kernels.tflite_graph import tflite_kernels

    model = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.Conv2d(16, 16, 3, 1, 1, groups=16), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    kernels = tflite_kernels(_tflite(model, (3, 32, 32), tmp_path / "m.tflite").read_bytes())
    ops = [k.op for k in kernels]
    assert "DELEGATE" not in ops and not {"RELU", "MUL", "ADD"} & set(ops)  # batch norm and ReLU fused
    first, dw = [k for k in kernels if k.family == "conv"]
    assert first.op == "CONV_2D" and first.output_shapes[0] == [1, 16, 16, 16]  # NHWC read back as NCHW
    assert first.features["stride"] == 2 and first.features["kernel"] == 3
    assert math.exp(first.features["log_macs"]) == pytest.approx(16 * 16 * 16 * 27)
    assert dw.op == "DEPTHWISE_CONV_2D" and dw.features["depthwise"] == 1 and dw.features["stride"] == 1
    assert math.exp(dw.features["log_macs"]) == pytest.approx(16 * 16 * 16 * 9)
    fc = next(k for k in kernels if k.family == "gemm")
    assert fc.op == "FULLY_CONNECTED" and math.exp(fc.features["log_macs"]) == pytest.approx(160)


def _synthetic(n_nets: int, rng: np.random.Generator) -> tuple[list[dict], list[dict], np.ndarray]:
    """Kernels whose true time is known (a full convolution is slower per MAC when it has few
    input channels, a depthwise one slower per MAC than a full one, element-wise kernels cost
    by the element), in random networks whose whole time adds 20 us per kernel."""
    rows, nets, truth = [], [], []
    for _ in range(n_nets):
        idx = []
        for _ in range(int(rng.integers(4, 16))):
            c, hw = int(rng.choice([8, 16, 32, 64, 128, 256])), int(rng.choice([7, 14, 28, 56]))
            kind = rng.choice(["conv", "dw", "add"], p=[0.45, 0.3, 0.25])
            if kind == "conv":
                k = Kernel("", "CONV_2D", [[1, c, hw, hw], [c, c, 3, 3]], [[1, c, hw, hw]])
                ms = c * c * 9 * hw * hw * 2e-9 * (1 + 32 / c)
            elif kind == "dw":
                k = Kernel("", "DEPTHWISE_CONV_2D", [[1, c, hw, hw], [c, 1, 3, 3]], [[1, c, hw, hw]])
                ms = c * 9 * hw * hw * 1.5e-8
            else:
                k = Kernel("", "ADD", [[1, c, hw, hw], [1, c, hw, hw]], [[1, c, hw, hw]])
                ms = 3 * c * hw * hw * 1e-7
            configure(k)
            idx.append(len(rows))
            rows.append({"op": k.op, "features": k.features, "ms": None})
            truth.append(ms)
        nets.append({"kernels": idx, "whole_ms": float(sum(truth[i] for i in idx)) + 0.02 * len(idx)})
    return rows, nets, np.array(truth)


def test_kernel_times_are_learned_from_whole_network_times() -> None:
    rng = np.random.default_rng(0)
    rows, nets, truth = _synthetic(250, rng)
    predictor = KernelPredictor(seed=0).fit(rows, nets)
    assert predictor.labels == "whole-model"
    learned = attribute(rows, nets)
    first, _ = start(rows, nets)
    err = np.abs(np.log(learned / truth))
    # learned from the networks' times alone, the kernels' times are within a few per cent of
    # the truth, far closer than one rate per kernel kind (blind to few channels costing more)
    assert np.median(err) < 0.03 and np.quantile(err, 0.9) < 0.10
    assert np.median(np.abs(np.log(first / truth))) > 3 * np.median(err)
    test_rows, test_nets, _ = _synthetic(60, np.random.default_rng(1))
    pred = np.array([predictor.predict([Kernel("", test_rows[i]["op"], [], [], None, test_rows[i]["features"])
                                        for i in n["kernels"]]) for n in test_nets])
    whole = np.array([n["whole_ms"] for n in test_nets])
    assert np.mean(np.abs(pred / whole - 1)) < 0.05  # networks it never saw
    with pytest.raises(HwnasError, match="at least 2 measured sample networks"):
        KernelPredictor().fit(rows[:3], [{"kernels": [0, 1, 2], "whole_ms": 1.0}])


def _hwnas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwnas.cli.main", *args], capture_output=True, text=True,
                          timeout=900)


def test_build_a_tflite_predictor_on_this_cpu_and_predict_without_it(tmp_path: Path) -> None:
    out = tmp_path / "kt.json"
    r = _hwnas("profile", "build-predictor", "--device", "cpu-tflite:threads=1", "-o", str(out), "--nets", "6",
               "--round", "3", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "kernel predictor for cpu-tflite:threads=1" in r.stdout
    samples = [json.loads(ln) for ln in Path(f"{out}.samples.jsonl").read_text().splitlines()]
    assert len(samples) == 7 and all(k["ms"] is None for s in samples[1:] for k in s["kernels"])
    loaded = KernelPredictor.load(out)
    assert loaded.format == "tflite" and loaded.labels == "whole-model" and loaded.meta["runtime"] == "ai-edge-litert"
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 1))
    tfl = _tflite(model, (3, 24, 24), tmp_path / "m.tflite")
    r = _hwnas("profile", str(tfl), "--predictor", str(out), "--json")
    assert r.returncode == 0, r.stderr
    pred = json.loads(r.stdout)
    assert pred["predicted_ms"] > 0 and {k["op"] for k in pred["kernels"]} >= {"CONV_2D"}
    assert any("learned from whole sample networks" in n for n in pred["notes"])
    from hwnas.export.onnx import export_onnx

    onnx = export_onnx(model.eval(), (3, 24, 24), tmp_path / "m.onnx")
    r = _hwnas("profile", str(onnx), "--predictor", str(out))
    assert r.returncode == 2 and "runs tflite files, and the model is onnx" in r.stderr, r.stderr
