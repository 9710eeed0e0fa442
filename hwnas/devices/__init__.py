"""Devices by name: ``cpu-ort:threads=1``, ``cpu-tflite:threads=2,pin=0-1``,
``remote:tcp://127.0.0.1:7777?runtime=onnx``, or a profile file under ``devices/`` (TOML
with ``backend`` and options; a remote profile has ``backend = "remote"`` and ``url``)."""

from __future__ import annotations

from typing import Any, Callable

from hwnas.devices.base import Device
from hwnas.devices.local import CudaDevice, OrtDevice, TfliteDevice, TorchCpuDevice
from hwnas.errors import HwnasError
from hwnas.files import interpreting, read_toml, require
from hwnas.measure.protocol import MeasureProtocol
from hwnas.registry import Registry

DEVICES: Registry[Callable[..., Device]] = Registry("device backend")
for _cls in (OrtDevice, TfliteDevice, TorchCpuDevice, CudaDevice):
    DEVICES.register(_cls.backend, _cls)

_INT_OPTIONS = {"threads", "index", "runs", "warmup", "rounds"}


def _cpus(text: str) -> list[int]:
    out: list[int] = []
    for part in str(text).split("+"):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``backend:key=value,key=value`` -> (backend, options)."""
    backend, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise HwnasError(f"device spec {spec!r}: option {item!r} should be key=value (e.g. threads=1)")
        options[key.strip()] = value.strip()
    return backend, options


def _build(backend: str, options: dict[str, Any], spec: str) -> Device:
    factory = DEVICES[backend]
    opts = dict(options)
    try:
        for k in list(opts):
            if k in _INT_OPTIONS:
                opts[k] = int(opts[k])
        if "pin" in opts:
            opts["pin"] = _cpus(opts["pin"])
    except ValueError as e:
        raise HwnasError(f"device spec {spec!r}: {e}") from None
    proto = {}
    for key, field in (("runs", "runs"), ("warmup", "warmup_runs"), ("rounds", "rounds")):
        if key in opts:
            proto[field] = opts.pop(key)
    if "compensate" in opts:
        proto["compensate"] = str(opts.pop("compensate")).lower() in ("1", "true", "yes")
    known = {"threads", "pin", "index"}
    unknown = set(opts) - known
    if unknown:
        raise HwnasError(f"device spec {spec!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                         f"known: threads, pin, index, runs, warmup, rounds, compensate")
    if backend != "cuda-torch":
        opts.pop("index", None)
    return factory(protocol=MeasureProtocol(**proto), spec=spec, **opts)


def _remote(url: str, extra: dict[str, Any], spec: str) -> Device:
    from hwnas.devices.remote import RemoteDevice, parse_url

    _, _, opts = parse_url(url)
    opts = {**opts, **{k: str(v) for k, v in extra.items()}}
    proto: dict[str, Any] = {}
    try:
        for key, field in (("runs", "runs"), ("warmup", "warmup_runs"), ("rounds", "rounds")):
            if key in opts:
                proto[field] = int(opts.pop(key))
        if "compensate" in opts:
            proto["compensate"] = opts.pop("compensate").lower() in ("1", "true", "yes")
        kw: dict[str, Any] = {"runtime": opts.pop("runtime", None), "token": opts.pop("token", None),
                              "threads": int(opts.pop("threads", 1)), "baud": int(opts.pop("baud", 921600)),
                              "timeout_s": float(opts.pop("timeout", 60.0))}
    except ValueError as e:
        raise HwnasError(f"device spec {spec!r}: {e}") from None
    if opts:
        raise HwnasError(f"device spec {spec!r}: unknown option(s) {', '.join(sorted(opts))}")
    return RemoteDevice(url.split("?")[0], protocol=MeasureProtocol(**proto), spec=spec, **kw)


def get_device(spec: str) -> Device:
    """A device from a spec string or a profile file (``devices/NAME.toml``)."""
    if spec.startswith("remote:"):
        return _remote(spec[len("remote:"):], {}, spec)
    if spec.endswith(".toml"):
        what = "device profile"
        profile = read_toml(spec, what, "see devices/ for examples")
        if "backend" not in profile:
            raise HwnasError(f"device profile {spec} has no 'backend' (one of remote, {', '.join(DEVICES.names())})")
        require(profile, spec, what, {"backend": str})
        with interpreting(spec, what):
            if profile["backend"] == "remote":
                require(profile, spec, what, {"url": str})
                extra = {k: v for k, v in profile.items() if k not in ("backend", "name", "description", "agent", "url")}
                return _remote(profile["url"], extra, spec)
            options = {k: v for k, v in profile.items() if k not in ("backend", "name", "description", "agent")}
            return _build(profile["backend"], options, spec)
    backend, options = parse_spec(spec)
    return _build(backend, options, spec)


__all__ = ["Device", "DEVICES", "get_device", "parse_spec"]
