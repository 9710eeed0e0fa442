"""A device reached through an agent: same interface as the local backends, so table
builds, measured sets and the export check run unchanged on a phone, a board or a box.

Specs::

    remote:tcp://127.0.0.1:7777?runtime=onnx&threads=1
    remote:tcp://10.0.0.7:7777?token=SECRET
    remote:serial:///dev/ttyUSB0?baud=921600&runtime=tflite

The host exports modules to the agent's format (ONNX or TFLite), sends the bytes, and
the agent runs the measurement protocol (reference interleaved) on the target. The
device fingerprint is the target's, from the agent's hello.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from hwnas.agent.client import AgentClient
from hwnas.agent.links import SerialLink, TcpLink
from hwnas.devices.base import Device, ModelLike, read_model_file
from hwnas.errors import HwnasError
from hwnas.measure.protocol import Measurement, MeasureProtocol
from hwnas.measure.stats import TimingStats

SUFFIX = {"onnx": ".onnx", "tflite": ".tflite", "torch": ".safetensors"}


class RemoteModel:
    """A model loaded on the agent (timed there, not here)."""

    def __init__(self, device: "RemoteDevice", handle: str) -> None:
        self.device, self.handle = device, handle

    def time_once(self) -> float:
        raise HwnasError("a remote model is timed on the agent: use device.measure()")

    def run(self, inputs: list) -> list:
        return self.device.run(self.handle, inputs)

    def close(self) -> None:
        self.device.client.unload(self.handle)


def parse_url(url: str) -> tuple[str, str, dict[str, str]]:
    """``tcp://host:port?k=v`` or ``serial:///dev/ttyX?k=v`` -> (transport, address, options)."""
    parts = urlsplit(url)
    opts = {k: v[-1] for k, v in parse_qs(parts.query).items()}  # checked by hwnas.devices.spec
    if parts.scheme == "tcp":
        if not parts.hostname or parts.port is None:
            raise HwnasError(f"remote device {url!r}: say host and port, e.g. remote:tcp://127.0.0.1:7777")
        return "tcp", f"{parts.hostname}:{parts.port}", opts
    if parts.scheme == "serial":
        if not parts.path:
            raise HwnasError(f"remote device {url!r}: say the port, e.g. remote:serial:///dev/ttyUSB0?baud=921600")
        return "serial", parts.path, opts
    raise HwnasError(f"remote device {url!r}: the transport must be tcp:// or serial://")


