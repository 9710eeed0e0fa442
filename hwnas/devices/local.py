"""In-process device backends on this machine: onnxruntime, LiteRT, torch CPU, torch CUDA."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from hwnas.devices.base import Device, ModelLike, read_model_file
from hwnas.errors import HwnasError
from hwnas.measure.runtimes import OrtRunner, TfliteRunner, TorchRunner


class FileRuntimeDevice(Device):
    """A backend whose runtime runs exported files: a module is exported first, a file is
    checked for the right kind, and a file the runtime refuses is named."""

    runner: ClassVar[Any] = None
    what: ClassVar[str] = ""

    def runtime_version(self) -> str:
        return str(self.runner.version())

    def export(self, model: Any, input_shape: tuple[int, int, int]) -> bytes:
        """The module as this runtime's file."""
        raise NotImplementedError

    def model_bytes(self, model: ModelLike, input_shape: tuple[int, int, int]) -> bytes:
        """The file this runtime runs: the bytes given, the file named, or the module exported."""
        if isinstance(model, (bytes, bytearray)):
            return bytes(model)
        path = read_model_file(model, self.file_suffix)
        return Path(path).read_bytes() if path is not None else self.export(model, input_shape)

    def profile_ops(self, model: ModelLike, input_shape: tuple[int, int, int], runs: int = 50) -> dict[str, Any]:
        from hwnas.measure.op_profile import profile_file

        return profile_file(str(self.export_format), self.model_bytes(model, input_shape), self.threads, runs)

    def load(self, model: ModelLike, input_shape: tuple[int, int, int]) -> Any:
        if isinstance(model, (bytes, bytearray)):
            source: Any = bytes(model)
            what = "the model"
        else:
            path = read_model_file(model, self.file_suffix)
            source = self.export(model, input_shape) if path is None else path
            what = path or "the exported module"
        try:
            return self.runner(source, self.threads)
        except Exception as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise HwnasError(f"{self.what} rejected {what}: {reason}") from None


class OrtDevice(FileRuntimeDevice):
    backend = "cpu-ort"
    runtime = "onnxruntime"
    file_suffix = ".onnx"
    runner = OrtRunner
    what = "onnxruntime"

    def export(self, model: Any, input_shape: tuple[int, int, int]) -> bytes:
        from hwnas.export.onnx import onnx_bytes

        return onnx_bytes(model, input_shape)


class TfliteDevice(FileRuntimeDevice):
    backend = "cpu-tflite"
    file_suffix = ".tflite"
    runner = TfliteRunner
    what = "the TFLite interpreter"

    @property
    def runtime(self) -> str:  # type: ignore[override]
        return TfliteRunner.runtime_name()

    def export(self, model: Any, input_shape: tuple[int, int, int]) -> bytes:
        from hwnas.export.measure_cache import converted_bytes
        from hwnas.export.tflite import export_tflite, is_tflite

        return converted_bytes(model, input_shape, "tflite", export_tflite, is_tflite)


class TorchCpuDevice(Device):
    backend = "cpu-torch"
    runtime = "torch"

    def open(self) -> None:
        super().open()
        import torch

        torch.set_num_threads(self.threads)

    def runtime_version(self) -> str:
        import torch

        return torch.__version__

    def load(self, model: ModelLike, input_shape: tuple[int, int, int]) -> TorchRunner:
        if isinstance(model, (str, Path, bytes, bytearray)):
            raise HwnasError("cpu-torch measures built modules, not exported files; use cpu-ort or cpu-tflite")
        return TorchRunner(model, input_shape, "cpu", channels_last=False)

    def profile_ops(self, model: ModelLike, input_shape: tuple[int, int, int], runs: int = 50) -> dict[str, Any]:
        from hwnas.measure.op_profile import profile_torch

        return profile_torch(self.load(model, input_shape), runs, self.threads)


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

    def profile_ops(self, model: ModelLike, input_shape: tuple[int, int, int], runs: int = 50) -> dict[str, Any]:
        from hwnas.measure.op_profile import profile_torch

        return profile_torch(self.load(model, input_shape), runs, self.threads)
