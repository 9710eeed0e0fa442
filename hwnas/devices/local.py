"""In-process device backends on this machine: onnxruntime, LiteRT, torch CPU, torch CUDA."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hwnas.devices.base import Device, ModelLike, read_model_file
from hwnas.errors import HwnasError
from hwnas.measure.runtimes import OrtRunner, TfliteRunner


class OrtDevice(Device):
    backend = "cpu-ort"
    runtime = "onnxruntime"
    file_suffix = ".onnx"

    def runtime_version(self) -> str:
        return OrtRunner.version()

    def load(self, model: ModelLike, input_shape: tuple[int, int, int]) -> OrtRunner:
        if isinstance(model, (bytes, bytearray)):
            return OrtRunner(bytes(model), self.threads)
        path = read_model_file(model, self.file_suffix)
        if path is None:
            from hwnas.export.onnx import export_onnx

            with tempfile.TemporaryDirectory() as d:
                path = str(export_onnx(model, input_shape, Path(d) / "model.onnx"))
                return self._open(path)
        return self._open(path)

    def _open(self, path: str) -> OrtRunner:
        try:
            return OrtRunner(path, self.threads)
        except Exception as e:
            raise HwnasError(f"onnxruntime rejected {path}: {str(e).splitlines()[0]}") from None


class TfliteDevice(Device):
    backend = "cpu-tflite"
    file_suffix = ".tflite"

    @property
    def runtime(self) -> str:  # type: ignore[override]
        return TfliteRunner.runtime_name()

    def runtime_version(self) -> str:
        return TfliteRunner.version()

    def load(self, model: ModelLike, input_shape: tuple[int, int, int]) -> TfliteRunner:
        if isinstance(model, (bytes, bytearray)):
            return TfliteRunner(bytes(model), self.threads)
        path = read_model_file(model, self.file_suffix)
        if path is None:
            from hwnas.export.measure_cache import converted_bytes
            from hwnas.export.tflite import export_tflite, is_tflite

            return TfliteRunner(converted_bytes(model, input_shape, "tflite", export_tflite, is_tflite), self.threads)
        try:
            return TfliteRunner(path, self.threads)
        except Exception as e:
            raise HwnasError(f"the TFLite interpreter rejected {path}: {str(e).splitlines()[0]}") from None


class TorchRunner:
    def __init__(self, model: Any, input_shape: tuple[int, int, int], device: str, channels_last: bool) -> None:
        import torch

        self.torch = torch
        self.device = device
        self.model = model.eval().to(device)
        self.x = torch.randn(1, *input_shape, generator=torch.Generator().manual_seed(0)).to(device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        if device.startswith("cuda"):
            self.start = torch.cuda.Event(enable_timing=True)
            self.end = torch.cuda.Event(enable_timing=True)

    def time_once(self) -> float:
        torch = self.torch
        with torch.inference_mode():
            if self.device.startswith("cuda"):
                self.start.record()
                self.model(self.x)
                self.end.record()
                self.end.synchronize()
                return float(self.start.elapsed_time(self.end))
            import time

            t0 = time.perf_counter_ns()
            self.model(self.x)
            return (time.perf_counter_ns() - t0) / 1e6

    def close(self) -> None:
        self.model = None


class TorchCpuDevice(Device):
    backend = "cpu-torch"
    runtime = "torch"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        import torch

        torch.set_num_threads(self.threads)

    def runtime_version(self) -> str:
        import torch

        return torch.__version__

    def load(self, model: ModelLike, input_shape: tuple[int, int, int]) -> TorchRunner:
        if isinstance(model, (str, Path, bytes, bytearray)):
            raise HwnasError("cpu-torch measures built modules, not exported files; use cpu-ort or cpu-tflite")
        return TorchRunner(model, input_shape, "cpu", channels_last=False)


class CudaDevice(Device):
    backend = "cuda-torch"
    runtime = "torch-cuda"

    def __init__(self, index: int = 0, **kw: Any) -> None:
        import torch

        if not torch.cuda.is_available():
            raise HwnasError("cuda-torch: no CUDA GPU is available on this machine (torch.cuda.is_available() "
                             "is False); use a cpu-* device or measure through an agent on a GPU box")
        if index >= torch.cuda.device_count():
            raise HwnasError(f"cuda-torch: no GPU {index}; this machine has {torch.cuda.device_count()}")
        self.index = index
        super().__init__(**kw)

    def runtime_version(self) -> str:
        import torch

        return f"{torch.__version__} cuda {torch.version.cuda}"

    def accelerator(self) -> str | None:
        import torch

        return torch.cuda.get_device_name(self.index)

    def load(self, model: ModelLike, input_shape: tuple[int, int, int]) -> TorchRunner:
        if isinstance(model, (str, Path, bytes, bytearray)):
            raise HwnasError("cuda-torch measures built modules, not exported files")
        return TorchRunner(model, input_shape, f"cuda:{self.index}", channels_last=True)
