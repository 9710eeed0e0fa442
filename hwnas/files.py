"""Reading and writing the files users keep: atomic writes (a file is either the old
version or the new one, never half of each) and reads that say what is wrong."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Iterator

from hwnas.errors import HwnasError


def write_atomic(path: str | Path, text: str | bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def read_json(path: str | Path, what: str, hint: str) -> Any:
    """Parse a JSON file, or say which ``what`` is missing or broken and ``hint`` how to get one."""
    p = Path(path)
    if not p.is_file():
        raise HwnasError(f"{what} {p} does not exist; {hint}")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HwnasError(f"{what} {p} is not valid JSON ({e})") from None


def read_toml(path: str | Path, what: str, hint: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise HwnasError(f"{what} {p} does not exist; {hint}")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise HwnasError(f"{what} {p} is not valid TOML: {e}") from None


def require(data: Any, path: str | Path, what: str, fields: dict[str, type | tuple[type, ...]]) -> None:
    """Check that ``data`` (a parsed file) has each dotted field with a value of its type,
    else raise one line naming the file and the field."""
    if not isinstance(data, dict):
        raise HwnasError(f"{what} {path}: expected a JSON/TOML object at the top, found {type(data).__name__}")
    for dotted, kind in fields.items():
        node: Any = data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                raise HwnasError(f"{what} {path}: field {dotted!r} is missing")
            node = node[part]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(node, kinds) or (isinstance(node, bool) and bool not in kinds):
            want = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            found = _TYPE_NAMES.get(type(node), type(node).__name__)
            raise HwnasError(f"{what} {path}: field {dotted!r} should be {want}, not {found}")


_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
               bool: "true/false", type(None): "null"}


@contextlib.contextmanager
def interpreting(path: str | Path, what: str) -> Iterator[None]:
    """Turn what goes wrong while a file's contents become objects into one line naming the
    file (and the field, when a field is missing), never a traceback."""
    try:
        yield
    except HwnasError as e:
        if str(path) in str(e):
            raise
        raise HwnasError(f"{what} {path}: {e}") from None
    except KeyError as e:
        raise HwnasError(f"{what} {path}: field {e.args[0]!r} is missing") from None
    except (TypeError, ValueError, IndexError, AttributeError) as e:
        line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise HwnasError(f"{what} {path}: a field has the wrong form ({line})") from None


def read_fields(path: str | Path, what: str, hint: str, fields: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """A JSON file that must have ``fields`` (see :func:`require`)."""
    data = read_json(path, what, hint)
    require(data, path, what, fields)
    return data


def read_versioned(path: str | Path, what: str, hint: str, kind: tuple[str, str], version: tuple[str, int],
                   fields: dict[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """A JSON file that names its kind and version (``kind = ("schema", "hwnas.latency_table")``,
    ``version = ("schema_version", 1)``), with the fields it must have. Refuses another kind or
    version, saying how to make a file this hwnas reads (``hint``)."""
    p = Path(path)
    data = read_json(p, what, hint)
    (kind_key, kind_value), (version_key, version_value) = kind, version
    got = data.get(kind_key) if isinstance(data, dict) else None
    if got != kind_value:
        raise HwnasError(f"{p} is not an hwnas {what} ({kind_key} {got!r}, expected {kind_value!r}); {hint}")
    if data.get(version_key) != version_value:
        raise HwnasError(f"{what} {p} has {kind_key} version {data.get(version_key)!r}; this hwnas reads version "
                         f"{version_value}: {hint}")
    require(data, p, what, fields)
    return data
