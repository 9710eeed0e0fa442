"""The agent's wire format: framed messages with a JSON header and a binary payload.

A frame is, big-endian::

    offset size  field
    0      4     magic b"HWNA"
    4      1     protocol version (1)
    5      1     reserved (0)
    6      4     header length (bytes of UTF-8 JSON, at most 1 MiB)
    10     4     payload length
    14     4     CRC32 of header + payload
    18     4     CRC32 of bytes 0..17 (so a corrupted length is caught before it is trusted)
    22     ...   JSON header (an object), then the payload

Nothing is unpickled: the header is JSON and the payload raw bytes (a model file, or
arrays described in the header by dtype and shape from a fixed list).
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import numpy as np

MAGIC = b"HWNA"
VERSION = 1
PREFIX = struct.Struct(">4sBBIII")
FIXED = PREFIX.size + 4
MAX_HEADER = 1 << 20
MAX_PAYLOAD = 1 << 30
DTYPES = ("float32", "float16", "float64", "int8", "uint8", "int16", "int32", "int64", "bool")


class LinkError(Exception):
    """The link failed (closed, timed out); the client reconnects."""


class LinkClosed(LinkError):
    pass


class LinkTimeout(LinkError):
    pass


class CorruptFrame(Exception):
    """A frame failed its checks; the request is sent again."""


def encode(header: dict[str, Any], payload: bytes = b"") -> bytes:
    head = json.dumps(header, separators=(",", ":")).encode()
    if len(head) > MAX_HEADER:
        raise ValueError(f"header of {len(head)} bytes is over the {MAX_HEADER} byte limit")
    prefix = PREFIX.pack(MAGIC, VERSION, 0, len(head), len(payload), zlib.crc32(head + payload))
    return prefix + struct.pack(">I", zlib.crc32(prefix)) + head + payload


def read_frame(link: Any, timeout: float, max_payload: int = MAX_PAYLOAD) -> tuple[dict[str, Any], bytes]:
    """One frame from ``link`` (``read(n, timeout)``); raises CorruptFrame or LinkError."""
    fixed = link.read(FIXED, timeout)
    magic, version, _, hlen, plen, body_crc = PREFIX.unpack(fixed[:PREFIX.size])
    (head_crc,) = struct.unpack(">I", fixed[PREFIX.size:])
    if magic != MAGIC or zlib.crc32(fixed[:PREFIX.size]) != head_crc:
        raise CorruptFrame("bad frame prefix (magic or prefix checksum)")
    if version != VERSION:
        raise CorruptFrame(f"protocol version {version}; this side speaks {VERSION}")
    if hlen > MAX_HEADER or plen > max_payload:
        raise CorruptFrame(f"frame of {hlen} + {plen} bytes is over the limits ({MAX_HEADER} + {max_payload})")
    body = link.read(hlen + plen, timeout) if hlen + plen else b""
    if zlib.crc32(body) != body_crc:
        raise CorruptFrame("frame checksum mismatch")
    try:
        header = json.loads(body[:hlen].decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorruptFrame(f"frame header is not JSON: {e}") from None
    if not isinstance(header, dict):
        raise CorruptFrame("frame header is not a JSON object")
    return header, body[hlen:]


def pack_arrays(arrays: list[np.ndarray]) -> tuple[list[dict[str, Any]], bytes]:
    """Arrays as (descriptions, bytes): dtype names from DTYPES, shapes, C order."""
    specs, chunks = [], []
    for a in arrays:
        a = np.ascontiguousarray(a)
        if a.dtype.name not in DTYPES:
            raise ValueError(f"dtype {a.dtype} cannot be sent; use one of {', '.join(DTYPES)}")
        specs.append({"dtype": a.dtype.name, "shape": list(a.shape)})
        chunks.append(a.tobytes())
    return specs, b"".join(chunks)


def unpack_arrays(specs: Any, payload: bytes) -> list[np.ndarray]:
    if not isinstance(specs, list):
        raise ValueError("'arrays' must be a list of {dtype, shape}")
    out, offset = [], 0
    for s in specs:
        if not isinstance(s, dict) or s.get("dtype") not in DTYPES:
            raise ValueError(f"array dtype must be one of {', '.join(DTYPES)}")
        shape = s.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError("array shape must be a list of non-negative integers")
        dtype = np.dtype(s["dtype"])
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if offset + n > len(payload):
            raise ValueError("payload is shorter than the arrays it describes")
        out.append(np.frombuffer(payload[offset:offset + n], dtype=dtype).reshape(shape).copy())
        offset += n
    if offset != len(payload):
        raise ValueError("payload is longer than the arrays it describes")
    return out
