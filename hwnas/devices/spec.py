"""A device spec, parsed once: ``cpu-ort:threads=1``, ``cpu-tflite:threads=2,pin=0-1``,
``remote:tcp://127.0.0.1:7777?runtime=onnx``, or a profile file under ``devices/`` (TOML
with ``backend`` and options; a remote profile has ``backend = "remote"`` and ``url``).

:class:`DeviceSpec` is what targets, tables and reports hold and compare; ``open()``
makes the :class:`~hwnas.devices.base.Device` (pinning CPUs, connecting to an agent)
only when something is to be measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.devices.base import DEVICES, Device
from hwnas.errors import HwnasError
from hwnas.files import interpreting, read_toml, require
from hwnas.measure.protocol import MeasureProtocol

LOCAL_OPTIONS = ("threads", "pin", "index")
PROTOCOL_OPTIONS = {"runs": "runs", "warmup": "warmup_runs", "rounds": "rounds", "retries": "retries"}
REMOTE_OPTIONS = ("runtime", "threads", "token", "baud", "timeout")
PROFILE_ONLY = ("backend", "name", "description", "agent", "url")


@dataclass(frozen=True)
class DeviceSpec:
    """What names one device: the text as given, its backend, typed options and protocol."""

    text: str
    backend: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    protocol: MeasureProtocol = field(default_factory=MeasureProtocol)
    url: str | None = None  # remote devices: the agent's address

    @property
    def name(self) -> str:
        """A short name for reports and file names: a profile's stem, else the spec without a query."""
        return Path(self.text).stem if self.text.endswith(".toml") else self.text.split("?")[0]

    def open(self) -> Device:
        """The device, ready to measure (CPUs pinned, agent connected)."""
        if self.backend == "remote":
            from hwnas.devices.remote import RemoteDevice

            device: Device = RemoteDevice(str(self.url), protocol=self.protocol, spec=self.text, **self.options)
        else:
            device = DEVICES[self.backend](protocol=self.protocol, spec=self.text, **self.options)
        device.open()
        return device

    def __str__(self) -> str:
        return self.text


def _cpus(text: str) -> list[int]:
    out: list[int] = []
    for part in str(text).split("+"):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def _protocol(opts: dict[str, Any], spec: str) -> MeasureProtocol:
    """Pop the protocol options (runs, warmup, rounds, retries, compensate) from ``opts``."""
    proto: dict[str, Any] = {}
    try:
        for key, name in PROTOCOL_OPTIONS.items():
            if key in opts:
                proto[name] = int(opts.pop(key))
        if "compensate" in opts:
            proto["compensate"] = str(opts.pop("compensate")).lower() in ("1", "true", "yes")
        return MeasureProtocol(**proto)
    except ValueError as e:
        raise HwnasError(f"device spec {spec!r}: {e}") from None


def _split(options: dict[str, Any], known: tuple[str, ...], spec: str) -> tuple[dict[str, Any], MeasureProtocol]:
    """The backend's options and the measurement protocol; an unknown option is refused,
    naming the known ones."""
    opts = dict(options)
    protocol = _protocol(opts, spec)
    unknown = set(opts) - set(known)
    if unknown:
        raise HwnasError(f"device spec {spec!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(known + tuple(PROTOCOL_OPTIONS))}, compensate")
    return opts, protocol


def _local(backend: str, options: dict[str, Any], spec: str) -> DeviceSpec:
    DEVICES[backend]  # an unknown backend is refused here, naming the known ones
    opts, protocol = _split(options, LOCAL_OPTIONS, spec)
    try:
        for k in ("threads", "index"):
            if k in opts:
                opts[k] = int(opts[k])
        if "pin" in opts:
            opts["pin"] = _cpus(opts["pin"])
    except ValueError as e:
        raise HwnasError(f"device spec {spec!r}: {e}") from None
    if backend != "cuda-torch":
        opts.pop("index", None)
    return DeviceSpec(spec, backend, opts, protocol)


def _remote(url: str, extra: dict[str, Any], spec: str) -> DeviceSpec:
    from hwnas.devices.remote import parse_url

    _, _, query = parse_url(url)
    opts, protocol = _split({**query, **{k: str(v) for k, v in extra.items()}}, REMOTE_OPTIONS, spec)
    try:
        kw: dict[str, Any] = {"runtime": opts.get("runtime"), "token": opts.get("token"),
                              "threads": int(opts.get("threads", 1)), "baud": int(opts.get("baud", 921600)),
                              "timeout_s": float(opts.get("timeout", 60.0))}
    except ValueError as e:
        raise HwnasError(f"device spec {spec!r}: {e}") from None
    return DeviceSpec(spec, "remote", kw, protocol, url=url.split("?")[0])


def parse_device_spec(spec: "str | DeviceSpec") -> DeviceSpec:
    """A spec string or profile path, checked: backend, options and protocol."""
    if isinstance(spec, DeviceSpec):
        return spec
    if spec.startswith("remote:"):
        return _remote(spec[len("remote:"):], {}, spec)
    if spec.endswith(".toml"):
        what = "device profile"
        profile = read_toml(spec, what, "see devices/ for examples")
        if "backend" not in profile:
            raise HwnasError(f"device profile {spec} has no 'backend' (one of remote, {', '.join(DEVICES.names())})")
        require(profile, spec, what, {"backend": str})
        with interpreting(spec, what):
            options = {k: v for k, v in profile.items() if k not in PROFILE_ONLY}
            if profile["backend"] == "remote":
                require(profile, spec, what, {"url": str})
                return _remote(profile["url"], options, spec)
            return _local(profile["backend"], options, spec)
    backend, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise HwnasError(f"device spec {spec!r}: option {item!r} should be key=value (e.g. threads=1)")
        options[key.strip()] = value.strip()
    return _local(backend, options, spec)