class RemoteDevice(Device):
    backend = "remote"

    def __init__(self, url: str, runtime: str | None = None, threads: int = 1, token: str | None = None,
                 baud: int = 921600, timeout_s: float = 60.0, protocol: MeasureProtocol | None = None,
                 spec: str | None = None, **client_options: Any) -> None:
        super().__init__(threads=threads, protocol=protocol, spec=spec or f"remote:{url}")
        self.url = url
        self.transport, self.address, _ = parse_url(url)
        self.wanted_runtime, self.baud, self.bench_timeout_s = runtime, baud, timeout_s
        self.token = token if token is not None else os.environ.get("HWNAS_AGENT_TOKEN")
        self.client_options = client_options
        self.format = str(runtime or "onnx")
        self.info: dict[str, Any] = {}

    def open(self) -> None:
        """Connect to the agent and learn what it runs (its hello)."""
        if self.transport == "tcp":
            host, _, port = self.address.rpartition(":")
            connect = lambda: TcpLink.connect(host, int(port))  # noqa: E731
        else:
            connect = lambda: SerialLink.open(self.address, self.baud)  # noqa: E731
        self.client = AgentClient(connect, f"{self.transport}://{self.address}", token=self.token,
                                  timeout_s=self.bench_timeout_s, **self.client_options)
        hello, _ = self.client.request("hello")
        runtimes = hello.get("runtimes") or {}
        runtime = self.wanted_runtime
        if runtime is None:
            runtime = "onnx" if "onnx" in runtimes else next(iter(runtimes), None)
        if runtime not in runtimes:
            raise HwnasError(f"the agent at {self.client.where} runs {', '.join(runtimes) or 'nothing'}, "
                             f"not {runtime!r}")
        self.format = str(runtime)
        self.file_suffix = SUFFIX[self.format]  # type: ignore[misc]
        self.info = hello

    @property
    def export_format(self) -> str | None:
        return None if self.format == "torch" else self.format

    @property
    def runtime(self) -> str:  # type: ignore[override]
        return str(self.info["runtimes"][self.format]["name"])

    def runtime_version(self) -> str:
        return str(self.info["runtimes"][self.format]["version"])

    def accelerator(self) -> str | None:
        return self.info["runtimes"][self.format].get("accelerator")

    def fingerprint(self) -> dict[str, Any]:
        return {**self.info["fingerprint"], "backend": f"remote-{self.format}", "runtime": self.runtime,
                "runtime_version": self.runtime_version(), "threads": self.threads,
                "accelerator": self.accelerator(),
                "transport": self.transport, "agent_version": self.info.get("agent_version")}

    # -- models ---------------------------------------------------------------------
    def model_bytes(self, model: ModelLike, input_shape: tuple[int, int, int]) -> tuple[bytes, str]:
        if isinstance(model, (bytes, bytearray)):
            return bytes(model), "model"
        path = read_model_file(model, self.file_suffix)
        if path is not None:
            return Path(path).read_bytes(), Path(path).name
        name = getattr(model, "hwnas_name", type(model).__name__)
        if self.format == "tflite":
            from hwnas.export.measure_cache import converted_bytes
            from hwnas.export.tflite import export_tflite, is_tflite

            return converted_bytes(model, input_shape, "tflite", export_tflite, is_tflite), name
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / f"model{self.file_suffix}"
            from hwnas.export.onnx import export_onnx

            export_onnx(model, input_shape, out)
            return out.read_bytes(), name

    def load(self, model: ModelLike, input_shape: tuple[int, int, int]) -> RemoteModel:
        if self.format == "torch":
            return self._load_torch(model, input_shape)
        data, name = self.model_bytes(model, input_shape)
        return RemoteModel(self, self.client.load(self.format, data, name, self.threads))

    def _load_torch(self, model: ModelLike, input_shape: tuple[int, int, int]) -> RemoteModel:
        """A torch agent rebuilds the module from its recipe and gets the weights as safetensors."""
        recipe = getattr(model, "hwnas_recipe", None)
        if recipe is None:
            raise HwnasError("a torch agent runs modules hwnas built (arch.build(), a table's layers): they carry "
                             "the recipe it rebuilds them from; files and other modules go to onnx/tflite agents")
        from safetensors.torch import save

        data = save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
        extra = {"recipe": recipe, "input_shape": list(input_shape)}
        name = recipe.get("arch") or recipe.get("key") or "module"
        return RemoteModel(self, self.client.load(self.format, data, str(name), self.threads, extra))

    def profile_ops(self, model: ModelLike, input_shape: tuple[int, int, int], runs: int = 50) -> dict[str, Any]:
        """The agent profiles the model with its runtime's profiler (onnx, tflite agents)."""
        if self.format == "torch":
            raise HwnasError("a torch agent has no per-operator profile over the wire; profile with cuda-torch "
                             "on the GPU box itself, or through an onnx agent")
        data, name = self.model_bytes(model, input_shape)
        reply, _ = self.client.request("profile", data, timeout=self.bench_timeout_s, format=self.format,
                                       sha256=hashlib.sha256(data).hexdigest(), name=name, threads=self.threads,
                                       runs=runs)
        return dict(reply["profile"])

    def calibrate_reference(self) -> float:
        ref = self.reference_runner()
        reply, _ = self.client.request("calibrate", timeout=self.bench_timeout_s, model=ref.handle,  # type: ignore[attr-defined]
                                       protocol=self.protocol.to_dict())
        self.reference_ms = float(reply["calibrated_ms"])
        return self.reference_ms

    def time(self, runner: Any, protocol: MeasureProtocol, reference: Any) -> Measurement:
        """The protocol runs on the agent, next to the model (the timeout is per attempt)."""
        fields: dict[str, Any] = {"model": runner.handle, "protocol": protocol.to_dict()}
        if reference is not None:
            fields.update(reference=reference.handle, reference_ms=self.reference_ms)
        reply, _ = self.client.request("benchmark", timeout=self.bench_timeout_s * protocol.attempts, **fields)
        d = reply["measurement"]
        return Measurement(float(d["latency_ms"]), TimingStats.from_dict(d["stats"]), bool(d["compensated"]),
                           d.get("ratio"), d.get("ratio_cv"), d.get("reference_ms"), d.get("reference_raw_ms"),
                           bool(d.get("noisy")), int(d.get("attempts", 1)), d.get("spread_cv"), d.get("state_range"))

    def run(self, handle: str, inputs: list) -> list:
        from hwnas.agent.wire import pack_arrays, unpack_arrays

        specs, data = pack_arrays(inputs)
        reply, out = self.client.request("run", data, model=handle, arrays=specs)
        return unpack_arrays(reply["arrays"], out)

    def close(self) -> None:
        super().close()
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
