"""Profile any model on a device: whole-model latency with the measurement protocol, and a
per-operator breakdown from the runtime's own profiler.

A model is an ``.onnx`` or ``.tflite`` file, or a torchvision model name (built with random
weights, which latency does not depend on; where torchvision is installed). A model
with dynamic input dimensions needs ``input_shape``; an ONNX model gets it written into its
graph, so the runtime plans for that shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError

DEFAULT_IMAGE = (3, 224, 224)


@dataclass
class ModelSource:
    """What to measure: ``model`` is a file's bytes (``fmt`` onnx or tflite) or a module (``fmt``
    module); ``input_shape`` is one sample's (C, H, W) (the batch is 1)."""

    name: str
    model: Any
    fmt: str
    input_shape: tuple[int, ...]


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """``1x3x224x224`` or ``3x224x224`` (batch 1) as (C, H, W)."""
    if text is None:
        return None
    try:
        dims = tuple(int(d) for d in re.split(r"[x,]", text.strip().lower()) if d)
    except ValueError:
        dims = ()
    if len(dims) == 4 and dims[0] == 1:
        dims = dims[1:]
    if len(dims) != 3 or min(dims) < 1:
        raise HwnasError(f"--input-shape {text!r}: give one sample's shape as 1xCxHxW or CxHxW (batch 1), "
                         "e.g. 1x3x224x224")
    return dims


def load_model(text: str, input_shape: tuple[int, ...] | None = None) -> ModelSource:
    """The model a user named: a file by its suffix, else a torchvision model name."""
    path = Path(text)
    if path.suffix.lower() == ".onnx":
        return _onnx_source(path, input_shape)
    if path.suffix.lower() == ".tflite":
        return _tflite_source(path, input_shape)
    if path.exists() or "/" in text:
        raise HwnasError(f"{text}: not an .onnx or .tflite file (or a torchvision model name such as resnet18)")
    return _torchvision_source(text, input_shape)


def _read(path: Path) -> bytes:
    if not path.is_file():
        raise HwnasError(f"model file {path} does not exist")
    return path.read_bytes()


def _onnx_source(path: Path, input_shape: tuple[int, ...] | None) -> ModelSource:
    import onnx

    try:
        proto = onnx.load_from_string(_read(path))
        onnx.checker.check_model(proto)
    except HwnasError:
        raise
    except Exception as e:  # noqa: BLE001 (onnx's own reason is the message)
        raise HwnasError(f"{path} is not a valid ONNX model ({str(e).strip().splitlines()[0][:200]})") from None
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise HwnasError(f"{path} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); hwnas profiles "
                         "models with one image input")
    dims = inputs[0].type.tensor_type.shape.dim
    shown = "x".join(d.dim_param or str(d.dim_value) if d.dim_param or d.dim_value else "?" for d in dims)
    static = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if input_shape is None:
        if len(static) != 4 or any(v is None for v in static[1:]):
            raise HwnasError(f"{path}: input {inputs[0].name!r} has dynamic dimensions ({shown}); give "
                             "--input-shape 1xCxHxW")
        input_shape = tuple(int(v) for v in static[1:])  # type: ignore[arg-type]
    elif len(static) != 4 or any(v is not None and v != w for v, w in zip(static, (1, *input_shape))):
        raise HwnasError(f"{path}: --input-shape 1x{'x'.join(map(str, input_shape))} does not fit input "
                         f"{inputs[0].name!r} ({shown})")
    for d, value in zip(dims, (1, *input_shape)):
        d.ClearField("dim_param")
        d.dim_value = value
    return ModelSource(path.name, proto.SerializeToString(), "onnx", input_shape)


def _tflite_source(path: Path, input_shape: tuple[int, ...] | None) -> ModelSource:
    from hwnas.measure.runtimes import _interpreter_class

    data = _read(path)
    try:
        interpreter = _interpreter_class()[0](model_content=data)
    except Exception as e:  # noqa: BLE001
        raise HwnasError(f"{path} is not a valid TFLite model ({str(e).strip().splitlines()[0][:200]})") from None
    inputs = interpreter.get_input_details()
    if len(inputs) != 1:
        raise HwnasError(f"{path} has {len(inputs)} inputs; hwnas profiles models with one image input")
    signature = [int(d) for d in inputs[0].get("shape_signature", inputs[0]["shape"])]
    if any(d < 0 for d in signature[1:]):
        raise HwnasError(f"{path}: input {inputs[0]['name']!r} has dynamic dimensions "
                         f"({'x'.join(str(d) if d >= 0 else '?' for d in signature)}); convert it with a fixed "
                         "input shape (LiteRT plans its tensors once)")
    shape = tuple(int(d) for d in inputs[0]["shape"][1:])
    if input_shape is not None and tuple(input_shape) != shape:
        raise HwnasError(f"{path}: --input-shape does not fit its input (1x{'x'.join(map(str, shape))})")
    return ModelSource(path.name, data, "tflite", shape)


