"""Devices by spec (see :mod:`hwnas.devices.spec`): ``get_device("cpu-ort:threads=1")``.

Backends register in :data:`DEVICES` (``backend`` name -> class); a plugin adds one with
``DEVICES.register(MyDevice.backend, MyDevice)``.
"""

from __future__ import annotations

from hwnas.devices.base import DEVICES, Device
from hwnas.devices.local import CudaDevice, OrtDevice, TfliteDevice, TorchCpuDevice
from hwnas.devices.spec import DeviceSpec, parse_device_spec

for _cls in (OrtDevice, TfliteDevice, TorchCpuDevice, CudaDevice):
    DEVICES.register(_cls.backend, _cls)


def get_device(spec: "str | DeviceSpec") -> Device:
    """The device a spec string, profile file or parsed spec names, opened."""
    return parse_device_spec(spec).open()


__all__ = ["Device", "DEVICES", "DeviceSpec", "get_device", "parse_device_spec"]
