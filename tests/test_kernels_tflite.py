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
    assert not {"RELU", "MUL", "ADD"} & set(ops)  # batch norm and ReLU fused
    assert ops[-1] == "DELEGATE" and ops.count("DELEGATE") == 1 and not any("@" in op for op in ops)
    whole = kernels[-1]  # XNNPACK takes the whole model: one partition, from the input to the logits
    assert whole.features["log_in"] == pytest.approx(math.log(3 * 32 * 32))
    assert whole.features["log_out"] == pytest.approx(math.log(10))
    first, dw = [k for k in kernels if k.family == "conv"]
    assert first.op == "CONV_2D" and first.output_shapes[0] == [1, 16, 16, 16]  # NHWC read back as NCHW
    assert first.features["stride"] == 2 and first.features["kernel"] == 3
    assert math.exp(first.features["log_macs"]) == pytest.approx(16 * 16 * 16 * 27)
    assert dw.op == "DEPTHWISE_CONV_2D" and dw.features["depthwise"] == 1 and dw.features["stride"] == 1
    assert math.exp(dw.features["log_macs"]) == pytest.approx(16 * 16 * 16 * 9)
    fc = next(k for k in kernels if k.family == "gemm")
    assert fc.op == "FULLY_CONNECTED" and math.exp(fc.features["log_macs"]) == pytest.approx(160)


def test_operators_the_delegate_leaves_are_read_from_the_runtime(tmp_path: Path) -> None:
    """A max pool with padding becomes PAD with -inf (PADV2), which this LiteRT's XNNPACK does not
    take: the model runs as two delegated partitions around a built-in PADV2."""
    from hwnas.kernels.tflite_graph import BUILTIN, tflite_kernels

    model = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Conv2d(8, 8, 1))
    kernels = tflite_kernels(_tflite(model, (3, 16, 16), tmp_path / "m.tflite").read_bytes())
    builtin = [k for k in kernels if k.op.endswith(BUILTIN)]
    delegates = [k for k in kernels if k.op == "DELEGATE"]
    assert [k.op for k in builtin] == ["PADV2" + BUILTIN] and builtin[0].family == "layout"
    assert builtin[0].output_shapes == [[1, 8, 18, 18]]
    assert len(delegates) == 2
    assert delegates[0].output_shapes == [[1, 8, 16, 16]]  # leaves the first partition for the PADV2
    assert delegates[1].input_shapes == [[1, 8, 18, 18]]  # and the second reads it back


def test_partitions_follow_the_builtin_chain_back_to_a_delegate() -> None:
    """Tensor 1 leaves delegate A; ops 1 and 2 run built in (2 reads 1's output); delegate B reads 2's."""
    from hwnas.kernels.tflite_graph import partitions

    ops = [{"index": 0, "op_name": "CONV_2D", "inputs": [0, 9], "outputs": [1]},
           {"index": 1, "op_name": "PADV2", "inputs": [1], "outputs": [2]},
           {"index": 2, "op_name": "CONCATENATION", "inputs": [2, 1], "outputs": [3]},
           {"index": 3, "op_name": "CONV_2D", "inputs": [3, 8], "outputs": [4]},
           {"index": 4, "op_name": "DELEGATE", "inputs": [0, 9], "outputs": [1]},
           {"index": 5, "op_name": "DELEGATE", "inputs": [3, 8], "outputs": [4]}]
    builtin, delegates = partitions(ops, {4})
    assert builtin == {1, 2} and [d["index"] for d in delegates] == [4, 5]
    assert partitions(ops[:4], {4}) == (set(), [])


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


def test_only_a_pad_right_before_a_convolution_that_reads_it_is_folded(tmp_path: Path) -> None:
    from hwnas.kernels.fusion import folded
    from hwnas.kernels.tflite_graph import tflite_kernels

    model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.ZeroPad2d((0, 1, 0, 1)), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, 1, 0, groups=8))
    kernels = tflite_kernels(_tflite(model, (3, 16, 16), tmp_path / "m.tflite").read_bytes())
    ops = [(k.op, k.features) for k in kernels]
    names = [k.op for k in kernels]
    assert names.count("PAD") == 2, names
    mask = folded(ops, ["PAD"])
    assert [n for n, m in zip(names, mask) if m] == ["PAD"]  # the convolution's own padding, not the ZeroPad
    first = names.index("PAD")
    assert mask[first] and names[first + 1] == "CONV_2D" and not any(mask[first + 1:])
    assert not any(folded(ops, []))


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
    probe = loaded.meta["fusion_probe"]  # measured on this CPU: a PAD and its convolution against no PAD
    assert "PAD" in probe["pad_conv_ops"] and "PAD" not in probe["prepadded_conv_ops"]
    assert probe["pad_conv_ms"] > 0 and probe["prepadded_conv_ms"] > 0
    assert loaded.folds == (["PAD"] if probe["pad_folded"] else [])
    from hwnas.kernels.tflite_graph import tflite_kernels

    padded = tflite_kernels(_tflite(nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1)), (3, 24, 24), tmp_path / "p.tflite").read_bytes())
    pad = [k.op for k in padded].index("PAD")
    folding = KernelPredictor({**loaded.meta, "folds": ["PAD"]}).fit(loaded.rows, loaded.nets)
    times = folding.kernel_ms(padded)
    assert times[pad] == 0 and times.sum() > 0
    assert folding.predict(padded) == pytest.approx(max(folding.scale * times.sum() + folding.per_kernel_ms
                                                        * (len(padded) - 1) + folding.per_run_ms, 0.5 * times.sum()))
    assert KernelPredictor({**loaded.meta, "folds": []}).fit(loaded.rows, loaded.nets).kernel_ms(padded)[pad] > 0
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


def test_a_net_no_other_net_can_predict_is_left_out_of_the_out_of_fold_error() -> None:
    """In a small build, a network may hold a kernel family that no other network holds (here
    the one addition): out of fold it cannot be predicted, so it is counted as not predicted
    rather than stopping the build."""
    from hwnas.kernels.build import metrics, out_of_fold

    rng = np.random.default_rng(0)
    rows: list[dict] = []
    nets: list[dict] = []
    for n in range(12):
        idx = []
        for _ in range(3):
            c, hw = int(rng.choice([8, 16, 32])), int(rng.choice([7, 14]))
            k = Kernel("", "CONV_2D", [[1, c, hw, hw], [c, c, 3, 3]], [[1, c, hw, hw]])
            configure(k)
            idx.append(len(rows))
            rows.append({"op": k.op, "features": k.features, "ms": None})
        if n == 0:
            k = Kernel("", "ADD", [[1, 8, 7, 7], [1, 8, 7, 7]], [[1, 8, 7, 7]])
            configure(k)
            idx.append(len(rows))
            rows.append({"op": k.op, "features": k.features, "ms": None})
        nets.append({"kernels": idx, "whole_ms": 0.1 + 0.01 * len(idx) + float(rng.random()) * 0.01})
    kernel_pred, net_pred = out_of_fold(rows, nets)
    assert np.isnan(net_pred[0]) and np.isnan(kernel_pred[nets[0]["kernels"]]).all()
    assert np.isfinite(net_pred[1:]).all()
    m = metrics(nets, net_pred)
    assert m["nets"] == 12 and m["predicted"] == 11 and m["oof_mape_pct"] >= 0
