"""Byte links the agent speaks over: TCP sockets and serial lines (pyserial).

A link reads exactly ``n`` bytes within a timeout or raises :class:`LinkTimeout` /
:class:`LinkClosed`; ``drain()`` discards whatever is in flight (after a corrupted frame,
so both sides start the next frame in step).
"""

from __future__ import annotations

import socket
import time
from typing import Any

from hwnas.agent.wire import LinkClosed, LinkTimeout


class TcpLink:
    kind = "tcp"

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @classmethod
    def connect(cls, host: str, port: int, timeout: float = 5.0) -> "TcpLink":
        try:
            return cls(socket.create_connection((host, port), timeout=timeout))
        except OSError as e:
            raise LinkClosed(f"cannot connect to {host}:{port}: {e}") from None

    def write(self, data: bytes) -> None:
        try:
            self.sock.settimeout(30.0)
            self.sock.sendall(data)
        except OSError as e:
            raise LinkClosed(f"TCP send failed: {e}") from None

    def read(self, n: int, timeout: float) -> bytes:
        buf = bytearray()
        deadline = time.monotonic() + timeout
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkTimeout(f"no reply within {timeout:g} s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except socket.timeout:
                raise LinkTimeout(f"no reply within {timeout:g} s") from None
            except OSError as e:
                raise LinkClosed(f"TCP receive failed: {e}") from None
            if not chunk:
                raise LinkClosed("the other side closed the connection")
            buf += chunk
        return bytes(buf)

    def drain(self, quiet: float = 0.2) -> None:
        self.sock.settimeout(quiet)
        try:
            while self.sock.recv(1 << 16):
                pass
        except (socket.timeout, OSError):
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class SerialLink:
    kind = "serial"

    def __init__(self, port: Any) -> None:
        self.port = port

    @classmethod
    def open(cls, path: str, baud: int = 921600) -> "SerialLink":
        import serial  # pyserial

        try:
            port = serial.Serial(path, baudrate=baud, timeout=0.1, write_timeout=30.0, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkClosed(f"cannot open serial port {path}: {e}") from None
        return cls(port)

    def write(self, data: bytes) -> None:
        import serial

        try:
            self.port.write(data)
            self.port.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkClosed(f"serial write failed: {e}") from None

    def read(self, n: int, timeout: float) -> bytes:
        import serial

        buf = bytearray()
        deadline = time.monotonic() + timeout
        while len(buf) < n:
            if time.monotonic() > deadline:
                raise LinkTimeout(f"no reply within {timeout:g} s")
            try:
                chunk = self.port.read(min(n - len(buf), 1 << 16))
            except (serial.SerialException, OSError) as e:
                raise LinkClosed(f"serial read failed: {e}") from None
            buf += chunk
        return bytes(buf)

    def drain(self, quiet: float = 0.2) -> None:
        import serial

        try:
            while True:
                time.sleep(quiet)
                if not self.port.in_waiting:
                    break
                self.port.reset_input_buffer()
        except (serial.SerialException, OSError):
            pass

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 (closing a dead port may raise anything)
            pass
