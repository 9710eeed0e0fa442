"""One layer as a device sees it, and its latency-table key.

A :class:`LayerSpec` is derived from an architecture object (never typed by hand). The
same spec builds the layer's module, gives its parameter and multiply-add counts, and
names it in latency tables, so the shape arithmetic lives in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hwnas.errors import HwnasError

Shape = tuple[int, int, int]
"""(height, width, channels) of one sample; the batch lives in the table header."""


@dataclass(frozen=True)
class LayerSpec:
    op: str
    input: Shape
    output: Shape
    kernel: int | None = None
    expand: float | None = None
    stride: int | None = None
    idskip: bool | None = None

    @property
    def key(self) -> str:
        """ProxylessNAS-style key, e.g.
        ``expanded_conv-input:112x112x16-output:56x56x24-expand:3-kernel:5-stride:2-idskip:0``."""
        parts = [self.op, "input:" + _shape(self.input), "output:" + _shape(self.output)]
        if self.expand is not None:
            parts.append(f"expand:{_num(self.expand)}")
        if self.kernel is not None:
            parts.append(f"kernel:{self.kernel}")
        if self.stride is not None:
            parts.append(f"stride:{self.stride}")
        if self.idskip is not None:
            parts.append(f"idskip:{int(self.idskip)}")
        return "-".join(parts)


def _shape(s: Shape) -> str:
    return "x".join(str(v) for v in s)


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


_FIELD = re.compile(r"^(input|output|expand|kernel|stride|idskip):(.+)$")


def parse_key(key: str) -> LayerSpec:
    """Inverse of :attr:`LayerSpec.key` (used to check tables and to rebuild layers)."""
    op, *fields = key.split("-")
    values: dict[str, object] = {}
    try:
        for f in fields:
            m = _FIELD.match(f)
            if not m:
                raise ValueError(f"field {f!r}")
            name, raw = m.groups()
            if name in ("input", "output"):
                dims = tuple(int(x) for x in raw.split("x"))
                if len(dims) != 3:
                    raise ValueError(f"shape {raw!r}")
                values[name] = dims
            elif name == "expand":
                values[name] = float(raw)
            elif name == "idskip":
                values[name] = bool(int(raw))
            else:
                values[name] = int(raw)
        return LayerSpec(op=op, **values)  # type: ignore[arg-type]
    except (ValueError, TypeError) as e:
        raise HwnasError(
            f"malformed layer key {key!r} ({e}); expected "
            "'op-input:HxWxC-output:HxWxC[-expand:E][-kernel:K][-stride:S][-idskip:0|1]'"
        ) from None
