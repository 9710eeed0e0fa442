"""What identifies the machine and runtime a latency was measured on."""

from __future__ import annotations

import os
import platform
from typing import Any

IDENTITY_FIELDS = ("cpu_model", "logical_cores", "machine", "runtime", "threads", "accelerator")
"""Fields that must agree for a latency table to be used for a device. Runtime version,
OS and affinity are recorded but do not refuse a table."""


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def affinity() -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def host_fingerprint() -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count() or 1,
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "affinity": affinity(),
    }


def identity(fp: dict[str, Any]) -> dict[str, Any]:
    return {k: fp.get(k) for k in IDENTITY_FIELDS}


def identity_differences(have: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Human-readable list of identity fields that differ (empty when the same device)."""
    a, b = identity(have), identity(want)
    return [f"{k}: {a[k]!r} vs {b[k]!r}" for k in IDENTITY_FIELDS if a[k] != b[k]]
