"""A device spec, parsed once: ``cpu-ort:threads=1``, ``cpu-tflite:threads=2,pin=0-1``,
``remote:tcp://127.0.0.1:7777?runtime=onnx``, or a profile file under ``devices/`` (TOML
with ``backend`` and options; a remote profile has ``backend = "remote"`` and ``url``). A
pool file is a remote profile with ``urls``, a list: agents of one kind that share a table
build, a measured set or a search's finalist checks; the options apply to each.

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
PROTOCOL_OPTIONS = {"runs": "runs", "warmup": "warmup_runs", "rounds": "rounds", "retries": "retries",
                    "spread": "spread"}
REMOTE_OPTIONS = ("runtime", "threads", "token", "baud", "timeout")
PROFILE_ONLY = ("backend", "name", "description", "agent", "url", "urls")


@dataclass(frozen=True)
class DeviceSpec:
    """What names one device: the text as given, its backend, typed options and protocol."""

    text: str
    backend: str
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    protocol: MeasureProtocol = field(default_factory=MeasureProtocol)
    url: str | None = None  # remote devices: the agent's address
    members: tuple["DeviceSpec", ...] = field(default=(), hash=False)  # a pool file's devices

    @property
    def name(self) -> str:
        """A short name for reports and file names: a profile's stem, else the spec without a query."""
        path = self.text.split("#")[0]
        return Path(path).stem if path.endswith(".toml") else self.text.split("?")[0]

    def open(self) -> Device:
        """The device, ready to measure (CPUs pinned, agent connected); a pool's first device
        (they are one kind, so it stands for all where one device is enough)."""
        if self.members:
            return self.members[0].open()
        if self.backend == "remote":
            from hwnas.devices.remote import RemoteDevice

            device: Device = RemoteDevice(str(self.url), protocol=self.protocol, spec=self.text, **self.options)
        else:
            device = DEVICES[self.backend](protocol=self.protocol, spec=self.text, **self.options)
        device.open()
        return device

    def open_all(self) -> list[Device]:
        """Every device of a pool, opened and checked to be of one kind; ``[open()]`` for one device."""
        if not self.members:
            return [self.open()]
        from hwnas.devices.pool import check_same_kind

        devices = [m.open() for m in self.members]
        check_same_kind(devices)
        return devices

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


def _pool(profile: dict[str, Any], options: dict[str, Any], spec: str) -> DeviceSpec:
    """A pool file: ``backend = "remote"`` and ``urls``, one agent address each (no duplicates)."""
    urls = profile["urls"]
    if profile["backend"] != "remote" or "url" in profile:
        raise HwnasError(f"device profile {spec}: 'urls' makes a pool of agents, so it needs backend = \"remote\" "
                         "and no 'url' (one agent: give 'url' instead)")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
        raise HwnasError(f"device profile {spec}: 'urls' must be a non-empty list of agent addresses, e.g. "
                         "[\"tcp://10.0.0.11:7777\", \"tcp://10.0.0.12:7777\"]")
    twice = sorted({u for u in urls if urls.count(u) > 1})
    if twice:
        raise HwnasError(f"device profile {spec}: {', '.join(twice)} listed twice in 'urls'; one agent serves one "
                         "measurement at a time, so list each once")
    members = tuple(_remote(u, options, f"{spec}#{u}") for u in urls)
    first = members[0]
    return DeviceSpec(spec, "remote", first.options, first.protocol, url=first.url, members=members)


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
            if "urls" in profile:
                return _pool(profile, options, spec)
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
