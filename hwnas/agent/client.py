"""The host's side of the agent protocol: requests with timeouts, retries and reconnects.

- every request has a timeout;
- a corrupted frame (either way) is detected by its checksums; the link is drained and
  the request sent again (``retries`` times at most);
- a dropped link, a dead agent or a timeout closes the link; the client reconnects with
  exponential back-off (``reconnects`` times at most per request), says hello again,
  reloads the models the agent had (a restarted agent has none) and repeats the request.

Requests are idempotent (a load of the same bytes gives the same handle), so repeating
one is safe. Used by :class:`hwnas.devices.remote.RemoteDevice`.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Callable

from hwnas.agent.wire import CorruptFrame, LinkError, encode, read_frame
from hwnas.errors import HwnasError


class AgentError(HwnasError):
    """The agent answered with an error (``code``: rejected, too_large, unauthorized, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AgentUnreachable(HwnasError):
    pass


class AgentClient:
    def __init__(self, connect: Callable[[], Any], where: str, *, token: str | None = None, timeout_s: float = 30.0,
                 retries: int = 3, reconnects: int = 6, backoff_s: float = 0.5,
                 log: Callable[[str], None] | None = None) -> None:
        self.connect_fn, self.where, self.token = connect, where, token
        self.timeout_s, self.retries, self.reconnects, self.backoff_s = timeout_s, retries, reconnects, backoff_s
        self.link: Any = None
        self.hello: dict[str, Any] = {}
        self.loaded: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.next_id = 1
        self.log = log or (lambda msg: None)
        self.stats = {"corrupt": 0, "reconnects": 0, "requests": 0}

    # -- connection -----------------------------------------------------------------
    def _connect(self) -> None:
        self.link = self.connect_fn()
        self.link.drain(0.05)
        self.hello = self._exchange({"op": "hello"}, b"", self.timeout_s)[0]
        for fields, data in list(self.loaded.values()):
            self._exchange(fields, data, self.timeout_s)

    def _drop(self) -> None:
        if self.link is not None:
            self.link.close()
        self.link = None

    def close(self) -> None:
        self._drop()

    # -- one exchange on the current link (raises LinkError / CorruptFrame / AgentError) --
    def _exchange(self, fields: dict[str, Any], payload: bytes, timeout: float) -> tuple[dict[str, Any], bytes]:
        rid = self.next_id
        self.next_id += 1
        header = {**fields, "id": rid}
        if self.token is not None:
            header["token"] = self.token
        self.link.write(encode(header, payload))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkError(f"no answer to {fields.get('op')} within {timeout:g} s")
            reply, data = read_frame(self.link, left)
            if reply.get("code") == "corrupt":
                raise CorruptFrame(reply.get("error", "the agent saw a corrupt frame"))
            if reply.get("id") != rid:
                continue  # a stale answer to an earlier, repeated request
            if not reply.get("ok"):
                raise AgentError(str(reply.get("code")), f"agent at {self.where}: {reply.get('error')}")
            return reply, data

    # -- the public call ------------------------------------------------------------
    def request(self, op: str, payload: bytes = b"", timeout: float | None = None, **fields: Any
                ) -> tuple[dict[str, Any], bytes]:
        fields = {"op": op, **fields}
        corrupt = reconnects = 0
        self.stats["requests"] += 1
        while True:
            try:
                if self.link is None:
                    self._connect()
                return self._exchange(fields, payload, timeout or self.timeout_s)
            except CorruptFrame as e:
                corrupt += 1
                self.stats["corrupt"] += 1
                self.log(f"corrupt frame ({e}); sending {op} again")
                if corrupt > self.retries:
                    raise AgentUnreachable(f"agent at {self.where}: {op} failed {corrupt} times on corrupt "
                                           f"frames ({e}); check the cable / baud rate") from None
                if self.link is not None:
                    self.link.drain()
            except LinkError as e:
                self._drop()
                reconnects += 1
                self.stats["reconnects"] += 1
                if reconnects > self.reconnects:
                    raise AgentUnreachable(f"agent at {self.where} unreachable after {self.reconnects} reconnects "
                                           f"({e}); is it running? (hwnas agent serve ...)") from None
                wait = min(self.backoff_s * 2 ** (reconnects - 1), 10.0)
                self.log(f"{e}; reconnecting in {wait:.1f} s ({reconnects}/{self.reconnects})")
                time.sleep(wait)

    def load(self, fmt: str, data: bytes, name: str, threads: int, extra: dict[str, Any] | None = None) -> str:
        fields = {"format": fmt, "sha256": hashlib.sha256(data).hexdigest(), "name": name, "threads": threads,
                  **(extra or {})}
        reply, _ = self.request("load", data, **fields)
        handle = str(reply["model"])
        self.loaded[handle] = ({"op": "load", **fields}, data)
        return handle

    def unload(self, handle: str) -> None:
        self.loaded.pop(handle, None)
        self.request("unload", model=handle)
