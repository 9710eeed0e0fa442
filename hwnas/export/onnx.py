"""ONNX export of a built model, checked against torch in onnxruntime."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from hwnas.errors import HwnasError
from hwnas.export import one_at_a_time
from hwnas.export.parity import Parity, check_parity

DEFAULT_OPSET = 17


@one_at_a_time
def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str | Path, *,
                opset: int = DEFAULT_OPSET, metadata: dict[str, str] | None = None) -> Path:
    """Write ``model`` (in eval mode, batch 1 unless ``input_shape`` says otherwise) to ``path``.

    Written to a temporary file first and renamed, so an interrupted export leaves no
    half-written model behind.
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = input_shape if len(input_shape) == 4 else (1, *input_shape)
    model = model.eval()
    x = torch.zeros(shape)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # The TorchScript exporter takes ~0.2 s where the dynamo one takes ~4 s; table
            # builds export hundreds of models.
            torch.onnx.export(model, (x,), tmp, dynamo=False, opset_version=opset,
                              input_names=["input"], output_names=["output"])
        proto = onnx.load(tmp)
        for k, v in (metadata or {}).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = k, v
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
        os.replace(tmp, path)
    except Exception as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, HwnasError):
            raise
        raise HwnasError(f"ONNX export of {type(model).__name__} failed: {e}") from e
    return path


def onnx_bytes(model: nn.Module, input_shape: tuple[int, ...]) -> bytes:
    """The ONNX file :func:`export_onnx` writes, as bytes (through a temporary folder)."""
    with tempfile.TemporaryDirectory() as d:
        return export_onnx(model, input_shape, Path(d) / "model.onnx").read_bytes()


def onnx_parity(path: str | Path, model: nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> Parity:
    """Run the file in onnxruntime and the module in torch on the same random input."""
    from hwnas.measure.runtimes import OrtRunner

    return check_parity(lambda x: OrtRunner(str(path)).run([x])[0], model, input_shape, seed)
