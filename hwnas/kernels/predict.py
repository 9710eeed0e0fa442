"""Predict any model's latency on a device from its kernel predictor, without the device."""

from __future__ import annotations

from typing import Any

from hwnas.errors import HwnasError
from hwnas.kernels.graph import model_kernels
from hwnas.kernels.model import KernelPredictor
from hwnas.measure.runtimes import OrtRunner


def onnx_bytes(source: Any) -> bytes:
    """The ONNX graph of a :class:`~hwnas.devices.profile.ModelSource` (a module is exported)."""
    if source.fmt == "onnx":
        return source.model
    if source.fmt == "module":
        from hwnas.export.onnx import onnx_bytes as export

        return export(source.model, source.input_shape)
    raise HwnasError(f"{source.name}: the kernel predictor reads ONNX graphs; give the model as .onnx (a .tflite "
                     "file's kernels are LiteRT's, which the predictor does not know)")


def predict_source(source: Any, predictor: KernelPredictor) -> dict[str, Any]:
    """The predicted whole-model latency and each kernel's share, with what the prediction
    stands on (the device, runtime and calibration the predictor was measured with)."""
    meta = predictor.meta
    kernels = model_kernels(onnx_bytes(source), int(meta.get("threads") or 1))
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
    here = OrtRunner.version()
    if meta.get("runtime_version") and meta["runtime_version"] != here:
        notes.append(f"the kernels are onnxruntime {here}'s graph here; the predictor was measured with "
                     f"{meta['runtime_version']}, whose fusions may differ")
    return {"model": source.name, "input_shape": [1, *source.input_shape], "predicted_ms": total,
            "kernels_ms": float(ms.sum()), "kernels": rows, "between_kernels_ms": total - float(ms.sum()),
            "predictor": {k: meta.get(k) for k in ("device", "runtime", "runtime_version", "threads", "calibrated_ms",
                                                     "kernels", "out_of_fold")},
            "cpu_model": (meta.get("fingerprint") or {}).get("cpu_model"), "notes": notes}
