"""Runners for exported files: onnxruntime and the LiteRT / TFLite interpreter.

A runner loads one model, holds one fixed input, and times one inference per
``time_once()`` call. Only numpy and the runtime itself are imported, so the on-device
agent uses these same classes.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np


def _input(shape: Sequence[int], dtype: Any, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(tuple(int(d) for d in shape)).astype(dtype)


class OrtRunner:
    runtime = "onnxruntime"

    def __init__(self, model: bytes | str, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        # A network whose output does not depend on its input (a disconnected cell) is
        # exported as a constant with no input at all: it is timed with an empty feed.
        self.feed: dict[str, np.ndarray] = {}
        for inp in self.session.get_inputs()[:1]:
            self.feed[inp.name] = _input([d if isinstance(d, int) else 1 for d in inp.shape], np.float32)

    def time_once(self) -> float:
        t0 = time.perf_counter_ns()
        self.session.run(None, self.feed)
        return (time.perf_counter_ns() - t0) / 1e6

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        names = [i.name for i in self.session.get_inputs()]
        return [np.asarray(o) for o in self.session.run(None, dict(zip(names, inputs)))]

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]

    @staticmethod
    def version() -> str:
        import onnxruntime as ort

        return ort.__version__


def _interpreter_class() -> tuple[Any, str, str]:
    """(Interpreter class, runtime name, version): ai-edge-litert, else tflite-runtime."""
    try:
        from ai_edge_litert import interpreter as lite  # type: ignore[import-not-found]
        import ai_edge_litert

        return lite.Interpreter, "ai-edge-litert", getattr(ai_edge_litert, "__version__", "unknown")
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as lite  # type: ignore[import-not-found]
        import tflite_runtime

        return lite.Interpreter, "tflite-runtime", getattr(tflite_runtime, "__version__", "unknown")
    except ImportError:
        raise RuntimeError("no TFLite interpreter: install ai-edge-litert (or tflite-runtime)") from None


class TfliteRunner:
    """LiteRT interpreter with its default XNNPACK delegate for float models."""

    def __init__(self, model: bytes | str, threads: int = 1) -> None:
        cls, self.runtime, _ = _interpreter_class()
        kwargs = {"model_content": model} if isinstance(model, (bytes, bytearray)) else {"model_path": model}
        self.interpreter = cls(num_threads=threads, **kwargs)
        self.interpreter.allocate_tensors()
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()
        for first in self.inputs[:1]:  # none for a network exported as a constant
            self.interpreter.set_tensor(first["index"], _input(first["shape"], first["dtype"]))

    def time_once(self) -> float:
        t0 = time.perf_counter_ns()
        self.interpreter.invoke()
        return (time.perf_counter_ns() - t0) / 1e6

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        for detail, x in zip(self.inputs, inputs):
            self.interpreter.set_tensor(detail["index"], np.ascontiguousarray(x, dtype=detail["dtype"]))
        self.interpreter.invoke()
        return [np.array(self.interpreter.get_tensor(d["index"])) for d in self.outputs]

    def close(self) -> None:
        self.interpreter = None

    @staticmethod
    def version() -> str:
        return _interpreter_class()[2]

    @staticmethod
    def runtime_name() -> str:
        return _interpreter_class()[1]


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
