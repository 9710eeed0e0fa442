"""The conformance suite every device backend passes (``specs``: device specs to check; a
``{agent}`` in one is replaced by the address of an agent this suite starts on this
machine, in its own process).

A measurement of a small network: positive, from at least the protocol's runs, ordered
percentiles, a first-run figure, drift-compensated through the reference network, with
the full provenance (device fingerprint, runtime and version, threads, protocol); spread
over attempts, one of them reported (on the agent for a remote device); the device's export format is one it measures from a file; the spec parses to itself.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest

from hwnas.devices import parse_device_spec
from hwnas.spaces import get_space
from hwnas.testing import Suite

PROVENANCE = ("cpu_model", "logical_cores", "affinity", "runtime", "runtime_version", "threads")


def tiny() -> tuple[Any, Any]:
    space = get_space("mbv2", "small", resolution=16)
    return space, space.resolve("smallest")


class DeviceConformance(Suite):
    """Subclass with ``specs = [SPEC, ...]`` (protocol options keep it quick: ``runs=10,rounds=2``)."""

    over = ("spec", "specs")
    specs: list[str] = []

    @pytest.fixture(scope="class")
    @classmethod
    def agent(cls) -> Iterator[str]:
        """``tcp://127.0.0.1:PORT``: an agent serving this machine's runtimes, in its own process."""
        from hwnas.agent.testing import free_port, start_agent, wait_port

        port = free_port()
        proc = start_agent(["--tcp", f"127.0.0.1:{port}"])
        try:
            wait_port(port)
            yield f"tcp://127.0.0.1:{port}"
        finally:
            proc.kill()
            proc.wait()

    def open(self, spec: str, request: Any) -> Any:
        if "{agent}" in spec:
            spec = spec.replace("{agent}", request.getfixturevalue("agent"))
        assert parse_device_spec(spec).text == spec
        return parse_device_spec(spec).open()

    def test_measures_with_provenance(self, spec: str, request: Any) -> None:
        device = self.open(spec, request)
        try:
            space, arch = tiny()
            m = device.measure(arch.build(), space.input_shape())
            assert m.latency_ms > 0 and m.stats.n >= 10
            assert m.stats.p10_ms <= m.stats.median_ms <= m.stats.p90_ms
            assert m.stats.first_run_ms is not None and m.stats.first_run_ms > 0
            assert m.compensated and m.reference_ms is not None and m.reference_ms > 0
            prov = m.provenance
            assert all(k in prov["device"] for k in PROVENANCE)
            assert prov["device"]["threads"] == device.threads and prov["device"]["runtime_version"]
            assert prov["batch"] == 1 and prov["dtype"] == "float32" and prov["input_shape"] == [1, 3, 16, 16]
            assert prov["hwnas_version"] and prov["time"] and prov["device_spec"] == device.spec
            entry = m.to_entry()
            assert entry["median_ms"] == pytest.approx(m.latency_ms) and entry["n"] == m.stats.n
            # a reference calibration passed in is the one the figure is reported through
            again = device.measure(arch.build(), space.input_shape(), reference_ms=2 * m.reference_ms)
            assert again.reference_ms == pytest.approx(2 * m.reference_ms)
        finally:
            device.close()

    def test_spreads_over_attempts(self, spec: str, request: Any) -> None:
        device = self.open(spec, request)
        try:
            space, arch = tiny()
            m = device.measure(arch.build(), space.input_shape(), replace(device.protocol, spread=3))
            assert m.attempts == 3 and m.latency_ms > 0 and m.stats.n >= 10
            assert m.spread_cv is not None and m.spread_cv >= 0 and m.state_range is not None
            assert m.state_range >= 1.0
            assert m.provenance["protocol"]["spread"] == 3
        finally:
            device.close()

    def test_measures_its_export_format_from_a_file(self, spec: str, request: Any) -> None:
        device = self.open(spec, request)
        try:
            fmt = device.export_format
            if fmt is None:
                pytest.skip(f"{device.spec} measures modules only")
            from hwnas.export.onnx import export_onnx
            from hwnas.export.tflite import export_tflite

            space, arch = tiny()
            with tempfile.TemporaryDirectory() as d:
                path = Path(d) / f"model.{fmt}"
                (export_onnx if fmt == "onnx" else export_tflite)(arch.build().eval(), space.input_shape(), path)
                assert device.measure(str(path), space.input_shape()).latency_ms > 0
        finally:
            device.close()
