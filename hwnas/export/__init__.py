"""Exporting built models to the formats devices run."""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_EXPORTING = threading.RLock()


def one_at_a_time(fn: F) -> F:
    """Run ``fn`` in one thread at a time: torch's ONNX exporter and the TFLite converter keep
    global state, and a pool of devices (:mod:`hwnas.devices.pool`) exports from several
    threads."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _EXPORTING:
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
