"""Helpers that start real agents and real links for tests and ``tools/bench_agent.py``:
an agent in its own process (TCP or serial), and a pair of pseudo-terminals joined by a
relay that can corrupt bytes or black the line out, as a flaky cable would."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path
from typing import Sequence


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_agent(args: Sequence[str], python: str = sys.executable, entry: Sequence[str] = ("-m", "hwnas.agent"),
                log: str | Path | None = None, env: dict | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen([python, *entry, "serve", *args], stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"no agent listening on port {port} after {timeout} s")


def wait_log(path: str | Path, text: str, timeout: float = 20.0) -> None:
    """Wait until the agent's log says ``text`` (e.g. "serving" once its port is open)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(path).exists() and text in Path(path).read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise TimeoutError(f"the agent did not log {text!r} within {timeout} s")


class PtyBridge:
    """Two pseudo-terminals whose masters are joined by a relay thread per direction.

    The agent opens ``agent_port``, the host ``host_port`` (both real tty devices, opened
    with pyserial). ``corrupt(direction)`` flips one byte of the next chunk going that way
    ("to_agent" or "to_host"); ``blackout(seconds)`` drops every byte for a while.
    """

    def __init__(self) -> None:
        self._a_master, self._a_slave = os.openpty()
        self._h_master, self._h_slave = os.openpty()
        self.agent_port, self.host_port = os.ttyname(self._a_slave), os.ttyname(self._h_slave)
        for fd in (self._a_slave, self._h_slave):
            tty.setraw(fd)  # no echo, no line editing, before either side opens its end
        self._corrupt = {"to_agent": 0, "to_host": 0}
        self._dark_until = 0.0
        self._stop = False
        self.bytes = {"to_agent": 0, "to_host": 0}
        self._threads = [threading.Thread(target=self._relay, args=(self._h_master, self._a_master, "to_agent"),
                                          daemon=True),
                         threading.Thread(target=self._relay, args=(self._a_master, self._h_master, "to_host"),
                                          daemon=True)]
        for t in self._threads:
            t.start()

    def corrupt(self, direction: str, count: int = 1) -> None:
        self._corrupt[direction] += count

    def blackout(self, seconds: float) -> None:
        self._dark_until = time.monotonic() + seconds

    def _relay(self, src: int, dst: int, direction: str) -> None:
        while not self._stop:
            r, _, _ = select.select([src], [], [], 0.1)
            if not r:
                continue
            try:
                chunk = bytearray(os.read(src, 65536))
            except OSError:
                time.sleep(0.05)
                continue
            if time.monotonic() < self._dark_until:
                continue
            if self._corrupt[direction] and chunk:
                self._corrupt[direction] -= 1
                chunk[len(chunk) // 2] ^= 0x5A
            self.bytes[direction] += len(chunk)
            view = memoryview(chunk)
            while view:
                try:
                    n = os.write(dst, view)
                except BlockingIOError:
                    time.sleep(0.001)
                    continue
                view = view[n:]

    def close(self) -> None:
        self._stop = True
        for t in self._threads:
            t.join(timeout=1)
        for fd in (self._a_master, self._a_slave, self._h_master, self._h_slave):
            try:
                os.close(fd)
            except OSError:
                pass
