"""Per-device latency lookup tables."""

from hwnas.lut.table import LatencyTable, SCHEMA, SCHEMA_VERSION

__all__ = ["LatencyTable", "SCHEMA", "SCHEMA_VERSION"]
