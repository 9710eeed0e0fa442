"""Predict any model's latency on a device from its kernel predictor, without the device."""

from __future__ import annotations

from typing import Any

from hwnas.errors import HwnasError
from hwnas.kernels.graph import Kernel, model_kernels
from hwnas.kernels.model import KernelPredictor
from hwnas.kernels.tflite_graph import tflite_kernels
from hwnas.measure.runtimes import OrtRunner


def exported_bytes(module: Any, input_shape: tuple[int, ...], fmt: str) -> bytes:
    """``module`` exported to ``fmt`` (``onnx``, ``tflite``)."""
    if fmt == "tflite":
        import tempfile
        from pathlib import Path

        from hwnas.export.tflite import export_tflite

        with tempfile.TemporaryDirectory() as d:
            return export_tflite(module, input_shape, Path(d) / "model.tflite").read_bytes()
    from hwnas.export.onnx import onnx_bytes

    return onnx_bytes(module, input_shape)


def module_kernels(module: Any, input_shape: tuple[int, ...], fmt: str, threads: int = 1) -> list[Kernel]:
    """The kernels of a built module exported to ``fmt`` (``onnx``, ``tflite``), as that
    format's runtime runs them."""
    data = exported_bytes(module, input_shape, fmt)
    return tflite_kernels(data) if fmt == "tflite" else model_kernels(data, threads)


def source_kernels(source: Any, fmt: str, threads: int = 1) -> list[Kernel]:
    """The kernels of a :class:`~hwnas.devices.profile.ModelSource` as the runtime of a
    predictor of ``fmt`` (``onnx``, ``tflite``) runs them (a module is exported first)."""
    if source.fmt == "module":
        return module_kernels(source.model, source.input_shape, fmt, threads)
    if source.fmt != fmt:
        raise HwnasError(f"{source.name}: this kernel predictor was measured with a runtime that runs {fmt} "
                         f"files, and the model is {source.fmt}; give it as .{fmt} or as a torchvision name")
    return tflite_kernels(source.model) if fmt == "tflite" else model_kernels(source.model, threads)


def predict_source(source: Any, predictor: KernelPredictor) -> dict[str, Any]:
    """The predicted whole-model latency and each kernel's share, with what the prediction
    stands on (the device, runtime and calibration the predictor was measured with)."""
    meta = predictor.meta
    kernels = source_kernels(source, predictor.format, int(meta.get("threads") or 1))
    ms = predictor.kernel_ms(kernels)
    total = predictor.predict(kernels)
    rows = sorted(({"name": k.name, "op": k.op, "family": k.family, "predicted_ms": float(t)}
                   for k, t in zip(kernels, ms)), key=lambda r: -r["predicted_ms"])
    notes = []
    unseen = predictor.unseen_ops(kernels)
    if unseen:
        share = sum(t for k, t in zip(kernels, ms) if k.op in unseen) / max(float(ms.sum()), 1e-12)
        notes.append(f"operators no sample network had ({', '.join(unseen)}; {100 * share:.1f} % of the predicted "
                     "kernel time) are predicted from their shapes by their family's model: less surely")
    if predictor.format == "onnx":
        here = OrtRunner.version()
        if meta.get("runtime_version") and meta["runtime_version"] != here:
            notes.append(f"the kernels are onnxruntime {here}'s graph here; the predictor was measured with "
                         f"{meta['runtime_version']}, whose fusions may differ")
    if predictor.labels == "whole-model":
        notes.append("LiteRT has no op profiler here: the kernels' times were learned from whole sample networks' "
                     "times, so the total is surer than its split among kernels")
    return {"model": source.name, "input_shape": [1, *source.input_shape], "predicted_ms": total,
            "kernels_ms": float(ms.sum()), "kernels": rows, "between_kernels_ms": total - float(ms.sum()),
            "predictor": {k: meta.get(k) for k in ("device", "runtime", "runtime_version", "threads", "calibrated_ms",
                                                     "kernels", "out_of_fold")},
            "cpu_model": (meta.get("fingerprint") or {}).get("cpu_model"), "notes": notes}