def _torchvision_source(name: str, input_shape: tuple[int, ...] | None) -> ModelSource:
    try:
        import torchvision
    except ImportError:
        raise HwnasError(f"{name!r} is not a file, and torchvision model names need torchvision, which needs the "
                         "torch build it was made for (pip install torch==2.14.1 torchvision==0.29.1; the CPU torch "
                         "'make' installs has none): or export the model to ONNX and profile the file") from None
    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        close = [k for k in known if name.lower().rstrip("0123456789_") in k][:8]
        raise HwnasError(f"{name!r} is neither a file nor a torchvision classification model"
                         + (f" (did you mean {', '.join(close)}?)" if close else "; see torchvision.models.list_models()"))
    import torch

    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None).eval()
    shape = input_shape or ((3, 299, 299) if name == "inception_v3" else DEFAULT_IMAGE)
    return ModelSource(name, model, "module", tuple(shape))


def _share(ms: float | None, whole: float | None) -> float | None:
    return None if ms is None or not whole else 100.0 * ms / whole


def profile_model(source: ModelSource, device: Any, runs: int = 50, ops: bool = True) -> dict[str, Any]:
    """Whole-model latency (the protocol, reported raw and drift-compensated, with provenance)
    and, with ``ops``, the runtime's per-operator profile, with where the time the operators do
    not account for goes."""
    from hwnas.devices.calibration import device_calibration

    reference_ms = device_calibration(device)["calibrated_ms"] if device.protocol.compensate else None
    m = device.measure(source.model, source.input_shape, reference_ms=reference_ms)
    out: dict[str, Any] = {"model": source.name, "format": source.fmt, "input_shape": [1, *source.input_shape],
                           "device": device.spec, "latency_ms": m.latency_ms, "raw_median_ms": m.stats.median_ms,
                           "p10_ms": m.stats.p10_ms, "p90_ms": m.stats.p90_ms, "cv": m.stats.cv,
                           "compensated": m.compensated, "noisy": m.noisy, "measurement": m.to_dict(),
                           "provenance": m.provenance}
    if not ops:
        return out
    prof = device.profile_ops(source.model, source.input_shape, runs)
    raw = m.stats.median_ms
    # shares of the profiled run where the runtime reports one (profiling slows tiny operators
    # down), else of the whole-model median
    basis = prof.get("run_ms") or raw
    for op in prof["ops"]:
        op["share_pct"] = _share(op.get("ms"), basis)
    if prof.get("available"):
        rest: dict[str, Any] = {"ops_ms": prof["ops_ms"], "whole_ms": raw, "ops_vs_whole_pct": _share(prof["ops_ms"], raw)}
        if prof.get("run_ms") is not None:
            rest.update(runtime_run_ms=prof["run_ms"], executor_ms=prof["run_ms"] - prof["ops_ms"],
                        ops_share_of_run_pct=_share(prof["ops_ms"], prof["run_ms"]),
                        profiling_overhead_ms=prof["run_ms"] - raw)
        prof["accounting"] = rest
    prof["by_op"] = _by_op(prof["ops"])
    out["profile"] = prof
    return out


def _by_op(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Operator types (after fusion), their node count and time, slowest first."""
    groups: dict[str, dict[str, Any]] = {}
    for op in ops:
        g = groups.setdefault(op["op"], {"op": op["op"], "nodes": 0, "ms": None if op.get("ms") is None else 0.0,
                                         "share_pct": None if op.get("share_pct") is None else 0.0})
        g["nodes"] += 1
        if op.get("ms") is not None:
            g["ms"] += op["ms"]
            g["share_pct"] = (g["share_pct"] or 0.0) + (op.get("share_pct") or 0.0)
    return sorted(groups.values(), key=lambda g: -(g["ms"] or 0.0))
