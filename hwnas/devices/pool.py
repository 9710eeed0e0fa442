"""Several devices of one kind serving one job: a table build shared between agents.

A pool is a list of devices whose fingerprints are identical (the same hardware, runtime
and version, threads and transport), so that what one measures stands for what another
would: devices that differ are refused, naming the difference. Work is a queue of items;
each device takes the next one when it is free (one thread per device: the host side of a
measurement waits on its agent), so a faster device takes more. A device whose link fails
drops out and its item goes back on the queue for the others; nothing is measured twice
and nothing is lost. When every device has dropped out, what is left is reported and the
job (which saves each result as it comes) resumes with the same command.

Threads rather than Ray actors: a device is reached from the host its cable or network
reaches, which is where this process runs, and the work of a device's thread is waiting for
its agent's reply; the agents themselves already run on their devices.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Sequence

from hwnas.agent.client import AgentUnreachable
from hwnas.agent.wire import LinkError
from hwnas.errors import HwnasError

DROPPED = (AgentUnreachable, LinkError, OSError, TimeoutError)
"""What a device that dropped out raises (its agent unreachable after the client's reconnects,
its link closed or timed out)."""


def check_same_kind(devices: Sequence[Any]) -> dict[str, Any]:
    """The pool's common fingerprint; refuse devices whose fingerprints differ."""
    if not devices:
        raise HwnasError("a device pool needs at least one device")
    first = devices[0].fingerprint()
    for d in devices[1:]:
        other = d.fingerprint()
        diff = [f"{k}: {first.get(k)!r} on {devices[0].spec}, {other.get(k)!r} on {d.spec}"
                for k in sorted(set(first) | set(other)) if first.get(k) != other.get(k)]
        if diff:
            raise HwnasError("these devices are not one kind, so they cannot share a table or a measured set: "
                             + "; ".join(diff) + ". Give devices with identical fingerprints ('hwnas device info')")
    return first


def devices_of(device: Any) -> list[Any]:
    """One device, or a pool of them (a list or tuple) checked to be of one kind."""
    devices = list(device) if isinstance(device, (list, tuple)) else [device]
    if len(devices) > 1:
        check_same_kind(devices)
    return devices


def share(devices: Sequence[Any], items: Sequence[Any], work: Callable[[Any, Any], Any],
          done: Callable[[Any, Any, Any], None], what: str, saved: str) -> dict[str, Any]:
    """``work(device, item)`` for every item on whichever device is free, ``done(device, item,
    result)`` for each result (serialised: one at a time). Returns who did what:
    ``{"per_device": {spec: count}, "dropped": {spec: reason}}``; raises when every device
    dropped out with ``what`` (e.g. "layers") left, saying that ``saved`` keeps the rest."""
    todo: queue.Queue = queue.Queue()
    for item in items:
        todo.put(item)
    lock = threading.Lock()
    per_device = {d.spec: 0 for d in devices}
    dropped: dict[str, str] = {}
    failure: list[BaseException] = []

    busy = [0]  # items taken and not yet done or put back

    def serve(device: Any) -> None:
        while not failure:
            try:
                item = todo.get(timeout=0.05)
            except queue.Empty:
                with lock:
                    if busy[0] == 0:  # nothing out that a dropped device could put back
                        return
                continue
            with lock:
                busy[0] += 1
            try:
                result = work(device, item)
            except DROPPED as e:
                todo.put(item)  # for the devices still in the pool
                with lock:
                    busy[0] -= 1
                    dropped[device.spec] = f"{type(e).__name__}: {e}"
                return
            except BaseException as e:  # noqa: BLE001 (any other error stops the whole job)
                todo.put(item)
                with lock:
                    busy[0] -= 1
                failure.append(e)
                return
            with lock:
                done(device, item, result)
                per_device[device.spec] += 1
                busy[0] -= 1

    threads = [threading.Thread(target=serve, args=(d,), name=f"pool {d.spec}", daemon=True) for d in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failure:
        raise failure[0]
    if not todo.empty():
        raise HwnasError(f"every device dropped out ({'; '.join(f'{k}: {v}' for k, v in dropped.items())}) with "
                         f"{todo.qsize()} of {len(items)} {what} left; {saved} keeps the ones measured: rerun the "
                         "same command to resume")
    return {"per_device": per_device, "dropped": dropped}


class Lender:
    """Lends a pool's devices to concurrent callers, one caller per device at a time: for work
    that is not one queue of items, such as a search's finalist checks, which measure a few
    candidates at once and decide after each wave. A device that drops out is not lent again
    and the work goes to another; when none is left the caller gets a clear error."""

    def __init__(self, devices: Sequence[Any]) -> None:
        self.devices = devices_of(list(devices))
        self._free: queue.Queue = queue.Queue()
        for d in self.devices:
            self._free.put(d)
        self._lock = threading.Lock()
        self.per_device = {d.spec: 0 for d in self.devices}
        self.dropped: dict[str, str] = {}

    @property
    def width(self) -> int:
        """How many callers can be served at once."""
        return len(self.devices)

    def run(self, work: Callable[[Any], Any]) -> Any:
        """``work(device)`` on the next free device; again on another if that one drops out."""
        while True:
            with self._lock:
                if len(self.dropped) == len(self.devices):
                    raise HwnasError("every device of the pool dropped out ("
                                     + "; ".join(f"{k}: {v}" for k, v in self.dropped.items())
                                     + "): check the agents and run the same command again")
            try:
                device = self._free.get(timeout=0.05)
            except queue.Empty:
                continue
            try:
                result = work(device)
            except DROPPED as e:
                with self._lock:
                    self.dropped[device.spec] = f"{type(e).__name__}: {e}"
                continue
            except BaseException:
                self._free.put(device)
                raise
            with self._lock:
                self.per_device[device.spec] += 1
            self._free.put(device)
            return result
