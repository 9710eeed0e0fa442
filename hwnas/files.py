"""Reading and writing the files users keep: atomic writes (a file is either the old
version or the new one, never half of each) and reads that say what is wrong."""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from hwnas.errors import HwnasError


def write_atomic(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
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
