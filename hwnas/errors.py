"""User-facing errors.

Every error a user can cause (a malformed arch string, a missing file, a table for
another device) is an :class:`HwnasError`; the CLI prints it as one line and exits
non-zero instead of showing a traceback.
"""

from __future__ import annotations


class HwnasError(Exception):
    """An error caused by input; the message says what was wrong and what to do."""


class ArchError(HwnasError, ValueError):
    """An architecture string or object that does not belong to its space."""


class RegistryError(HwnasError, KeyError):
    """A duplicate registration or a lookup of a name nobody registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
